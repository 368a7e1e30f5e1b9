// What-if replay speed on a week of a 5,000-pod cluster, on this machine:
//   npx tsx bench/replay.ts [--pods 5000] [--days 7] [--peers 10]
// Builds a cluster of --pods pods (10 per workload, 25 namespaces, a default deny and an allow
// policy per workload), records --days days of traffic (each pod talks to --peers peers a day:
// mostly allowed, some violations) through the processor into a fresh SQLite store, as `audit`
// does. Then times reading the recorded edges, replaying them under the policies in force, and a
// whole `whatif` with a draft; and prints the ratio against a baseline on the same traffic in the
// same run: judging the same conversations afresh with the judge and a full inventory, as `check`
// does. Nothing here asserts a speed.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { StaticClusterView } from '../processor/cluster-view.js';
import { Inventory } from '../processor/inventory/index.js';
import type { ClusterModel, PodModel } from '../processor/inventory/model.js';
import { judgeFlow } from '../processor/judge/index.js';
import { compilePolicyIndex } from '../processor/policy/index.js';
import { DEFAULT_POLICY_OPTIONS } from '../processor/policy/types.js';
import { FlowProcessor, type JudgedFlow } from '../processor/processor.js';
import { AuditStore, type StoredFlow } from '../processor/store/index.js';
import type { FlowRecord } from '../schema/flow-record.js';
import { applyDrafts, type PolicySet, replay, whatIf } from '../whatif/index.js';

const { values: args } = parseArgs({
  options: {
    pods: { type: 'string', default: '5000' },
    days: { type: 'string', default: '7' },
    peers: { type: 'string', default: '10' },
  },
});
const PODS = Number(args.pods);
const DAYS = Number(args.days);
const PEERS = Number(args.peers);
const NAMESPACES = 25;
const PER_WORKLOAD = 10;
const WORKLOADS = Math.ceil(PODS / PER_WORKLOAD);
const DAY = 86_400_000;
const start = Date.UTC(2026, 10, 2);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

let seed = 7;
const rnd = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const nsOf = (w: number) => `ns-${w % NAMESPACES}`;
const app = (w: number) => `app-${w}`;
/** Each workload accepts 8080 from three others: w+1, w+2, w+3 (mod). */
const callers = (w: number) => [1, 2, 3].map((d) => (w + WORKLOADS - d) % WORKLOADS);

function cluster(): ClusterModel {
  const pods: PodModel[] = [];
  for (let i = 0; i < PODS; i++) {
    const w = i % WORKLOADS;
    pods.push({
      namespace: nsOf(w),
      name: `${app(w)}-7d9f8c6b5-${String(i).padStart(5, 'x')}`,
      labels: { app: app(w), 'app.kubernetes.io/name': app(w), 'pod-template-hash': '7d9f8c6b5' },
      ips: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`.replace(/^10\.0\./, '10.100.')],
      nodeName: `node-${i % 50}`,
      hostNetwork: false,
      phase: 'Running',
      ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
    });
  }
  const networkPolicies: unknown[] = [];
  for (let n = 0; n < NAMESPACES; n++)
    networkPolicies.push({
      kind: 'NetworkPolicy',
      metadata: { name: 'default-deny', namespace: `ns-${n}` },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
  for (let w = 0; w < WORKLOADS; w++)
    networkPolicies.push({
      kind: 'NetworkPolicy',
      metadata: { name: `allow-${app(w)}`, namespace: nsOf(w) },
      spec: {
        podSelector: { matchLabels: { app: app(w) } },
        ingress: [
          {
            from: callers(w).map((c) => ({
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': nsOf(c) } },
              podSelector: { matchLabels: { app: app(c) } },
            })),
            ports: [{ protocol: 'TCP', port: 'http' }],
          },
        ],
      },
    });
  return {
    namespaces: Array.from({ length: NAMESPACES }, (_, n) => ({
      name: `ns-${n}`,
      labels: { 'kubernetes.io/metadata.name': `ns-${n}`, team: `t${n % 5}` },
    })),
    pods,
    nodes: Array.from({ length: 50 }, (_, n) => ({
      name: `node-${n}`,
      addresses: [`192.168.1.${n}`],
      podCIDRs: [],
    })),
    services: [],
    endpointSlices: [],
    networkPolicies,
    clusterNetworkPolicies: [],
  };
}

const c = cluster();
const inventory = new Inventory(c);
const index = compilePolicyIndex(c, DEFAULT_POLICY_OPTIONS).index;
// The traffic: per day, each pod calls PEERS pods; 95% of them pods of a workload it may call.
const flows: FlowRecord[] = [];
for (let d = 0; d < DAYS; d++)
  for (let i = 0; i < PODS; i++) {
    const w = i % WORKLOADS;
    for (let k = 0; k < PEERS; k++) {
      const allowedTarget = rnd() < 0.95;
      const tw = allowedTarget ? (w + 1 + Math.floor(rnd() * 3)) % WORKLOADS : Math.floor(rnd() * WORKLOADS);
      const tp = tw + WORKLOADS * Math.floor(rnd() * PER_WORKLOAD);
      const dst = c.pods[Math.min(tp, PODS - 1)]!;
      const at = start + d * DAY + Math.floor(rnd() * DAY);
      flows.push({
        v: 1,
        start: at,
        end: at + 50,
        proto: 'TCP',
        src: { ip: c.pods[i]!.ips[0]!, port: 30000 + k },
        dst: { ip: dst.ips[0]!, port: 8080 },
        packets: { fwd: 6, rev: 5 },
        bytes: { fwd: 800, rev: 4000 },
        state: rnd() < 0.9 ? 'closed' : 'attempted',
        observer: { source: 'conntrack', node: c.pods[i]!.nodeName! },
      });
    }
  }

const dir = mkdtempSync(join(tmpdir(), 'npa-replay-bench-'));
const path = join(dir, 'week.db');
try {
  let t = performance.now();
  const judged: JudgedFlow[] = [];
  const processor = new FlowProcessor(new StaticClusterView(inventory, index), {
    write: (j: JudgedFlow) => {
      judged.push(j);
    },
    flush: async () => {},
  });
  for (const f of flows) processor.write(f);
  const store = AuditStore.open(path);
  for (let i = 0; i < judged.length; i += 5000)
    store.applyBatch(judged.slice(i, i + 5000).map((j) => j.stored as StoredFlow));
  const recordMs = performance.now() - t;
  store.close();

  const ro = AuditStore.open(path, { readonly: true });
  t = performance.now();
  const edges = ro.replay.edges(start, start + DAYS * DAY);
  const readMs = performance.now() - t;
  ro.close();

  const baseline: PolicySet = { networkPolicies: c.networkPolicies, clusterNetworkPolicies: [] };
  t = performance.now();
  const run = replay(edges, baseline, DEFAULT_POLICY_OPTIONS);
  const replayMs = performance.now() - t;
  const mismatches = run.results.filter((r, i) => r.classification !== edges[i]!.classification).length;

  // A draft: a default deny for egress in one namespace, and one policy replaced by a narrower one.
  const drafts: PolicySet = {
    networkPolicies: [
      {
        kind: 'NetworkPolicy',
        metadata: { name: 'default-deny-egress', namespace: 'ns-3' },
        spec: { podSelector: {}, policyTypes: ['Egress'] },
      },
      {
        kind: 'NetworkPolicy',
        metadata: { name: `allow-${app(10)}`, namespace: nsOf(10) },
        spec: { podSelector: { matchLabels: { app: app(10) } }, ingress: [] },
      },
    ],
    clusterNetworkPolicies: [],
  };
  t = performance.now();
  const result = whatIf({
    edges,
    baseline,
    applied: applyDrafts(baseline, drafts, []),
    draftIds: ['NetworkPolicy/ns-3/default-deny-egress', `NetworkPolicy/${nsOf(10)}/allow-${app(10)}`],
    options: DEFAULT_POLICY_OPTIONS,
    since: start,
    until: start + DAYS * DAY,
  });
  const whatIfMs = performance.now() - t;

  // Baseline: the same conversations judged afresh, one flow per edge, as `check` judges flows.
  const sample = flows.slice(0, edges.length);
  t = performance.now();
  for (const f of sample) judgeFlow(f, inventory, index, { cache: false });
  const checkMs = performance.now() - t;

  const size = statSync(path).size;
  const flowsRecorded = edges.reduce((n, e) => n + e.flows, 0);
  console.log(
    `cluster: ${fmt(PODS)} pods, ${fmt(WORKLOADS)} workloads, ${NAMESPACES} namespaces, ${fmt(c.networkPolicies.length)} policies`,
  );
  console.log(
    `recorded: ${fmt(flows.length)} flows over ${DAYS} days -> ${fmt(edges.length)} replay edges (${fmt(flowsRecorded)} flows), store ${fmt(size / 1e6)} MB, written in ${fmt(recordMs)} ms`,
  );
  console.log(`read edges from SQLite:   ${fmt(readMs)} ms   ${fmt(edges.length / (readMs / 1000))} edges/s`);
  console.log(
    `replay (policies in force): ${fmt(replayMs)} ms   ${fmt(edges.length / (replayMs / 1000))} edges/s   (${mismatches} edges differ from the record)`,
  );
  console.log(
    `whatif with 2 drafts (2 replays + draft-rule checks): ${fmt(whatIfMs)} ms   ${fmt(edges.length / (whatIfMs / 1000))} edges/s   ${result.becomeDenied.length} pairs become denied`,
  );
  console.log(
    `baseline, judge afresh (check path, no cache): ${fmt(checkMs)} ms   ${fmt(sample.length / (checkMs / 1000))} flows/s`,
  );
  console.log(`ratio replay / judge afresh: ${(checkMs / replayMs).toFixed(2)}x`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

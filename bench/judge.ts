/**
 * Snapshot loading, inventory and judge throughput: `npx tsx bench/judge.ts [pods] [--no-yaml]`.
 *
 * Uses the policy benchmark's synthetic cluster (bench/policy-cluster.ts, default 5000 pods, 1000
 * policies), adds one ClusterIP Service per (namespace, app) with an EndpointSlice, and measures:
 *   1. parsing the cluster as `kubectl get ... -o json` and `-o yaml` would print it (objects/s, MB/s);
 *   2. building the Inventory; resolve() per second on pod, service and outside addresses;
 *   3. judgeFlow per second on the policy benchmark's flows, and on flows to Service ClusterIPs
 *      (each expanded to its backends), best of 3, with the judge's cache cold and warm.
 */
import { stringify } from 'yaml';
import { Inventory } from '../processor/inventory/index.js';
import { parseSnapshot } from '../processor/inventory/snapshot.js';
import { judgeFlow } from '../processor/judge/index.js';
import { compilePolicyIndex } from '../processor/policy/index.js';
import { type FlowRecord, protocolValue } from '../schema/flow-record.js';
import { addServices, kubectlList } from './cluster-objects.js';
import { DEFAULT_SIZES, generateCluster, generateFlows, rng } from './policy-cluster.js';

const args = process.argv.slice(2);
const skipYaml = args.includes('--no-yaml');
const pods = Number(args.find((a) => /^\d+$/.test(a)) ?? DEFAULT_SIZES.pods);
const base = generateCluster(7, { ...DEFAULT_SIZES, pods });

const cluster = addServices(base);

function best<T>(runs: number, f: () => T): { ms: number; value: T } {
  let ms = Number.POSITIVE_INFINITY;
  let value: T | undefined;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    value = f();
    ms = Math.min(ms, performance.now() - t);
  }
  return { ms, value: value as T };
}

const list = kubectlList(cluster) as { items: unknown[] };
const objects = list.items.length;
const json = JSON.stringify(list);
const yamlText = stringify(list, { indentSeq: false });
console.log(
  `cluster: ${cluster.pods.length} pods, ${cluster.services.length} services, ${cluster.networkPolicies.length} policies, ${cluster.nodes.length} nodes; ${objects} objects`,
);
for (const [label, text] of [
  ['json', json],
  ['yaml', yamlText],
] as const) {
  if (label === 'yaml' && skipYaml) continue;
  const { ms, value } = best(label === 'json' ? 3 : 1, () => parseSnapshot([{ source: label, text }]));
  const errors = value.issues.filter((i) => i.severity === 'error').length;
  console.log(
    `parse ${label}: ${(text.length / 1e6).toFixed(1)} MB in ${ms.toFixed(0)} ms = ${Math.round(objects / (ms / 1000))} objects/s, ${(text.length / 1e6 / (ms / 1000)).toFixed(1)} MB/s (${errors} errors)`,
  );
}

const inv = best(3, () => new Inventory(cluster));
console.log(`inventory build: ${inv.ms.toFixed(1)} ms`);
const inventory = inv.value;
const r = rng(99);
const addrs: string[] = [];
for (let i = 0; i < 10_000; i++) {
  const roll = r();
  if (roll < 0.6) addrs.push(cluster.pods[Math.floor(r() * cluster.pods.length)]!.ips[0]!);
  else if (roll < 0.8)
    addrs.push(cluster.services[Math.floor(r() * cluster.services.length)]!.clusterIPs[0]!);
  else addrs.push(`198.51.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}`);
}
const resolves = best(3, () => {
  let hits = 0;
  for (let k = 0; k < 10; k++) for (const a of addrs) if (inventory.resolve(a).pod) hits++;
  return hits;
});
console.log(`resolve: ${Math.round((addrs.length * 10) / (resolves.ms / 1000))}/s`);

const { index, issues } = compilePolicyIndex(cluster);
if (issues.some((i) => i.severity === 'error')) console.log(`policy issues: ${issues.length}`);

const toRecord = (
  src: string,
  dst: string,
  proto: number,
  port: number | undefined,
  i: number,
): FlowRecord => ({
  v: 1,
  start: 1_763_884_800_000 + i,
  end: 1_763_884_800_050 + i,
  proto: protocolValue(proto),
  src: { ip: src, port: 40000 + (i % 20000) },
  dst: port === undefined ? { ip: dst } : { ip: dst, port },
  packets: { fwd: 3, rev: 2 },
  bytes: { fwd: 200, rev: 100 },
  state: 'established',
  observer: { source: 'bench' },
});
const FLOWS = 200_000;
const podFlows = generateFlows(cluster, 11, FLOWS).map((q, i) =>
  toRecord(q.src.ip, q.dst.ip, q.proto, q.port, i),
);
const serviceFlows = podFlows.map((f, i) => {
  const svc = cluster.services[i % cluster.services.length]!;
  return {
    ...f,
    proto: protocolValue(svc.ports[0]!.protocol === 'UDP' ? 17 : 6),
    dst: { ip: svc.clusterIPs[0]!, port: 80 },
  };
});
for (const [label, flows] of [
  ['pod/node/external flows', podFlows],
  ['flows to Service ClusterIPs', serviceFlows],
] as const) {
  // Cold: a fresh Inventory, so the judge's per-conversation cache starts empty (the engine's verdict
  // cache is warm after the first pass). Warm: the same flows again, as repeated conversations are.
  const cold = best(3, () => {
    const fresh = new Inventory(cluster);
    let allowed = 0;
    for (const f of flows) if (judgeFlow(f, fresh, index).verdict.allowed) allowed++;
    return allowed;
  });
  const warm = best(3, () => {
    let allowed = 0;
    for (const f of flows) if (judgeFlow(f, inventory, index).verdict.allowed) allowed++;
    return allowed;
  });
  console.log(
    `judgeFlow, ${label}: cold ${Math.round(flows.length / (cold.ms / 1000))}/s, repeated ${Math.round(flows.length / (warm.ms / 1000))}/s (${warm.value} of ${flows.length} allowed)`,
  );
}
const stringified = best(3, () => {
  let bytes = 0;
  for (const f of podFlows) bytes += JSON.stringify(judgeFlow(f, inventory, index)).length;
  return bytes;
});
console.log(
  `judgeFlow + JSON.stringify: ${Math.round(podFlows.length / (stringified.ms / 1000))}/s, ${Math.round(stringified.value / podFlows.length)} bytes per record`,
);

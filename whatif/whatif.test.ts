import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { StaticClusterView } from '../processor/cluster-view.js';
import { Inventory } from '../processor/inventory/index.js';
import type { ClusterModel } from '../processor/inventory/model.js';
import { clusterArb, policySpecArb } from '../processor/policy/arbitrary.js';
import { compilePolicyIndex } from '../processor/policy/index.js';
import { DEFAULT_POLICY_OPTIONS, type PolicyOptions } from '../processor/policy/types.js';
import { FlowProcessor, type JudgedFlow } from '../processor/processor.js';
import { AuditStore, type StoredFlow } from '../processor/store/index.js';
import type { FlowRecord } from '../schema/flow-record.js';
import type { RecordedEdge } from '../schema/replay.js';
import { applyDrafts, type PolicySet, parseDrafts, policyId, replay, suggest, whatIf } from './index.js';
import { foldAddresses } from './suggest.js';

const dir = mkdtempSync(join(tmpdir(), 'npa-whatif-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let dbCount = 0;

const OTHER = [
  '8.8.8.8',
  '203.0.113.7',
  '203.0.113.6',
  '192.168.0.1',
  '192.168.0.2',
  'fd00::ff',
  '2001:db8::1',
];
const DAY = 86_400_000;
const T0 = 1_790_000_000_000;

const flowArb = fc.record({
  src: fc.nat(40),
  dst: fc.nat(40),
  proto: fc.constantFrom('TCP', 'TCP', 'UDP', 'SCTP', 'ICMP'),
  port: fc.constantFrom(53, 80, 81, 8080, 8081),
  state: fc.constantFrom('established', 'attempted', 'rejected', 'closed'),
  at: fc.nat(3 * DAY),
});

function addressOf(c: ClusterModel, i: number): string {
  const pods = c.pods;
  return i < pods.length * 3 ? pods[i % pods.length]!.ips[0]! : OTHER[i % OTHER.length]!;
}

/** Random flows between the cluster's pods and other addresses, judged by the processor and stored. */
function record(c: ClusterModel, specs: fc.infer<typeof flowArb>[], options: PolicyOptions) {
  const index = compilePolicyIndex(c, options).index;
  const judged: JudgedFlow[] = [];
  const processor = new FlowProcessor(new StaticClusterView(new Inventory(c), index), {
    write: (j: JudgedFlow) => {
      judged.push(j);
    },
    flush: async () => {},
  });
  specs.forEach((s, i) => {
    const v6 = (a: string) => a.includes(':');
    const src = addressOf(c, s.src);
    let dst = addressOf(c, s.dst);
    // Both ends of one family: another pod of the source's family, else an outside address.
    if (v6(src) !== v6(dst))
      dst =
        c.pods.map((p) => p.ips[0]!).find((ip) => v6(ip) === v6(src) && ip !== src) ??
        OTHER.find((ip) => v6(ip) === v6(src))!;
    const flow: FlowRecord = {
      v: 1,
      start: T0 + s.at,
      end: T0 + s.at + 10,
      proto: s.proto === 'ICMP' && v6(src) ? 'ICMPv6' : (s.proto as FlowRecord['proto']),
      src: s.proto === 'ICMP' ? { ip: src } : { ip: src, port: 40000 + i },
      dst: s.proto === 'ICMP' ? { ip: dst } : { ip: dst, port: s.port },
      packets: { fwd: 2, rev: 1 },
      bytes: { fwd: 100 + i, rev: 50 },
      state: s.state as FlowRecord['state'],
      observer: { source: 'conntrack' },
    };
    processor.write(flow);
  });
  const store = AuditStore.open(join(dir, `p${dbCount++}.db`));
  try {
    // Two ICMP flows between the same ends at the same moment are one flow seen twice: counted once.
    const batch = store.applyBatch(judged.map((j) => j.stored as StoredFlow));
    expect(batch.stored + batch.duplicates).toBe(judged.length);
    return {
      edges: store.replay.edges(0, Number.MAX_SAFE_INTEGER),
      skipped: store.replay.skipped(0, Number.MAX_SAFE_INTEGER),
      stored: batch.stored,
    };
  } finally {
    store.close();
  }
}

const policiesOf = (c: ClusterModel): PolicySet => ({
  networkPolicies: c.networkPolicies.map((p) => ({ kind: 'NetworkPolicy', ...(p as object) })),
  clusterNetworkPolicies: c.clusterNetworkPolicies ?? [],
});

const optionsArb = fc.record({
  ipBlockMatchesPods: fc.boolean(),
  hostNetwork: fc.constantFrom('node' as const, 'pod' as const),
});

function flowsIn(edges: readonly RecordedEdge[]): number {
  return edges.reduce((n, e) => n + e.flows, 0);
}

/** Across the runs of a property: how many recorded edges were denied between pods (it must be tested). */
const seen = { edges: 0, deniedPods: 0 };

describe('whatif replay (property)', () => {
  it('with no draft, replay reproduces the stored classification of every recorded flow, and nothing is lost', () => {
    fc.assert(
      fc.property(
        clusterArb,
        fc.array(flowArb, { minLength: 10, maxLength: 60 }),
        optionsArb,
        (c, specs, options) => {
          const { edges, skipped, stored } = record(c, specs, options);
          const base = policiesOf(c);
          const run = replay(edges, base, options);
          seen.edges += edges.length;
          seen.deniedPods += edges.filter(
            (e) => e.classification !== 'allowed' && (e.src.pod || e.dst.pod),
          ).length;
          edges.forEach((e, i) => {
            expect(run.results[i]!.classification).toBe(e.classification);
          });
          expect(flowsIn(edges) + skipped.reduce((n, s) => n + s.flows, 0)).toBe(stored);
          const r = whatIf({
            edges,
            baseline: base,
            applied: applyDrafts(base, { networkPolicies: [], clusterNetworkPolicies: [] }, []),
            draftIds: [],
            options,
            since: 0,
            until: T0 + 4 * DAY,
          });
          expect(r.drift).toEqual({ flows: 0, edges: 0 });
          expect(r.becomeDenied.length + r.becomeAllowed.length + r.otherChanges.length).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
    // The property holds on something: many edges, many of them denied between pods.
    expect(seen.edges).toBeGreaterThan(1000);
    expect(seen.deniedPods).toBeGreaterThan(20);
  });

  it('applying a draft and then deleting it replays to the original verdicts', () => {
    fc.assert(
      fc.property(
        clusterArb,
        fc.array(flowArb, { minLength: 10, maxLength: 40 }),
        policySpecArb,
        fc.constantFrom('a', 'b', 'c'),
        (c, specs, spec, ns) => {
          const options = DEFAULT_POLICY_OPTIONS;
          const { edges } = record(c, specs, options);
          const base = policiesOf(c);
          const draft = { kind: 'NetworkPolicy', metadata: { name: 'draft', namespace: ns }, spec };
          const drafts = { networkPolicies: [draft], clusterNetworkPolicies: [] };
          const applied = applyDrafts(base, drafts, []);
          expect(applied.added).toEqual([`NetworkPolicy/${ns}/draft`]);
          const undone = applyDrafts(applied.policies, { networkPolicies: [], clusterNetworkPolicies: [] }, [
            policyId(draft),
          ]);
          const original = replay(edges, base, options).results.map((r) => r.classification);
          const again = replay(edges, undone.policies, options).results.map((r) => r.classification);
          expect(again).toEqual(original);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a suggestion never denies a recorded allowed flow, and allows no recorded denied one', () => {
    fc.assert(
      fc.property(
        clusterArb,
        fc.array(flowArb, { minLength: 10, maxLength: 60 }),
        optionsArb,
        fc.constantFrom('per-workload' as const, 'per-namespace' as const),
        (c, specs, options, style) => {
          const { edges } = record(c, specs, options);
          const base = policiesOf(c);
          const s = suggest({ edges, baseline: base, options, style, since: T0, until: T0 + 4 * DAY });
          expect(s.check.becomeDenied).toEqual([]);
          expect(s.check.becomeAllowed).toEqual([]);
          // Alone, without the policies in force, the suggestions still allow every allowed flow.
          const alone = replay(edges, { networkPolicies: s.policies, clusterNetworkPolicies: [] }, options);
          const before = replay(edges, base, options);
          edges.forEach((_e, i) => {
            if (before.results[i]!.classification === 'allowed')
              expect(alone.results[i]!.classification).toBe('allowed');
          });
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('whatif replay: named ports', () => {
  it('keeps a name that stands for one port under two protocols, so an egress rule on the UDP one replays as recorded', () => {
    // Found by the property above (seed 1169154981): the recorded pod kept only http/TCP of
    // http 8080 TCP + UDP, and replay denied what the processor had allowed.
    const ns = (name: string) => ({ name, labels: { 'kubernetes.io/metadata.name': name } });
    const c: ClusterModel = {
      namespaces: [ns('a'), ns('b')],
      pods: [
        {
          namespace: 'a',
          name: 'server',
          labels: {},
          ips: ['fd00::1'],
          nodeName: 'n1',
          hostNetwork: false,
          phase: 'Running',
          ports: [
            { name: 'http', containerPort: 8080, protocol: 'TCP' },
            { name: 'http', containerPort: 8080, protocol: 'UDP' },
          ],
        },
        {
          namespace: 'b',
          name: 'client',
          labels: {},
          ips: ['fd00::3'],
          nodeName: 'n1',
          hostNetwork: false,
          phase: 'Running',
          ports: [],
        },
      ],
      nodes: [{ name: 'n1', addresses: ['192.168.0.1'], podCIDRs: [] }],
      services: [],
      endpointSlices: [],
      networkPolicies: [
        {
          metadata: { namespace: 'b', name: 'udp-http-only' },
          spec: { podSelector: {}, egress: [{ ports: [{ protocol: 'UDP', port: 'http' }] }] },
        },
      ],
      clusterNetworkPolicies: [],
    };
    // client (index 1) to server (index 0): UDP and TCP to 8080.
    const flow = (proto: string) => ({ src: 1, dst: 0, proto, port: 8080, state: 'established', at: 0 });
    const { edges } = record(c, [flow('UDP'), flow('TCP')], DEFAULT_POLICY_OPTIONS);
    const UDP = 17;
    const TCP = 6;
    const byProto = new Map(edges.map((e) => [e.proto, e.classification]));
    expect(byProto.get(UDP)).toBe('allowed');
    expect(byProto.get(TCP)).toBe('denied-but-observed');
    expect(edges.find((e) => e.proto === UDP)!.dst.pod!.namedPorts).toEqual([
      { name: 'http', port: 8080, protocol: 'TCP' },
      { name: 'http', port: 8080, protocol: 'UDP' },
    ]);
    const run = replay(edges, policiesOf(c), DEFAULT_POLICY_OPTIONS);
    expect(run.results.map((r) => r.classification)).toEqual(edges.map((e) => e.classification));
  });
});

describe('whatif drafts', () => {
  const base: PolicySet = {
    networkPolicies: [{ kind: 'NetworkPolicy', metadata: { name: 'x', namespace: 'a' }, spec: {} }],
    clusterNetworkPolicies: [],
  };

  it('a draft of the same kind, namespace and name replaces; others add; --delete removes', () => {
    const drafts = parseDrafts([
      {
        source: 'd.yaml',
        text: `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x, namespace: a}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x, namespace: b}
spec: {podSelector: {}}
`,
      },
    ]);
    expect(drafts.issues).toEqual([]);
    const a = applyDrafts(base, drafts.policies, []);
    expect(a.replaced).toEqual(['NetworkPolicy/a/x']);
    expect(a.added).toEqual(['NetworkPolicy/b/x']);
    expect(a.policies.networkPolicies).toHaveLength(2);
    const d = applyDrafts(base, { networkPolicies: [], clusterNetworkPolicies: [] }, ['netpol/a/x']);
    expect(d.deleted).toEqual(['NetworkPolicy/a/x']);
    expect(d.policies.networkPolicies).toHaveLength(0);
  });

  it('refuses a delete of a policy not in force, a malformed one, and drafts that are not policies', () => {
    const none = { networkPolicies: [], clusterNetworkPolicies: [] };
    expect(() => applyDrafts(base, none, ['NetworkPolicy/a/nope'])).toThrow(/no such policy/);
    expect(() => applyDrafts(base, none, ['NetworkPolicy/x'])).toThrow(/expected NetworkPolicy/);
    const bad = parseDrafts([
      { source: 'pod.yaml', text: 'apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\n' },
    ]);
    expect(bad.issues.map((i) => i.code)).toContain('WHATIF_DRAFT_INVALID');
    expect(bad.issues.find((i) => i.code === 'WHATIF_DRAFT_INVALID')?.source).toBe('pod.yaml');
  });
});

describe('suggest: external peers folded into ipBlocks', () => {
  it('merges complete sibling prefixes only, so the blocks cover exactly the addresses seen', () => {
    expect(foldAddresses(['10.0.0.0', '10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.5'])).toEqual([
      '10.0.0.0/30',
      '10.0.0.5/32',
    ]);
    expect(foldAddresses(['2001:db8::1', '2001:db8::'])).toEqual(['2001:db8::/127']);
    expect(foldAddresses(['203.0.113.10'])).toEqual(['203.0.113.10/32']);
  });
});

describe('whatif: shadowed draft rules in the admin tier', () => {
  const pod = (ns: string, app: string) => ({
    namespace: ns,
    workload: `${ns}/${app}`,
    labels: { app },
    namespaceLabels: { 'kubernetes.io/metadata.name': ns },
    namedPorts: [],
    hostNetwork: false,
  });
  const edge = (
    src: ReturnType<typeof pod>,
    srcIp: string,
    dst: ReturnType<typeof pod>,
    dstIp: string,
  ): RecordedEdge => ({
    day: T0,
    src: { ip: srcIp, pod: src },
    dst: { ip: dstIp, pod: dst },
    proto: 6,
    port: 80,
    answered: true,
    classification: 'allowed',
    flows: 3,
    bytes: 300,
    firstSeen: T0,
    lastSeen: T0 + 1,
  });
  const anp = (name: string, priority: number, rules: { action: string; from: string }[]) => ({
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'AdminNetworkPolicy',
    metadata: { name },
    spec: {
      priority,
      subject: { namespaces: { matchLabels: { 'kubernetes.io/metadata.name': 'b' } } },
      ingress: rules.map((r, i) => ({
        name: `r${i}`,
        action: r.action,
        from: [{ namespaces: { matchLabels: { 'kubernetes.io/metadata.name': r.from } } }],
      })),
    },
  });

  it('names a lower-priority policy and a later rule that can never decide, and what decides instead', () => {
    const edges = [
      edge(pod('a', 'x'), '10.0.0.1', pod('b', 'y'), '10.0.0.2'),
      edge(pod('c', 'z'), '10.0.0.3', pod('b', 'y'), '10.0.0.2'),
    ];
    const base: PolicySet = { networkPolicies: [], clusterNetworkPolicies: [] };
    const drafts: PolicySet = {
      networkPolicies: [],
      clusterNetworkPolicies: [
        anp('allow-a', 10, [
          { action: 'Allow', from: 'a' },
          { action: 'Deny', from: 'a' },
        ]),
        anp('deny-a', 20, [
          { action: 'Deny', from: 'a' },
          { action: 'Deny', from: 'nowhere' },
        ]),
        anp('pass-c', 30, [{ action: 'Pass', from: 'c' }]),
      ],
    };
    const r = whatIf({
      edges,
      baseline: base,
      applied: applyDrafts(base, drafts, []),
      draftIds: drafts.clusterNetworkPolicies.map(policyId),
      options: DEFAULT_POLICY_OPTIONS,
      since: T0,
      until: T0 + DAY,
    });
    expect(r.draftRules).toBe(5);
    expect(r.shadowedRules.map((s) => `${s.policy} ${s.rule} by ${s.by.join()}`).sort()).toEqual([
      'AdminNetworkPolicy allow-a 1 by AdminNetworkPolicy allow-a ingress[0] Allow',
      'AdminNetworkPolicy deny-a 0 by AdminNetworkPolicy allow-a ingress[0] Allow',
    ]);
    expect(r.unusedRules.map((u) => `${u.policy} ${u.rule}`)).toEqual(['AdminNetworkPolicy deny-a 1']);
    // The Pass decides nothing by itself, but it is what the c -> b flow met: used.
    expect(r.becomeDenied).toEqual([]);
  });
});

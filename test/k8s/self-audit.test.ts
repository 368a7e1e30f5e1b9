// netpol-audit audits itself: deploy/'s NetworkPolicies, as `kubectl kustomize deploy/` renders them,
// judged by netpol-audit's own engine (`check`) against the connections its pods make
// (deploy/base/connections.yaml): every listed connection allowed, and the ones nobody needs denied.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { flowAt } from '../../processor/judge/fixtures.js';
import type { FlowRecord } from '../../schema/flow-record.js';
import { ROOT, runCli } from '../support/cli.js';
import { buildKubectl } from './kubectl.js';

type Obj = { kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown> };
type PodTemplate = { metadata: { labels: Record<string, string> }; spec: { hostNetwork?: boolean } };

const NODE_IP = '192.168.10.1';
const APISERVER = '172.20.0.1';
/** Where each end of a connection lives in the audited cluster: namespace, labels, address. */
const PEERS: Record<
  string,
  { namespace: string; labels: Record<string, string>; ip: string } | { ip: string }
> = {
  kafka: { namespace: 'kafka', labels: { app: 'kafka' }, ip: '10.244.1.20' },
  'kube-dns': { namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' }, ip: '10.244.1.30' },
  prometheus: { namespace: 'monitoring', labels: { app: 'prometheus' }, ip: '10.244.1.40' },
  apiserver: { ip: APISERVER },
};
const COMPONENT_IPS: Record<string, string> = {
  judge: '10.244.1.11',
  recorder: '10.244.1.12',
  report: '10.244.1.13',
  collector: NODE_IP, // hostNetwork: the node's address
};

let dir: string;
let snapshot: string;
let connections: { from: string; to: string; protocol: string; port: number; policy: string }[];
let components: Record<string, { 'pod-label': string; hostNetwork?: boolean }>;

function templateOf(o: Obj): PodTemplate | undefined {
  const spec = o.spec as Record<string, never> | undefined;
  if (!spec) return undefined;
  if (o.kind === 'CronJob')
    return (spec.jobTemplate as { spec: { template: PodTemplate } } | undefined)?.spec.template;
  return spec.template as PodTemplate | undefined;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'npa-self-audit-'));
  const kubectl = await buildKubectl();
  const rendered = (
    await promisify(execFile)(kubectl, ['kustomize', join(ROOT, 'deploy')], { encoding: 'utf8' })
  ).stdout;
  const objects = parseAllDocuments(rendered).map((d) => d.toJS() as Obj);
  const conn = parse(readFileSync(join(ROOT, 'deploy/base/connections.yaml'), 'utf8')) as {
    components: typeof components;
    connections: typeof connections;
  };
  connections = conn.connections;
  components = conn.components;
  // The audited cluster: deploy's pods with the labels their templates give them, their peers, and
  // deploy's NetworkPolicies as rendered.
  const ns = (name: string) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name } },
  });
  const pod = (
    namespace: string,
    name: string,
    labels: Record<string, string>,
    ip: string,
    hostNetwork = false,
  ) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels },
    spec: { nodeName: 'node-1', hostNetwork, containers: [{ name: 'c' }] },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  });
  const items: unknown[] = [
    ...['netpol-audit', 'kafka', 'kube-system', 'monitoring'].map(ns),
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-1' },
      spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] },
      status: { addresses: [{ type: 'InternalIP', address: NODE_IP }] },
    },
  ];
  for (const [name, c] of Object.entries(components)) {
    const workload = objects.find(
      (o) => templateOf(o)?.metadata.labels['app.kubernetes.io/name'] === c['pod-label'],
    );
    expect(workload, `deploy/ renders a workload for ${name}`).toBeDefined();
    const t = templateOf(workload!)!;
    items.push(
      pod('netpol-audit', `${name}-0`, t.metadata.labels, COMPONENT_IPS[name]!, t.spec.hostNetwork === true),
    );
  }
  for (const [name, p] of Object.entries(PEERS))
    if ('namespace' in p) items.push(pod(p.namespace, `${name}-0`, p.labels, p.ip));
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  expect(policies.length).toBeGreaterThan(3);
  items.push(...policies);
  snapshot = join(dir, 'cluster.yaml');
  writeFileSync(snapshot, stringify({ apiVersion: 'v1', kind: 'List', items }));
}, 3_600_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ipOf(end: string): string {
  const peer = PEERS[end];
  return peer ? peer.ip : COMPONENT_IPS[end]!;
}

async function judge(flows: FlowRecord[]) {
  const r = await runCli(['check', '--cluster', snapshot], {
    input: `${flows.map((f) => JSON.stringify(f)).join('\n')}\n`,
  });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .map(
      (l) =>
        JSON.parse(l) as {
          verdict: { allowed: boolean; ingress: { reason: string }; egress: { reason: string } };
        },
    );
}

const flow = (from: string, to: string, protocol: string, port: number) =>
  flowAt(Date.UTC(2026, 11, 5), ipOf(from), ipOf(to), port, { proto: protocol as FlowRecord['proto'] });

describe("deploy/'s NetworkPolicies, judged by netpol-audit against netpol-audit's own connections", () => {
  it('allow every connection connections.yaml lists', async () => {
    expect(connections.length).toBeGreaterThan(10);
    const verdicts = await judge(connections.map((c) => flow(c.from, c.to, c.protocol, c.port)));
    const denied = connections.filter((_, i) => !verdicts[i]!.verdict.allowed);
    expect(denied).toEqual([]);
    // The pods that are not hostNetwork are isolated by the policies, both ways: allowed by a rule.
    connections.forEach((c, i) => {
      const v = verdicts[i]!.verdict;
      if (c.from !== 'collector' && !(c.from in PEERS))
        expect(v.egress.reason, `${c.from} -> ${c.to}`).toBe('rule-matched');
      if (c.to !== 'collector' && !(c.to in PEERS))
        expect(v.ingress.reason, `${c.from} -> ${c.to}`).toBe('rule-matched');
    });
  });

  it('deny what none of them needs', async () => {
    const unneeded: [string, string, string, number][] = [
      ['judge', 'recorder', 'TCP', 9464], // only Prometheus scrapes
      ['kafka', 'judge', 'TCP', 9464],
      ['report', 'kafka', 'TCP', 9092], // the report job reads the store's file only
      ['report', 'apiserver', 'TCP', 443],
      ['judge', 'kafka', 'TCP', 22],
      ['judge', 'kube-dns', 'TCP', 8080],
      ['prometheus', 'judge', 'TCP', 8080],
    ];
    // None of them is a connection deploy/ says a component needs.
    for (const [from, to, protocol, port] of unneeded)
      expect(
        connections.some((c) => c.from === from && c.to === to && c.protocol === protocol && c.port === port),
      ).toBe(false);
    const verdicts = await judge(unneeded.map(([f, t, p, n]) => flow(f, t, p, n)));
    expect(verdicts.map((v) => v.verdict.allowed)).toEqual(unneeded.map(() => false));
  });
});

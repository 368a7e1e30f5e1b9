import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from './support/cli.js';

/**
 * `netpol-audit check` end to end, on the Kubernetes documentation's own NetworkPolicy examples. Every
 * expected verdict below comes from the prose of https://kubernetes.io/docs/concepts/services-networking/
 * network-policies/ (quoted next to the cases), not from this tool's output.
 */

const C = (name: string) => resolve(ROOT, 'test/fixtures/clusters', name);

interface Case {
  what: string;
  src: string;
  dst: string;
  port?: number;
  proto?: string;
  allowed: boolean;
}

function flowLine(c: { src: string; dst: string; port?: number; proto?: string }, i: number): string {
  const dst: { ip: string; port?: number } = { ip: c.dst };
  if (c.port !== undefined) dst.port = c.port;
  return JSON.stringify({
    v: 1,
    start: 1_763_884_800_000 + i,
    end: 1_763_884_800_100 + i,
    proto: c.proto ?? 'TCP',
    src: { ip: c.src, port: 40000 + i },
    dst,
    packets: { fwd: 3, rev: 2 },
    bytes: { fwd: 180, rev: 120 },
    state: 'established',
    observer: { source: 'conntrack', node: 'kind-worker' },
  });
}

interface OutRecord {
  src: { ip: string; pod?: string; kind: string; name?: string };
  dst: { ip: string; port?: number; pod?: string; kind: string; name?: string; service?: string };
  verdict: { allowed: boolean; result: string; backends?: { pod: string; allowed: boolean }[] };
  error?: { code: string; line: number; source: string; message: string };
}

async function check(clusters: string[], cases: Case[]): Promise<OutRecord[]> {
  const input = `${cases.map(flowLine).join('\n')}\n`;
  const r = await runCli(['check', ...clusters.flatMap((c) => ['--cluster', C(c)])], { input });
  expect(r.stderr).not.toMatch(/error /);
  expect(r.code).toBe(0);
  const out = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as OutRecord);
  expect(out).toHaveLength(cases.length);
  return out;
}

function expectVerdicts(cases: Case[], out: OutRecord[]): void {
  const got = cases.map((c, i) => `${c.what}: ${out[i]!.verdict.allowed ? 'allowed' : 'denied'}`);
  const want = cases.map((c) => `${c.what}: ${c.allowed ? 'allowed' : 'denied'}`);
  expect(got).toEqual(want);
}

// docs-cluster.yaml addresses
const DB = '10.244.1.10'; // default/db-0, role=db, on kind-worker (172.18.0.3)
const FRONTEND = '10.244.1.11'; // default, role=frontend
const BACKEND = '10.244.2.12'; // default, role=backend
const MYPROJECT_CLIENT = '10.244.2.20'; // namespace myproject (project=myproject)
const OTHER_FRONTEND = '10.244.2.30'; // namespace other, role=frontend
const KIND_WORKER = '172.18.0.3';

describe('check: the docs example "test-network-policy"', () => {
  // "allows connections to all pods in the default namespace with the label role=db on TCP port 6379 from:
  //  any pod in the default namespace with the label role=frontend; any pod in a namespace with the label
  //  project=myproject; IP addresses in the ranges 172.17.0.0–172.17.0.255 and 172.17.2.0–172.17.255.255"
  // "allows connections from any pod in the default namespace with the label role=db to CIDR 10.0.0.0/24
  //  on TCP port 5978"
  const cases: Case[] = [
    { what: 'frontend in default -> db:6379', src: FRONTEND, dst: DB, port: 6379, allowed: true },
    {
      what: 'pod in project=myproject -> db:6379',
      src: MYPROJECT_CLIENT,
      dst: DB,
      port: 6379,
      allowed: true,
    },
    { what: '172.17.0.5 -> db:6379', src: '172.17.0.5', dst: DB, port: 6379, allowed: true },
    { what: '172.17.2.9 -> db:6379', src: '172.17.2.9', dst: DB, port: 6379, allowed: true },
    { what: '172.17.1.5 (except) -> db:6379', src: '172.17.1.5', dst: DB, port: 6379, allowed: false },
    {
      what: '172.16.9.9 (outside the cidr) -> db:6379',
      src: '172.16.9.9',
      dst: DB,
      port: 6379,
      allowed: false,
    },
    {
      what: 'role=frontend in other ns -> db:6379',
      src: OTHER_FRONTEND,
      dst: DB,
      port: 6379,
      allowed: false,
    },
    { what: 'role=backend -> db:6379', src: BACKEND, dst: DB, port: 6379, allowed: false },
    { what: 'frontend -> db:5432', src: FRONTEND, dst: DB, port: 5432, allowed: false },
    { what: 'frontend -> db:6379/UDP', src: FRONTEND, dst: DB, port: 6379, proto: 'UDP', allowed: false },
    // The only ingress rule names TCP 6379, so a ping is not among what it allows.
    { what: 'frontend -> db ICMP', src: FRONTEND, dst: DB, proto: 'ICMP', allowed: false },
    { what: 'db -> 10.0.0.7:5978', src: DB, dst: '10.0.0.7', port: 5978, allowed: true },
    { what: 'db -> 10.0.0.7:5979', src: DB, dst: '10.0.0.7', port: 5979, allowed: false },
    { what: 'db -> 10.0.1.7:5978', src: DB, dst: '10.0.1.7', port: 5978, allowed: false },
    { what: 'db -> frontend:80 (egress isolated)', src: DB, dst: FRONTEND, port: 80, allowed: false },
    // "traffic to and from the node where a Pod is running is always allowed"
    { what: 'own node -> db:6379', src: KIND_WORKER, dst: DB, port: 6379, allowed: true },
    { what: 'own node -> db:22', src: KIND_WORKER, dst: DB, port: 22, allowed: true },
    // Pods not selected by any policy are non-isolated.
    { what: 'backend -> frontend:80', src: BACKEND, dst: FRONTEND, port: 80, allowed: true },
  ];

  it('gives the verdicts the documentation describes', async () => {
    const out = await check(['docs-cluster.yaml', 'docs-test-network-policy.yaml'], cases);
    expectVerdicts(cases, out);
  });

  it('names both ends', async () => {
    const [r] = await check(['docs-cluster.yaml', 'docs-test-network-policy.yaml'], [cases[0]!]);
    expect(r!.src).toMatchObject({
      kind: 'pod',
      pod: 'default/frontend-6c9f8d7b5-x2k4p',
      name: '10-244-1-11.default.pod.cluster.local',
    });
    expect(r!.dst).toMatchObject({ kind: 'pod', pod: 'default/db-0', port: 6379 });
  });

  it('judges a flow to the redis ClusterIP through its backend', async () => {
    const out = await check(
      ['docs-cluster.yaml', 'docs-test-network-policy.yaml'],
      [
        { what: 'frontend -> redis svc', src: FRONTEND, dst: '10.96.120.7', port: 6379, allowed: true },
        { what: 'backend -> redis svc', src: BACKEND, dst: '10.96.120.7', port: 6379, allowed: false },
      ],
    );
    expect(out[0]!.dst).toMatchObject({
      kind: 'service',
      service: 'default/redis',
      name: 'redis.default.svc.cluster.local',
    });
    expect(out[0]!.verdict).toMatchObject({
      result: 'allowed',
      backends: [{ pod: 'default/db-0', allowed: true }],
    });
    expect(out[1]!.verdict).toMatchObject({
      result: 'denied',
      backends: [{ pod: 'default/db-0', allowed: false }],
    });
  });
});

describe('check: the docs example with endPort', () => {
  // "allows pods with label role=db in namespace default to communicate with any IP within the range
  //  10.0.0.0/24 over TCP, provided that the target port is between the range 32000 and 32768"
  const cases: Case[] = [
    { what: '32000', src: DB, dst: '10.0.0.9', port: 32000, allowed: true },
    { what: '32500', src: DB, dst: '10.0.0.9', port: 32500, allowed: true },
    { what: '32768', src: DB, dst: '10.0.0.9', port: 32768, allowed: true },
    { what: '31999', src: DB, dst: '10.0.0.9', port: 31999, allowed: false },
    { what: '32769', src: DB, dst: '10.0.0.9', port: 32769, allowed: false },
    { what: 'UDP 32000', src: DB, dst: '10.0.0.9', port: 32000, proto: 'UDP', allowed: false },
    { what: 'outside 10.0.0.0/24', src: DB, dst: '10.0.2.9', port: 32000, allowed: false },
  ];
  it('allows exactly the port range', async () => {
    expectVerdicts(cases, await check(['docs-cluster.yaml', 'docs-endport.yaml'], cases));
  });
});

describe('check: the docs "Default policies"', () => {
  const web = (i: number) => `10.244.2.${40 + i}`; // deny-ingress, deny-egress, allow-ingress, allow-egress, deny-all
  const cases: Case[] = [
    // default-deny-ingress: "pods ... will still be isolated for ingress. This policy does not affect
    // isolation for egress from any pod."
    { what: 'into deny-ingress', src: BACKEND, dst: web(0), port: 8080, allowed: false },
    { what: 'out of deny-ingress', src: web(0), dst: BACKEND, port: 8080, allowed: true },
    // default-deny-egress: "does not change the ingress isolation behavior of any pod"
    { what: 'out of deny-egress', src: web(1), dst: BACKEND, port: 8080, allowed: false },
    {
      what: 'out of deny-egress to the internet',
      src: web(1),
      dst: '8.8.8.8',
      port: 53,
      proto: 'UDP',
      allowed: false,
    },
    { what: 'into deny-egress', src: BACKEND, dst: web(1), port: 8080, allowed: true },
    // allow-all-ingress: "no additional policy or policies can cause any incoming connection to those pods
    // to be denied" (here next to default-deny-ingress)
    { what: 'into allow-ingress', src: BACKEND, dst: web(2), port: 8080, allowed: true },
    { what: 'into allow-ingress from outside', src: '203.0.113.9', dst: web(2), port: 9999, allowed: true },
    // allow-all-egress next to default-deny-egress
    { what: 'out of allow-egress', src: web(3), dst: '8.8.8.8', port: 443, allowed: true },
    // default-deny-all: both directions
    { what: 'into deny-all', src: BACKEND, dst: web(4), port: 8080, allowed: false },
    { what: 'out of deny-all', src: web(4), dst: BACKEND, port: 8080, allowed: false },
  ];
  it('isolates exactly the directions the docs say', async () => {
    expectVerdicts(cases, await check(['docs-cluster.yaml', 'docs-default-policies.yaml'], cases));
  });
});

describe('check: the docs namespaceSelector + podSelector example (AND versus OR), from kubectl -o json', () => {
  const ALICE_CLIENT = '10.244.1.100';
  const ALICE_WORKER = '10.244.1.101';
  const BOB_CLIENT = '10.244.1.110';
  const AND_API = '10.244.1.120';
  const AND_CLIENT = '10.244.1.121';
  const OR_API = '10.244.1.130';
  const OR_CLIENT = '10.244.1.131';
  const cases: Case[] = [
    // "allowing connections from Pods with the label role=client in namespaces with the label user=alice"
    { what: 'AND alice/client', src: ALICE_CLIENT, dst: AND_API, port: 8080, allowed: true },
    { what: 'AND alice/worker', src: ALICE_WORKER, dst: AND_API, port: 8080, allowed: false },
    { what: 'AND bob/client', src: BOB_CLIENT, dst: AND_API, port: 8080, allowed: false },
    { what: 'AND local client', src: AND_CLIENT, dst: AND_API, port: 8080, allowed: false },
    // The rule has no ports: it allows every port and protocol from the peers it names.
    { what: 'AND alice/client ICMP', src: ALICE_CLIENT, dst: AND_API, proto: 'ICMP', allowed: true },
    {
      what: 'AND alice/client UDP 53',
      src: ALICE_CLIENT,
      dst: AND_API,
      port: 53,
      proto: 'UDP',
      allowed: true,
    },
    // "allows connections from Pods in the local namespace with the label role=client, or from any Pod in
    //  any namespace with the label user=alice"
    { what: 'OR alice/client', src: ALICE_CLIENT, dst: OR_API, port: 8080, allowed: true },
    { what: 'OR alice/worker', src: ALICE_WORKER, dst: OR_API, port: 8080, allowed: true },
    { what: 'OR bob/client', src: BOB_CLIENT, dst: OR_API, port: 8080, allowed: false },
    { what: 'OR local client', src: OR_CLIENT, dst: OR_API, port: 8080, allowed: true },
    { what: 'OR client of another ns', src: AND_CLIENT, dst: OR_API, port: 8080, allowed: false },
  ];
  it('reads one from element as AND and two as OR', async () => {
    expectVerdicts(cases, await check(['docs-and-or.json'], cases));
  });
});

describe('check: bad input', () => {
  it('writes an error record per bad line, with its line number, and judges the rest', async () => {
    const good = flowLine({ src: FRONTEND, dst: DB, port: 6379 }, 0);
    const obj = JSON.parse(good) as Record<string, unknown>;
    const lines = [
      good,
      '{"v":1,"start":', // truncated JSON
      JSON.stringify({ ...obj, v: 2 }),
      JSON.stringify({ ...obj, state: undefined }),
      JSON.stringify({ ...obj, src: { ip: '10.244.1.300' } }),
      '',
      flowLine({ src: BACKEND, dst: DB, port: 6379 }, 1),
    ];
    const r = await runCli(
      [
        'check',
        '--cluster',
        C('docs-cluster.yaml'),
        '--cluster',
        C('docs-test-network-policy.yaml'),
        '--flows',
        '-',
      ],
      { input: `${lines.join('\n')}\n` },
    );
    expect(r.code).toBe(1);
    const out = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as OutRecord);
    expect(out).toHaveLength(6); // the blank line gives nothing
    expect(out[0]!.verdict.allowed).toBe(true);
    expect(out.slice(1, 5).map((o) => [o.error?.code, o.error?.line, o.error?.source])).toEqual([
      ['FLOW_JSON_SYNTAX', 2, '<stdin>'],
      ['FLOW_UNSUPPORTED_VERSION', 3, '<stdin>'],
      ['FLOW_INVALID_RECORD', 4, '<stdin>'],
      ['FLOW_INVALID_RECORD', 5, '<stdin>'],
    ]);
    expect(out[3]!.error!.message).toContain('/state');
    expect(out[4]!.error!.message).toContain('/src/ip');
    expect(out[5]!.verdict.allowed).toBe(false);
    expect(r.stderr).toContain('FLOW_JSON_SYNTAX');
    expect(r.stderr).toContain('line 2');
    expect(r.stderr).toMatch(/2 flows judged/);
  });

  it('reads flows from a file, names it in error records, and reports snapshot problems without stopping', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(resolve(tmpdir(), 'check-'));
    const flows = resolve(dir, 'flows.jsonl');
    await writeFile(flows, `not json\n${flowLine({ src: FRONTEND, dst: DB, port: 6379 }, 0)}\n`);
    const badPolicy = resolve(dir, 'bad.yaml');
    await writeFile(
      badPolicy,
      'apiVersion: v1\nkind: Pod\nmetadata: {name: broken, namespace: default}\nstatus: {podIPs: [{ip: nope}]}\n',
    );
    const r = await runCli([
      'check',
      '--cluster',
      C('docs-cluster.yaml'),
      '--cluster',
      C('docs-test-network-policy.yaml'),
      '--cluster',
      badPolicy,
      '--flows',
      flows,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SNAPSHOT_INVALID_FIELD');
    expect(r.stderr).toContain('default/broken');
    const out = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as OutRecord);
    expect(out[0]!.error).toMatchObject({ code: 'FLOW_JSON_SYNTAX', line: 1, source: flows });
    expect(out[1]!.verdict.allowed).toBe(true);
  });

  it('reports an invalid policy with its file and line, leaves it out, and judges the flows', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(resolve(tmpdir(), 'check-'));
    const policy = resolve(dir, 'policies.yaml');
    await writeFile(
      policy,
      [
        'apiVersion: networking.k8s.io/v1',
        'kind: NetworkPolicy',
        'metadata: {name: fine, namespace: default}',
        'spec: {podSelector: {}, policyTypes: [Egress]}',
        '---',
        'apiVersion: networking.k8s.io/v1',
        'kind: NetworkPolicy',
        'metadata: {name: broken, namespace: default}',
        'spec:',
        '  podSelector: {matchLabels: {role: db}}',
        '  ingress:',
        '  - from:',
        '    - ipBlock: {cidr: 10.0.0.0/33}',
        '',
      ].join('\n'),
    );
    const r = await runCli(['check', '--cluster', C('docs-cluster.yaml'), '--cluster', policy], {
      input: `${flowLine({ src: FRONTEND, dst: DB, port: 6379 }, 0)}\n`,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${policy}: line 6, record 1, default/broken`);
    expect(r.stderr).toContain('spec.ingress[0].from[0].ipBlock.cidr');
    expect(r.stderr).toContain('1 rejected');
    // The valid policy (default deny egress for all of default) still applies.
    const out = JSON.parse(r.stdout) as OutRecord;
    expect(out.verdict.allowed).toBe(false);
  });

  it('fails with a usage error without --cluster and a fatal error for a missing snapshot', async () => {
    const usage = await runCli(['check']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--cluster or --kubeconfig is required');
    const bad = await runCli([
      'check',
      '--cluster',
      C('docs-cluster.yaml'),
      '--ipblock-matches-pods',
      'maybe',
    ]);
    expect(bad.code).toBe(2);
    const missing = await runCli(['check', '--cluster', C('no-such-file.yaml')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('SNAPSHOT_UNREADABLE');
  });
});

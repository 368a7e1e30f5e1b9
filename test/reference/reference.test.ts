import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../schema/flow-record.js';
import { type KubeObject, kubeList } from './generate.js';
import { type FlowVerdict, REFERENCE } from './harness.js';

/**
 * The reference on its own, on small clusters whose expected verdicts follow from single sentences of
 * the Kubernetes documentation (quoted per test). The recipes test covers the published walkthroughs;
 * this covers the features they leave out.
 */

const tmp = mkdtempSync(join(tmpdir(), 'netpol-ref-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ns = (name: string, labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});
const node = (name: string, ...addresses: string[]): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name },
  status: { addresses: addresses.map((address) => ({ type: 'InternalIP', address })) },
});
function pod(
  name: string,
  labels: Record<string, string>,
  ips: string[],
  opts: { ns?: string; node?: string; ports?: KubeObject[]; hostNetwork?: boolean; phase?: string } = {},
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: opts.ns ?? 'default', labels },
    spec: {
      nodeName: opts.node ?? 'n1',
      containers: [{ name: 'c', ...(opts.ports ? { ports: opts.ports } : {}) }],
      ...(opts.hostNetwork ? { hostNetwork: true } : {}),
    },
    status: { phase: opts.phase ?? 'Running', podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
  };
}
const policy = (name: string, spec: KubeObject, namespace = 'default'): KubeObject => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, namespace },
  spec,
});

let counter = 0;
function judge(
  items: KubeObject[],
  flows: { src: string; dst: string; proto?: FlowRecord['proto']; port?: number }[],
  ipBlockMatchesPods = true,
): FlowVerdict[] {
  const file = join(tmp, `c${counter++}.json`);
  writeFileSync(file, JSON.stringify(kubeList(items)));
  const input = flows
    .map((f) =>
      JSON.stringify({
        v: 1,
        start: 0,
        end: 0,
        proto: f.proto ?? 'TCP',
        src: { ip: f.src },
        dst: f.port === undefined ? { ip: f.dst } : { ip: f.dst, port: f.port },
        packets: { fwd: 1, rev: 0 },
        bytes: { fwd: 1, rev: 0 },
        state: 'attempted',
        observer: { source: 'test' },
      }),
    )
    .join('\n');
  const r = spawnSync(
    'python3',
    [REFERENCE, '--cluster', file, '--ipblock-matches-pods', String(ipBlockMatchesPods)],
    { input, encoding: 'utf8' },
  );
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as FlowVerdict);
}

const base = [
  ns('default'),
  ns('other', { team: 'ops' }),
  node('n1', '192.168.0.1'),
  node('n2', '192.168.0.2'),
];

describe('label selectors', () => {
  // "matchExpressions ... In, NotIn, Exists and DoesNotExist" (LabelSelectorRequirement, API reference)
  const items = [
    ...base,
    pod('db', { app: 'db' }, ['10.0.1.1']),
    pod('a', { tier: 'fe' }, ['10.0.1.2']),
    pod('b', { tier: 'be' }, ['10.0.1.3']),
    pod('c', {}, ['10.0.1.4']),
  ];
  const sel = (expr: KubeObject) =>
    judge(
      [
        ...items,
        policy('p', {
          podSelector: { matchLabels: { app: 'db' } },
          ingress: [{ from: [{ podSelector: { matchExpressions: [expr] } }] }],
        }),
      ],
      ['10.0.1.2', '10.0.1.3', '10.0.1.4'].map((src) => ({ src, dst: '10.0.1.1', port: 5432 })),
    ).map((v) => v.allowed);

  it('In requires the key with one of the values', () => {
    expect(sel({ key: 'tier', operator: 'In', values: ['fe'] })).toEqual([true, false, false]);
  });
  it('NotIn admits pods without the key', () => {
    expect(sel({ key: 'tier', operator: 'NotIn', values: ['fe'] })).toEqual([false, true, true]);
  });
  it('Exists and DoesNotExist look at the key only', () => {
    expect(sel({ key: 'tier', operator: 'Exists' })).toEqual([true, true, false]);
    expect(sel({ key: 'tier', operator: 'DoesNotExist' })).toEqual([false, false, true]);
  });
});

describe('ports', () => {
  const items = [
    ...base,
    pod('srv', { app: 'srv' }, ['10.0.1.1'], {
      ports: [
        { name: 'web', containerPort: 8080 },
        { name: 'sig', containerPort: 3868, protocol: 'SCTP' },
        { name: 'dns', containerPort: 53, protocol: 'UDP' },
      ],
    }),
    pod('cli', {}, ['10.0.1.2']),
  ];
  const allowedWith = (ports: KubeObject[], flows: { proto?: FlowRecord['proto']; port?: number }[]) =>
    judge(
      [...items, policy('p', { podSelector: { matchLabels: { app: 'srv' } }, ingress: [{ ports }] })],
      flows.map((f) => ({ src: '10.0.1.2', dst: '10.0.1.1', ...f })),
    ).map((v) => v.ingress.allowed);

  it('a named port resolves to the container port of that name and protocol', () => {
    // "port ... This can either be a numerical or named port on a pod."
    expect(
      allowedWith([{ port: 'web' }], [{ port: 8080 }, { port: 8081 }, { proto: 'UDP', port: 8080 }]),
    ).toEqual([true, false, false]);
    expect(allowedWith([{ port: 'sig', protocol: 'SCTP' }], [{ proto: 'SCTP', port: 3868 }])).toEqual([true]);
    // protocol defaults to TCP, and the pod's port named sig is SCTP: no TCP port of that name
    expect(allowedWith([{ port: 'sig' }], [{ proto: 'SCTP', port: 3868 }, { port: 3868 }])).toEqual([
      false,
      false,
    ]);
  });
  it('endPort makes an inclusive range', () => {
    // "indicates that the range of ports from port to endPort, inclusive, should be allowed"
    expect(
      allowedWith(
        [{ port: 1000, endPort: 1010 }],
        [{ port: 999 }, { port: 1000 }, { port: 1010 }, { port: 1011 }],
      ),
    ).toEqual([false, true, true, false]);
  });
  it('a protocol-only entry matches every port of that protocol and nothing else', () => {
    // "If this field [port] is not provided, this matches all port names and numbers."
    expect(
      allowedWith(
        [{ protocol: 'UDP' }],
        [{ proto: 'UDP', port: 1 }, { proto: 'UDP', port: 65535 }, { port: 53 }, { proto: 'ICMP' }],
      ),
    ).toEqual([true, true, false, false]);
  });
  it('ICMP and other protocols never match a ports list, but a rule without ports admits them', () => {
    expect(allowedWith([{ port: 53, protocol: 'UDP' }], [{ proto: 'ICMP' }, { proto: 47 }])).toEqual([
      false,
      false,
    ]);
    expect(allowedWith([], [{ proto: 'ICMP' }, { proto: 47 }])).toEqual([true, true]);
  });
});

describe('peers', () => {
  const items = [
    ...base,
    pod('db', { app: 'db' }, ['10.0.1.1', 'fd00::1']),
    pod('ops-fe', { role: 'fe' }, ['10.0.2.1', 'fd00::2'], { ns: 'other', node: 'n2' }),
    pod('ops-x', {}, ['10.0.2.2'], { ns: 'other', node: 'n2' }),
    pod('def-fe', { role: 'fe' }, ['10.0.1.3']),
  ];
  const fromPeers = (from: KubeObject[], srcs: string[], dst = '10.0.1.1', ipb = true) =>
    judge(
      [...items, policy('p', { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from }] })],
      srcs.map((src) => ({ src, dst, port: 80 })),
      ipb,
    ).map((v) => v.ingress.allowed);

  it('namespaceSelector and podSelector in one entry are ANDed; separate entries are ORed', () => {
    // concept page: "contains a single from element allowing connections from Pods with the label
    // role=client in namespaces with the label user=alice" versus "two elements ... or"
    const srcs = ['10.0.2.1', '10.0.2.2', '10.0.1.3'];
    expect(
      fromPeers(
        [
          {
            namespaceSelector: { matchLabels: { team: 'ops' } },
            podSelector: { matchLabels: { role: 'fe' } },
          },
        ],
        srcs,
      ),
    ).toEqual([true, false, false]);
    expect(
      fromPeers(
        [
          { namespaceSelector: { matchLabels: { team: 'ops' } } },
          { podSelector: { matchLabels: { role: 'fe' } } },
        ],
        srcs,
      ),
    ).toEqual([true, true, true]);
  });
  it('namespaces carry kubernetes.io/metadata.name even when the snapshot omits it', () => {
    expect(
      fromPeers(
        [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'other' } } }],
        ['10.0.2.2', '10.0.1.3'],
      ),
    ).toEqual([true, false]);
  });
  it('ipBlock with except, per address family', () => {
    // "except is a slice of CIDRs that should not be included within an IPBlock"
    const block = [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.2.0/24'] } }];
    expect(fromPeers(block, ['10.0.1.3', '10.0.2.1', '10.1.0.1'])).toEqual([true, false, false]);
    const v6 = [{ ipBlock: { cidr: 'fd00::/64', except: ['fd00::2/128'] } }];
    expect(fromPeers(v6, ['fd00::2', 'fd00::9'], 'fd00::1')).toEqual([false, true]);
    // An IPv4 block says nothing about IPv6 sources.
    expect(fromPeers([{ ipBlock: { cidr: '0.0.0.0/0' } }], ['fd00::9'], 'fd00::1')).toEqual([false]);
  });
  it('ipBlock matches pod IPs only when the option says so', () => {
    const block = [{ ipBlock: { cidr: '10.0.0.0/8' } }];
    expect(fromPeers(block, ['10.0.2.1', '10.9.9.9'], '10.0.1.1', true)).toEqual([true, true]);
    expect(fromPeers(block, ['10.0.2.1', '10.9.9.9'], '10.0.1.1', false)).toEqual([false, true]);
  });
});

describe('policy types, isolation and directions', () => {
  const items = [
    ...base,
    pod('a', { app: 'a' }, ['10.0.1.1']),
    pod('b', { app: 'b' }, ['10.0.1.2', 'fd00::2']),
  ];
  it('without policyTypes, egress rules make the policy an egress policy too', () => {
    // "If no policyTypes are specified ... Egress will be set if the NetworkPolicy has any egress rules."
    const [v] = judge(
      [
        ...items,
        policy('p', {
          podSelector: { matchLabels: { app: 'a' } },
          egress: [{ ports: [{ port: 53, protocol: 'UDP' }] }],
        }),
      ],
      [{ src: '10.0.1.1', dst: '10.0.1.2', port: 80 }],
    );
    expect(v!.egress).toMatchObject({ allowed: false, isolated: true });
    expect(v!.ingress).toMatchObject({ allowed: true, isolated: false });
  });
  it('explicit policyTypes Egress alone leaves ingress open', () => {
    const [v] = judge(
      [...items, policy('p', { podSelector: {}, policyTypes: ['Egress'] })],
      [{ src: '10.0.1.1', dst: '10.0.1.2', port: 80 }],
    );
    expect(v).toMatchObject({
      allowed: false,
      egress: { allowed: false },
      ingress: { allowed: true, isolated: false },
    });
  });
  it('lists every allowing rule of every policy (union)', () => {
    const [v] = judge(
      [
        ...items,
        policy('p1', {
          podSelector: { matchLabels: { app: 'b' } },
          ingress: [{}, { ports: [{ port: 80 }] }, { ports: [{ port: 81 }] }],
        }),
        policy('p2', {
          podSelector: {},
          ingress: [{ from: [{ podSelector: { matchLabels: { app: 'a' } } }] }],
        }),
      ],
      [{ src: '10.0.1.1', dst: '10.0.1.2', port: 80 }],
    );
    expect(v!.ingress.isolatedBy).toEqual(['default/p1', 'default/p2']);
    expect(v!.ingress.rules).toEqual([
      { policy: 'default/p1', direction: 'ingress', rule: 0 },
      { policy: 'default/p1', direction: 'ingress', rule: 1 },
      { policy: 'default/p2', direction: 'ingress', rule: 0 },
    ]);
  });
  it('a policy in another namespace does not select the pod', () => {
    const [v] = judge(
      [...items, policy('p', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }, 'other')],
      [{ src: '10.0.1.1', dst: '10.0.1.2', port: 80 }],
    );
    expect(v).toMatchObject({ allowed: true, egress: { isolated: false }, ingress: { isolated: false } });
  });
});

describe('nodes, hostNetwork and finished pods', () => {
  const items = [
    ...base,
    pod('a', { app: 'a' }, ['10.0.1.1'], { node: 'n1' }),
    pod('agent', { app: 'a' }, ['192.168.0.2'], { node: 'n2', hostNetwork: true }),
    pod('done', { app: 'a' }, ['10.0.1.9'], { phase: 'Succeeded' }),
    policy('deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
  ];
  it('traffic to and from the own node is allowed, the other node is not', () => {
    // "traffic to and from the node where a Pod is running is always allowed"
    const v = judge(items, [
      { src: '192.168.0.1', dst: '10.0.1.1', port: 80 },
      { src: '10.0.1.1', dst: '192.168.0.1', port: 10250 },
      { src: '192.168.0.2', dst: '10.0.1.1', port: 80 },
    ]);
    expect(v.map((x) => x.allowed)).toEqual([true, true, false]);
    expect(v[0]!.ingress.reason).toBe('node-local');
  });
  it('a pod reaches itself whatever the policies say', () => {
    // "Other pods that are allowed (exception: a pod cannot block access to itself)"
    const [v] = judge(items, [{ src: '10.0.1.1', dst: '10.0.1.1', port: 8080 }]);
    expect(v).toMatchObject({
      allowed: true,
      egress: { isolated: true, reason: 'self' },
      ingress: { reason: 'self' },
    });
  });
  it('a hostNetwork pod is its node: never isolated, matched by ipBlock on the node address only', () => {
    const [out] = judge(items, [{ src: '192.168.0.2', dst: '203.0.113.1', port: 443 }]);
    expect(out!.egress).toMatchObject({ allowed: true, isolated: false });
    const allowA = (from: KubeObject[]) =>
      judge(
        [...items, policy('in', { podSelector: { matchLabels: { app: 'a' } }, ingress: [{ from }] })],
        [{ src: '192.168.0.2', dst: '10.0.1.1', port: 80 }],
        false,
      )[0]!.ingress.allowed;
    expect(allowA([{ podSelector: { matchLabels: { app: 'a' } } }])).toBe(false);
    expect(allowA([{ ipBlock: { cidr: '192.168.0.2/32' } }])).toBe(true);
  });
  it('a Succeeded pod holds no IP: its old address is an outside address', () => {
    const [v] = judge(items, [{ src: '10.0.1.9', dst: '203.0.113.1', port: 443 }]);
    expect(v!.egress).toMatchObject({ allowed: true, isolated: false, reason: 'not-a-pod' });
  });
});

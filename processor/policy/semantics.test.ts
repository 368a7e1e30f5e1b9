import { describe, expect, it } from 'vitest';
import type { ClusterModel, PodModel } from '../inventory/model.js';
import { cluster, flow, ipRef, netpol, node, ns, pod, podRef, ports } from './fixtures.js';
import { compilePolicyIndex, type PolicyIndex } from './index.js';
import type { FlowQuery, PolicyOptions } from './types.js';

/**
 * One or more cases per rule of NetworkPolicy semantics (docs/policy-semantics.md maps each rule to
 * its test). Every case is built so that the plausible wrong implementation gives a different answer.
 */

const nodeA = node('node-a', ['192.168.0.10']);
const nodeB = node('node-b', ['192.168.0.11']);

const web = pod('prod', 'web', { app: 'web', tier: 'front' }, '10.0.1.1', {
  ports: ports(['http', 8080], ['dns', 53, 'UDP'], [undefined, 9090]),
});
const db = pod('prod', 'db', { app: 'db' }, '10.0.1.2', { ports: ports(['pg', 5432], ['http', 8081]) });
const legacy = pod('prod', 'legacy', {}, '10.0.1.3');
const devWeb = pod('dev', 'web', { app: 'web' }, '10.0.2.1');
const devTool = pod('dev', 'tool', { app: 'tool', tier: 'back' }, '10.0.2.2');
const opsMon = pod('ops', 'mon', { app: 'mon' }, '10.0.3.1');
const hostNet = pod('prod', 'agent', { app: 'web' }, '192.168.0.11', {
  hostNetwork: true,
  nodeName: 'node-b',
});
const v6pod = pod('prod', 'v6', { app: 'v6' }, 'fd00::10');

function base(policies: unknown[]): ClusterModel {
  return cluster({
    namespaces: [
      ns('prod', { team: 'a', env: 'prod' }),
      ns('dev', { team: 'b', env: 'dev' }),
      ns('ops', { team: 'ops' }),
    ],
    pods: [web, db, legacy, devWeb, devTool, opsMon, hostNet, v6pod],
    nodes: [nodeA, nodeB],
    networkPolicies: policies,
  });
}

function index(policies: unknown[], options?: Partial<PolicyOptions>): PolicyIndex {
  const r = compilePolicyIndex(base(policies), options);
  expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
  return r.index as PolicyIndex;
}

/** Evaluates through the cache and directly; both must agree, so every case also checks exactness. */
function judge(policies: unknown[], q: FlowQuery, options?: Partial<PolicyOptions>) {
  const idx = index(policies, options);
  const v = idx.evaluate(q);
  expect(idx.evaluateUncached(q)).toEqual(v);
  expect(idx.evaluate(q)).toBe(v);
  return v;
}

const allowed = (policies: unknown[], q: FlowQuery, options?: Partial<PolicyOptions>) =>
  judge(policies, q, options).allowed;

const denyIngress = (namespace: string, podSelector: object = {}) =>
  netpol(namespace, 'deny-in', { podSelector, policyTypes: ['Ingress'] });
const allowIn = (name: string, podSelector: object, rules: unknown[], extra: object = {}) =>
  netpol('prod', name, { podSelector, ingress: rules, ...extra });

describe('isolation and policyTypes', () => {
  it('a pod no policy selects is allowed both ways (not-isolated)', () => {
    const v = judge([], flow(podRef(devWeb), podRef(db), 'TCP', 5432));
    expect(v).toMatchObject({ allowed: true, result: 'allowed' });
    expect(v.egress.reason).toBe('not-isolated');
    expect(v.ingress.reason).toBe('not-isolated');
  });

  it('ingress: [] without policyTypes isolates ingress only, and only the selected pods', () => {
    const pols = [netpol('prod', 'deny', { podSelector: { matchLabels: { app: 'db' } }, ingress: [] })];
    const v = judge(pols, flow(podRef(web), podRef(db), 'TCP', 5432));
    expect(v.allowed).toBe(false);
    expect(v.result).toBe('denied');
    expect(v.ingress).toMatchObject({
      allowed: false,
      isolated: true,
      isolatedBy: ['prod/deny'],
      reason: 'no-rule-matched',
    });
    expect(v.egress.isolated).toBe(false);
    // The same pod as a source: its egress is not isolated by an Ingress-only policy.
    expect(allowed(pols, flow(podRef(db), podRef(web), 'TCP', 8080))).toBe(true);
    // web is not selected by app=db.
    expect(allowed(pols, flow(podRef(db), podRef(legacy), 'TCP', 1))).toBe(true);
  });

  it('podSelector {} selects every pod of the policy namespace and none elsewhere', () => {
    const pols = [denyIngress('prod')];
    expect(allowed(pols, flow(podRef(devWeb), podRef(legacy), 'TCP', 80))).toBe(false);
    expect(allowed(pols, flow(podRef(web), podRef(devTool), 'TCP', 80))).toBe(true);
  });

  it('egress: [] without policyTypes does not isolate egress (upstream defaults on len(egress) != 0)', () => {
    const pols = [netpol('prod', 'p', { podSelector: {}, egress: [] })];
    const v = judge(pols, flow(podRef(web), ipRef('8.8.8.8'), 'UDP', 53));
    expect(v.egress.isolated).toBe(false);
    expect(v.allowed).toBe(true);
    // ...but it still isolates ingress (Ingress is always defaulted).
    expect(allowed(pols, flow(podRef(devWeb), podRef(web), 'TCP', 8080))).toBe(false);
  });

  it('policyTypes [Egress] with egress: [] denies all egress', () => {
    const pols = [netpol('prod', 'p', { podSelector: {}, policyTypes: ['Egress'], egress: [] })];
    const v = judge(pols, flow(podRef(web), ipRef('8.8.8.8'), 'UDP', 53));
    expect(v.egress).toMatchObject({ allowed: false, isolated: true, isolatedBy: ['prod/p'] });
    // Ingress is not in policyTypes, so not isolated.
    expect(allowed(pols, flow(podRef(devWeb), podRef(web), 'TCP', 8080))).toBe(true);
  });

  it('a policy with only egress rules and no policyTypes isolates ingress too', () => {
    const pols = [netpol('prod', 'p', { podSelector: { matchLabels: { app: 'web' } }, egress: [{}] })];
    const v = judge(pols, flow(podRef(devWeb), podRef(web), 'TCP', 8080));
    expect(v.ingress).toMatchObject({ allowed: false, isolated: true, isolatedBy: ['prod/p'] });
    const out = judge(pols, flow(podRef(web), ipRef('8.8.8.8'), 'TCP', 443));
    expect(out.egress).toMatchObject({ allowed: true, isolated: true, reason: 'rule-matched' });
  });

  it('policyTypes [Egress] ignores ingress rules for isolation', () => {
    const pols = [
      netpol('prod', 'p', {
        podSelector: {},
        policyTypes: ['Egress'],
        ingress: [{ from: [{ podSelector: { matchLabels: { app: 'nothing' } } }] }],
        egress: [{}],
      }),
    ];
    expect(judge(pols, flow(podRef(devWeb), podRef(web), 'TCP', 8080)).ingress.isolated).toBe(false);
  });

  it('allowed is the union over all isolating policies, naming every allowing rule', () => {
    const pols = [
      allowIn('a', { matchLabels: { app: 'db' } }, [
        { from: [{ podSelector: { matchLabels: { app: 'web' } } }] },
      ]),
      allowIn('b', { matchLabels: { app: 'db' } }, [
        { from: [{ podSelector: { matchLabels: { app: 'nothing' } } }] },
        { from: [{ podSelector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] } }] },
        { ports: [{ port: 5432 }] },
      ]),
    ];
    const v = judge(pols, flow(podRef(web), podRef(db), 'TCP', 5432));
    expect(v.ingress.isolatedBy).toEqual(['prod/a', 'prod/b']);
    expect(v.ingress.rules).toEqual([
      { policy: 'prod/a', kind: 'NetworkPolicy', direction: 'ingress', rule: 0 },
      { policy: 'prod/b', kind: 'NetworkPolicy', direction: 'ingress', rule: 1 },
      { policy: 'prod/b', kind: 'NetworkPolicy', direction: 'ingress', rule: 2 },
    ]);
    // legacy has no tier and is not app=web, but port 5432 is open to all by b's rule 2.
    expect(judge(pols, flow(podRef(legacy), podRef(db), 'TCP', 5432)).ingress.rules).toEqual([
      { policy: 'prod/b', kind: 'NetworkPolicy', direction: 'ingress', rule: 2 },
    ]);
    expect(allowed(pols, flow(podRef(legacy), podRef(db), 'TCP', 5433))).toBe(false);
  });

  it('a flow needs both the source egress and the destination ingress', () => {
    const pols = [
      netpol('dev', 'eg', { podSelector: {}, policyTypes: ['Egress'] }),
      allowIn('in', { matchLabels: { app: 'db' } }, [{}]),
    ];
    const v = judge(pols, flow(podRef(devWeb), podRef(db), 'TCP', 5432));
    expect(v.ingress.allowed).toBe(true);
    expect(v.egress).toMatchObject({ allowed: false, reason: 'no-rule-matched', isolatedBy: ['dev/eg'] });
    expect(v.allowed).toBe(false);
  });

  it('ends that are not pods have no policy on their side', () => {
    const v = judge([denyIngress('prod')], flow(ipRef('8.8.8.8'), podRef(web), 'TCP', 8080));
    expect(v.egress).toMatchObject({ allowed: true, isolated: false, reason: 'not-a-pod' });
    expect(v.ingress.allowed).toBe(false);
  });
});

describe('rules', () => {
  it('a rule {} allows everything, including ICMP and external sources', () => {
    const pols = [allowIn('all', {}, [{}])];
    expect(allowed(pols, flow(ipRef('8.8.8.8'), podRef(web), 1))).toBe(true);
    expect(allowed(pols, flow(podRef(opsMon), podRef(web), 'SCTP', 7))).toBe(true);
  });

  it('from: [] means all peers, ports still restrict', () => {
    const pols = [allowIn('p', {}, [{ from: [], ports: [{ port: 80 }] }])];
    expect(allowed(pols, flow(ipRef('8.8.8.8'), podRef(web), 'TCP', 80))).toBe(true);
    expect(allowed(pols, flow(ipRef('8.8.8.8'), podRef(web), 'TCP', 81))).toBe(false);
  });

  it('ports: [] means all ports, peers still restrict', () => {
    const pols = [allowIn('p', {}, [{ from: [{ podSelector: {} }], ports: [] }])];
    expect(allowed(pols, flow(podRef(db), podRef(web), 'UDP', 9999))).toBe(true);
    expect(allowed(pols, flow(podRef(devWeb), podRef(web), 'UDP', 9999))).toBe(false);
  });
});

describe('peers', () => {
  it('podSelector alone means pods of the policy namespace only', () => {
    const pols = [
      allowIn('p', { matchLabels: { app: 'db' } }, [
        { from: [{ podSelector: { matchLabels: { app: 'web' } } }] },
      ]),
    ];
    expect(allowed(pols, flow(podRef(web), podRef(db), 'TCP', 5432))).toBe(true);
    expect(allowed(pols, flow(podRef(devWeb), podRef(db), 'TCP', 5432))).toBe(false);
  });

  it('namespaceSelector alone means every pod of the matching namespaces', () => {
    const pols = [allowIn('p', {}, [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } } }] }])];
    expect(allowed(pols, flow(podRef(devTool), podRef(web), 'TCP', 8080))).toBe(true);
    expect(allowed(pols, flow(podRef(devWeb), podRef(web), 'TCP', 8080))).toBe(true);
    expect(allowed(pols, flow(podRef(opsMon), podRef(web), 'TCP', 8080))).toBe(false);
    // The policy's own namespace is not implied.
    expect(allowed(pols, flow(podRef(db), podRef(web), 'TCP', 8080))).toBe(false);
  });

  it('namespaceSelector and podSelector in one peer are ANDed', () => {
    const pols = [
      allowIn('p', {}, [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { team: 'b' } },
              podSelector: { matchLabels: { app: 'web' } },
            },
          ],
        },
      ]),
    ];
    expect(allowed(pols, flow(podRef(devWeb), podRef(web), 'TCP', 8080))).toBe(true);
    expect(allowed(pols, flow(podRef(devTool), podRef(web), 'TCP', 8080))).toBe(false);
    expect(allowed(pols, flow(podRef(web), podRef(db), 'TCP', 8080))).toBe(false);
  });

  it('separate peers are ORed', () => {
    const pols = [
      allowIn('p', {}, [
        {
          from: [
            { namespaceSelector: { matchLabels: { team: 'b' } } },
            { podSelector: { matchLabels: { app: 'web' } } },
          ],
        },
      ]),
    ];
    expect(allowed(pols, flow(podRef(devTool), podRef(db), 'TCP', 1))).toBe(true);
    expect(allowed(pols, flow(podRef(web), podRef(db), 'TCP', 1))).toBe(true);
    expect(allowed(pols, flow(podRef(opsMon), podRef(db), 'TCP', 1))).toBe(false);
  });

  it('namespaceSelector {} means all namespaces (pods only, not external addresses)', () => {
    const pols = [allowIn('p', {}, [{ from: [{ namespaceSelector: {} }] }])];
    expect(allowed(pols, flow(podRef(opsMon), podRef(web), 'TCP', 1))).toBe(true);
    expect(allowed(pols, flow(ipRef('8.8.8.8'), podRef(web), 'TCP', 1))).toBe(false);
    expect(allowed(pols, flow(ipRef('192.168.0.11', nodeB), podRef(web), 'TCP', 1))).toBe(false);
  });

  it('namespaceSelector {} with a podSelector selects those pods in every namespace', () => {
    const pols = [
      allowIn('p', {}, [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: 'web' } } }] }]),
    ];
    expect(allowed(pols, flow(podRef(devWeb), podRef(db), 'TCP', 1))).toBe(true);
    expect(allowed(pols, flow(podRef(devTool), podRef(db), 'TCP', 1))).toBe(false);
  });

  it('the kubernetes.io/metadata.name label selects a namespace by name', () => {
    const pols = [
      allowIn('p', {}, [
        { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ops' } } }] },
      ]),
    ];
    expect(allowed(pols, flow(podRef(opsMon), podRef(web), 'TCP', 1))).toBe(true);
    expect(allowed(pols, flow(podRef(devTool), podRef(web), 'TCP', 1))).toBe(false);
  });

  it('matchExpressions: NotIn and DoesNotExist match pods without the key; In and Exists do not', () => {
    const sel = (e: object) => [
      allowIn('p', { matchLabels: { app: 'db' } }, [{ from: [{ podSelector: { matchExpressions: [e] } }] }]),
    ];
    const notIn = sel({ key: 'tier', operator: 'NotIn', values: ['front'] });
    expect(allowed(notIn, flow(podRef(legacy), podRef(db), 'TCP', 1))).toBe(true); // no tier key
    expect(allowed(notIn, flow(podRef(web), podRef(db), 'TCP', 1))).toBe(false); // tier=front
    const dne = sel({ key: 'app', operator: 'DoesNotExist' });
    expect(allowed(dne, flow(podRef(legacy), podRef(db), 'TCP', 1))).toBe(true);
    expect(allowed(dne, flow(podRef(web), podRef(db), 'TCP', 1))).toBe(false);
    const inSel = sel({ key: 'tier', operator: 'In', values: ['front', 'back'] });
    expect(allowed(inSel, flow(podRef(web), podRef(db), 'TCP', 1))).toBe(true);
    expect(allowed(inSel, flow(podRef(legacy), podRef(db), 'TCP', 1))).toBe(false);
    const exists = sel({ key: 'tier', operator: 'Exists' });
    expect(allowed(exists, flow(podRef(web), podRef(db), 'TCP', 1))).toBe(true);
    expect(allowed(exists, flow(podRef(legacy), podRef(db), 'TCP', 1))).toBe(false);
  });

  it('matchLabels and matchExpressions in one selector are ANDed', () => {
    const pols = [
      allowIn('p', { matchLabels: { app: 'db' } }, [
        {
          from: [
            {
              podSelector: {
                matchLabels: { app: 'web' },
                matchExpressions: [{ key: 'tier', operator: 'In', values: ['back'] }],
              },
            },
          ],
        },
      ]),
    ];
    expect(allowed(pols, flow(podRef(web), podRef(db), 'TCP', 1))).toBe(false); // app=web but tier=front
  });
});

describe('ipBlock', () => {
  const block = (ipBlock: object) => [
    allowIn('p', { matchLabels: { app: 'web' } }, [{ from: [{ ipBlock }] }]),
  ];
  const from = (ip: string) => flow(ipRef(ip), podRef(web), 'TCP', 8080);

  it('cidr bounds are inclusive of network and broadcast addresses, exclusive outside', () => {
    const pols = block({ cidr: '10.8.0.0/16' });
    expect(allowed(pols, from('10.8.0.0'))).toBe(true);
    expect(allowed(pols, from('10.8.255.255'))).toBe(true);
    expect(allowed(pols, from('10.7.255.255'))).toBe(false);
    expect(allowed(pols, from('10.9.0.0'))).toBe(false);
  });

  it('except carves out exactly its range', () => {
    const pols = block({ cidr: '8.8.0.0/16', except: ['8.8.8.0/24', '8.8.9.7/32'] });
    expect(allowed(pols, from('8.8.7.255'))).toBe(true);
    expect(allowed(pols, from('8.8.8.0'))).toBe(false);
    expect(allowed(pols, from('8.8.8.255'))).toBe(false);
    expect(allowed(pols, from('8.8.9.0'))).toBe(true);
    expect(allowed(pols, from('8.8.9.7'))).toBe(false);
    expect(allowed(pols, from('8.8.9.8'))).toBe(true);
  });

  it('an except of one peer does not remove what another peer allows', () => {
    const pols = [
      allowIn('p', { matchLabels: { app: 'web' } }, [
        {
          from: [
            { ipBlock: { cidr: '8.8.0.0/16', except: ['8.8.8.0/24'] } },
            { ipBlock: { cidr: '8.8.8.0/28' } },
          ],
        },
      ]),
    ];
    expect(allowed(pols, from('8.8.8.5'))).toBe(true);
    expect(allowed(pols, from('8.8.8.20'))).toBe(false);
  });

  it('IPv6 cidr and except; families never cross', () => {
    const pols = block({ cidr: '2001:db8::/32', except: ['2001:db8:1::/48'] });
    expect(allowed(pols, from('2001:db8::5'))).toBe(true);
    expect(allowed(pols, from('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'))).toBe(true);
    expect(allowed(pols, from('2001:db8:1::5'))).toBe(false);
    expect(allowed(pols, from('2001:db8:2::'))).toBe(true);
    expect(allowed(pols, from('2001:db9::'))).toBe(false);
    // 32.1.13.184 is 0x20010db8, the same high bits as 2001:db8::/32 — still IPv4.
    expect(allowed(pols, from('32.1.13.184'))).toBe(false);
    expect(allowed(block({ cidr: '0.0.0.0/0' }), from('2001:db8::5'))).toBe(false);
    expect(allowed(block({ cidr: '::/0' }), from('8.8.8.8'))).toBe(false);
  });

  it('IPv4-in-IPv6 notation parses', () => {
    expect(allowed(block({ cidr: '::ffff:0:0/96' }), from('::ffff:10.1.2.3'))).toBe(true);
  });

  it('ipBlock matches pod IPs by default (upstream conformance) and not with ipBlockMatchesPods=false', () => {
    const pols = [
      allowIn('p', { matchLabels: { app: 'db' } }, [{ from: [{ ipBlock: { cidr: '10.0.2.0/24' } }] }]),
    ];
    const q = flow(podRef(devWeb), podRef(db), 'TCP', 5432);
    expect(allowed(pols, q)).toBe(true);
    expect(allowed(pols, q, { ipBlockMatchesPods: false })).toBe(false);
    // Non-pod addresses are matched under both options.
    expect(
      allowed(pols, flow(ipRef('10.0.2.200'), podRef(db), 'TCP', 5432), { ipBlockMatchesPods: false }),
    ).toBe(true);
  });

  it('egress ipBlock to a pod IP follows the same option', () => {
    const pols = [
      netpol('dev', 'eg', {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '10.0.1.0/24' } }] }],
      }),
    ];
    const q = flow(podRef(devWeb), podRef(db), 'TCP', 5432);
    expect(allowed(pols, q)).toBe(true);
    expect(allowed(pols, q, { ipBlockMatchesPods: false })).toBe(false);
    expect(
      allowed(pols, flow(podRef(devWeb), ipRef('10.0.1.99'), 'TCP', 5432), { ipBlockMatchesPods: false }),
    ).toBe(true);
  });

  it('IPv6 pod addresses are matched by IPv6 ipBlocks', () => {
    const pols = [
      allowIn('p', { matchLabels: { app: 'db' } }, [{ from: [{ ipBlock: { cidr: 'fd00::/64' } }] }]),
    ];
    expect(allowed(pols, flow(podRef(v6pod), podRef(db, 'fd00::2'), 'TCP', 5432))).toBe(true);
  });
});

describe('ports', () => {
  const on = (portsList: unknown[]) => [
    allowIn('p', { matchLabels: { app: 'web' } }, [{ ports: portsList }]),
  ];
  const to = (proto: 'TCP' | 'UDP' | 'SCTP' | number, port?: number) =>
    flow(podRef(devWeb), podRef(web), proto, port);

  it('numeric port; protocol defaults to TCP', () => {
    const pols = on([{ port: 8080 }]);
    expect(allowed(pols, to('TCP', 8080))).toBe(true);
    expect(allowed(pols, to('TCP', 8081))).toBe(false);
    expect(allowed(pols, to('UDP', 8080))).toBe(false);
  });

  it('UDP and SCTP ports', () => {
    expect(allowed(on([{ protocol: 'UDP', port: 53 }]), to('UDP', 53))).toBe(true);
    expect(allowed(on([{ protocol: 'UDP', port: 53 }]), to('TCP', 53))).toBe(false);
    expect(allowed(on([{ protocol: 'SCTP', port: 9 }]), to('SCTP', 9))).toBe(true);
    expect(allowed(on([{ protocol: 'SCTP', port: 9 }]), to('UDP', 9))).toBe(false);
  });

  it('endPort bounds are inclusive', () => {
    const pols = on([{ port: 8000, endPort: 8010 }]);
    expect(allowed(pols, to('TCP', 7999))).toBe(false);
    expect(allowed(pols, to('TCP', 8000))).toBe(true);
    expect(allowed(pols, to('TCP', 8005))).toBe(true);
    expect(allowed(pols, to('TCP', 8010))).toBe(true);
    expect(allowed(pols, to('TCP', 8011))).toBe(false);
  });

  it('a port entry with only a protocol matches every port of that protocol', () => {
    const pols = on([{ protocol: 'UDP' }]);
    expect(allowed(pols, to('UDP', 1))).toBe(true);
    expect(allowed(pols, to('UDP', 65535))).toBe(true);
    expect(allowed(pols, to('TCP', 1))).toBe(false);
  });

  it('ICMP: rules with ports never match it, rules without ports do', () => {
    expect(allowed(on([{ protocol: 'TCP' }]), to(1))).toBe(false);
    expect(allowed(on([{ port: 8080 }]), to(1))).toBe(false);
    expect(
      allowed(
        [
          allowIn('p', { matchLabels: { app: 'web' } }, [
            { from: [{ podSelector: {} }, { namespaceSelector: {} }] },
          ]),
        ],
        to(1),
      ),
    ).toBe(true);
    expect(
      allowed(
        [allowIn('p', {}, [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } } }] }])],
        to(58),
      ),
    ).toBe(true);
  });

  it('an unknown destination port matches only port-less entries', () => {
    expect(allowed(on([{ port: 8080 }]), to('TCP'))).toBe(false);
    expect(allowed(on([{ protocol: 'TCP' }]), to('TCP'))).toBe(true);
  });

  it('ingress named port resolves against the destination pod, name and protocol', () => {
    expect(allowed(on([{ port: 'http' }]), to('TCP', 8080))).toBe(true);
    expect(allowed(on([{ port: 'http' }]), to('TCP', 8081))).toBe(false); // db's http, not web's
    // dns is a UDP container port: a TCP (default) named port 'dns' resolves to nothing.
    expect(allowed(on([{ port: 'dns' }]), to('TCP', 53))).toBe(false);
    expect(allowed(on([{ port: 'dns' }]), to('UDP', 53))).toBe(false);
    expect(allowed(on([{ port: 'dns', protocol: 'UDP' }]), to('UDP', 53))).toBe(true);
  });

  it('egress named port resolves against the flow destination pod; never matches non-pods', () => {
    const pols = [
      netpol('dev', 'eg', {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [{ ports: [{ port: 'http' }] }],
      }),
    ];
    expect(allowed(pols, flow(podRef(devTool), podRef(web), 'TCP', 8080))).toBe(true);
    expect(allowed(pols, flow(podRef(devTool), podRef(db), 'TCP', 8081))).toBe(true);
    expect(allowed(pols, flow(podRef(devTool), podRef(db), 'TCP', 8080))).toBe(false);
    expect(allowed(pols, flow(podRef(devTool), ipRef('1.2.3.4'), 'TCP', 8080))).toBe(false);
    // devTool itself declares no ports: the source's ports play no part.
    expect(allowed(pols, flow(podRef(devTool), podRef(legacy), 'TCP', 8080))).toBe(false);
  });
});

describe('node-local traffic', () => {
  const pols = [netpol('prod', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })];

  it('ingress from the pod own node is allowed, from another node denied', () => {
    const v = judge(pols, flow(ipRef('192.168.0.10', nodeA), podRef(db), 'TCP', 5432));
    expect(v.ingress).toMatchObject({
      allowed: true,
      isolated: true,
      reason: 'node-local',
      isolatedBy: ['prod/deny-all'],
    });
    expect(allowed(pols, flow(ipRef('192.168.0.11', nodeB), podRef(db), 'TCP', 5432))).toBe(false);
  });

  it('recognises the node by its address when the ref carries no node', () => {
    expect(allowed(pols, flow(ipRef('192.168.0.10'), podRef(db), 'TCP', 5432))).toBe(true);
  });

  it('egress to the pod own node is allowed, to another node denied', () => {
    expect(judge(pols, flow(podRef(web), ipRef('192.168.0.10', nodeA), 'TCP', 10250)).egress.reason).toBe(
      'node-local',
    );
    expect(allowed(pols, flow(podRef(web), ipRef('192.168.0.11', nodeB), 'TCP', 10250))).toBe(false);
  });
});

describe('a pod and itself', () => {
  it('a pod cannot block access to itself, even when isolated both ways', () => {
    const pols = [netpol('prod', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })];
    const v = judge(pols, flow(podRef(web), podRef(web), 'TCP', 8080));
    expect(v.allowed).toBe(true);
    expect(v.egress).toMatchObject({ allowed: true, isolated: true, isolatedBy: ['prod/deny-all'] });
    expect(v.ingress).toMatchObject({ allowed: true, isolated: true, isolatedBy: ['prod/deny-all'] });
    // A different pod of the same identity (same namespace and labels) is not the pod itself.
    const twin = pod('prod', 'web-2', { app: 'web', tier: 'front' }, '10.0.1.9', { nodeName: 'node-b' });
    expect(allowed(pols, flow(podRef(web), podRef(twin), 'TCP', 8080))).toBe(false);
    const e = compilePolicyIndex(base(pols)).index.explain(flow(podRef(web), podRef(web), 'TCP', 8080));
    expect(e.ingress.reason).toContain('itself');
  });
});

describe('hostNetwork pods', () => {
  it("'node' (default): policies do not select them; 'pod': they are ordinary pods", () => {
    const pols = [allowIn('p', { matchLabels: { app: 'web' } }, [])];
    const q = flow(podRef(devWeb), podRef(hostNet), 'TCP', 8080);
    const v = judge(pols, q);
    expect(v.ingress).toMatchObject({ allowed: true, isolated: false, reason: 'host-network' });
    expect(allowed(pols, q, { hostNetwork: 'pod' })).toBe(false);
  });

  it("as peers, 'node' mode matches them only by ipBlock on their address", () => {
    const bySelector = [
      allowIn('p', { matchLabels: { app: 'db' } }, [
        { from: [{ podSelector: { matchLabels: { app: 'web' } } }] },
      ]),
    ];
    const q = flow(podRef(hostNet), podRef(db), 'TCP', 5432);
    expect(allowed(bySelector, q)).toBe(false);
    expect(allowed(bySelector, q, { hostNetwork: 'pod' })).toBe(true);
    const byIp = [
      allowIn('p', { matchLabels: { app: 'db' } }, [{ from: [{ ipBlock: { cidr: '192.168.0.0/24' } }] }]),
    ];
    // The hostNetwork pod is its node here, so ipBlock matches even when ipBlock ignores pod IPs...
    expect(allowed(byIp, q, { ipBlockMatchesPods: false })).toBe(true);
    // ...while treated as a pod, it does not.
    expect(allowed(byIp, q, { ipBlockMatchesPods: false, hostNetwork: 'pod' })).toBe(false);
  });
});

describe('explain and rules()', () => {
  const pols = [
    allowIn('p', { matchLabels: { app: 'web' } }, [
      { from: [{ namespaceSelector: { matchLabels: { team: 'ops' } } }] },
      { from: [{ podSelector: { matchLabels: { app: 'db' } } }], ports: [{ port: 80 }] },
    ]),
    netpol('prod', 'bad', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: 'nope' } }] }] }),
  ];

  it('gives per-rule match and why, per side', () => {
    const r = compilePolicyIndex(base(pols));
    const e = r.index.explain(flow(podRef(devWeb), podRef(web), 'TCP', 8080));
    expect(e.verdict.allowed).toBe(false);
    expect(e.ingress.subject).toContain('prod/web');
    expect(e.ingress.isolatedBy).toEqual(['prod/p']);
    expect(e.ingress.rules).toHaveLength(2);
    expect(e.ingress.rules[0]?.matched).toBe(false);
    expect(e.ingress.rules[0]?.why).toContain(
      "namespace 'dev' labels do not match namespaceSelector{team=ops}",
    );
    expect(e.ingress.rules[1]?.why).toContain("namespace 'dev'");
    expect(e.egress.isolated).toBe(false);
    const e2 = r.index.explain(flow(podRef(db), podRef(web), 'TCP', 8080));
    expect(e2.ingress.rules[1]?.why).toContain('TCP/8080 not in [TCP/80]');
    const e3 = r.index.explain(flow(podRef(opsMon), podRef(web), 'TCP', 8080));
    expect(e3.ingress.rules[0]).toMatchObject({ matched: true, policy: 'prod/p', rule: 0 });
    expect(e3.verdict.allowed).toBe(true);
  });

  it('rules() lists every rule of accepted policies only', () => {
    const r = compilePolicyIndex(base(pols));
    const list = r.index.rules();
    expect(list.map((x) => `${x.policy} ${x.direction}[${x.rule}]`)).toEqual([
      'prod/p ingress[0]',
      'prod/p ingress[1]',
    ]);
    expect(list[1]?.summary).toBe('from podSelector{app=db} ports TCP/80');
    expect(r.issues.map((i) => i.object)).toEqual(['prod/bad']);
  });

  it('evaluate never throws, even on a malformed query', () => {
    const idx = compilePolicyIndex(base(pols)).index;
    const broken = {
      src: { ip: '10.0.0.1', pod: { namespace: 'prod' } as unknown as PodModel },
      dst: null,
    } as unknown as FlowQuery;
    const v = idx.evaluate(broken);
    expect(v.allowed).toBe(false);
    expect(() => idx.explain(broken)).not.toThrow();
  });
});

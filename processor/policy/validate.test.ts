import { describe, expect, it } from 'vitest';
import { cluster, flow, ipRef, netpol, ns, pod, podRef } from './fixtures.js';
import { compilePolicyIndex } from './index.js';

/**
 * Invalid policies are rejected whole with issues naming the policy (`namespace/name`) and the field,
 * and valid policies beside them still apply.
 */

const target = pod('prod', 'web', { app: 'web' }, '10.0.1.1');

function compile(spec: Record<string, unknown>) {
  const good = netpol('prod', 'good', {
    podSelector: { matchLabels: { app: 'web' } },
    ingress: [{ from: [{ ipBlock: { cidr: '1.1.1.1/32' } }] }],
  });
  const r = compilePolicyIndex(
    cluster({
      namespaces: [ns('prod')],
      pods: [target],
      networkPolicies: [netpol('prod', 'bad', spec), good],
    }),
  );
  // The valid policy always compiles and isolates web; the bad one never contributes a rule.
  expect(r.index.rules().map((x) => x.policy)).toEqual(['prod/good']);
  expect(r.index.evaluate(flow(ipRef('1.1.1.1'), podRef(target), 'TCP', 80)).allowed).toBe(true);
  expect(r.index.evaluate(flow(ipRef('2.2.2.2'), podRef(target), 'TCP', 80)).allowed).toBe(false);
  return r.issues
    .filter((i) => i.severity === 'error')
    .map((i) => ({ code: i.code, object: i.object, field: i.field }));
}

const ing = (peer: object, extra: object = {}) => ({
  podSelector: {},
  ingress: [{ from: [{}, peer], ...extra }],
});
const withPeer = (peer: object) => ({ podSelector: {}, ingress: [{ from: [{ podSelector: {} }, peer] }] });
const withPort = (port: object) => ({ podSelector: {}, ingress: [{ ports: [{ port: 80 }, port] }] });

describe('policy validation', () => {
  it('bad CIDR', () => {
    expect(compile(withPeer({ ipBlock: { cidr: '10.0.0.0/33' } }))).toEqual([
      { code: 'POLICY_INVALID_CIDR', object: 'prod/bad', field: 'spec.ingress[0].from[1].ipBlock.cidr' },
    ]);
    expect(compile(withPeer({ ipBlock: { cidr: '10.0.0.256/8' } }))[0]?.code).toBe('POLICY_INVALID_CIDR');
    expect(compile(withPeer({ ipBlock: { cidr: '10.0.0.0' } }))[0]?.code).toBe('POLICY_INVALID_CIDR');
    expect(compile(withPeer({ ipBlock: { cidr: '2001:db8:::/32' } }))[0]?.code).toBe('POLICY_INVALID_CIDR');
    expect(compile(withPeer({ ipBlock: { cidr: '010.0.0.0/8' } }))[0]?.code).toBe('POLICY_INVALID_CIDR');
  });

  it('except not strictly inside its cidr, or of the other family', () => {
    const field = 'spec.ingress[0].from[1].ipBlock.except[1]';
    for (const bad of ['10.1.0.0/16', '10.0.0.0/16', '11.0.0.0/24', 'fd00::/64']) {
      expect(compile(withPeer({ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.1.0/24', bad] } }))).toEqual([
        { code: 'POLICY_EXCEPT_OUTSIDE_CIDR', object: 'prod/bad', field },
      ]);
    }
    expect(compile(withPeer({ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.1.0/24', 'x'] } }))[0]).toEqual({
      code: 'POLICY_INVALID_CIDR',
      object: 'prod/bad',
      field,
    });
  });

  it('selector operators and values', () => {
    const sel = (e: object) =>
      withPeer({ podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists' }, e] } });
    const f = 'spec.ingress[0].from[1].podSelector.matchExpressions[1]';
    expect(compile(sel({ key: 'a', operator: 'Equals', values: ['x'] }))).toEqual([
      { code: 'POLICY_INVALID_SELECTOR', object: 'prod/bad', field: `${f}.operator` },
    ]);
    expect(compile(sel({ key: 'a', operator: 'In', values: [] }))).toEqual([
      { code: 'POLICY_INVALID_SELECTOR', object: 'prod/bad', field: `${f}.values` },
    ]);
    expect(compile(sel({ key: 'a', operator: 'NotIn' }))).toEqual([
      { code: 'POLICY_INVALID_SELECTOR', object: 'prod/bad', field: `${f}.values` },
    ]);
    expect(compile(sel({ key: 'a', operator: 'Exists', values: ['x'] }))).toEqual([
      { code: 'POLICY_INVALID_SELECTOR', object: 'prod/bad', field: `${f}.values` },
    ]);
    expect(compile(sel({ key: 'a', operator: 'DoesNotExist', values: ['x'] }))[0]?.code).toBe(
      'POLICY_INVALID_SELECTOR',
    );
  });

  it('invalid label keys and values', () => {
    expect(compile(withPeer({ namespaceSelector: { matchLabels: { 'bad key': 'x' } } }))).toEqual([
      {
        code: 'POLICY_INVALID_LABEL',
        object: 'prod/bad',
        field: 'spec.ingress[0].from[1].namespaceSelector.matchLabels.bad key',
      },
    ]);
    expect(compile(withPeer({ podSelector: { matchLabels: { app: '-x' } } }))[0]?.code).toBe(
      'POLICY_INVALID_LABEL',
    );
    expect(compile(withPeer({ podSelector: { matchLabels: { app: 'x'.repeat(64) } } }))[0]?.code).toBe(
      'POLICY_INVALID_LABEL',
    );
    expect(compile(withPeer({ podSelector: { matchLabels: { 'Example.com/app': 'x' } } }))[0]?.code).toBe(
      'POLICY_INVALID_LABEL',
    );
    expect(
      compile(
        withPeer({
          podSelector: { matchExpressions: [{ key: 'a', operator: 'In', values: ['ok', 'not ok'] }] },
        }),
      ),
    ).toEqual([
      {
        code: 'POLICY_INVALID_LABEL',
        object: 'prod/bad',
        field: 'spec.ingress[0].from[1].podSelector.matchExpressions[0].values[1]',
      },
    ]);
    expect(compile({ podSelector: { matchLabels: { 'a/b/c': 'x' } } })[0]?.field).toBe(
      'spec.podSelector.matchLabels.a/b/c',
    );
  });

  it('bad protocol', () => {
    expect(compile(withPort({ protocol: 'ICMP', port: 1 }))).toEqual([
      { code: 'POLICY_INVALID_PROTOCOL', object: 'prod/bad', field: 'spec.ingress[0].ports[1].protocol' },
    ]);
    expect(compile(withPort({ protocol: 'tcp' }))[0]?.code).toBe('POLICY_INVALID_PROTOCOL');
  });

  it('port out of range or an invalid name', () => {
    const f = 'spec.ingress[0].ports[1].port';
    for (const p of [0, 65536, -1, 1.5, '80', 'HTTP', 'a--b', 'a'.repeat(16), '-ab', ''])
      expect(compile(withPort({ port: p }))).toEqual([
        { code: 'POLICY_INVALID_PORT', object: 'prod/bad', field: f },
      ]);
  });

  it('endPort with a named port, without a port, below port, out of range', () => {
    const f = 'spec.ingress[0].ports[1].endPort';
    for (const p of [
      { port: 'http', endPort: 90 },
      { endPort: 90 },
      { port: 100, endPort: 99 },
      { port: 1, endPort: 65536 },
    ])
      expect(compile(withPort(p))).toEqual([
        { code: 'POLICY_INVALID_END_PORT', object: 'prod/bad', field: f },
      ]);
  });

  it('ipBlock combined with a selector in one peer; an empty peer', () => {
    expect(compile(withPeer({ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }))).toEqual([
      { code: 'POLICY_INVALID_PEER', object: 'prod/bad', field: 'spec.ingress[0].from[1]' },
    ]);
    expect(compile(ing({ podSelector: {} }))).toEqual([
      { code: 'POLICY_INVALID_PEER', object: 'prod/bad', field: 'spec.ingress[0].from[0]' },
    ]);
  });

  it('unknown policyTypes value', () => {
    expect(compile({ podSelector: {}, policyTypes: ['Ingress', 'egress'] })).toEqual([
      { code: 'POLICY_INVALID_POLICY_TYPE', object: 'prod/bad', field: 'spec.policyTypes[1]' },
    ]);
  });

  it('missing podSelector', () => {
    expect(compile({ ingress: [{}] })).toEqual([
      { code: 'POLICY_MISSING_FIELD', object: 'prod/bad', field: 'spec.podSelector' },
    ]);
  });

  it('reports every problem of a policy, not just the first', () => {
    const issues = compile({
      podSelector: {},
      policyTypes: ['Sideways'],
      egress: [{ to: [{ ipBlock: { cidr: 'x' } }], ports: [{ port: 0 }] }],
    });
    expect(issues.map((i) => i.field).sort()).toEqual([
      'spec.egress[0].ports[0].port',
      'spec.egress[0].to[0].ipBlock.cidr',
      'spec.policyTypes[0]',
    ]);
  });

  it('wrong JSON types are reported, not thrown', () => {
    expect(compile({ podSelector: {}, ingress: { from: [] } })).toEqual([
      { code: 'POLICY_INVALID_TYPE', object: 'prod/bad', field: 'spec.ingress' },
    ]);
    expect(compile({ podSelector: 'app=web' })[0]?.code).toBe('POLICY_INVALID_TYPE');
  });

  it('a policy without metadata is named by its position', () => {
    const r = compilePolicyIndex(cluster({ networkPolicies: [{ spec: { podSelector: {} } }, 42] }));
    expect(r.issues.map((i) => [i.code, i.object, i.field])).toEqual([
      ['POLICY_MISSING_FIELD', 'networkPolicies[0]', 'metadata.name'],
      ['POLICY_MISSING_FIELD', 'networkPolicies[0]', 'metadata.namespace'],
      ['POLICY_INVALID_TYPE', 'networkPolicies[1]', ''],
    ]);
    expect(r.index.rules()).toEqual([]);
  });

  it('accepts valid edge cases: host bits (with a warning), IPv6 except, endPort == port, prefixed keys', () => {
    const r = compilePolicyIndex(
      cluster({
        networkPolicies: [
          netpol('prod', 'edge', {
            podSelector: { matchLabels: { 'app.kubernetes.io/name': 'web', empty: '' } },
            ingress: [
              {
                from: [
                  { ipBlock: { cidr: '10.0.0.1/8' } },
                  { ipBlock: { cidr: 'fd00::/8', except: ['fd00::/9'] } },
                ],
                ports: [
                  { port: 80, endPort: 80 },
                  { port: 'http-alt', protocol: 'SCTP' },
                ],
              },
            ],
          }),
        ],
      }),
    );
    expect(r.issues.map((i) => [i.code, i.severity, i.field])).toEqual([
      ['POLICY_CIDR_HOST_BITS', 'warning', 'spec.ingress[0].from[0].ipBlock.cidr'],
    ]);
    expect(r.index.rules()).toHaveLength(1);
  });

  it('duplicate namespace/name: the first wins, the rest are reported', () => {
    const r = compilePolicyIndex(
      cluster({
        networkPolicies: [
          netpol('prod', 'p', { podSelector: {} }),
          netpol('prod', 'p', { podSelector: {}, ingress: [{}] }),
        ],
      }),
    );
    expect(r.issues.map((i) => [i.code, i.object])).toEqual([['POLICY_DUPLICATE', 'prod/p']]);
    expect(r.index.rules()).toEqual([]);
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../../test/support/cli.js';
import type { ClusterModel, NodeModel, PodModel } from '../inventory/model.js';
import { clusterArb, flowSpecArb, toQuery, twinClusterArb } from './arbitrary.js';
import { cluster, flow, ipRef, netpol, ns, pod, podRef, ports } from './fixtures.js';
import { compilePolicyIndex, type PolicyIndex } from './index.js';
import type { FlowQuery, PolicyOptions } from './types.js';

/**
 * AdminNetworkPolicy, BaselineAdminNetworkPolicy and ClusterNetworkPolicy (docs/admin-network-policy.md
 * maps each rule to its test). Each precedence case is built so that getting the rule wrong gives the
 * other answer; every verdict is computed through the verdict cache and directly, and both must agree.
 */

const nodeA: NodeModel = {
  name: 'node-a',
  addresses: ['192.168.0.10'],
  podCIDRs: [],
  labels: { role: 'control' },
};
const nodeB: NodeModel = {
  name: 'node-b',
  addresses: ['192.168.0.11'],
  podCIDRs: [],
  labels: { role: 'worker' },
};

const web = pod('prod', 'web', { app: 'web' }, '10.0.1.1', { ports: ports(['http', 8080]) });
const db = pod('prod', 'db', { app: 'db' }, '10.0.1.2', { ports: ports(['pg', 5432]) });
const tool = pod('dev', 'tool', { app: 'tool' }, '10.0.2.2');
const mon = pod('ops', 'mon', { app: 'mon' }, '10.0.3.1');
const agent = pod('prod', 'agent', { app: 'agent' }, '192.168.0.11', {
  hostNetwork: true,
  nodeName: 'node-b',
});

function base(networkPolicies: unknown[], clusterNetworkPolicies: unknown[]): ClusterModel {
  return cluster({
    namespaces: [ns('prod', { env: 'prod' }), ns('dev', { env: 'dev' }), ns('ops', { team: 'ops' })],
    pods: [web, db, tool, mon, agent],
    nodes: [nodeA, nodeB],
    networkPolicies,
    clusterNetworkPolicies,
  });
}

function index(nps: unknown[], cnps: unknown[], options?: Partial<PolicyOptions>): PolicyIndex {
  const r = compilePolicyIndex(base(nps, cnps), options);
  expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
  return r.index as PolicyIndex;
}

function judge(nps: unknown[], cnps: unknown[], q: FlowQuery, options?: Partial<PolicyOptions>) {
  const idx = index(nps, cnps, options);
  const v = idx.evaluate(q);
  expect(idx.evaluateUncached(q)).toEqual(v);
  expect(idx.evaluate(q)).toBe(v);
  return v;
}

type Rules = { ingress?: unknown[]; egress?: unknown[] };
const nsSel = (labels: Record<string, string>) => ({ matchLabels: labels });
const inNs = (name: string) => nsSel({ 'kubernetes.io/metadata.name': name });

const anp = (name: string, priority: number, subject: unknown, rules: Rules) => ({
  apiVersion: 'policy.networking.k8s.io/v1alpha1',
  kind: 'AdminNetworkPolicy',
  metadata: { name },
  spec: { priority, subject, ...rules },
});
const banp = (subject: unknown, rules: Rules, name = 'default') => ({
  apiVersion: 'policy.networking.k8s.io/v1alpha1',
  kind: 'BaselineAdminNetworkPolicy',
  metadata: { name },
  spec: { subject, ...rules },
});
const cnp = (name: string, tier: string, priority: number, subject: unknown, rules: Rules) => ({
  apiVersion: 'policy.networking.k8s.io/v1alpha2',
  kind: 'ClusterNetworkPolicy',
  metadata: { name },
  spec: { tier, priority, subject, ...rules },
});

const subjectDb = { pods: { namespaceSelector: inNs('prod'), podSelector: nsSel({ app: 'db' }) } };
const subjectProd = { namespaces: inNs('prod') };
const fromNs = (name: string) => ({ namespaces: inNs(name) });
const allNamespaces = { namespaces: {} };
const rule = (action: string, from: unknown[], extra: object = {}) => ({ action, from, ...extra });
const erule = (action: string, to: unknown[], extra: object = {}) => ({ action, to, ...extra });

/** NetworkPolicy on prod/db allowing ingress from the given namespace only. */
const npDbFrom = (namespace: string) =>
  netpol('prod', `db-from-${namespace}`, {
    podSelector: { matchLabels: { app: 'db' } },
    ingress: [{ from: [{ namespaceSelector: inNs(namespace) }] }],
  });
const npDenyAllIngress = netpol('prod', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] });

const toDb = (src: PodModel, port = 5432, proto: 'TCP' | 'UDP' = 'TCP') =>
  flow(podRef(src), podRef(db), proto, port);

describe('admin tier over NetworkPolicy', () => {
  it('an ANP Deny beats a NetworkPolicy allow, and the verdict names the deciding rule', () => {
    const a = anp('no-dev', 10, subjectDb, { ingress: [rule('Deny', [fromNs('dev')])] });
    const v = judge([npDbFrom('dev')], [a], toDb(tool));
    expect(v.allowed).toBe(false);
    expect(v.ingress).toEqual({
      allowed: false,
      isolated: true,
      isolatedBy: ['prod/db-from-dev'],
      reason: 'admin-deny',
      rules: [
        {
          policy: 'no-dev',
          kind: 'AdminNetworkPolicy',
          direction: 'ingress',
          rule: 0,
          action: 'Deny',
          tier: 'Admin',
        },
      ],
    });
    // Without the ANP the NetworkPolicy allows it.
    expect(judge([npDbFrom('dev')], [], toDb(tool)).allowed).toBe(true);
  });

  it('an ANP Allow beats NetworkPolicy isolation (ingress and egress)', () => {
    const a = anp('ops-in', 10, subjectProd, { ingress: [rule('Allow', [fromNs('ops')])] });
    const v = judge([npDenyAllIngress], [a], toDb(mon));
    expect(v.allowed).toBe(true);
    expect(v.ingress.reason).toBe('admin-allow');
    expect(v.ingress.rules[0]).toMatchObject({
      kind: 'AdminNetworkPolicy',
      action: 'Allow',
      policy: 'ops-in',
    });
    expect(judge([npDenyAllIngress], [a], toDb(tool)).ingress.reason).toBe('no-rule-matched');
    const denyEgress = netpol('dev', 'no-egress', { podSelector: {}, policyTypes: ['Egress'] });
    const e = anp('dev-out', 10, { namespaces: inNs('dev') }, { egress: [erule('Allow', [fromNs('prod')])] });
    expect(judge([denyEgress], [], toDb(tool)).allowed).toBe(false);
    const v2 = judge([denyEgress], [e], toDb(tool));
    expect(v2.allowed).toBe(true);
    expect(v2.egress.reason).toBe('admin-allow');
  });

  it('Pass skips the rest of the admin tier and lets NetworkPolicy decide, either way', () => {
    const pass = anp('pass-dev', 1, subjectDb, { ingress: [rule('Pass', [fromNs('dev')])] });
    const denyAll = anp('deny-all', 2, subjectDb, { ingress: [rule('Deny', [allNamespaces])] });
    const allowedByNp = judge([npDbFrom('dev')], [pass, denyAll], toDb(tool));
    expect(allowedByNp.allowed).toBe(true);
    expect(allowedByNp.ingress.reason).toBe('rule-matched');
    expect(allowedByNp.ingress.rules).toEqual([
      {
        policy: 'pass-dev',
        kind: 'AdminNetworkPolicy',
        direction: 'ingress',
        rule: 0,
        action: 'Pass',
        tier: 'Admin',
      },
      { policy: 'prod/db-from-dev', kind: 'NetworkPolicy', direction: 'ingress', rule: 0 },
    ]);
    // Pass is not Allow: a NetworkPolicy that does not allow the flow denies it.
    const deniedByNp = judge([npDbFrom('prod')], [pass, denyAll], toDb(tool));
    expect(deniedByNp.allowed).toBe(false);
    expect(deniedByNp.ingress.reason).toBe('no-rule-matched');
    // Not passed: the lower-precedence Deny applies.
    expect(judge([npDbFrom('ops')], [pass, denyAll], toDb(mon)).ingress.reason).toBe('admin-deny');
  });

  it('Pass with no NetworkPolicy selecting the pod goes to the baseline, else to the default allow', () => {
    const pass = anp('pass-dev', 1, subjectDb, { ingress: [rule('Pass', [fromNs('dev')])] });
    const b = banp(subjectProd, { ingress: [rule('Deny', [fromNs('dev')])] });
    const v = judge([], [pass, b], toDb(tool));
    expect(v.allowed).toBe(false);
    expect(v.ingress.reason).toBe('baseline-deny');
    expect(v.ingress.rules.map((r) => `${r.kind}/${r.policy}:${r.action}`)).toEqual([
      'AdminNetworkPolicy/pass-dev:Pass',
      'BaselineAdminNetworkPolicy/default:Deny',
    ]);
    const v2 = judge([], [pass], toDb(tool));
    expect(v2.allowed).toBe(true);
    expect(v2.ingress.reason).toBe('not-isolated');
    expect(v2.ingress.rules.map((r) => r.action)).toEqual(['Pass']);
  });

  it('between ANPs the lower priority number wins, whatever the input order', () => {
    const allow = (p: number) =>
      anp('allow-dev', p, subjectDb, { ingress: [rule('Allow', [fromNs('dev')])] });
    const deny = (p: number) => anp('deny-dev', p, subjectDb, { ingress: [rule('Deny', [fromNs('dev')])] });
    for (const list of [
      [allow(20), deny(10)],
      [deny(10), allow(20)],
    ]) {
      const v = judge([], list, toDb(tool));
      expect(v.allowed).toBe(false);
      expect(v.ingress.rules[0]?.policy).toBe('deny-dev');
    }
    const v = judge([], [allow(5), deny(10)], toDb(tool));
    expect(v.allowed).toBe(true);
    expect(v.ingress.rules[0]?.policy).toBe('allow-dev');
  });

  it('within a policy the first matching rule wins', () => {
    const allow5432 = rule('Allow', [fromNs('dev')], {
      ports: [{ portNumber: { protocol: 'TCP', port: 5432 } }],
    });
    const deny = rule('Deny', [fromNs('dev')]);
    const a = anp('ordered', 10, subjectDb, { ingress: [allow5432, deny] });
    expect(judge([], [a], toDb(tool, 5432)).ingress).toMatchObject({ allowed: true, reason: 'admin-allow' });
    const v = judge([], [a], toDb(tool, 5433));
    expect(v.ingress).toMatchObject({ allowed: false, reason: 'admin-deny' });
    expect(v.ingress.rules[0]?.rule).toBe(1);
    const reversed = anp('ordered', 10, subjectDb, { ingress: [deny, allow5432] });
    expect(judge([], [reversed], toDb(tool, 5432)).allowed).toBe(false);
  });

  it('ingress and egress are judged separately: an admin egress Deny on the source denies the flow', () => {
    const a = anp('dev-no-db', 10, { namespaces: inNs('dev') }, { egress: [erule('Deny', [subjectDb])] });
    const v = judge([], [a], toDb(tool));
    expect(v.allowed).toBe(false);
    expect(v.egress.reason).toBe('admin-deny');
    expect(v.ingress).toMatchObject({ allowed: true, reason: 'not-isolated' });
  });

  it('hostNetwork pods are neither subjects nor pod peers', () => {
    const a = anp('deny-all', 10, { namespaces: {} }, { ingress: [rule('Deny', [allNamespaces])] });
    const toAgent = judge([], [a], flow(podRef(web), podRef(agent), 'TCP', 9100));
    expect(toAgent.ingress.reason).toBe('host-network');
    const fromAgent = judge([], [a], flow(podRef(agent), podRef(db), 'TCP', 5432));
    expect(fromAgent.allowed).toBe(true);
    expect(judge([], [a], toDb(web)).allowed).toBe(false);
  });
});

describe('baseline tier', () => {
  it('applies only when nothing above decided: a NetworkPolicy isolating the pod overrides it', () => {
    const b = banp(subjectProd, { ingress: [rule('Deny', [allNamespaces])] });
    expect(judge([npDbFrom('dev')], [b], toDb(tool)).ingress.reason).toBe('rule-matched');
    // An admin Allow decides before the baseline too.
    const a = anp('ops-in', 10, subjectProd, { ingress: [rule('Allow', [fromNs('ops')])] });
    expect(judge([], [a, b], toDb(mon)).ingress.reason).toBe('admin-allow');
    expect(judge([], [a, b], toDb(tool)).ingress.reason).toBe('baseline-deny');
  });

  it('BANP Deny applies to pods no NetworkPolicy isolates, per direction', () => {
    const b = banp(subjectProd, { ingress: [rule('Deny', [fromNs('dev')])] });
    const v = judge([], [b], flow(podRef(tool), podRef(web), 'TCP', 8080));
    expect(v.ingress).toEqual({
      allowed: false,
      isolated: false,
      isolatedBy: [],
      reason: 'baseline-deny',
      rules: [
        {
          policy: 'default',
          kind: 'BaselineAdminNetworkPolicy',
          direction: 'ingress',
          rule: 0,
          action: 'Deny',
          tier: 'Baseline',
        },
      ],
    });
    // A NetworkPolicy isolating db for egress only leaves its ingress to the baseline.
    const egressOnly = netpol('prod', 'db-egress', {
      podSelector: { matchLabels: { app: 'db' } },
      policyTypes: ['Egress'],
    });
    expect(judge([egressOnly], [b], toDb(tool)).ingress.reason).toBe('baseline-deny');
    expect(
      judge([], [banp(subjectProd, { ingress: [rule('Allow', [fromNs('dev')])] })], toDb(tool)).ingress
        .reason,
    ).toBe('baseline-allow');
  });
});

describe('peers and ports', () => {
  it('egress to networks matches external and pod addresses (ipBlockMatchesPods does not apply)', () => {
    const a = anp('no-net', 10, subjectProd, {
      egress: [erule('Deny', [{ networks: ['8.8.8.0/24', '10.0.3.0/24'] }])],
    });
    expect(judge([], [a], flow(podRef(web), ipRef('8.8.8.8'), 'UDP', 53)).egress.reason).toBe('admin-deny');
    expect(judge([], [a], flow(podRef(web), ipRef('1.1.1.1'), 'UDP', 53)).allowed).toBe(true);
    // A pod with mon's identity outside the network: the verdict cache must tell the two apart.
    const monTwin = pod('ops', 'mon-2', { app: 'mon' }, '10.0.4.1');
    for (const ipBlockMatchesPods of [true, false]) {
      const idx = index([], [a], { ipBlockMatchesPods });
      const toMon = flow(podRef(web), podRef(mon), 'TCP', 80);
      const toTwin = flow(podRef(web), podRef(monTwin), 'TCP', 80);
      expect(idx.evaluate(toMon).allowed).toBe(false);
      expect(idx.evaluate(toTwin).allowed).toBe(true);
      expect(idx.evaluateUncached(toMon).allowed).toBe(false);
    }
  });

  it('egress to nodes matches the addresses of the nodes the selector picks', () => {
    const a = anp('no-control', 10, subjectProd, {
      egress: [erule('Deny', [{ nodes: nsSel({ role: 'control' }) }])],
    });
    const v = judge([], [a], flow(podRef(web), ipRef('192.168.0.10', nodeA), 'TCP', 10250));
    expect(v.egress.reason).toBe('admin-deny');
    expect(judge([], [a], flow(podRef(web), ipRef('192.168.0.11'), 'TCP', 10250)).allowed).toBe(true);
    // The node's address matches whether or not the inventory named the node.
    expect(judge([], [a], flow(podRef(web), ipRef('192.168.0.10'), 'TCP', 10250)).allowed).toBe(false);
    const byHostname = anp('no-b', 10, subjectProd, {
      egress: [erule('Deny', [{ nodes: nsSel({ 'kubernetes.io/hostname': 'node-b' }) }])],
    });
    expect(judge([], [byHostname], flow(podRef(web), ipRef('192.168.0.11'), 'TCP', 22)).allowed).toBe(false);
  });

  it('named ports resolve against the destination pod with the container port protocol', () => {
    const a = anp('http-from-dev', 10, subjectProd, {
      ingress: [rule('Allow', [fromNs('dev')], { ports: [{ namedPort: 'http' }] })],
    });
    const toWeb = (port: number, proto: 'TCP' | 'UDP' = 'TCP') =>
      flow(podRef(tool), podRef(web), proto, port);
    expect(judge([npDenyAllIngress], [a], toWeb(8080)).allowed).toBe(true);
    expect(judge([npDenyAllIngress], [a], toWeb(8081)).allowed).toBe(false);
    expect(judge([npDenyAllIngress], [a], toWeb(8080, 'UDP')).allowed).toBe(false);
    // db has no port named http.
    expect(judge([npDenyAllIngress], [a], toDb(tool, 8080)).allowed).toBe(false);
  });

  it('port ranges are inclusive and per protocol', () => {
    const a = anp('no-range', 10, subjectDb, {
      ingress: [
        rule('Deny', [fromNs('dev')], {
          ports: [{ portRange: { protocol: 'TCP', start: 5000, end: 5500 } }],
        }),
      ],
    });
    expect(judge([], [a], toDb(tool, 5000)).allowed).toBe(false);
    expect(judge([], [a], toDb(tool, 5500)).allowed).toBe(false);
    expect(judge([], [a], toDb(tool, 5501)).allowed).toBe(true);
    expect(judge([], [a], toDb(tool, 4999)).allowed).toBe(true);
    expect(judge([], [a], toDb(tool, 5432, 'UDP')).allowed).toBe(true);
    // A rule with ports never matches ICMP.
    expect(judge([], [a], flow(podRef(tool), podRef(db), 1)).allowed).toBe(true);
  });

  it('subject namespaces selects every pod of the namespace; subject pods only the matching pods', () => {
    const ns = anp('s', 10, subjectProd, { ingress: [rule('Deny', [fromNs('dev')])] });
    const pods = anp('s', 10, subjectDb, { ingress: [rule('Deny', [fromNs('dev')])] });
    const toWeb = flow(podRef(tool), podRef(web), 'TCP', 8080);
    expect(judge([], [ns], toWeb).allowed).toBe(false);
    expect(judge([], [ns], toDb(tool)).allowed).toBe(false);
    expect(judge([], [pods], toWeb).allowed).toBe(true);
    expect(judge([], [pods], toDb(tool)).allowed).toBe(false);
  });

  it('pods peer needs both namespaceSelector and podSelector to match', () => {
    const a = anp('p', 10, subjectDb, {
      ingress: [
        rule('Deny', [{ pods: { namespaceSelector: inNs('prod'), podSelector: nsSel({ app: 'web' }) } }]),
      ],
    });
    expect(judge([], [a], toDb(web)).allowed).toBe(false);
    expect(judge([], [a], toDb(tool)).allowed).toBe(true);
  });
});

describe('ClusterNetworkPolicy v1alpha2', () => {
  it('tier Admin Accept/Deny/Pass and tier Baseline, with protocols', () => {
    const admin = cnp('cnp-admin', 'Admin', 10, subjectDb, {
      ingress: [
        {
          action: 'Accept',
          from: [fromNs('ops')],
          protocols: [{ tcp: { destinationPort: { number: 5432 } } }],
        },
        { action: 'Pass', from: [fromNs('dev')] },
      ],
    });
    const baseline = cnp('cnp-base', 'Baseline', 10, subjectProd, {
      ingress: [
        {
          action: 'Deny',
          from: [allNamespaces],
          protocols: [{ tcp: { destinationPort: { range: { start: 5000, end: 6000 } } } }],
        },
      ],
    });
    const v = judge([npDenyAllIngress], [admin, baseline], toDb(mon));
    expect(v.ingress.reason).toBe('admin-allow');
    expect(v.ingress.rules).toEqual([
      {
        policy: 'cnp-admin',
        kind: 'ClusterNetworkPolicy',
        direction: 'ingress',
        rule: 0,
        action: 'Allow',
        tier: 'Admin',
      },
    ]);
    const passed = judge([], [admin, baseline], toDb(tool));
    expect(passed.ingress.reason).toBe('baseline-deny');
    expect(passed.ingress.rules.map((r) => `${r.tier}:${r.action}`)).toEqual(['Admin:Pass', 'Baseline:Deny']);
    expect(judge([], [admin, baseline], toDb(tool, 7000)).allowed).toBe(true);
  });

  it('a Baseline Pass goes to the default allow', () => {
    const b = cnp('b', 'Baseline', 1, subjectProd, { ingress: [{ action: 'Pass', from: [fromNs('dev')] }] });
    const d = cnp('d', 'Baseline', 2, subjectProd, { ingress: [{ action: 'Deny', from: [allNamespaces] }] });
    expect(judge([], [b, d], toDb(tool))).toMatchObject({
      allowed: true,
      ingress: { reason: 'not-isolated' },
    });
    expect(judge([], [b, d], toDb(mon)).ingress.reason).toBe('baseline-deny');
  });

  it('ANP and admin-tier CNP share one priority order', () => {
    const a = anp('anp', 20, subjectDb, { ingress: [rule('Allow', [fromNs('dev')])] });
    const c = cnp('cnp', 'Admin', 10, subjectDb, { ingress: [{ action: 'Deny', from: [fromNs('dev')] }] });
    expect(judge([], [a, c], toDb(tool)).ingress.rules[0]?.kind).toBe('ClusterNetworkPolicy');
  });
});

describe('validation', () => {
  const compile = (cnps: unknown[]) => compilePolicyIndex(base([], cnps));
  const errors = (cnps: unknown[]) =>
    compile(cnps)
      .issues.filter((i) => i.severity === 'error')
      .map((i) => `${i.code} ${i.object} ${i.field}`);

  it('rejects invalid policies naming policy and field, and keeps the valid ones', () => {
    const good = anp('good', 50, subjectDb, { ingress: [rule('Deny', [fromNs('dev')])] });
    const bad = [
      anp('bad-cidr', 1, subjectProd, { egress: [erule('Allow', [{ networks: ['10.0.0.0/33'] }])] }),
      anp('bad-action', 2, subjectProd, { ingress: [rule('Accept', [fromNs('dev')])] }),
      anp('bad-priority', 1001, subjectProd, { ingress: [rule('Allow', [fromNs('dev')])] }),
      anp('bad-range', 3, subjectProd, {
        ingress: [rule('Allow', [fromNs('dev')], { ports: [{ portRange: { start: 9000, end: 8000 } }] })],
      }),
      banp(subjectProd, { ingress: [rule('Allow', [fromNs('dev')])] }, 'not-default'),
      cnp('bad-tier', 'Middle', 1, subjectProd, { ingress: [{ action: 'Accept', from: [fromNs('dev')] }] }),
      cnp('cnp-range', 'Admin', 1, subjectProd, {
        ingress: [
          {
            action: 'Deny',
            from: [fromNs('dev')],
            protocols: [{ udp: { destinationPort: { range: { start: 53, end: 53 } } } }],
          },
        ],
      }),
      anp('no-subject', 4, undefined, { ingress: [rule('Allow', [fromNs('dev')])] }),
      anp('no-from', 5, subjectProd, { ingress: [{ action: 'Allow' }] }),
      anp('two-peers', 6, subjectProd, {
        ingress: [rule('Allow', [{ namespaces: {}, pods: { namespaceSelector: {}, podSelector: {} } }])],
      }),
    ];
    expect(errors([...bad, good])).toEqual([
      'POLICY_INVALID_CIDR AdminNetworkPolicy/bad-cidr spec.egress[0].to[0].networks[0]',
      'POLICY_INVALID_ACTION AdminNetworkPolicy/bad-action spec.ingress[0].action',
      'POLICY_INVALID_PRIORITY AdminNetworkPolicy/bad-priority spec.priority',
      'POLICY_INVALID_PORT_RANGE AdminNetworkPolicy/bad-range spec.ingress[0].ports[0].portRange.end',
      'POLICY_BASELINE_NOT_DEFAULT BaselineAdminNetworkPolicy/not-default metadata.name',
      'POLICY_INVALID_TIER ClusterNetworkPolicy/bad-tier spec.tier',
      'POLICY_INVALID_PORT_RANGE ClusterNetworkPolicy/cnp-range spec.ingress[0].protocols[0].udp.destinationPort.range.end',
      'POLICY_INVALID_SUBJECT AdminNetworkPolicy/no-subject spec.subject',
      'POLICY_MISSING_FIELD AdminNetworkPolicy/no-from spec.ingress[0].from',
      'POLICY_INVALID_PEER AdminNetworkPolicy/two-peers spec.ingress[0].from[0]',
    ]);
    const r = compile([...bad, good]);
    const idx = r.index as PolicyIndex;
    expect(idx.adminPolicies.map((p) => p.name)).toEqual(['good']);
    expect(idx.baselinePolicies).toEqual([]);
    expect(idx.evaluate(toDb(tool)).ingress.reason).toBe('admin-deny');
    const msg = r.issues.find((i) => i.code === 'POLICY_INVALID_PORT_RANGE')?.message;
    expect(msg).toBe('end 8000 is less than start 9000');
  });

  it('warns about what cannot be judged or is ambiguous, and fails closed on unknown peers', () => {
    const dns = anp('dns', 10, subjectProd, {
      egress: [erule('Allow', [{ domainNames: ['*.example.com'] }])],
    });
    const unknownDeny = anp('future', 20, subjectDb, { ingress: [rule('Deny', [{ serviceAccounts: {} }])] });
    const unknownAllow = anp('future-allow', 5, subjectDb, {
      ingress: [rule('Allow', [{ serviceAccounts: {} }])],
    });
    const same = anp('same', 10, subjectDb, { ingress: [rule('Allow', [fromNs('ops')])] });
    const r = compile([
      dns,
      unknownDeny,
      unknownAllow,
      same,
      {
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'ExternalNetworkSet',
        metadata: { name: 'x' },
      },
    ]);
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(r.issues.map((i) => `${i.code} ${i.object}`).sort()).toEqual([
      'POLICY_SAME_PRIORITY AdminNetworkPolicy/same',
      'POLICY_UNKNOWN_PEER AdminNetworkPolicy/future',
      'POLICY_UNKNOWN_PEER AdminNetworkPolicy/future-allow',
      'POLICY_UNSUPPORTED_KIND ExternalNetworkSet/x',
      'POLICY_UNSUPPORTED_PEER AdminNetworkPolicy/dns',
    ]);
    const idx = r.index as PolicyIndex;
    // The unknown-peer Allow matches nothing; the unknown-peer Deny denies everything to db.
    const v = idx.evaluate(toDb(web));
    expect(v.ingress).toMatchObject({ allowed: false, reason: 'admin-deny', rules: [{ policy: 'future' }] });
    expect(idx.evaluate(flow(podRef(web), ipRef('93.184.216.34'), 'TCP', 443)).allowed).toBe(true);
  });
});

describe('explain', () => {
  it('lists the tier rules looked at and which tier decided', () => {
    const pass = anp('pass-dev', 1, subjectDb, {
      ingress: [rule('Pass', [fromNs('dev')], { name: 'hand to app teams' })],
    });
    const b = banp(subjectProd, { ingress: [rule('Deny', [fromNs('dev')])] });
    const idx = index(
      [],
      [anp('other', 0, subjectDb, { ingress: [rule('Deny', [fromNs('ops')])] }), pass, b],
    );
    const e = idx.explain(toDb(tool));
    expect(e.verdict).toEqual(idx.evaluate(toDb(tool)));
    expect(e.ingress.decidedBy).toBe('baseline');
    expect(
      e.ingress.tierRules?.map((r) => `${r.kind}/${r.policy}[${r.rule}] ${r.action} ${r.matched}`),
    ).toEqual([
      'AdminNetworkPolicy/other[0] Deny false',
      'AdminNetworkPolicy/pass-dev[0] Pass true',
      'BaselineAdminNetworkPolicy/default[0] Deny true',
    ]);
    expect(e.ingress.tierRules?.[0]?.why).toContain("namespace 'dev' labels do not match");
    expect(e.ingress.reason).toBe(
      "passed by AdminNetworkPolicy pass-dev ingress[0] 'hand to app teams' (Pass, priority 1); no NetworkPolicy isolates this pod; denied by baseline tier: BaselineAdminNetworkPolicy default ingress[0] (Deny)",
    );
    expect(e.egress.decidedBy).toBe('default');
    // Without cluster-scoped policies the explanation keeps its NetworkPolicy-only shape.
    expect(index([], []).explain(toDb(tool)).ingress.tierRules).toBeUndefined();
  });

  it('rules() lists the tier rules with their kind', () => {
    const idx = index([], [anp('a', 1, subjectDb, { ingress: [rule('Deny', [fromNs('dev')])] })]);
    expect(idx.rules()).toEqual([
      {
        policy: 'a',
        kind: 'AdminNetworkPolicy',
        direction: 'ingress',
        rule: 0,
        summary: 'Deny from namespaces{kubernetes.io/metadata.name=dev} ports all ports',
      },
    ]);
  });
});

// ---- properties ---------------------------------------------------------------------------------

// Namespace selectors on namespace label keys and pod selectors on pod label keys (those of
// arbitrary.ts), mostly empty or one label, so subjects and peers select some pods and not others.
const nsSelArb = fc.oneof(
  fc.constant({}),
  fc.record({ matchLabels: fc.record({ team: fc.constantFrom('x', 'y') }) }),
  fc.record({ matchLabels: fc.record({ env: fc.constantFrom('p', 'd') }) }),
);
const podSelArb = fc.oneof(
  fc.constant({}),
  fc.record({ matchLabels: fc.record({ app: fc.constantFrom('web', 'db', 'api') }) }),
  fc.record({ matchLabels: fc.record({ tier: fc.constantFrom('f', 'b') }) }),
);
const podsArb = fc.record({ namespaceSelector: nsSelArb, podSelector: podSelArb });
const ingressPeerArb = fc.oneof(fc.record({ namespaces: nsSelArb }), fc.record({ pods: podsArb }));
const egressPeerArb = fc.oneof(
  fc.record({ namespaces: nsSelArb }),
  fc.record({ pods: podsArb }),
  fc.record({
    networks: fc.uniqueArray(
      fc.constantFrom('10.0.0.0/30', '10.0.0.3/32', '192.168.0.0/24', 'fd00::/120', '0.0.0.0/0'),
      { minLength: 1, maxLength: 2 },
    ),
  }),
  fc.record({ nodes: fc.constantFrom({}, { matchLabels: { 'kubernetes.io/hostname': 'n1' } }) }),
);
const v1PortArb = fc.oneof(
  fc.record({
    portNumber: fc.record({ protocol: fc.constantFrom('TCP', 'UDP'), port: fc.constantFrom(53, 80, 8080) }),
  }),
  fc.record({
    portRange: fc.record({
      protocol: fc.constantFrom('TCP', 'UDP'),
      start: fc.constantFrom(53, 80),
      end: fc.constantFrom(80, 8080),
    }),
  }),
  fc.record({ namedPort: fc.constantFrom('http', 'dns') }),
);
const adminRuleArb = (dir: 'ingress' | 'egress', actions: string[]) =>
  fc
    .record({
      action: fc.constantFrom(...actions),
      peers: fc.array(dir === 'ingress' ? ingressPeerArb : egressPeerArb, { minLength: 1, maxLength: 2 }),
      ports: fc.option(fc.array(v1PortArb, { minLength: 1, maxLength: 2 }), { nil: undefined }),
    })
    .map((r) => {
      const ports =
        r.ports && !r.peers.some((p) => 'networks' in p || 'nodes' in p) ? { ports: r.ports } : {};
      return { action: r.action, [dir === 'ingress' ? 'from' : 'to']: r.peers, ...ports };
    });
const subjectArb = fc.oneof(fc.record({ namespaces: nsSelArb }), fc.record({ pods: podsArb }));
const tieredArb = (kind: 'AdminNetworkPolicy' | 'BaselineAdminNetworkPolicy', actions: string[]) =>
  fc
    .record({
      priority: fc.integer({ min: 1, max: 5 }),
      subject: subjectArb,
      ingress: fc.array(adminRuleArb('ingress', actions), { maxLength: 3 }),
      egress: fc.array(adminRuleArb('egress', actions), { maxLength: 3 }),
    })
    .map((s) => ({ kind, s }));
const clusterPoliciesArb = fc
  .tuple(
    fc.array(tieredArb('AdminNetworkPolicy', ['Allow', 'Deny', 'Pass']), { maxLength: 3 }),
    fc.option(tieredArb('BaselineAdminNetworkPolicy', ['Allow', 'Deny']), { nil: undefined }),
  )
  .map(([anps, b]) => [
    ...anps.map((a, i) =>
      anp(`anp${i}`, a.s.priority, a.s.subject, { ingress: a.s.ingress, egress: a.s.egress }),
    ),
    ...(b ? [banp(b.s.subject, { ingress: b.s.ingress, egress: b.s.egress })] : []),
  ]);
const optionsArb = fc.record({
  ipBlockMatchesPods: fc.boolean(),
  hostNetwork: fc.constantFrom<PolicyOptions['hostNetwork']>('node', 'pod'),
});
const flowsArb = fc.array(flowSpecArb, { minLength: 1, maxLength: 40 });
const RUNS = { numRuns: 200 };
const compileWith = (c: ClusterModel, cnps: unknown[], o?: PolicyOptions) =>
  compilePolicyIndex({ ...c, clusterNetworkPolicies: cnps }, o).index as PolicyIndex;

describe('properties', () => {
  it('the generator produces valid cluster policies', () => {
    fc.assert(
      fc.property(clusterArb, clusterPoliciesArb, (c, cnps) => {
        expect(
          compilePolicyIndex({ ...c, clusterNetworkPolicies: cnps }).issues.filter(
            (i) => i.severity === 'error',
          ),
        ).toEqual([]);
      }),
      RUNS,
    );
  });

  it('cluster policies whose subject selects no pod leave every verdict equal to the NetworkPolicy verdict', () => {
    fc.assert(
      fc.property(clusterArb, clusterPoliciesArb, optionsArb, flowsArb, (c, cnps, o, flows) => {
        const nobody = cnps.map((p) => ({
          ...p,
          spec: { ...p.spec, subject: { namespaces: nsSel({ nowhere: 'true' }) } },
        }));
        const plain = compileWith(c, [], o);
        const tiered = compileWith(c, nobody, o);
        for (const f of flows) {
          const q = toQuery(c, f);
          expect(tiered.evaluate(q)).toEqual(plain.evaluate(q));
        }
      }),
      RUNS,
    );
  });

  it('an admin Pass-all alone leaves every allowed/denied equal to the NetworkPolicy verdict', () => {
    const passAll = anp(
      'pass-all',
      0,
      { namespaces: {} },
      {
        ingress: [rule('Pass', [allNamespaces])],
        egress: [erule('Pass', [allNamespaces, { networks: ['0.0.0.0/0', '::/0'] }])],
      },
    );
    fc.assert(
      fc.property(clusterArb, optionsArb, flowsArb, (c, o, flows) => {
        const plain = compileWith(c, [], o);
        const passed = compileWith(c, [passAll], o);
        for (const f of flows) {
          const q = toQuery(c, f);
          expect(passed.evaluate(q).allowed).toBe(plain.evaluate(q).allowed);
        }
      }),
      RUNS,
    );
  });

  it('an Allow-all ANP of strictly higher precedence never turns an allowed flow denied, and allows pod-to-pod', () => {
    const allowAll = anp(
      'allow-all',
      0,
      { namespaces: {} },
      {
        ingress: [rule('Allow', [allNamespaces])],
        egress: [erule('Allow', [{ networks: ['0.0.0.0/0', '::/0'] }])],
      },
    );
    fc.assert(
      fc.property(clusterArb, clusterPoliciesArb, optionsArb, flowsArb, (c, cnps, o, flows) => {
        const without = compileWith(c, cnps, o);
        const withAll = compileWith(c, [...cnps, allowAll], o);
        for (const f of flows) {
          const q = toQuery(c, f);
          const before = without.evaluate(q);
          const after = withAll.evaluate(q);
          if (before.allowed) expect(after.allowed).toBe(true);
          const isPod = (p: PodModel | undefined) =>
            p !== undefined && (!p.hostNetwork || o.hostNetwork === 'pod');
          if (isPod(q.src.pod) && isPod(q.dst.pod) && q.dst.ip !== 'bogus') expect(after.allowed).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('with cluster policies the cached verdict equals the direct evaluation', () => {
    fc.assert(
      fc.property(
        twinClusterArb,
        clusterPoliciesArb,
        optionsArb,
        fc.array(flowSpecArb, { minLength: 20, maxLength: 100 }),
        (c, cnps, o, flows) => {
          const cached = compileWith(c, cnps, o);
          const fresh = compileWith(c, cnps, o);
          for (const f of flows) {
            const q = toQuery(c, f);
            expect(cached.evaluate(q)).toEqual(fresh.evaluateUncached(q));
          }
          for (const f of flows) {
            const q = toQuery(c, f);
            expect(cached.evaluate(q)).toEqual(fresh.evaluateUncached(q));
          }
        },
      ),
      RUNS,
    );
  });
});

// ---- the CLI ------------------------------------------------------------------------------------

describe('check (cli) with an AdminNetworkPolicy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'netpol-anp-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives the tiered verdicts for flows in a snapshot', async () => {
    const policies = join(dir, 'admin.yaml');
    writeFileSync(
      policies,
      `apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata:
  name: isolate-other
spec:
  priority: 10
  subject:
    namespaces:
      matchLabels:
        kubernetes.io/metadata.name: default
  ingress:
  - name: no-other
    action: Deny
    from:
    - namespaces:
        matchLabels:
          kubernetes.io/metadata.name: other
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata:
  name: default
spec:
  subject:
    namespaces:
      matchLabels:
        kubernetes.io/metadata.name: default
  ingress:
  - action: Deny
    from:
    - namespaces:
        matchLabels:
          project: myproject
`,
    );
    // docs-cluster.yaml: default/db-0 10.244.1.10, default frontend 10.244.1.11, myproject client
    // 10.244.2.20, other/frontend 10.244.2.30; no NetworkPolicy.
    const flows = [
      ['10.244.2.30', '10.244.1.10'],
      ['10.244.2.20', '10.244.1.10'],
      ['10.244.1.11', '10.244.1.10'],
    ].map(([s, d], i) =>
      JSON.stringify({
        v: 1,
        start: 1_763_884_800_000 + i,
        end: 1_763_884_800_100 + i,
        proto: 'TCP',
        src: { ip: s, port: 40000 + i },
        dst: { ip: d, port: 6379 },
        packets: { fwd: 3, rev: 2 },
        bytes: { fwd: 180, rev: 120 },
        state: 'established',
        observer: { source: 'conntrack', node: 'kind-worker' },
      }),
    );
    const r = await runCli(
      [
        'check',
        '--cluster',
        resolve(ROOT, 'test/fixtures/clusters/docs-cluster.yaml'),
        '--cluster',
        policies,
      ],
      { input: `${flows.join('\n')}\n` },
    );
    expect(r.stderr).not.toMatch(/error /);
    expect(r.code).toBe(0);
    const out = r.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as { verdict: { allowed: boolean; ingress: { reason: string; rules: unknown[] } } },
      );
    expect(out.map((o) => [o.verdict.allowed, o.verdict.ingress.reason])).toEqual([
      [false, 'admin-deny'],
      [false, 'baseline-deny'],
      [true, 'not-isolated'],
    ]);
    expect(out[0]?.verdict.ingress.rules).toEqual([
      {
        policy: 'isolate-other',
        kind: 'AdminNetworkPolicy',
        direction: 'ingress',
        rule: 0,
        action: 'Deny',
        tier: 'Admin',
      },
    ]);
  });
});

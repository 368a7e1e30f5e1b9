import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { MIGRATIONS } from '../schema/migrations.js';
import { ROOT, runCli } from './support/cli.js';

/**
 * whatif and suggest on the shop example (examples/shop/README.md says why each flow is what it is):
 * the built CLI, a real SQLite store written by `audit`, the example's own cluster snapshot.
 */

const capture = join(ROOT, 'examples/shop/capture.pcap');
const cluster = join(ROOT, 'examples/shop/cluster.yaml');
let dir: string;
let db: string;

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'npa-whatif-cli-'));
  db = join(dir, 'shop.db');
  const r = await runCli(['audit', capture, '--cluster', cluster, '--db', db]);
  expect(r.code).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Change = {
  src: string;
  dst: string;
  port: number;
  flows: number;
  before: string;
  after: string;
  rulesBefore: string[];
};
const SHOP_POLICIES = [
  'default-deny-ingress',
  'allow-frontend-to-cart',
  'allow-cart-to-payments',
  'allow-monitoring-scrape',
  'allow-batch-to-cart',
];
const pairs = (list: Change[]) => list.map((c) => `${c.src} -> ${c.dst}:${c.port} ${c.flows}`).sort();

describe('netpol-audit whatif on the shop example', () => {
  it('with no draft replays every recorded flow to the classification it was stored with', async () => {
    const r = await runCli(['whatif', '--db', db, '--cluster', cluster, '--format', 'json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.replayed.flows).toBe(23);
    expect(out.drift).toEqual({ flows: 0, edges: 0 });
    expect(out.notReplayable).toEqual([]);
    expect(out.becomeDenied.length + out.becomeAllowed.length + out.otherChanges.length).toBe(0);
  });

  it('a default deny for shop (ingress and egress) reports exactly the flows it would break', async () => {
    const draft = file(
      'deny.yaml',
      `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-all, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
`,
    );
    const r = await runCli([
      'whatif',
      '--db',
      db,
      '--cluster',
      cluster,
      '--apply',
      draft,
      '--format',
      'json',
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.added).toEqual(['NetworkPolicy/shop/default-deny-all']);
    // shop's pods were not isolated for egress: every flow they start breaks; the ingress side was
    // already isolated by default-deny-ingress and its allow rules, so nothing else changes.
    expect(pairs(out.becomeDenied)).toEqual([
      'shop/cart -> shop/payments:9000 1',
      'shop/frontend -> kube-system/coredns:53 1',
      'shop/frontend -> shop/cart:8080 2',
    ]);
    const cart = out.becomeDenied.find((c: Change) => c.dst === 'shop/payments');
    expect(cart.rulesBefore).toEqual(['NetworkPolicy shop/allow-cart-to-payments ingress[0]']);
    expect(out.becomeAllowed).toEqual([]);
    expect(out.draftRules).toBe(0);
    // The same as a pull-request comment, and as a gate.
    const md = await runCli([
      'whatif',
      '--db',
      db,
      '--cluster',
      cluster,
      '--apply',
      draft,
      '--format',
      'markdown',
    ]);
    expect(md.stdout).toContain('### netpol-audit what-if: ⚠️ breaks recorded traffic');
    expect(md.stdout).toContain('| shop/frontend | shop/cart | TCP/8080 | 2 |');
    const gate = await runCli([
      'whatif',
      '--db',
      db,
      '--cluster',
      cluster,
      '--apply',
      draft,
      '--fail-on-breakage',
    ]);
    expect(gate.code).toBe(1);
    expect(gate.stdout).toContain('4 recorded flow(s) in 3 pair(s) would become denied');
  });

  it('deleting every policy of shop reports the violations and denied attempts that would become allowed', async () => {
    // Deleting default-deny-ingress alone changes nothing: the allow policies still isolate cart and payments.
    const one = await runCli([
      'whatif',
      '--db',
      db,
      '--cluster',
      cluster,
      '--delete',
      'NetworkPolicy/shop/default-deny-ingress',
      '--format',
      'json',
    ]);
    expect(JSON.parse(one.stdout).becomeAllowed).toEqual([]);
    const r = await runCli([
      'whatif',
      '--db',
      db,
      '--cluster',
      cluster,
      ...SHOP_POLICIES.flatMap((n) => ['--delete', `NetworkPolicy/shop/${n}`]),
      '--format',
      'json',
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.deleted).toHaveLength(5);
    expect(out.becomeDenied).toEqual([]);
    expect(out.becomeAllowed.map((c: Change) => `${c.src} -> ${c.dst}:${c.port} ${c.before}`).sort()).toEqual(
      [
        'dev/debug-shell -> shop/cart:5432 denied-attempt',
        'dev/debug-shell -> shop/cart:8080 denied-but-observed',
        'dev/debug-shell -> shop/payments:9000 denied-but-observed',
        'shop/frontend -> shop/payments:9000 denied-attempt',
      ],
    );
  });

  it('finds draft rules no recorded traffic uses, and rules shadowed by an admin-tier Deny', async () => {
    const draft = file(
      'tiers.yaml',
      `apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: no-dev-into-shop}
spec:
  priority: 10
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: shop}}}
  ingress:
    - name: deny-dev
      action: Deny
      from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: dev}}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-debug, namespace: shop}
spec:
  podSelector: {matchLabels: {app: payments}}
  policyTypes: [Ingress]
  ingress:
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: dev}}}]
      ports: [{protocol: TCP, port: 9000}]
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: nowhere}}}]
`,
    );
    const r = await runCli([
      'whatif',
      '--db',
      db,
      '--cluster',
      cluster,
      '--apply',
      draft,
      '--format',
      'json',
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.draftRules).toBe(3);
    expect(out.shadowedRules).toEqual([
      expect.objectContaining({
        policy: 'NetworkPolicy shop/allow-debug',
        direction: 'ingress',
        rule: 0,
        flows: 1,
        by: ['AdminNetworkPolicy no-dev-into-shop ingress[0] Deny'],
      }),
    ]);
    expect(out.unusedRules.map((u: { policy: string; rule: number }) => `${u.policy}[${u.rule}]`)).toEqual([
      'NetworkPolicy shop/allow-debug[1]',
    ]);
    // The admin Deny turns dev's violations into flows the policies deny: nothing loosens.
    expect(out.becomeAllowed).toEqual([]);
  });

  it('refuses an unknown --delete and a draft that is not a policy, with their codes', async () => {
    const del = await runCli([
      'whatif',
      '--db',
      db,
      '--cluster',
      cluster,
      '--delete',
      'NetworkPolicy/shop/nope',
    ]);
    expect(del.code).toBe(3);
    expect(del.stderr).toContain('WHATIF_DELETE_UNKNOWN');
    const pod = file('pod.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\n');
    const bad = await runCli(['whatif', '--db', db, '--cluster', cluster, '--apply', pod]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('WHATIF_DRAFT_INVALID');
    expect(bad.stderr).toContain('pod.yaml');
    expect(bad.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});

describe('netpol-audit suggest on the shop example', () => {
  let yamlText = '';

  it('writes policies that, applied, break nothing and still deny the violations', async () => {
    const out = join(dir, 'suggested.yaml');
    const r = await runCli(['suggest', '--db', db, '--cluster', cluster, '--output', out]);
    expect(r.code).toBe(0);
    yamlText = (await import('node:fs')).readFileSync(out, 'utf8');
    const docs = parseAllDocuments(yamlText).map((d) => d.toJS());
    expect(docs.map((d) => `${d.metadata.namespace}/${d.metadata.name}`).sort()).toEqual([
      'dev/netpol-audit-debug-shell',
      'kube-system/netpol-audit-coredns',
      'monitoring/netpol-audit-prometheus',
      'shop/netpol-audit-cart',
      'shop/netpol-audit-frontend',
      'shop/netpol-audit-payments',
    ]);
    // Replayed with whatif: nothing breaks, nothing loosens.
    const gate = await runCli([
      'whatif',
      '--db',
      db,
      '--cluster',
      cluster,
      '--apply',
      out,
      '--fail-on-breakage',
      '--format',
      'json',
    ]);
    expect(gate.code).toBe(0);
    const g = JSON.parse(gate.stdout);
    expect(g.becomeDenied).toEqual([]);
    expect(g.becomeAllowed).toEqual([]);
    // Alone (every policy in force deleted), they still deny dev/debug-shell's violations.
    const alone = await runCli([
      'whatif',
      '--db',
      db,
      '--cluster',
      cluster,
      '--apply',
      out,
      ...[
        'default-deny-ingress',
        'allow-frontend-to-cart',
        'allow-cart-to-payments',
        'allow-monitoring-scrape',
        'allow-batch-to-cart',
      ].flatMap((n) => ['--delete', `NetworkPolicy/shop/${n}`]),
      '--format',
      'json',
    ]);
    const a = JSON.parse(alone.stdout);
    expect(a.becomeDenied).toEqual([]);
    expect(a.becomeAllowed).toEqual([]);
    expect(r.stderr).toContain('0 pairs would become denied');
  });

  it('uses stable selectors, named ports, DNS egress, and says which flows justify each rule', () => {
    const docs = parseAllDocuments(yamlText).map((d) => d.toJS());
    const cart = docs.find((d) => d.metadata.name === 'netpol-audit-cart');
    expect(cart.spec.podSelector).toEqual({ matchLabels: { app: 'cart' } });
    expect(cart.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(JSON.stringify(docs)).not.toContain('pod-template-hash');
    // frontend -> cart on 8080; prometheus -> cart on its declared port name.
    const fromFrontend = cart.spec.ingress.find(
      (r: { from: { podSelector?: { matchLabels: { app: string } } }[] }) =>
        r.from.some((p) => p.podSelector?.matchLabels.app === 'frontend'),
    );
    expect(fromFrontend.ports).toHaveLength(1);
    const prom = cart.spec.ingress.find((r: { from: { namespaceSelector?: unknown }[] }) =>
      r.from.some((p) => p.namespaceSelector),
    );
    expect(prom.from[0].namespaceSelector).toEqual({
      matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' },
    });
    expect(prom.ports).toEqual([{ protocol: 'TCP', port: 'metrics' }]);
    const dns = cart.spec.egress.find((r: { ports?: { port: number }[] }) =>
      r.ports?.some((p) => p.port === 53),
    );
    expect(dns.to[0].podSelector).toEqual({ matchLabels: { 'k8s-app': 'kube-dns' } });
    expect(yamlText).toMatch(/# shop\/frontend TCP\/8080: 2 flow\(s\), last 2026-/);
    // The violations' source gets nothing beyond DNS.
    const debug = docs.find((d) => d.metadata.name === 'netpol-audit-debug-shell');
    expect(debug.spec.ingress).toEqual([]);
    expect(debug.spec.egress).toHaveLength(1);
    expect(parseYaml(yamlText.split('---\n')[0]!).kind).toBe('NetworkPolicy');
  });
});

describe('whatif on a store without replay data', () => {
  it('says which days it cannot replay instead of calling them unaffected', async () => {
    const old = join(dir, 'old.db');
    const r = await runCli(['audit', capture, '--cluster', cluster, '--db', old]);
    expect(r.code).toBe(0);
    // As a store written before migration 6 would be: the same aggregates, no replay rows.
    const Database = (await import('better-sqlite3')).default;
    const d = new Database(old);
    d.exec('DELETE FROM replay_edges_daily; DELETE FROM replay_skipped_daily; DELETE FROM replay_identities');
    d.close();
    expect(MIGRATIONS.at(-1)!.name).toBe('replay edges');
    const w = await runCli(['whatif', '--db', old, '--cluster', cluster, '--format', 'json']);
    expect(w.code).toBe(4);
    const out = JSON.parse(w.stdout);
    expect(out.daysWithoutReplay).toEqual([{ day: Date.UTC(2026, 10, 23), flows: 23 }]);
    expect(w.stderr).toContain('WHATIF_NOT_REPLAYABLE');
  });
});

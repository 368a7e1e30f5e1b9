import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../test/support/cli.js';
import { coverageOf } from './coverage.js';
import { Inventory, parseSnapshot } from './inventory/index.js';
import { compilePolicyIndex } from './policy/index.js';

const shop = readFileSync(join(ROOT, 'examples/shop/cluster.yaml'), 'utf8');

function coverage(yaml: string, options?: { hostNetwork: 'node' | 'pod' }) {
  const { cluster } = parseSnapshot([{ source: 'cluster.yaml', text: yaml }]);
  return coverageOf(
    new Inventory(cluster),
    compilePolicyIndex(cluster, options).index,
    Date.UTC(2026, 10, 23, 7),
  );
}

describe('isolation coverage', () => {
  it('asks the engine which workloads a NetworkPolicy isolates, per direction', () => {
    const c = coverage(shop);
    expect(c.day).toBe(Date.UTC(2026, 10, 23));
    const byName = Object.fromEntries(c.workloads.map((w) => [w.workload, w]));
    // default-deny-ingress selects every shop pod; nothing isolates egress; other namespaces have no policy.
    for (const w of ['shop/frontend', 'shop/cart', 'shop/payments'])
      expect(byName[w]).toMatchObject({ pods: 1, ingressIsolated: 1, egressIsolated: 0 });
    for (const w of ['dev/debug-shell', 'monitoring/prometheus', 'kube-system/coredns'])
      expect(byName[w]).toMatchObject({ pods: 1, ingressIsolated: 0, egressIsolated: 0 });
  });

  it('a default deny is an empty podSelector with the direction in its policyTypes and no rule for it', () => {
    const ns = (yaml: string) => Object.fromEntries(coverage(yaml).namespaces.map((n) => [n.namespace, n]));
    expect(ns(shop).shop).toMatchObject({
      namespace: 'shop',
      defaultDenyIngress: true,
      defaultDenyEgress: false,
    });
    expect(ns(shop).dev).toMatchObject({
      namespace: 'dev',
      defaultDenyIngress: false,
      defaultDenyEgress: false,
    });
    // allow-monitoring-scrape also selects every pod, but has an ingress rule: not a default deny.
    const withoutDeny = shop
      .replace(/name: default-deny-ingress/, 'name: default-deny-ingress-gone')
      .replace(/(name: default-deny-ingress-gone[\s\S]*?policyTypes:\n\s*- Ingress)/, (m) =>
        m.replace('- Ingress', '- Egress'),
      );
    expect(withoutDeny).not.toBe(shop);
    expect(ns(withoutDeny).shop).toMatchObject({
      namespace: 'shop',
      defaultDenyIngress: false,
      defaultDenyEgress: true,
    });
    // A policy the engine rejects is not in force, so it is no default deny either.
    const invalid = shop.replace(
      /(name: default-deny-ingress[\s\S]*?policyTypes:\n\s*- )Ingress/,
      '$1Sideways',
    );
    expect(invalid).not.toBe(shop);
    expect(ns(invalid).shop!.defaultDenyIngress).toBe(false);
  });

  it('records who each workload and namespace was: shared labels, named ports, namespace labels', () => {
    const c = coverage(shop);
    const cart = c.workloads.find((w) => w.workload === 'shop/cart')!;
    expect(cart.labels).toMatchObject({ app: 'cart' });
    expect(cart.namedPorts).toContainEqual({ name: 'http', port: 8080, protocol: 'TCP' });
    expect(c.namespaces.find((n) => n.namespace === 'monitoring')!.labels).toMatchObject({
      'kubernetes.io/metadata.name': 'monitoring',
    });
  });

  it('leaves out hostNetwork pods unless they count as pods, and pods without an address', () => {
    const host = shop.replace(/(name: coredns[\s\S]*?spec:\n)/, '$1    hostNetwork: true\n');
    expect(host).not.toBe(shop);
    expect(coverage(host).workloads.map((w) => w.workload)).not.toContain('kube-system/coredns');
    expect(coverage(host, { hostNetwork: 'pod' }).workloads.map((w) => w.workload)).toContain(
      'kube-system/coredns',
    );
  });
});

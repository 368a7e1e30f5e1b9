import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../test/support/cli.js';
import { INVENTORY_ISSUE, Inventory, normalizeIp } from './index.js';
import type { ClusterModel, PodModel } from './model.js';
import { loadSnapshotFiles } from './snapshot.js';

let shop: Inventory;
beforeAll(async () => {
  const r = await loadSnapshotFiles([resolve(ROOT, 'test/fixtures/clusters/shop.yaml')]);
  shop = new Inventory(r.cluster);
});

function pod(p: Partial<PodModel> & { name: string; ips: string[] }): PodModel {
  return { namespace: 'ns', labels: {}, hostNetwork: false, phase: 'Running', ports: [], ...p };
}

function cluster(pods: PodModel[]): ClusterModel {
  return { namespaces: [], pods, nodes: [], services: [], endpointSlices: [], networkPolicies: [] };
}

describe('normalizeIp', () => {
  it('canonicalises IPv6 and unwraps IPv4-mapped IPv6', () => {
    expect(normalizeIp('FD00:0010:0244:0000:0000:0000:0000:000A')).toBe('fd00:10:244::a');
    expect(normalizeIp('::ffff:10.244.1.20')).toBe('10.244.1.20');
    expect(normalizeIp('10.244.1.20')).toBe('10.244.1.20');
    expect(normalizeIp('not-an-ip')).toBeUndefined();
  });
});

describe('Inventory.resolve', () => {
  it('finds pods, nodes and ClusterIPs by any textual form of the address', () => {
    expect(shop.resolve('10.244.1.20').pod?.name).toBe('cart-0');
    expect(shop.resolve('::ffff:10.244.1.20').pod?.name).toBe('cart-0');
    expect(shop.resolve('fd00:10:244:0:0:0:0:a').pod?.name).toBe('web-6d4cf56db6-h8k2n');
    expect(shop.resolve('fd00:10:244:0:0:0:0:a').ip).toBe('fd00:10:244::a');
    expect(shop.resolve('192.168.10.12').node?.name).toBe('node-b');
    expect(shop.resolve('10.96.20.20').service?.name).toBe('cart');
    expect(shop.resolve('FD00:10:96::A10').service?.name).toBe('web');
    const nobody = shop.resolve('8.8.8.8');
    expect(nobody).toEqual({ ip: '8.8.8.8' });
  });

  it('names the node whose podCIDR holds an address no pod holds', () => {
    expect(shop.resolve('10.244.1.99').podCidrOf?.name).toBe('node-b');
    expect(shop.resolve('fd00:10:244:1::99').podCidrOf?.name).toBe('node-b');
    expect(shop.resolve('10.244.0.200').podCidrOf?.name).toBe('node-a');
    // A live pod's address, and an address outside every podCIDR, have no such mark.
    expect(shop.resolve('10.244.1.20').podCidrOf).toBeUndefined();
    expect(shop.resolve('10.244.2.1').podCidrOf).toBeUndefined();
  });

  it('gives an address reused after a Succeeded pod to the live pod', () => {
    // report-… (Succeeded) and catalog-… (Running) both list 10.244.1.30.
    expect(shop.resolve('10.244.1.30').pod?.name).toBe('catalog-84b7d9c6f-p2x7v');
    expect(shop.issues).toEqual([]);
  });

  it('does not let a hostNetwork pod own its node address, but lists it as a candidate', () => {
    const r = shop.resolve('192.168.10.11');
    expect(r.pod).toBeUndefined();
    expect(r.node?.name).toBe('node-a');
    expect(r.hostNetworkPods?.map((p) => p.name)).toEqual(['kube-proxy-8xk2m']);
  });

  it('prefers the Running pod when two live pods claim one address, and reports it', () => {
    const inv = new Inventory(
      cluster([
        pod({ name: 'old', ips: ['10.0.0.9'], phase: 'Pending' }),
        pod({ name: 'new', ips: ['10.0.0.9'], phase: 'Running' }),
        pod({ name: 'gone', ips: ['10.0.0.9'], phase: 'Failed' }),
      ]),
    );
    expect(inv.resolve('10.0.0.9').pod?.name).toBe('new');
    expect(inv.issues).toHaveLength(1);
    expect(inv.issues[0]).toMatchObject({ code: INVENTORY_ISSUE.duplicateIp, object: 'ns/old' });
    expect(inv.issues[0]!.message).toContain('ns/new');
  });

  it('keeps the first claimant when neither pod is Running', () => {
    const inv = new Inventory(
      cluster([
        pod({ name: 'a', ips: ['10.0.0.9'], phase: 'Pending' }),
        pod({ name: 'b', ips: ['10.0.0.9'], phase: 'Unknown' }),
      ]),
    );
    expect(inv.resolve('10.0.0.9').pod?.name).toBe('a');
    expect(inv.issues[0]).toMatchObject({ object: 'ns/b' });
  });
});

describe('DNS-style names', () => {
  it('names pods, services and nodes as cluster DNS does', () => {
    expect(shop.dnsName(shop.resolve('10.244.1.20'))).toBe('10-244-1-20.shop.pod.cluster.local');
    expect(shop.dnsName(shop.resolve('fd00:10:244::a'))).toBe('fd00-10-244--a.shop.pod.cluster.local');
    expect(shop.dnsName(shop.resolve('10.96.0.10'))).toBe('kube-dns.kube-system.svc.cluster.local');
    expect(shop.dnsName(shop.resolve('192.168.10.11'))).toBe('node-a');
    expect(shop.dnsName(shop.resolve('8.8.8.8'))).toBeUndefined();
  });

  it('uses the configured cluster domain', () => {
    const inv = new Inventory(shop.cluster, { clusterDomain: 'corp.example.' });
    expect(inv.dnsName(inv.resolve('10.96.20.20'))).toBe('cart.shop.svc.corp.example');
    expect(inv.podDnsName('10.244.1.20', 'shop')).toBe('10-244-1-20.shop.pod.corp.example');
  });
});

describe('Service backends', () => {
  it('takes ready endpoints from EndpointSlices, mapping the service port by name', () => {
    const payments = shop.service('payments/payments')!;
    const port = shop.servicePort(payments, 443, 'TCP')!;
    // payments-api-1 is not ready in the slice; the slice's https port is 8443.
    expect(shop.backends(payments, port)).toEqual([
      expect.objectContaining({
        podRef: 'payments/payments-api-0',
        ip: '10.244.1.50',
        port: 8443,
        from: 'endpointslice',
      }),
    ]);
    const dns = shop.service('kube-system/kube-dns')!;
    const udp = shop.backends(dns, shop.servicePort(dns, 53, 'UDP')!);
    expect(udp.map((b) => [b.podRef, b.port])).toEqual([['kube-system/coredns-7db6d8ff4d-4bq9k', 53]]);
    expect(shop.servicePort(dns, 53, 'SCTP')).toBeUndefined();
  });

  it('treats an endpoint without a ready condition as ready and an unnamed port as matching', () => {
    const cart = shop.service('shop/cart')!;
    const b = shop.backends(cart, shop.servicePort(cart, 80, 'TCP')!);
    expect(b.map((x) => [x.podRef, x.ip, x.port])).toEqual([
      ['shop/cart-0', '10.244.1.20', 8080],
      ['shop/cart-1', '10.244.0.21', 8080],
    ]);
  });

  it('falls back to the selector over Running pods, resolving a named targetPort per pod', () => {
    const web = shop.service('shop/web')!;
    const port = shop.servicePort(web, 80, 'TCP')!;
    expect(port.targetPort).toBe('http');
    expect(shop.backends(web, port, 4)).toEqual([
      expect.objectContaining({
        podRef: 'shop/web-6d4cf56db6-h8k2n',
        ip: '10.244.0.10',
        port: 8080,
        from: 'selector',
      }),
    ]);
    expect(shop.backends(web, port, 6).map((b) => b.ip)).toEqual(['fd00:10:244::a']);
  });

  it('leaves out selected pods that lack the named port or are not Running', () => {
    const inv = new Inventory({
      ...cluster([
        pod({
          name: 'a',
          ips: ['10.0.0.1'],
          labels: { app: 'x' },
          ports: [{ name: 'web', containerPort: 8081, protocol: 'TCP' }],
        }),
        pod({
          name: 'b',
          ips: ['10.0.0.2'],
          labels: { app: 'x' },
          ports: [{ name: 'web', containerPort: 8082, protocol: 'TCP' }],
        }),
        pod({ name: 'c', ips: ['10.0.0.3'], labels: { app: 'x' }, ports: [] }),
        pod({
          name: 'd',
          ips: ['10.0.0.4'],
          labels: { app: 'x' },
          phase: 'Succeeded',
          ports: [{ name: 'web', containerPort: 1, protocol: 'TCP' }],
        }),
        pod({
          name: 'e',
          ips: ['10.0.0.5'],
          labels: { app: 'y' },
          ports: [{ name: 'web', containerPort: 1, protocol: 'TCP' }],
        }),
      ]),
      services: [
        {
          namespace: 'ns',
          name: 'x',
          type: 'ClusterIP',
          clusterIPs: ['10.96.0.1'],
          selector: { app: 'x' },
          ports: [{ port: 80, targetPort: 'web', protocol: 'TCP' }],
        },
      ],
    });
    const svc = inv.service('ns/x')!;
    // Each pod's own number for the named port: the reason named targetPorts exist.
    expect(inv.backends(svc, svc.ports[0]!).map((b) => [b.podRef, b.port])).toEqual([
      ['ns/a', 8081],
      ['ns/b', 8082],
    ]);
  });

  it('has no backends for a slice without endpoints or a service without selector', () => {
    const legacy = shop.service('shop/legacy')!;
    expect(shop.backends(legacy, legacy.ports[0]!)).toEqual([]);
    const inv = new Inventory({
      ...cluster([pod({ name: 'a', ips: ['10.0.0.1'], labels: { app: 'x' } })]),
      services: [
        {
          namespace: 'ns',
          name: 'manual',
          type: 'ClusterIP',
          clusterIPs: ['10.96.0.2'],
          ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }],
        },
      ],
    });
    const manual = inv.service('ns/manual')!;
    expect(inv.backends(manual, manual.ports[0]!)).toEqual([]);
  });
});

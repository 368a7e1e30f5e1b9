import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../test/support/cli.js';
import { Inventory } from '../inventory/index.js';
import { loadSnapshotFiles } from '../inventory/snapshot.js';
import { compilePolicyIndex } from '../policy/index.js';
import type { PolicyIndexApi } from '../policy/types.js';
import { flow } from './fixtures.js';
import { judgeFlow } from './index.js';

/**
 * The judge with the real policy engine on the shop cluster. Expected verdicts follow from the shop's
 * policies (test/fixtures/clusters/shop.yaml), stated next to each case:
 * - shop: default-deny-ingress; web admits anyone on 8080; cart track=stable admits app=web on 8080;
 *   cart track=canary admits app=web and app=loadtest on its `http` port; catalog admits app=web on
 *   `grpc`; every shop pod admits monitoring/prometheus on any port.
 * - payments: app=payments admits shop/app=cart on `https`; egress only to kube-dns on 53 and to
 *   203.0.113.0/24 on 443.
 */

let inv: Inventory;
let index: PolicyIndexApi;
beforeAll(async () => {
  const snap = await loadSnapshotFiles([resolve(ROOT, 'test/fixtures/clusters/shop.yaml')]);
  inv = new Inventory(snap.cluster);
  const compiled = compilePolicyIndex(snap.cluster);
  expect(compiled.issues.filter((i) => i.severity === 'error')).toEqual([]);
  index = compiled.index;
});

const WEB = '10.244.0.10';
const LOADTEST = '10.244.1.70';
const PROMETHEUS = '10.244.0.60';
const CART0 = '10.244.1.20';
const PAYMENTS0 = '10.244.1.50';

describe('judgeFlow on the shop cluster', () => {
  it('web -> cart Service: both backends admit web', () => {
    const out = judgeFlow(flow({ src: { ip: WEB }, dst: { ip: '10.96.20.20', port: 80 } }), inv, index);
    expect(out.verdict).toMatchObject({ allowed: true, result: 'allowed' });
    expect(out.verdict.backends?.map((b) => [b.pod, b.allowed])).toEqual([
      ['shop/cart-0', true],
      ['shop/cart-1', true],
    ]);
  });

  it('loadtest -> cart Service: only the canary admits it, so ambiguous', () => {
    const out = judgeFlow(flow({ src: { ip: LOADTEST }, dst: { ip: '10.96.20.20', port: 80 } }), inv, index);
    expect(out.verdict).toMatchObject({ allowed: false, result: 'ambiguous' });
    expect(out.verdict.backends?.map((b) => [b.pod, b.allowed])).toEqual([
      ['shop/cart-0', false],
      ['shop/cart-1', true],
    ]);
    expect(out.verdict.ingress.isolatedBy).toContain('shop/default-deny-ingress');
  });

  it('prometheus -> catalog through DNAT: allowed by allow-prometheus; loadtest the same way: denied', () => {
    const nat = { dst: { ip: '10.244.1.30', port: 9090 } };
    const ok = judgeFlow(
      flow({ src: { ip: PROMETHEUS }, dst: { ip: '10.96.30.30', port: 9090 }, nat }),
      inv,
      index,
    );
    expect(ok.verdict.allowed).toBe(true);
    expect(ok.verdict.ingress.rules.map((r) => r.policy)).toContain('shop/allow-prometheus');
    expect(ok.dst).toMatchObject({
      kind: 'pod',
      pod: 'shop/catalog-84b7d9c6f-p2x7v',
      service: 'shop/catalog',
    });
    const no = judgeFlow(
      flow({ src: { ip: LOADTEST }, dst: { ip: '10.96.30.30', port: 9090 }, nat }),
      inv,
      index,
    );
    expect(no.verdict).toMatchObject({ allowed: false, result: 'denied' });
    expect(no.verdict.ingress.reason).toBe('no-rule-matched');
  });

  it('web -> catalog on the named port grpc (9090) is allowed, on 9091 denied', () => {
    const ok = judgeFlow(flow({ src: { ip: WEB }, dst: { ip: '10.244.1.30', port: 9090 } }), inv, index);
    expect(ok.verdict.allowed).toBe(true);
    const no = judgeFlow(flow({ src: { ip: WEB }, dst: { ip: '10.244.1.30', port: 9091 } }), inv, index);
    expect(no.verdict.allowed).toBe(false);
  });

  it('cart -> payments Service: only the ready backend counts, and it admits cart on https', () => {
    const out = judgeFlow(flow({ src: { ip: CART0 }, dst: { ip: '10.96.40.40', port: 443 } }), inv, index);
    expect(out.verdict).toMatchObject({ allowed: true, result: 'allowed' });
    expect(out.verdict.backends).toEqual([{ pod: 'payments/payments-api-0', ip: PAYMENTS0, allowed: true }]);
    const web = judgeFlow(flow({ src: { ip: WEB }, dst: { ip: '10.96.40.40', port: 443 } }), inv, index);
    expect(web.verdict).toMatchObject({ allowed: false, result: 'denied' });
  });

  it('payments egress: DNS through DNAT and the gateway range allowed, anything else denied', () => {
    const dns = judgeFlow(
      flow({
        proto: 'UDP',
        src: { ip: PAYMENTS0, port: 41000 },
        dst: { ip: '10.96.0.10', port: 53 },
        nat: { dst: { ip: '10.244.0.2', port: 53 } },
      }),
      inv,
      index,
    );
    expect(dns.verdict.allowed).toBe(true);
    expect(dns.verdict.egress.rules).toEqual([
      expect.objectContaining({ policy: 'payments/payments-egress', direction: 'egress', rule: 0 }),
    ]);
    expect(dns.dst).toMatchObject({
      pod: 'kube-system/coredns-7db6d8ff4d-4bq9k',
      service: 'kube-system/kube-dns',
    });
    const gw = judgeFlow(flow({ src: { ip: PAYMENTS0 }, dst: { ip: '203.0.113.5', port: 443 } }), inv, index);
    expect(gw.verdict.allowed).toBe(true);
    expect(gw.dst.kind).toBe('external');
    const other = judgeFlow(
      flow({ src: { ip: PAYMENTS0 }, dst: { ip: '198.51.100.1', port: 443 } }),
      inv,
      index,
    );
    expect(other.verdict.allowed).toBe(false);
    expect(other.verdict.egress.reason).toBe('no-rule-matched');
  });

  it('a Service with no ready endpoint: source side only', () => {
    const web = judgeFlow(flow({ src: { ip: WEB }, dst: { ip: '10.96.50.50', port: 80 } }), inv, index);
    expect(web.note).toBe('service-without-endpoints');
    expect(web.verdict).toMatchObject({ allowed: true, backends: [] });
    // payments' egress admits no ClusterIP.
    const pay = judgeFlow(flow({ src: { ip: PAYMENTS0 }, dst: { ip: '10.96.50.50', port: 80 } }), inv, index);
    expect(pay.verdict).toMatchObject({ allowed: false, result: 'denied', backends: [] });
  });

  it("NodePort with SNAT to the pod's own node: ingress sees the node, which is always allowed", () => {
    // "traffic to and from the node where a Pod is running is always allowed" (Kubernetes docs).
    const out = judgeFlow(
      flow({
        src: { ip: '198.51.100.7', port: 55555 },
        dst: { ip: '192.168.10.12', port: 30080 },
        nat: { dst: { ip: CART0, port: 8080 }, src: { ip: '192.168.10.12', port: 62000 } },
      }),
      inv,
      index,
    );
    expect(out.verdict.allowed).toBe(true);
    // Without the SNAT the same client is denied by cart-stable-from-web.
    const direct = judgeFlow(
      flow({ src: { ip: '198.51.100.7' }, dst: { ip: CART0, port: 8080 } }),
      inv,
      index,
    );
    expect(direct.verdict.allowed).toBe(false);
  });

  it('IPv6 and IPv4-mapped addresses resolve to the same pods', () => {
    const v6 = judgeFlow(
      flow({ src: { ip: '2001:db8::5' }, dst: { ip: 'fd00:10:96::a10', port: 80 } }),
      inv,
      index,
    );
    expect(v6.verdict.backends).toEqual([
      { pod: 'shop/web-6d4cf56db6-h8k2n', ip: 'fd00:10:244::a', allowed: true },
    ]);
    const mapped = judgeFlow(
      flow({ src: { ip: '::ffff:10.244.1.70' }, dst: { ip: CART0, port: 8080 } }),
      inv,
      index,
    );
    expect(mapped.src.pod).toBe('shop/loadtest-5f6b8d9c7-k4j3h');
    expect(mapped.verdict.allowed).toBe(false);
  });
});

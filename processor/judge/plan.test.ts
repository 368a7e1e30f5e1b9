import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DirectionVerdictValue, Verdict } from '../../schema/verdict.js';
import { ROOT } from '../../test/support/cli.js';
import { Inventory } from '../inventory/index.js';
import { loadSnapshotFiles } from '../inventory/snapshot.js';
import type { FlowQuery, PolicyIndexApi } from '../policy/types.js';
import { flow } from './fixtures.js';
import { judgeFlow, planFlow } from './index.js';

/**
 * The judge's own logic, with the policy engine replaced by a rule the test states: the questions asked
 * (which pod, which port, which source) and how answers are combined. The real engine is exercised in
 * judge.test.ts and test/check.test.ts.
 */

let inv: Inventory;
beforeAll(async () => {
  inv = new Inventory((await loadSnapshotFiles([resolve(ROOT, 'test/fixtures/clusters/shop.yaml')])).cluster);
});

function direction(allowed: boolean, policy: string): DirectionVerdictValue {
  return allowed
    ? {
        allowed,
        isolated: true,
        rules: [{ policy, direction: 'ingress', rule: 0 }],
        isolatedBy: [policy],
        reason: 'rule-matched',
      }
    : { allowed, isolated: true, rules: [], isolatedBy: [policy], reason: 'no-rule-matched' };
}

/** Answers by a stated rule and records every question. */
function recordingIndex(rule: (q: FlowQuery) => { egress: boolean; ingress: boolean }) {
  const asked: FlowQuery[] = [];
  const index: PolicyIndexApi = {
    options: { ipBlockMatchesPods: true, hostNetwork: 'node' },
    evaluate(q) {
      asked.push(q);
      const a = rule(q);
      const v: Verdict = {
        allowed: a.egress && a.ingress,
        result: a.egress && a.ingress ? 'allowed' : 'denied',
        egress: direction(a.egress, 'p/egress'),
        ingress: direction(a.ingress, `p/${q.dst.pod?.name ?? q.dst.ip}`),
      };
      return v;
    },
    explain() {
      throw new Error('not used');
    },
    rules: () => [],
  };
  return { index, asked };
}

const WEB = '10.244.0.10';
const LOADTEST = '10.244.1.70';
const CART_SVC = '10.96.20.20';

describe('judgeFlow: Services without NAT information', () => {
  it('asks about every ready backend on its own port and calls disagreement ambiguous', () => {
    const { index, asked } = recordingIndex((q) => ({ egress: true, ingress: q.dst.pod?.name === 'cart-1' }));
    const out = judgeFlow(
      flow({ src: { ip: LOADTEST, port: 40000 }, dst: { ip: CART_SVC, port: 80 } }),
      inv,
      index,
    );
    expect(asked.map((q) => [q.dst.pod?.name, q.dst.ip, q.port, q.proto, q.src.pod?.name])).toEqual([
      ['cart-0', '10.244.1.20', 8080, 6, 'loadtest-5f6b8d9c7-k4j3h'],
      ['cart-1', '10.244.0.21', 8080, 6, 'loadtest-5f6b8d9c7-k4j3h'],
    ]);
    expect(out.verdict.result).toBe('ambiguous');
    expect(out.verdict.allowed).toBe(false);
    expect(out.verdict.backends).toEqual([
      { pod: 'shop/cart-0', ip: '10.244.1.20', allowed: false },
      { pod: 'shop/cart-1', ip: '10.244.0.21', allowed: true },
    ]);
    // Merged ingress: denied because one backend denies; the reason is the denying backend's.
    expect(out.verdict.ingress.allowed).toBe(false);
    expect(out.verdict.ingress.reason).toBe('no-rule-matched');
    expect(out.verdict.ingress.isolatedBy.sort()).toEqual(['p/cart-0', 'p/cart-1']);
    expect(out.verdict.ingress.rules).toEqual([{ policy: 'p/cart-1', direction: 'ingress', rule: 0 }]);
    expect(out.dst).toEqual({
      ip: CART_SVC,
      port: 80,
      kind: 'service',
      service: 'shop/cart',
      name: 'cart.shop.svc.cluster.local',
    });
    expect(out.src).toMatchObject({
      kind: 'pod',
      pod: 'shop/loadtest-5f6b8d9c7-k4j3h',
      name: '10-244-1-70.shop.pod.cluster.local',
    });
  });

  it('is allowed only when every backend allows, denied when none does', () => {
    const all = recordingIndex(() => ({ egress: true, ingress: true }));
    const none = recordingIndex(() => ({ egress: true, ingress: false }));
    const f = flow({ src: { ip: WEB }, dst: { ip: CART_SVC, port: 80 } });
    expect(judgeFlow(f, inv, all.index).verdict).toMatchObject({ result: 'allowed', allowed: true });
    expect(judgeFlow(f, inv, none.index).verdict).toMatchObject({ result: 'denied', allowed: false });
  });

  it('resolves a named targetPort through the selector when no EndpointSlice exists, per IP family', () => {
    const { index, asked } = recordingIndex(() => ({ egress: true, ingress: true }));
    judgeFlow(flow({ src: { ip: LOADTEST }, dst: { ip: '10.96.10.10', port: 80 } }), inv, index);
    judgeFlow(flow({ src: { ip: '2001:db8::5' }, dst: { ip: 'fd00:10:96:0::a10', port: 80 } }), inv, index);
    expect(asked.map((q) => [q.dst.pod?.name, q.dst.ip, q.port])).toEqual([
      ['web-6d4cf56db6-h8k2n', '10.244.0.10', 8080],
      ['web-6d4cf56db6-h8k2n', 'fd00:10:244::a', 8080],
    ]);
  });

  it('judges only the source side, against the bare ClusterIP, when the Service has no ready backend', () => {
    const { index, asked } = recordingIndex((q) => ({
      egress: q.src.pod?.name !== 'payments-api-0',
      ingress: true,
    }));
    const out = judgeFlow(flow({ src: { ip: WEB }, dst: { ip: '10.96.50.50', port: 80 } }), inv, index);
    expect(asked).toHaveLength(1);
    expect(asked[0]!.dst).toEqual({ ip: '10.96.50.50' });
    expect(out.note).toBe('service-without-endpoints');
    expect(out.verdict.backends).toEqual([]);
    expect(out.dst.kind).toBe('service');
    const denied = judgeFlow(
      flow({ src: { ip: '10.244.1.50' }, dst: { ip: '10.96.50.50', port: 80 } }),
      inv,
      index,
    );
    expect(denied.verdict.result).toBe('denied');
    const wrongPort = judgeFlow(flow({ src: { ip: WEB }, dst: { ip: CART_SVC, port: 81 } }), inv, index);
    expect(wrongPort.note).toBe('service-port-not-exposed');
  });
});

describe('judgeFlow: repeated conversations', () => {
  it('asks the engine once per conversation and keeps each record its own ports and counters', () => {
    const { index, asked } = recordingIndex((q) => ({ egress: true, ingress: q.port === 8080 }));
    const a = judgeFlow(
      flow({ src: { ip: WEB, port: 40001 }, dst: { ip: '10.244.1.20', port: 8080 } }),
      inv,
      index,
    );
    const b = judgeFlow(
      flow({
        src: { ip: WEB, port: 40002 },
        dst: { ip: '10.244.1.20', port: 8080 },
        packets: { fwd: 9, rev: 9 },
      }),
      inv,
      index,
    );
    const c = judgeFlow(
      flow({ src: { ip: WEB, port: 40003 }, dst: { ip: '10.244.1.20', port: 9999 } }),
      inv,
      index,
    );
    expect(asked).toHaveLength(2);
    expect([a.src.port, b.src.port, c.src.port]).toEqual([40001, 40002, 40003]);
    expect(b.packets).toEqual({ fwd: 9, rev: 9 });
    expect([a.verdict.allowed, b.verdict.allowed, c.verdict.allowed]).toEqual([true, true, false]);
    // Translation is part of the conversation: the same addresses with a DNAT are judged afresh.
    judgeFlow(
      flow({
        src: { ip: WEB },
        dst: { ip: '10.244.1.20', port: 8080 },
        nat: { dst: { ip: '10.244.0.21', port: 8080 } },
      }),
      inv,
      index,
    );
    expect(asked).toHaveLength(3);
    expect(asked[2]!.dst.pod?.name).toBe('cart-1');
    // Without the cache every flow is judged afresh.
    judgeFlow(flow({ src: { ip: WEB }, dst: { ip: '10.244.1.20', port: 8080 } }), inv, index, {
      cache: false,
    });
    expect(asked).toHaveLength(4);
  });
});

describe('judgeFlow: naming', () => {
  it('marks an unknown address inside a node podCIDR', () => {
    const { index } = recordingIndex(() => ({ egress: true, ingress: true }));
    const out = judgeFlow(flow({ src: { ip: WEB }, dst: { ip: '10.244.1.99', port: 8080 } }), inv, index);
    expect(out.dst).toEqual({ ip: '10.244.1.99', port: 8080, kind: 'external', podCidrOf: 'node-b' });
  });
});

describe('judgeFlow: address translation', () => {
  it('judges the DNAT destination and keeps the Service as dst.service', () => {
    const { index, asked } = recordingIndex(() => ({ egress: true, ingress: true }));
    const out = judgeFlow(
      flow({
        src: { ip: '10.244.0.60', port: 51000 },
        dst: { ip: '10.96.30.30', port: 9090 },
        nat: { dst: { ip: '10.244.1.30', port: 9090 } },
      }),
      inv,
      index,
    );
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatchObject({ dst: { ip: '10.244.1.30' }, port: 9090 });
    expect(asked[0]!.dst.pod?.name).toBe('catalog-84b7d9c6f-p2x7v');
    expect(out.dst).toEqual({
      ip: '10.96.30.30',
      port: 9090,
      kind: 'pod',
      pod: 'shop/catalog-84b7d9c6f-p2x7v',
      name: '10-244-1-30.shop.pod.cluster.local',
      service: 'shop/catalog',
      serviceName: 'catalog.shop.svc.cluster.local',
    });
    expect(out.verdict.backends).toBeUndefined();
  });

  it('judges egress with the original source and ingress with the SNAT source', () => {
    // Egress allowed only for the external client, ingress only from node-b's address.
    const { index, asked } = recordingIndex((q) => ({
      egress: q.src.ip === '198.51.100.7',
      ingress: q.src.node?.name === 'node-b',
    }));
    const out = judgeFlow(
      flow({
        src: { ip: '198.51.100.7', port: 55555 },
        dst: { ip: '192.168.10.12', port: 30080 },
        nat: { dst: { ip: '10.244.1.20', port: 8080 }, src: { ip: '192.168.10.12', port: 62000 } },
      }),
      inv,
      index,
    );
    expect(asked.map((q) => q.src.ip)).toEqual(['198.51.100.7', '192.168.10.12']);
    expect(out.verdict).toMatchObject({ allowed: true, result: 'allowed' });
    expect(out.src).toMatchObject({ kind: 'external' });
    expect(out.dst).toMatchObject({ kind: 'pod', pod: 'shop/cart-0' });
  });

  it('names a hostNetwork destination only when its container port picks exactly one pod', () => {
    const cluster = inv.cluster;
    const withPort = new Inventory({
      ...cluster,
      pods: cluster.pods.map((p) =>
        p.name === 'kube-proxy-8xk2m'
          ? { ...p, ports: [{ name: 'metrics', containerPort: 10249, protocol: 'TCP' as const }] }
          : p,
      ),
    });
    const plan = planFlow(
      withPort,
      flow({ src: { ip: '10.244.0.60' }, dst: { ip: '192.168.10.11', port: 10249 } }),
    );
    expect(plan.targets[0]!.dst.pod?.name).toBe('kube-proxy-8xk2m');
    expect(plan.dstInfo).toMatchObject({
      kind: 'pod',
      pod: 'kube-system/kube-proxy-8xk2m',
      hostNetwork: true,
      node: 'node-a',
    });
    const other = planFlow(
      withPort,
      flow({ src: { ip: '10.244.0.60' }, dst: { ip: '192.168.10.11', port: 22 } }),
    );
    expect(other.targets[0]!.dst.pod).toBeUndefined();
    expect(other.dstInfo).toEqual({ kind: 'node', node: 'node-a', name: 'node-a' });
  });
});

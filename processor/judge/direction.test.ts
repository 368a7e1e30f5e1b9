import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../schema/flow-record.js';
import { ROOT } from '../../test/support/cli.js';
import { Inventory } from '../inventory/index.js';
import { loadSnapshotFiles } from '../inventory/snapshot.js';
import { compilePolicyIndex } from '../policy/index.js';
import type { PolicyIndexApi } from '../policy/types.js';
import { observedDirection, orient, reversed } from './direction.js';
import { flow } from './fixtures.js';
import { judgeFlow } from './index.js';

/**
 * Direction from the cluster (docs/check.md, "Direction") on the shop example: frontend and cart
 * declare 8080 (cart also 9102), payments 9000, coredns 53 (UDP and TCP); the Services cart (80),
 * payments (9000), kube-dns (53). Every shop pod is ingress-isolated; dev/debug-shell has no policy.
 */

let inv: Inventory;
let index: PolicyIndexApi;
beforeAll(async () => {
  const snap = await loadSnapshotFiles([resolve(ROOT, 'examples/shop/cluster.yaml')]);
  inv = new Inventory(snap.cluster);
  index = compilePolicyIndex(snap.cluster).index;
});

const FRONTEND = '10.244.1.10';
const CART = '10.244.1.11';
const DEBUG = '10.244.2.40';
const COREDNS = '10.244.1.2';

/** A mid-connection TCP flow as the collector exports it when the first packet seen was `src`'s. */
function midstream(
  src: string,
  sport: number,
  dst: string,
  dport: number,
  initiator: FlowRecord['initiator'] = 'first-packet',
): FlowRecord {
  return flow({
    src: { ip: src, port: sport },
    dst: { ip: dst, port: dport },
    packets: { fwd: 4, rev: 3 },
    bytes: { fwd: 400, rev: 3000 },
    tcpFlags: { fwd: 0x18, rev: 0x10 },
    state: 'established',
    initiator,
    continued: true,
  });
}

describe('which directions are observed', () => {
  it('a handshake, an ICMP type, conntrack, a listener, or a flow that began in view', () => {
    for (const initiator of ['handshake', 'icmp-type', 'conntrack', 'listening-port'] as const)
      expect(observedDirection(midstream(CART, 8080, FRONTEND, 50470, initiator))).toBe(true);
    expect(observedDirection({ ...midstream(CART, 8080, FRONTEND, 50470), continued: undefined })).toBe(true);
    expect(observedDirection(midstream(CART, 8080, FRONTEND, 50470, 'first-packet'))).toBe(false);
    expect(observedDirection(midstream(CART, 8080, FRONTEND, 50470, 'well-known-port'))).toBe(false);
  });
});

describe('reversed', () => {
  it('swaps the sides with their counters and flags, and is its own inverse', () => {
    const f = midstream(CART, 8080, FRONTEND, 50470);
    const r = reversed(f);
    expect(r.src).toEqual(f.dst);
    expect(r.dst).toEqual(f.src);
    expect(r.packets).toEqual({ fwd: 3, rev: 4 });
    expect(r.bytes).toEqual({ fwd: 3000, rev: 400 });
    expect(r.tcpFlags).toEqual({ fwd: 0x10, rev: 0x18 });
    expect(reversed(r)).toEqual(f);
  });

  it('a one-sided flow heard only from the responder was under way: established', () => {
    const f = {
      ...midstream(CART, 8080, FRONTEND, 50470),
      packets: { fwd: 2, rev: 0 },
      state: 'attempted' as const,
    };
    expect(reversed(f).state).toBe('established');
  });
});

describe('orient: the side that declares the port is the responder', () => {
  it('a reply seen first (cart:8080 -> frontend:50470) is turned round', () => {
    const o = orient(midstream(CART, 8080, FRONTEND, 50470), inv);
    expect(o).toMatchObject({ basis: 'declared-port', swapped: true });
    expect(o.flow.src.ip).toBe(FRONTEND);
    expect(o.flow.dst).toEqual({ ip: CART, port: 8080 });
  });

  it('the right way round it stays, settled', () => {
    const o = orient(midstream(FRONTEND, 50470, CART, 8080), inv);
    expect(o).toMatchObject({ basis: 'declared-port', swapped: false });
  });

  it('a Service port counts as declared (UDP to kube-dns, its reply seen first)', () => {
    const f = { ...midstream('10.96.0.10', 53, FRONTEND, 40000, 'well-known-port'), proto: 'UDP' as const };
    const o = orient(f, inv);
    expect(o).toMatchObject({ basis: 'declared-port', swapped: true });
    expect(o.flow.dst).toEqual({ ip: '10.96.0.10', port: 53 });
  });

  it('neither side declares its port: a guess, left as it was', () => {
    const f = midstream(DEBUG, 7777, CART, 45000);
    expect(orient(f, inv)).toMatchObject({ basis: 'guessed', swapped: false, flow: f });
  });

  it('both declare (frontend:8080 <-> cart:8080): a guess', () => {
    expect(orient(midstream(FRONTEND, 8080, CART, 8080), inv).basis).toBe('guessed');
  });

  it('a declared port of another protocol does not count (UDP to cart:8080)', () => {
    const f = { ...midstream(CART, 8080, FRONTEND, 50470), proto: 'UDP' as const };
    expect(orient(f, inv).basis).toBe('guessed');
  });
});

describe('judgeFlow on a direction the collector did not see', () => {
  it('the reply seen first is judged as the connection it answers: allowed, not a violation', () => {
    const out = judgeFlow(midstream(CART, 8080, FRONTEND, 50470), inv, index);
    expect(out.src.pod).toBe('shop/frontend-7d4b9c6f5-x2k8p');
    expect(out.dst.pod).toBe('shop/cart-5f6d8b7c9-q4w7z');
    expect(out.verdict).toMatchObject({
      result: 'allowed',
      direction: { basis: 'declared-port', swapped: true },
    });
    expect(out.verdict.ingress.rules.map((r) => r.policy)).toContain('shop/allow-frontend-to-cart');
  });

  it('guessed, allowed one way and denied the other: ambiguous, with both results', () => {
    // debug -> cart is denied (cart is ingress-isolated, nothing admits dev); cart -> debug is allowed.
    const out = judgeFlow(midstream(DEBUG, 7777, CART, 45000), inv, index);
    expect(out.verdict).toMatchObject({
      allowed: false,
      result: 'ambiguous',
      direction: { basis: 'guessed', reverse: 'allowed' },
    });
    const back = judgeFlow(midstream(CART, 45000, DEBUG, 7777), inv, index);
    expect(back.verdict).toMatchObject({
      result: 'ambiguous',
      direction: { basis: 'guessed', reverse: 'denied' },
    });
  });

  it('guessed, denied both ways: denied (a violation whoever initiated)', () => {
    // frontend and cart are both ingress-isolated and neither admits the other on these ports.
    const out = judgeFlow(midstream(FRONTEND, 41000, CART, 7000), inv, index);
    expect(out.verdict).toMatchObject({
      result: 'denied',
      direction: { basis: 'guessed', reverse: 'denied' },
    });
  });

  it('guessed, allowed both ways: allowed', () => {
    // Neither pod isolates egress, and kube-system's coredns is not isolated at all; debug is not either.
    const out = judgeFlow(midstream(COREDNS, 7000, DEBUG, 41000), inv, index);
    expect(out.verdict).toMatchObject({
      result: 'allowed',
      direction: { basis: 'guessed', reverse: 'allowed' },
    });
  });

  it('the rules that allow the other way are named, for rule usage', () => {
    // frontend:8080 -> cart:8080, both declared: a guess. The other way, cart:8080 -> frontend:8080,
    // frontend admits nothing from cart; this way, allow-frontend-to-cart admits it.
    const out = judgeFlow(midstream(CART, 8080, FRONTEND, 8080), inv, index);
    expect(out.verdict.result).toBe('ambiguous');
    expect(out.verdict.direction?.reverseRules?.map((r) => r.policy)).toContain(
      'shop/allow-frontend-to-cart',
    );
  });

  it('an observed direction is judged as it is, with no direction field', () => {
    const out = judgeFlow({ ...midstream(CART, 8080, FRONTEND, 50470), continued: undefined }, inv, index);
    expect(out.verdict.result).toBe('denied');
    expect(out.verdict.direction).toBeUndefined();
  });
});

import { ICMP, ICMPV6, TCP, UDP } from './protocols.js';
import {
  B_CLOSED,
  F_QUEUED,
  type FlowStore,
  I_BITS,
  I_CLS,
  I_NEXT,
  I_PREV,
  I_PROTO,
  I_STATE,
  NONE,
  ST_ESTABLISHED,
  STRIDE_F64,
  STRIDE_I32,
} from './storage.js';

/** Idle-timeout classes: each class has one timeout, so each LRU list stays ordered by expiry. */
export interface IdleTimeouts {
  /** TCP after the responder answered. */
  tcpEstablished: number;
  /** TCP before any answer (SYN sent, or one-sided mid-stream traffic). */
  tcpUnanswered: number;
  /** TCP after FIN both ways or RST: short linger to take in the last ACK / retransmitted FIN. */
  tcpClosed: number;
  udp: number;
  icmp: number;
  /** SCTP and every other IP protocol. */
  other: number;
}

export const DEFAULT_IDLE_TIMEOUTS: Readonly<IdleTimeouts> = Object.freeze({
  tcpEstablished: 300_000,
  tcpUnanswered: 60_000,
  tcpClosed: 5_000,
  udp: 60_000,
  icmp: 30_000,
  other: 60_000,
});

/** Precision of the least-recently-seen order (see IdleLists.touch). */
const TOUCH_GRANULARITY_MS = 1_000;

export const CLS_TCP_EST = 0;
export const CLS_TCP_UNANSWERED = 1;
export const CLS_TCP_CLOSED = 2;
export const CLS_UDP = 3;
export const CLS_ICMP = 4;
export const CLS_OTHER = 5;
export const CLASS_COUNT = 6;

/** The timeout options of FlowTableOptions. */
interface TimeoutOptions {
  idleTimeoutMs?: number | Partial<IdleTimeouts>;
  tcpClosedLingerMs?: number;
}

/** The idle timeout of each class (CLS_*), from the table's options. */
export function classTimeouts(opt: TimeoutOptions): number[] {
  const t: IdleTimeouts = { ...DEFAULT_IDLE_TIMEOUTS };
  if (typeof opt.idleTimeoutMs === 'number') {
    for (const k of Object.keys(t) as (keyof IdleTimeouts)[]) t[k] = opt.idleTimeoutMs;
  } else if (opt.idleTimeoutMs) {
    Object.assign(t, opt.idleTimeoutMs);
  }
  if (opt.tcpClosedLingerMs !== undefined) t.tcpClosed = opt.tcpClosedLingerMs;
  else if (typeof opt.idleTimeoutMs === 'number')
    t.tcpClosed = Math.min(opt.idleTimeoutMs, DEFAULT_IDLE_TIMEOUTS.tcpClosed);
  const out = new Array<number>(CLASS_COUNT);
  out[CLS_TCP_EST] = t.tcpEstablished;
  out[CLS_TCP_UNANSWERED] = t.tcpUnanswered;
  out[CLS_TCP_CLOSED] = t.tcpClosed;
  out[CLS_UDP] = t.udp;
  out[CLS_ICMP] = t.icmp;
  out[CLS_OTHER] = t.other;
  return out;
}

/**
 * One LRU list per idle class, least recently seen at the head, linked through the flows' I_PREV and
 * I_NEXT; a flow's class is in I_CLS (NONE: in no list).
 */
export class IdleLists {
  readonly heads = new Int32Array(CLASS_COUNT).fill(NONE);
  readonly tails = new Int32Array(CLASS_COUNT).fill(NONE);
  private readonly store: FlowStore;

  constructor(store: FlowStore) {
    this.store = store;
  }

  /** The idle class flow f belongs in now. */
  classOf(f: number): number {
    const i = f * STRIDE_I32;
    const i32 = this.store.i32;
    const proto = i32[i + I_PROTO]!;
    if (proto === TCP) {
      if (i32[i + I_BITS]! & B_CLOSED) return CLS_TCP_CLOSED;
      return i32[i + I_STATE] === ST_ESTABLISHED ? CLS_TCP_EST : CLS_TCP_UNANSWERED;
    }
    if (proto === UDP) return CLS_UDP;
    if (proto === ICMP || proto === ICMPV6) return CLS_ICMP;
    return CLS_OTHER;
  }

  /**
   * Keeps a flow's place in its class list: the tail is the most recently seen. Moving a flow costs
   * writes to two neighbours (cache misses in a large table), so a flow seen again within
   * TOUCH_GRANULARITY_MS of its last move stays put: lists are ordered by `queued`, which trails
   * `last` by less than that, and expiry and eviction are exact to within it.
   */
  touch(f: number, now: number): void {
    const c = this.classOf(f);
    const i = f * STRIDE_I32;
    const d = f * STRIDE_F64;
    const store = this.store;
    const i32 = store.i32;
    const cls = i32[i + I_CLS]!;
    if (cls === c) {
      if (now - store.f64[d + F_QUEUED]! < TOUCH_GRANULARITY_MS) return;
      store.f64[d + F_QUEUED] = now;
      if (this.tails[c] === f) return;
      this.unlink(f);
    } else if (cls >= 0) {
      this.unlink(f);
    }
    i32[i + I_CLS] = c;
    store.f64[d + F_QUEUED] = now;
    const t = this.tails[c]!;
    i32[i + I_PREV] = t;
    i32[i + I_NEXT] = NONE;
    if (t === NONE) this.heads[c] = f;
    else i32[t * STRIDE_I32 + I_NEXT] = f;
    this.tails[c] = f;
  }

  /** Takes flow f out of its class list (I_CLS is left to the caller). */
  unlink(f: number): void {
    const i32 = this.store.i32;
    const i = f * STRIDE_I32;
    const c = i32[i + I_CLS]!;
    const prev = i32[i + I_PREV]!;
    const next = i32[i + I_NEXT]!;
    if (prev === NONE) this.heads[c] = next;
    else i32[prev * STRIDE_I32 + I_NEXT] = next;
    if (next === NONE) this.tails[c] = prev;
    else i32[next * STRIDE_I32 + I_PREV] = prev;
    i32[i + I_PREV] = NONE;
    i32[i + I_NEXT] = NONE;
  }

  /** The least recently queued flow of all classes, or NONE when the lists are empty. */
  oldest(): number {
    let oldest = NONE;
    let oldestQueued = 0;
    for (let c = 0; c < CLASS_COUNT; c++) {
      const h = this.heads[c]!;
      if (h === NONE) continue;
      const q = this.store.f64[h * STRIDE_F64 + F_QUEUED]!;
      if (oldest === NONE || q < oldestQueued) {
        oldest = h;
        oldestQueued = q;
      }
    }
    return oldest;
  }
}

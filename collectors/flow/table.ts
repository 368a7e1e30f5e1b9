import type { FlowRecord } from '../../schema/flow-record.js';
import type { DecodedPacket } from '../decode/packet.js';
import { AddressKeys, V4_LIMIT } from './address-keys.js';
import {
  CLASS_COUNT,
  CLS_OTHER,
  CLS_TCP_CLOSED,
  CLS_UDP,
  classTimeouts,
  IdleLists,
  type IdleTimeouts,
} from './expiry.js';
import { closeReasonOf, type ExportReason, sliceRecord } from './export.js';
import { FlowIndex } from './flow-index.js';
import { flowKey } from './flow-key.js';
import { Fragments, fragmentKey, type OrphanFragments } from './fragments.js';
import { BASIS_FIRST_PACKET, Initiators } from './initiator.js';
import { ACK, hasPorts, ICMP, ICMPV6, isIcmpError, isUnreachable, SYN, TCP } from './protocols.js';
import {
  B_ALIVE,
  B_CLOSED,
  B_CONTINUED,
  B_TUNNELLED,
  C_CLOSE_REASON,
  C_ICMP_CODE,
  C_ICMP_TYPE,
  C_SEQ,
  CLOSE_RST,
  COLD_STRIDE,
  F_BYTES_FWD,
  F_BYTES_REV,
  F_FIRST,
  F_IKEY,
  F_LAST,
  F_PKT_FWD,
  F_PKT_REV,
  F_RKEY,
  F_SLICE,
  FlowStore,
  I_BITS,
  I_CLS,
  I_GEN,
  I_IPORT,
  I_NEXT,
  I_PROTO,
  I_RPORT,
  I_STATE,
  INITIAL_FLOW_CAPACITY,
  NONE,
  ST_ATTEMPTED,
  ST_ESTABLISHED,
  ST_REJECTED,
  STRIDE_F64,
  STRIDE_I32,
} from './storage.js';
import { tcpTransition } from './tcp-state.js';

/**
 * The flow table: folds decoded packets into bidirectional flows and exports them as FlowRecords.
 * Pure and deterministic: every clock reading comes from packet timestamps, so the same capture
 * always gives the same records. docs/flows.md is the design description.
 *
 * The parts, each in its module: storage.ts (the flows' typed-array columns), address-keys.ts,
 * flow-index.ts (the hash index), initiator.ts (who initiated a flow), tcp-state.ts, fragments.ts,
 * expiry.ts (idle classes and their LRU lists), export.ts (a flow's slice as a FlowRecord).
 */

export { parseIpv4 } from './address-keys.js';
export { DEFAULT_IDLE_TIMEOUTS, type IdleTimeouts } from './expiry.js';
export { flowHash } from './flow-key.js';
export { isIcmpError } from './protocols.js';

export const DEFAULT_ACTIVE_TIMEOUT_MS = 300_000;
export const DEFAULT_MAX_FLOWS = 1_000_000;
/** Expiry runs at most once per this much capture time. */
const EXPIRE_INTERVAL_MS = 1_000;

export interface FlowObserver {
  node?: string;
  source: string;
  iface?: string;
  file?: string;
}

export interface FlowTableOptions {
  /** One number sets every class; an object overrides some classes (milliseconds). */
  idleTimeoutMs?: number | Partial<IdleTimeouts>;
  activeTimeoutMs?: number;
  /** Overrides idleTimeoutMs.tcpClosed. */
  tcpClosedLingerMs?: number;
  maxFlows?: number;
  observer: FlowObserver;
  /**
   * What `bytes` counts: 'ip' (default) the IP packet length from its header (NetFlow/IPFIX
   * octetDeltaCount); 'wire' the whole frame as captured on the wire (frame.len), which includes
   * link and tunnel headers.
   */
  bytes?: 'ip' | 'wire';
  onExport(record: FlowRecord): void;
}

export interface FlowTableStats {
  packets: number;
  flowsCreated: number;
  recordsExported: number;
  active: number;
  evicted: number;
  icmpErrorsMatched: number;
  fragmentsMatched: number;
  fragmentsOrphaned: number;
}

export class FlowTable {
  readonly stats: FlowTableStats = {
    packets: 0,
    flowsCreated: 0,
    recordsExported: 0,
    active: 0,
    evicted: 0,
    icmpErrorsMatched: 0,
    fragmentsMatched: 0,
    fragmentsOrphaned: 0,
  };
  private readonly store = new FlowStore(INITIAL_FLOW_CAPACITY);
  private readonly addresses = new AddressKeys();
  private readonly index = new FlowIndex(this.store, this.addresses);
  private readonly lists = new IdleLists(this.store);
  private readonly fragments = new Fragments(this.store);
  private readonly initiators: Initiators;
  private readonly timeouts: number[];
  private readonly activeTimeout: number;
  private readonly maxFlows: number;
  private readonly wireBytes: boolean;
  private readonly observer: FlowObserver;
  private readonly onExport: (r: FlowRecord) => void;
  private nextExpire = Number.NEGATIVE_INFINITY;
  private lastFlow = NONE;
  private now = 0;
  /** Time of the first packet the table saw (the start of the observation), NaN before it. */
  private inputStart = Number.NaN;

  constructor(opts: FlowTableOptions) {
    this.timeouts = classTimeouts(opts);
    this.initiators = new Initiators(this.timeouts[CLS_UDP]!, this.timeouts[CLS_OTHER]!);
    this.activeTimeout = opts.activeTimeoutMs ?? DEFAULT_ACTIVE_TIMEOUT_MS;
    this.maxFlows = Math.max(1, opts.maxFlows ?? DEFAULT_MAX_FLOWS);
    this.wireBytes = opts.bytes === 'wire';
    this.observer = { ...opts.observer };
    this.onExport = opts.onExport;
  }

  get size(): number {
    return this.store.count;
  }

  add(p: DecodedPacket): void {
    this.stats.packets++;
    const ts = p.ts;
    if (ts > this.now) this.now = ts;
    if (ts >= this.nextExpire) {
      this.expire(ts);
      this.nextExpire = ts + EXPIRE_INTERVAL_MS;
    }
    const bytes = this.wireBytes ? p.wireLen : p.ipLen;
    const proto = p.proto;

    if (proto === ICMP || proto === ICMPV6) {
      if (p.quotedProto >= 0 && isIcmpError(proto, p.icmpType) && this.addIcmpError(p, bytes)) return;
      this.addPacket(p, proto, p.icmpId, p.icmpId, bytes);
      return;
    }
    if (p.fragId >= 0 && p.fragOffset > 0) {
      this.addLaterFragment(p, bytes);
      return;
    }
    const flow = this.addPacket(p, proto, p.srcPort, p.dstPort, bytes);
    if (p.fragId >= 0 && p.moreFragments) this.rememberFirstFragment(p, flow);
  }

  /** Exports flows idle past their class timeout at capture time `nowMs`, and forgets stale fragments. */
  expire(nowMs: number): void {
    const heads = this.lists.heads;
    for (let c = 0; c < CLASS_COUNT; c++) {
      const limit = nowMs - this.timeouts[c]!;
      let f = heads[c]!;
      // Ordered by `queued`; a head seen again since it was queued ends the scan (see IdleLists.touch).
      while (f !== NONE && this.store.f64[f * STRIDE_F64 + F_LAST]! <= limit) {
        const next = this.store.i32[f * STRIDE_I32 + I_NEXT]!;
        this.finish(f, c === CLS_TCP_CLOSED ? closeReasonOf(this.store, f) : 'idle-timeout');
        f = next;
      }
    }
    this.fragments.expireEntries(nowMs);
    for (let o = this.fragments.takeExpiredOrphan(nowMs); o !== undefined; ) {
      this.accountOrphans(o);
      o = this.fragments.takeExpiredOrphan(nowMs);
    }
  }

  /** Exports every flow (oldest first) and empties the table. */
  flushAll(reason: ExportReason = 'end-of-input'): void {
    for (const o of this.fragments.allOrphans()) this.accountOrphans(o);
    this.fragments.clear();
    const all: number[] = [];
    const i32 = this.store.i32;
    for (let c = 0; c < CLASS_COUNT; c++) {
      for (let f = this.lists.heads[c]!; f !== NONE; f = i32[f * STRIDE_I32 + I_NEXT]!) all.push(f);
    }
    const f64 = this.store.f64;
    all.sort((a, b) => f64[a * STRIDE_F64 + F_FIRST]! - f64[b * STRIDE_F64 + F_FIRST]!);
    for (const f of all) {
      // A closed TCP flow waiting out its linger is complete: keep its fin/rst reason.
      const closed = (this.store.i32[f * STRIDE_I32 + I_BITS]! & B_CLOSED) !== 0;
      this.finish(f, closed ? closeReasonOf(this.store, f) : reason);
    }
  }

  // ---- packets ----

  private addPacket(p: DecodedPacket, proto: number, sport: number, dport: number, bytes: number): number {
    const store = this.store;
    let sKey: number;
    let dKey: number;
    if (p.srcV4 >= 0 && p.dstV4 >= 0) {
      sKey = p.srcV4;
      dKey = p.dstV4;
    } else {
      sKey = this.addresses.key(p.src);
      dKey = this.addresses.key(p.dst);
    }
    const tunnelled = p.tunnelType !== '';
    // Packets come in trains: the previous packet's flow saves a lookup.
    const c = this.lastFlow;
    let f = NONE;
    if (c !== NONE && !tunnelled && (store.i32[c * STRIDE_I32 + I_BITS]! & B_TUNNELLED) === 0) {
      const ci = c * STRIDE_I32;
      const cd = c * STRIDE_F64;
      const i32 = store.i32;
      const f64 = store.f64;
      if (
        i32[ci + I_PROTO] === proto &&
        ((i32[ci + I_IPORT] === sport &&
          i32[ci + I_RPORT] === dport &&
          f64[cd + F_IKEY] === sKey &&
          f64[cd + F_RKEY] === dKey) ||
          (i32[ci + I_IPORT] === dport &&
            i32[ci + I_RPORT] === sport &&
            f64[cd + F_IKEY] === dKey &&
            f64[cd + F_RKEY] === sKey))
      )
        f = c;
    }
    if (f === NONE) {
      f = tunnelled
        ? this.index.find(proto, p.src, sport, p.dst, dport, p.tunnelType, p.tunnelId)
        : this.index.lookup(proto, sKey, sport, dKey, dport);
    }
    if (
      f !== NONE &&
      proto === TCP &&
      (p.tcpFlags & (SYN | ACK)) === SYN &&
      (store.i32[f * STRIDE_I32 + I_BITS]! & B_CLOSED) !== 0
    ) {
      // A new SYN on a finished connection: the port pair is being reused for a new connection.
      this.finish(f, closeReasonOf(store, f));
      f = NONE;
    }
    if (f === NONE) {
      f = this.create(p, proto, sport, dport, sKey, dKey);
      if (sKey < 0 || dKey < 0 || sKey >= V4_LIMIT || dKey >= V4_LIMIT) {
        // Addresses other than dotted quads got their ids with the flow (see create).
        sKey = this.addresses.key(p.src);
        dKey = this.addresses.key(p.dst);
      }
    } else if (p.ts - store.f64[f * STRIDE_F64 + F_SLICE]! >= this.activeTimeout) {
      this.exportSlice(f, 'active-timeout');
      store.f64[f * STRIDE_F64 + F_SLICE] = p.ts;
    }
    const d = f * STRIDE_F64;
    const i = f * STRIDE_I32;
    const f64 = store.f64;
    const i32 = store.i32;
    const fwd = sKey === f64[d + F_IKEY] && (sport === i32[i + I_IPORT] || sKey !== f64[d + F_RKEY]);
    store.countPackets(f, fwd, 1, bytes, p.ts);
    if (proto === TCP) tcpTransition(store, this.initiators, f, p.tcpFlags, fwd);
    else if (!fwd && i32[i + I_STATE] === ST_ATTEMPTED) {
      i32[i + I_STATE] = ST_ESTABLISHED;
      const rPort = i32[i + I_RPORT]!;
      if (rPort >= 0 && hasPorts(proto)) this.initiators.learnListener(store, proto, f, rPort);
    }
    this.lists.touch(f, this.now);
    this.lastFlow = f;
    return f;
  }

  private create(
    p: DecodedPacket,
    proto: number,
    sport: number,
    dport: number,
    sKey: number,
    dKey: number,
  ): number {
    if (this.store.count >= this.maxFlows) this.evictOldest();
    if (Number.isNaN(this.inputStart)) this.inputStart = p.ts;
    const who = this.initiators;
    who.decide(p, proto, sport, dport, sKey, dKey, this.inputStart);
    const basis = who.basis;
    // A dotted quad's key needs no bookkeeping; other addresses are counted (and may have lost their
    // id if evictOldest ended the flow that held it).
    const sHeld = sKey >= 0 && sKey < V4_LIMIT ? sKey : this.addresses.hold(p.src);
    const dHeld = dKey >= 0 && dKey < V4_LIMIT ? dKey : this.addresses.hold(p.dst);
    const store = this.store;
    const srcInitiates = who.srcInitiates;
    const f = srcInitiates
      ? store.allocate(proto, p.src, sHeld, sport, p.dst, dHeld, dport, basis, p.ts, p.icmpId)
      : store.allocate(proto, p.dst, dHeld, dport, p.src, sHeld, sport, basis, p.ts, p.icmpId);
    const i = f * STRIDE_I32;
    const state = who.state;
    store.i32[i + I_STATE] = state;
    if (who.continued) store.i32[i + I_BITS]! |= B_CONTINUED;
    if (proto === ICMP || proto === ICMPV6) {
      store.cold[f * COLD_STRIDE + C_ICMP_TYPE] = p.icmpType;
      store.cold[f * COLD_STRIDE + C_ICMP_CODE] = p.icmpCode;
    }
    if (p.tunnelType !== '') {
      const iIp = store.iIp[f]!;
      const rIp = store.rIp[f]!;
      store.i32[i + I_BITS]! |= B_TUNNELLED;
      store.tunnels[f] = {
        type: p.tunnelType,
        id: p.tunnelId,
        // The outer addresses oriented like the inner flow: the initiator's tunnel endpoint first.
        src: srcInitiates ? p.tunnelSrc : p.tunnelDst,
        dst: srcInitiates ? p.tunnelDst : p.tunnelSrc,
        port: p.tunnelPort,
        key: flowKey(
          proto,
          iIp,
          store.i32[i + I_IPORT]!,
          rIp,
          store.i32[i + I_RPORT]!,
          p.tunnelType,
          p.tunnelId,
        ),
      };
    }
    if (p.vlans.length > 0) store.vlans[f] = p.vlans.slice();
    if (state === ST_ESTABLISHED && proto === TCP)
      this.initiators.learnListener(store, proto, f, store.i32[i + I_RPORT]!);
    this.index.insert(f);
    this.stats.flowsCreated++;
    this.stats.active = store.count;
    return f;
  }

  /**
   * An ICMP error belongs to the flow whose packet it quotes: it travels back to that packet's
   * sender. Returns false when no such flow is in the table (the error then makes an ICMP flow).
   */
  private addIcmpError(p: DecodedPacket, bytes: number): boolean {
    const qp = p.quotedProto;
    const qs = p.quotedSrc;
    const qd = p.quotedDst;
    const ps = hasPorts(qp) ? p.quotedSrcPort : -1;
    const pd = hasPorts(qp) ? p.quotedDstPort : -1;
    const f = this.index.find(qp, qs, ps, qd, pd, p.tunnelType, p.tunnelId);
    if (f === NONE) return false;
    this.stats.icmpErrorsMatched++;
    const store = this.store;
    const i = f * STRIDE_I32;
    const i32 = store.i32;
    const quotedWasFwd = qs === store.iIp[f] && (ps === i32[i + I_IPORT] || qs !== store.rIp[f]);
    // The error travels against the packet it quotes.
    store.countPackets(f, !quotedWasFwd, 1, bytes, p.ts);
    if (quotedWasFwd && isUnreachable(p.proto, p.icmpType) && i32[i + I_STATE] === ST_ATTEMPTED) {
      i32[i + I_STATE] = ST_REJECTED;
      if (i32[i + I_PROTO] === TCP) {
        store.cold[f * COLD_STRIDE + C_CLOSE_REASON] = CLOSE_RST;
        i32[i + I_BITS]! |= B_CLOSED;
      }
    }
    this.lists.touch(f, this.now);
    return true;
  }

  // ---- fragments (fragments.ts keeps the maps) ----

  private rememberFirstFragment(p: DecodedPacket, f: number): void {
    const store = this.store;
    const o = this.fragments.rememberFirst(fragmentKey(p), f, store.i32[f * STRIDE_I32 + I_GEN]!, p.ts);
    if (o !== undefined) {
      // Later fragments that arrived before their first fragment.
      store.countPackets(f, o.src === store.iIp[f], o.packets, o.bytes, o.last);
      const d = f * STRIDE_F64;
      if (o.first < store.f64[d + F_SLICE]! && store.cold[f * COLD_STRIDE + C_SEQ] === 0)
        store.f64[d + F_SLICE] = o.first;
      this.stats.fragmentsMatched += o.packets;
    }
  }

  private addLaterFragment(p: DecodedPacket, bytes: number): void {
    const k = fragmentKey(p);
    const f = this.fragments.flowOf(k);
    if (f !== NONE) {
      this.stats.fragmentsMatched++;
      this.store.countPackets(f, p.src === this.store.iIp[f], 1, bytes, p.ts);
      this.lists.touch(f, this.now);
      return;
    }
    let o = this.fragments.orphan(k);
    if (o === undefined) {
      const oldest = this.fragments.evictOrphan();
      if (oldest !== undefined) this.accountOrphans(oldest);
      o = this.fragments.addOrphan(k, p);
    }
    o.packets++;
    o.bytes += bytes;
    if (p.ts > o.last) o.last = p.ts;
    if (p.ts < o.first) o.first = p.ts;
  }

  /** Fragments whose first fragment never came: a port-less flow of their address pair takes them. */
  private accountOrphans(o: OrphanFragments): void {
    this.stats.fragmentsOrphaned += o.packets;
    let f = this.index.find(o.proto, o.src, -1, o.dst, -1, o.tunnelType, o.tunnelId);
    const store = this.store;
    if (f === NONE) {
      if (store.count >= this.maxFlows) this.evictOldest();
      const sHeld = this.addresses.hold(o.src);
      const dHeld = this.addresses.hold(o.dst);
      f = store.allocate(o.proto, o.src, sHeld, -1, o.dst, dHeld, -1, BASIS_FIRST_PACKET, o.first, -1);
      if (o.tunnelType !== '') {
        store.i32[f * STRIDE_I32 + I_BITS]! |= B_TUNNELLED;
        store.tunnels[f] = {
          type: o.tunnelType,
          id: o.tunnelId,
          src: '',
          dst: '',
          port: -1,
          key: flowKey(o.proto, o.src, -1, o.dst, -1, o.tunnelType, o.tunnelId),
        };
      }
      this.index.insert(f);
      this.stats.flowsCreated++;
      this.stats.active = store.count;
    }
    const d = f * STRIDE_F64;
    const i = f * STRIDE_I32;
    const f64 = store.f64;
    if (o.src === store.iIp[f]) {
      f64[d + F_PKT_FWD] += o.packets;
      f64[d + F_BYTES_FWD] += o.bytes;
    } else {
      f64[d + F_PKT_REV] += o.packets;
      f64[d + F_BYTES_REV] += o.bytes;
      if (store.i32[i + I_STATE] === ST_ATTEMPTED) store.i32[i + I_STATE] = ST_ESTABLISHED;
    }
    if (o.last > f64[d + F_LAST]!) f64[d + F_LAST] = o.last;
    this.lists.touch(f, this.now);
  }

  // ---- ending flows and export ----

  private evictOldest(): void {
    const oldest = this.lists.oldest();
    if (oldest !== NONE) {
      this.stats.evicted++;
      this.finish(oldest, 'evicted');
    }
  }

  private finish(f: number, reason: ExportReason): void {
    const store = this.store;
    const i = f * STRIDE_I32;
    if (store.i32[i + I_CLS]! >= 0) this.lists.unlink(f);
    store.i32[i + I_CLS] = NONE;
    store.i32[i + I_BITS]! &= ~B_ALIVE;
    this.index.remove(f);
    const d = f * STRIDE_F64;
    this.addresses.drop(store.iIp[f]!, store.f64[d + F_IKEY]!);
    this.addresses.drop(store.rIp[f]!, store.f64[d + F_RKEY]!);
    this.stats.active = store.count - 1;
    this.exportSlice(f, reason);
    store.release(f);
    if (this.lastFlow === f) this.lastFlow = NONE;
  }

  private exportSlice(f: number, reason: ExportReason): void {
    const rec = sliceRecord(this.store, f, reason, this.observer);
    this.stats.recordsExported++;
    this.onExport(rec);
  }
}

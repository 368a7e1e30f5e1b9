import type { FlowRecord } from '../../schema/flow-record.js';
import { protocolValue } from '../../schema/flow-record.js';
import type { DecodedPacket } from '../decode/packet.js';

/**
 * The flow table: folds decoded packets into bidirectional flows and exports them as FlowRecords.
 * Pure and deterministic: every clock reading comes from packet timestamps, so the same capture
 * always gives the same records. docs/flows.md is the design description.
 */

const TCP = 6;
const UDP = 17;
const SCTP = 132;
const ICMP = 1;
const ICMPV6 = 58;

const FIN = 1;
const SYN = 2;
const RST = 4;
const ACK = 16;

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

export const DEFAULT_ACTIVE_TIMEOUT_MS = 300_000;
export const DEFAULT_MAX_FLOWS = 1_000_000;
/** How long a first fragment's flow is remembered for its later fragments (RFC 791 reassembly bound). */
const FRAGMENT_TIMEOUT_MS = 30_000;
const MAX_FRAGMENT_ENTRIES = 65_536;
const MAX_LISTENERS = 262_144;
/** Expiry runs at most once per this much capture time. */
const EXPIRE_INTERVAL_MS = 1_000;
/** Precision of the least-recently-seen order (see FlowTable.touch). */
const TOUCH_GRANULARITY_MS = 1_000;

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

type ExportReason = NonNullable<FlowRecord['reason']>;
type InitiatorBasis = NonNullable<FlowRecord['initiator']>;
type State = FlowRecord['state'];

const CLS_TCP_EST = 0;
const CLS_TCP_UNANSWERED = 1;
const CLS_TCP_CLOSED = 2;
const CLS_UDP = 3;
const CLS_ICMP = 4;
const CLS_OTHER = 5;
const CLASS_COUNT = 6;

/*
 * Flow storage. A table of Flow objects spent its time in cache misses (each object plus the boxes of
 * its double fields plus its list neighbours) and in the garbage collector (every flow outlived
 * several scavenges). So a flow is an index into one ArrayBuffer: 128 bytes per flow, read through a
 * Float64Array and an Int32Array view, with the fields a packet touches in the same two cache
 * lines. Fields needed only when a flow is made or exported live in side arrays.
 */
const STRIDE_F64 = 16;
const STRIDE_I32 = 32;
// Float64 words.
const F_LAST = 0;
/** Capture time the flow was last moved to the tail of its class list. */
const F_QUEUED = 1;
const F_SLICE = 2;
const F_PKT_FWD = 3;
const F_PKT_REV = 4;
const F_BYTES_FWD = 5;
const F_BYTES_REV = 6;
/** Address keys (see addressKey) of the initiator and the responder. */
const F_IKEY = 7;
const F_RKEY = 8;
const F_FIRST = 9;
// Int32 words (after the ten Float64 words).
const I_PREV = 20;
const I_NEXT = 21;
const I_CLS = 22;
const I_STATE = 23;
const I_FLAGS_FWD = 24;
const I_FLAGS_REV = 25;
const I_PROTO = 26;
const I_IPORT = 27;
const I_RPORT = 28;
/** Where the hash index keeps the flow. */
const I_SLOT = 29;
const I_BITS = 30;
/** Bumped when the flow ends, so a stale reference (fragment entry) can tell its flow is gone. */
const I_GEN = 31;
// I_BITS.
/** TCP finished (FIN both ways, RST, or rejected): lingers in the closed list. */
const B_CLOSED = 1;
const B_FIN_FWD = 2;
const B_FIN_REV = 4;
const B_CONTINUED = 8;
const B_ALIVE = 16;
// Cold Int32 words (side array).
const COLD_STRIDE = 8;
const C_SEQ = 0;
/** First ICMP type/code of the flow (-1 when not ICMP). */
const C_ICMP_TYPE = 1;
const C_ICMP_CODE = 2;
/** ICMP echo identifier carried in the key (-1 otherwise). */
const C_ICMP_ID = 3;
const C_BASIS = 4;
const C_CLOSE_REASON = 5;

const NONE = -1;

const ST_ATTEMPTED = 0;
const ST_ESTABLISHED = 1;
const ST_CLOSED = 2;
const ST_REJECTED = 3;
const STATE_NAMES: readonly State[] = ['attempted', 'established', 'closed', 'rejected'];

const BASIS_HANDSHAKE = 0;
const BASIS_FIRST_PACKET = 1;
const BASIS_LISTENING_PORT = 2;
const BASIS_WELL_KNOWN_PORT = 3;
const BASIS_ICMP_TYPE = 4;
const BASIS_NAMES: readonly InitiatorBasis[] = [
  'handshake',
  'first-packet',
  'listening-port',
  'well-known-port',
  'icmp-type',
];

const CLOSE_FIN = 0;
const CLOSE_RST = 1;
const CLOSE_NAMES: readonly ExportReason[] = ['fin', 'rst'];

/**
 * Address keys: an address compared as a number. Text that is a canonical dotted quad (what the
 * decoder writes) is its 32-bit value; any other text gets V4_LIMIT + a small id while a flow uses
 * it. Two addresses have the same key exactly when their texts are equal.
 */
const V4_LIMIT = 4294967296;

/** The value of a canonical dotted quad ("10.0.0.1": no leading zeros, octets 0-255), else -1. */
export function parseIpv4(s: string): number {
  const n = s.length;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + octet;
}

interface AddressSlot {
  id: number;
  /** Flow endpoints in the table with this address. */
  refs: number;
}

interface TunnelInfo {
  type: DecodedPacket['tunnelType'];
  id: number;
  src: string;
  dst: string;
  port: number;
  /** Key of the tunnelled-flow map. */
  key: string;
}

interface FragmentEntry {
  flow: number;
  gen: number;
  expires: number;
}
interface OrphanFragments {
  /** A representative packet's fields, to build a port-less flow if the first fragment never shows. */
  src: string;
  dst: string;
  proto: number;
  first: number;
  last: number;
  packets: number;
  bytes: number;
  tunnelType: DecodedPacket['tunnelType'];
  tunnelId: number;
  expires: number;
}

/** ICMP messages that ask (the sender initiates) and those that answer (the receiver initiated). */
const ICMP4_REQUEST = new Set([8, 13, 15, 17]);
const ICMP4_REPLY = new Set([0, 14, 16, 18]);
const ICMP6_REQUEST = new Set([128, 133, 135, 139]);
const ICMP6_REPLY = new Set([129, 134, 136, 140]);

export function isIcmpError(proto: number, type: number): boolean {
  if (proto === ICMP) return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
  if (proto === ICMPV6) return type >= 1 && type <= 4;
  return false;
}

function isUnreachable(proto: number, type: number): boolean {
  return (proto === ICMP && type === 3) || (proto === ICMPV6 && type === 1);
}

function hasPorts(proto: number): boolean {
  return proto === TCP || proto === UDP || proto === SCTP;
}

/** 64-bit FNV-1a of a string, as 16 hex digits: a stable flow id without crypto cost. */
export function flowHash(s: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0xcbf29ce4;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c ^ (h1 >>> 7), 0x01000193);
  }
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

/**
 * The flow key as a string: both directions give the same one (the lower address/port first). The
 * tunnel identity is part of it because overlay networks reuse inner addresses: the same pod CIDR in
 * two VNIs is two different conversations. Used for tunnelled flows and the flow id; untunnelled
 * lookups go through the table's numeric hash index.
 */
function flowKey(
  proto: number,
  src: string,
  sport: number,
  dst: string,
  dport: number,
  tunnelType: string,
  tunnelId: number,
): string {
  const k =
    src < dst || (src === dst && sport <= dport)
      ? `${src}|${sport}|${dst}|${dport}|${proto}`
      : `${dst}|${dport}|${src}|${sport}|${proto}`;
  return tunnelType === '' ? k : `${k}|${tunnelType}|${tunnelId}`;
}

function hashKey(a: number, b: number, ports: number, proto: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b);
  h = Math.imul(h ^ ports, 0xc2b2ae35) ^ proto;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h;
}

function classTimeouts(opt: FlowTableOptions): number[] {
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

/** Hash index slot: both address keys' low 32 bits, the ports, protocol | flags, flow + 1 (0: empty), hash. */
const X_STRIDE = 8;
const X_A = 0;
const X_B = 1;
const X_PORTS = 2;
const X_PROTO = 3;
const X_FLOW = 4;
const X_HASH = 5;
const INITIAL_INDEX_SLOTS = 1 << 14;
const INITIAL_FLOW_CAPACITY = 1 << 12;

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
  // ---- flow storage (see STRIDE_F64) ----
  private capacity = 0;
  private f64 = new Float64Array(0);
  private i32 = new Int32Array(0);
  private cold = new Int32Array(0);
  private readonly iIp: string[] = [];
  private readonly rIp: string[] = [];
  private readonly ids: string[] = [];
  private readonly tunnels: (TunnelInfo | null)[] = [];
  private readonly vlans: (number[] | null)[] = [];
  /** Flow indexes not in use, reused last-freed first (its memory is the most likely cached). */
  private free = new Int32Array(0);
  private freeCount = 0;
  /** Indexes below this have been handed out at least once. */
  private highWater = 0;
  private count = 0;

  // ---- index: open addressing, linear probing, backward-shift deletion ----
  private xmask = INITIAL_INDEX_SLOTS - 1;
  private index = new Int32Array(INITIAL_INDEX_SLOTS * X_STRIDE);
  private indexUsed = 0;
  /** Tunnelled flows (rare on a node, keyed by tunnel identity too) by flowKey. */
  private readonly tunnelled = new Map<string, number>();
  /** Ids of addresses that are not dotted quads (IPv6), while flows use them. */
  private readonly addresses = new Map<string, AddressSlot>();
  private readonly freeAddressIds: number[] = [];
  private nextAddressId = 0;
  /** canonicalKey's answer. */
  private keyA = 0;
  private keyB = 0;
  private keyPorts = 0;
  private keyProto = 0;

  /** One LRU list per idle class, least recently seen at the head. */
  private readonly heads = new Int32Array(CLASS_COUNT).fill(NONE);
  private readonly tails = new Int32Array(CLASS_COUNT).fill(NONE);
  private readonly timeouts: number[];
  private readonly activeTimeout: number;
  private readonly maxFlows: number;
  private readonly wireBytes: boolean;
  private readonly observer: FlowObserver;
  private readonly onExport: (r: FlowRecord) => void;
  /**
   * Endpoints seen answering: they are servers for later mid-stream flows. IPv4 TCP/UDP/SCTP
   * endpoints as numbers (listenerNumber), the rest as `proto|ip|port`; bounded together.
   */
  private readonly listeners = new Set<number>();
  private readonly listenerTexts = new Set<string>();
  private readonly fragments = new Map<string, FragmentEntry>();
  private readonly orphans = new Map<string, OrphanFragments>();
  private nextExpire = Number.NEGATIVE_INFINITY;
  private lastFlow = NONE;
  private now = 0;
  /** Time of the first packet the table saw (the start of the observation), NaN before it. */
  private inputStart = Number.NaN;

  constructor(opts: FlowTableOptions) {
    this.timeouts = classTimeouts(opts);
    this.activeTimeout = opts.activeTimeoutMs ?? DEFAULT_ACTIVE_TIMEOUT_MS;
    this.maxFlows = Math.max(1, opts.maxFlows ?? DEFAULT_MAX_FLOWS);
    this.wireBytes = opts.bytes === 'wire';
    this.observer = { ...opts.observer };
    this.onExport = opts.onExport;
    this.growStorage(INITIAL_FLOW_CAPACITY);
  }

  get size(): number {
    return this.count;
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
    for (let c = 0; c < CLASS_COUNT; c++) {
      const limit = nowMs - this.timeouts[c]!;
      let f = this.heads[c]!;
      // Ordered by `queued`; a head seen again since it was queued ends the scan (see touch()).
      while (f !== NONE && this.f64[f * STRIDE_F64 + F_LAST]! <= limit) {
        const next = this.i32[f * STRIDE_I32 + I_NEXT]!;
        this.finish(f, c === CLS_TCP_CLOSED ? this.closeReasonOf(f) : 'idle-timeout');
        f = next;
      }
    }
    for (const [k, e] of this.fragments) {
      if (e.expires > nowMs) break;
      this.fragments.delete(k);
    }
    for (const [k, o] of this.orphans) {
      if (o.expires > nowMs) break;
      this.orphans.delete(k);
      this.accountOrphans(o);
    }
  }

  /** Exports every flow (oldest first) and empties the table. */
  flushAll(reason: ExportReason = 'end-of-input'): void {
    for (const o of this.orphans.values()) this.accountOrphans(o);
    this.orphans.clear();
    this.fragments.clear();
    const all: number[] = [];
    for (let c = 0; c < CLASS_COUNT; c++) {
      for (let f = this.heads[c]!; f !== NONE; f = this.i32[f * STRIDE_I32 + I_NEXT]!) all.push(f);
    }
    const f64 = this.f64;
    all.sort((a, b) => f64[a * STRIDE_F64 + F_FIRST]! - f64[b * STRIDE_F64 + F_FIRST]!);
    for (const f of all) {
      // A closed TCP flow waiting out its linger is complete: keep its fin/rst reason.
      const closed = (this.i32[f * STRIDE_I32 + I_BITS]! & B_CLOSED) !== 0;
      this.finish(f, closed ? this.closeReasonOf(f) : reason);
    }
  }

  // ---- flow storage ----

  private growStorage(capacity: number): void {
    const buf = new ArrayBuffer(capacity * STRIDE_F64 * 8);
    const f64 = new Float64Array(buf);
    f64.set(this.f64);
    this.f64 = f64;
    this.i32 = new Int32Array(buf);
    const cold = new Int32Array(capacity * COLD_STRIDE);
    cold.set(this.cold);
    this.cold = cold;
    const free = new Int32Array(capacity);
    free.set(this.free.subarray(0, this.freeCount));
    this.free = free;
    this.capacity = capacity;
  }

  /** A new flow's index with its fields set; not yet in the index or a class list. */
  private allocate(
    proto: number,
    iIp: string,
    iKey: number,
    iPort: number,
    rIp: string,
    rKey: number,
    rPort: number,
    basis: number,
    first: number,
    icmpId: number,
  ): number {
    let f: number;
    if (this.freeCount > 0) {
      f = this.free[--this.freeCount]!;
      this.iIp[f] = iIp;
      this.rIp[f] = rIp;
      this.ids[f] = '';
      this.tunnels[f] = null;
      this.vlans[f] = null;
    } else {
      if (this.highWater === this.capacity) this.growStorage(this.capacity * 2);
      f = this.highWater++;
      this.iIp.push(iIp);
      this.rIp.push(rIp);
      this.ids.push('');
      this.tunnels.push(null);
      this.vlans.push(null);
    }
    this.count++;
    const d = f * STRIDE_F64;
    const f64 = this.f64;
    f64[d + F_LAST] = first;
    f64[d + F_QUEUED] = 0;
    f64[d + F_SLICE] = first;
    f64[d + F_PKT_FWD] = 0;
    f64[d + F_PKT_REV] = 0;
    f64[d + F_BYTES_FWD] = 0;
    f64[d + F_BYTES_REV] = 0;
    f64[d + F_IKEY] = iKey;
    f64[d + F_RKEY] = rKey;
    f64[d + F_FIRST] = first;
    const i = f * STRIDE_I32;
    const i32 = this.i32;
    i32[i + I_PREV] = NONE;
    i32[i + I_NEXT] = NONE;
    i32[i + I_CLS] = NONE;
    i32[i + I_STATE] = ST_ATTEMPTED;
    i32[i + I_FLAGS_FWD] = 0;
    i32[i + I_FLAGS_REV] = 0;
    i32[i + I_PROTO] = proto;
    i32[i + I_IPORT] = iPort;
    i32[i + I_RPORT] = rPort;
    i32[i + I_SLOT] = NONE;
    i32[i + I_BITS] = B_ALIVE;
    // I_GEN keeps counting across reuses of the index.
    const c = f * COLD_STRIDE;
    const cold = this.cold;
    cold[c + C_SEQ] = 0;
    cold[c + C_ICMP_TYPE] = -1;
    cold[c + C_ICMP_CODE] = -1;
    cold[c + C_ICMP_ID] = icmpId;
    cold[c + C_BASIS] = basis;
    cold[c + C_CLOSE_REASON] = CLOSE_FIN;
    return f;
  }

  private release(f: number): void {
    const i = f * STRIDE_I32;
    this.i32[i + I_BITS] = 0;
    this.i32[i + I_GEN] = (this.i32[i + I_GEN]! + 1) | 0;
    this.iIp[f] = '';
    this.rIp[f] = '';
    this.ids[f] = '';
    this.tunnels[f] = null;
    this.vlans[f] = null;
    this.free[this.freeCount++] = f;
    this.count--;
    if (this.lastFlow === f) this.lastFlow = NONE;
  }

  private isAlive(f: number, gen: number): boolean {
    const i = f * STRIDE_I32;
    return this.i32[i + I_GEN] === gen && (this.i32[i + I_BITS]! & B_ALIVE) !== 0;
  }

  private closeReasonOf(f: number): ExportReason {
    return CLOSE_NAMES[this.cold[f * COLD_STRIDE + C_CLOSE_REASON]!]!;
  }

  // ---- address keys and the index ----

  /** The key of an address if it has one (a dotted quad, or text some flow uses), else -1. */
  private addressKey(s: string): number {
    const v = parseIpv4(s);
    if (v >= 0) return v;
    const slot = this.addresses.get(s);
    return slot === undefined ? NONE : V4_LIMIT + slot.id;
  }

  /** The key of an address for a flow endpoint being added (an id is handed out when needed). */
  private holdAddress(s: string): number {
    const v = parseIpv4(s);
    if (v >= 0) return v;
    let slot = this.addresses.get(s);
    if (slot === undefined) {
      const id = this.freeAddressIds.length > 0 ? this.freeAddressIds.pop()! : this.nextAddressId++;
      slot = { id, refs: 0 };
      this.addresses.set(s, slot);
    }
    slot.refs++;
    return V4_LIMIT + slot.id;
  }

  private dropAddress(s: string, key: number): void {
    if (key < V4_LIMIT) return;
    const slot = this.addresses.get(s)!;
    if (--slot.refs === 0) {
      this.addresses.delete(s);
      this.freeAddressIds.push(slot.id);
    }
  }

  /**
   * The direction-free index key of an untunnelled flow, into keyA/keyB/keyPorts/keyProto (fields, not
   * an object: this runs for every packet). The lower endpoint comes first; flag bits tell a missing
   * port (-1) from port 0 and an address id from an IPv4 number.
   */
  private canonicalKey(proto: number, xKey: number, xPort: number, yKey: number, yPort: number): void {
    let a = xKey;
    let b = yKey;
    let aPort = xPort;
    let bPort = yPort;
    if (!(xKey < yKey || (xKey === yKey && xPort <= yPort))) {
      a = yKey;
      b = xKey;
      aPort = yPort;
      bPort = xPort;
    }
    this.keyA = a | 0;
    this.keyB = b | 0;
    this.keyPorts = ((aPort & 0xffff) << 16) | (bPort & 0xffff);
    this.keyProto =
      proto |
      (aPort < 0 ? 0x100 : 0) |
      (bPort < 0 ? 0x200 : 0) |
      (a >= V4_LIMIT ? 0x400 : 0) |
      (b >= V4_LIMIT ? 0x800 : 0);
  }

  /** The untunnelled flow with this key (either direction), or NONE. */
  private lookup(proto: number, sKey: number, sport: number, dKey: number, dport: number): number {
    if (sKey < 0 || dKey < 0) return NONE;
    this.canonicalKey(proto, sKey, sport, dKey, dport);
    const ai = this.keyA;
    const bi = this.keyB;
    const ports = this.keyPorts;
    const pr = this.keyProto;
    const mask = this.xmask;
    const x = this.index;
    let i = hashKey(ai, bi, ports, pr) & mask;
    for (;;) {
      const s = i * X_STRIDE;
      const f1 = x[s + X_FLOW]!;
      if (f1 === 0) return NONE;
      if (x[s + X_A] === ai && x[s + X_B] === bi && x[s + X_PORTS] === ports && x[s + X_PROTO] === pr)
        return f1 - 1;
      i = (i + 1) & mask;
    }
  }

  private find(
    proto: number,
    src: string,
    sport: number,
    dst: string,
    dport: number,
    tunnelType: string,
    tunnelId: number,
  ): number {
    if (tunnelType !== '') {
      const f = this.tunnelled.get(flowKey(proto, src, sport, dst, dport, tunnelType, tunnelId));
      return f === undefined ? NONE : f;
    }
    return this.lookup(proto, this.addressKey(src), sport, this.addressKey(dst), dport);
  }

  /** Puts a flow (fields set by allocate, tunnel info set) into the index. */
  private insert(f: number): void {
    const t = this.tunnels[f] ?? null;
    if (t !== null) {
      this.tunnelled.set(t.key, f);
      return;
    }
    const d = f * STRIDE_F64;
    const iKey = this.f64[d + F_IKEY]!;
    const rKey = this.f64[d + F_RKEY]!;
    const i = f * STRIDE_I32;
    const iPort = this.i32[i + I_IPORT]!;
    const rPort = this.i32[i + I_RPORT]!;
    const proto = this.i32[i + I_PROTO]!;
    this.canonicalKey(proto, iKey, iPort, rKey, rPort);
    const ai = this.keyA;
    const bi = this.keyB;
    const ports = this.keyPorts;
    const pr = this.keyProto;
    if (this.indexUsed + 1 > (this.xmask + 1) >>> 1) this.growIndex();
    const h = hashKey(ai, bi, ports, pr);
    const mask = this.xmask;
    const x = this.index;
    let j = h & mask;
    while (x[j * X_STRIDE + X_FLOW] !== 0) j = (j + 1) & mask;
    const s = j * X_STRIDE;
    x[s + X_A] = ai;
    x[s + X_B] = bi;
    x[s + X_PORTS] = ports;
    x[s + X_PROTO] = pr;
    x[s + X_FLOW] = f + 1;
    x[s + X_HASH] = h;
    this.i32[i + I_SLOT] = j;
    this.indexUsed++;
  }

  private unindex(f: number): void {
    const t = this.tunnels[f] ?? null;
    if (t !== null) {
      this.tunnelled.delete(t.key);
      return;
    }
    const mask = this.xmask;
    const x = this.index;
    const i32 = this.i32;
    let i = i32[f * STRIDE_I32 + I_SLOT]!;
    x[i * X_STRIDE + X_FLOW] = 0;
    this.indexUsed--;
    // Backward-shift deletion: pull later entries of the probe run into the hole when their home
    // slot allows it, so lookups never need tombstones.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const sj = j * X_STRIDE;
      const g1 = x[sj + X_FLOW]!;
      if (g1 === 0) break;
      const home = x[sj + X_HASH]! & mask;
      const between = i <= j ? i < home && home <= j : i < home || home <= j;
      if (between) continue;
      x.copyWithin(i * X_STRIDE, sj, sj + X_STRIDE);
      i32[(g1 - 1) * STRIDE_I32 + I_SLOT] = i;
      x[sj + X_FLOW] = 0;
      i = j;
    }
  }

  private growIndex(): void {
    const old = this.index;
    const n = (this.xmask + 1) * 2;
    const mask = n - 1;
    const x = new Int32Array(n * X_STRIDE);
    const i32 = this.i32;
    for (let s = 0; s < old.length; s += X_STRIDE) {
      const f1 = old[s + X_FLOW]!;
      if (f1 === 0) continue;
      let j = old[s + X_HASH]! & mask;
      while (x[j * X_STRIDE + X_FLOW] !== 0) j = (j + 1) & mask;
      const t = j * X_STRIDE;
      for (let k = 0; k < X_STRIDE; k++) x[t + k] = old[s + k]!;
      i32[(f1 - 1) * STRIDE_I32 + I_SLOT] = j;
    }
    this.index = x;
    this.xmask = mask;
  }

  // ---- packets ----

  private addPacket(p: DecodedPacket, proto: number, sport: number, dport: number, bytes: number): number {
    let sKey: number;
    let dKey: number;
    if (p.srcV4 >= 0 && p.dstV4 >= 0) {
      sKey = p.srcV4;
      dKey = p.dstV4;
    } else {
      sKey = this.addressKey(p.src);
      dKey = this.addressKey(p.dst);
    }
    const tunnelled = p.tunnelType !== '';
    // Packets come in trains: the previous packet's flow saves a lookup.
    const c = this.lastFlow;
    let f = NONE;
    if (c !== NONE && !tunnelled && this.tunnels[c] === null) {
      const ci = c * STRIDE_I32;
      const cd = c * STRIDE_F64;
      const i32 = this.i32;
      const f64 = this.f64;
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
        ? this.find(proto, p.src, sport, p.dst, dport, p.tunnelType, p.tunnelId)
        : this.lookup(proto, sKey, sport, dKey, dport);
    }
    if (
      f !== NONE &&
      proto === TCP &&
      (p.tcpFlags & (SYN | ACK)) === SYN &&
      (this.i32[f * STRIDE_I32 + I_BITS]! & B_CLOSED) !== 0
    ) {
      // A new SYN on a finished connection: the port pair is being reused for a new connection.
      this.finish(f, this.closeReasonOf(f));
      f = NONE;
    }
    if (f === NONE) {
      f = this.create(p, proto, sport, dport, sKey, dKey);
      if (sKey < 0 || dKey < 0 || sKey >= V4_LIMIT || dKey >= V4_LIMIT) {
        // Addresses other than dotted quads got their ids with the flow (see create).
        sKey = this.addressKey(p.src);
        dKey = this.addressKey(p.dst);
      }
    } else if (p.ts - this.f64[f * STRIDE_F64 + F_SLICE]! >= this.activeTimeout) {
      this.exportSlice(f, 'active-timeout');
      this.f64[f * STRIDE_F64 + F_SLICE] = p.ts;
    }
    const d = f * STRIDE_F64;
    const i = f * STRIDE_I32;
    const f64 = this.f64;
    const i32 = this.i32;
    const fwd = sKey === f64[d + F_IKEY] && (sport === i32[i + I_IPORT] || sKey !== f64[d + F_RKEY]);
    this.countPackets(f, fwd, 1, bytes, p.ts);
    if (proto === TCP) this.tcpTransition(f, p.tcpFlags, fwd);
    else if (!fwd && i32[i + I_STATE] === ST_ATTEMPTED) {
      i32[i + I_STATE] = ST_ESTABLISHED;
      const rPort = i32[i + I_RPORT]!;
      if (rPort >= 0 && hasPorts(proto)) this.learnListener(proto, f, rPort);
    }
    this.touch(f);
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
    if (this.count >= this.maxFlows) this.evictOldest();
    if (Number.isNaN(this.inputStart)) this.inputStart = p.ts;
    let srcInitiates = true;
    let basis = BASIS_FIRST_PACKET;
    let continued = false;
    let state = ST_ATTEMPTED;
    if (proto === TCP) {
      const syn = p.tcpFlags & (SYN | ACK);
      if (syn === SYN) {
        basis = BASIS_HANDSHAKE;
      } else if (syn === (SYN | ACK)) {
        basis = BASIS_HANDSHAKE;
        srcInitiates = false;
        state = ST_ESTABLISHED;
      } else {
        continued = true;
        basis = this.byPorts(proto, p.src, sKey, sport, p.dst, dKey, dport);
        srcInitiates = this.byPortsSrcInitiates;
      }
    } else if (proto === ICMP || proto === ICMPV6) {
      const t = p.icmpType;
      const req = proto === ICMP ? ICMP4_REQUEST : ICMP6_REQUEST;
      const rep = proto === ICMP ? ICMP4_REPLY : ICMP6_REPLY;
      if (req.has(t)) basis = BASIS_ICMP_TYPE;
      else if (rep.has(t)) {
        basis = BASIS_ICMP_TYPE;
        srcInitiates = false;
      }
    } else if (sport >= 0 && dport >= 0) {
      basis = this.byPorts(proto, p.src, sKey, sport, p.dst, dKey, dport);
      srcInitiates = this.byPortsSrcInitiates;
      // Without a handshake, the first packet seen is the first packet sent only if the conversation
      // could not have been going on before the observation began: it would have timed out since.
      const timeout = this.timeouts[proto === UDP ? CLS_UDP : CLS_OTHER]!;
      if (p.ts - this.inputStart < timeout) continued = true;
    }
    // A dotted quad's key needs no bookkeeping; other addresses are counted (and may have lost their
    // id if evictOldest ended the flow that held it).
    const sHeld = sKey >= 0 && sKey < V4_LIMIT ? sKey : this.holdAddress(p.src);
    const dHeld = dKey >= 0 && dKey < V4_LIMIT ? dKey : this.holdAddress(p.dst);
    const f = srcInitiates
      ? this.allocate(proto, p.src, sHeld, sport, p.dst, dHeld, dport, basis, p.ts, p.icmpId)
      : this.allocate(proto, p.dst, dHeld, dport, p.src, sHeld, sport, basis, p.ts, p.icmpId);
    const i = f * STRIDE_I32;
    this.i32[i + I_STATE] = state;
    if (continued) this.i32[i + I_BITS]! |= B_CONTINUED;
    if (proto === ICMP || proto === ICMPV6) {
      this.cold[f * COLD_STRIDE + C_ICMP_TYPE] = p.icmpType;
      this.cold[f * COLD_STRIDE + C_ICMP_CODE] = p.icmpCode;
    }
    if (p.tunnelType !== '') {
      const iIp = this.iIp[f]!;
      const rIp = this.rIp[f]!;
      this.tunnels[f] = {
        type: p.tunnelType,
        id: p.tunnelId,
        // The outer addresses oriented like the inner flow: the initiator's tunnel endpoint first.
        src: srcInitiates ? p.tunnelSrc : p.tunnelDst,
        dst: srcInitiates ? p.tunnelDst : p.tunnelSrc,
        port: p.tunnelPort,
        key: flowKey(
          proto,
          iIp,
          this.i32[i + I_IPORT]!,
          rIp,
          this.i32[i + I_RPORT]!,
          p.tunnelType,
          p.tunnelId,
        ),
      };
    }
    if (p.vlans.length > 0) this.vlans[f] = p.vlans.slice();
    if (state === ST_ESTABLISHED && proto === TCP) this.learnListener(proto, f, this.i32[i + I_RPORT]!);
    this.insert(f);
    this.stats.flowsCreated++;
    this.stats.active = this.count;
    return f;
  }

  /** Second result of byPorts. */
  private byPortsSrcInitiates = true;

  /**
   * Who initiated a flow whose start was not seen: a known listener, else a well-known port, else
   * the sender. Returns the basis; whether the source initiates is left in byPortsSrcInitiates.
   */
  private byPorts(
    proto: number,
    src: string,
    sKey: number,
    sport: number,
    dst: string,
    dKey: number,
    dport: number,
  ): number {
    const dstListens = this.listens(proto, dst, dKey, dport);
    const srcListens = this.listens(proto, src, sKey, sport);
    if (dstListens !== srcListens) {
      this.byPortsSrcInitiates = dstListens;
      return BASIS_LISTENING_PORT;
    }
    const dstWellKnown = dport < 1024;
    const srcWellKnown = sport < 1024;
    if (dstWellKnown !== srcWellKnown) {
      this.byPortsSrcInitiates = dstWellKnown;
      return BASIS_WELL_KNOWN_PORT;
    }
    this.byPortsSrcInitiates = true;
    return BASIS_FIRST_PACKET;
  }

  /** An IPv4 TCP/UDP/SCTP endpoint as one number (address, protocol, port + 1), else -1. */
  private listenerNumber(proto: number, key: number, port: number): number {
    if (key < 0 || key >= V4_LIMIT || port < -1 || port > 0xffff) return NONE;
    const pc = proto === TCP ? 0 : proto === UDP ? 1 : proto === SCTP ? 2 : -1;
    if (pc < 0) return NONE;
    return key * 524288 + pc * 131072 + port + 1;
  }

  private listens(proto: number, ip: string, key: number, port: number): boolean {
    const n = this.listenerNumber(proto, key, port);
    return n >= 0 ? this.listeners.has(n) : this.listenerTexts.has(`${proto}|${ip}|${port}`);
  }

  /** Remembers flow f's responder endpoint as a listener. */
  private learnListener(proto: number, f: number, port: number): void {
    if (this.listeners.size + this.listenerTexts.size >= MAX_LISTENERS) {
      this.listeners.clear();
      this.listenerTexts.clear();
    }
    const n = this.listenerNumber(proto, this.f64[f * STRIDE_F64 + F_RKEY]!, port);
    if (n >= 0) this.listeners.add(n);
    else this.listenerTexts.add(`${proto}|${this.rIp[f]!}|${port}`);
  }

  private tcpTransition(f: number, flags: number, fwd: boolean): void {
    const i = f * STRIDE_I32;
    const i32 = this.i32;
    if (fwd) i32[i + I_FLAGS_FWD]! |= flags;
    else i32[i + I_FLAGS_REV]! |= flags;
    let bits = i32[i + I_BITS]!;
    if (bits & B_CLOSED) return;
    const state = i32[i + I_STATE]!;
    if (flags & RST) {
      if (state === ST_ATTEMPTED && !fwd && i32[i + I_FLAGS_FWD]! & SYN) {
        i32[i + I_STATE] = ST_REJECTED;
      } else if (state === ST_ESTABLISHED) {
        i32[i + I_STATE] = ST_CLOSED;
      }
      this.cold[f * COLD_STRIDE + C_CLOSE_REASON] = CLOSE_RST;
      i32[i + I_BITS] = bits | B_CLOSED;
      return;
    }
    if (!fwd && state === ST_ATTEMPTED) {
      i32[i + I_STATE] = ST_ESTABLISHED;
      const rPort = i32[i + I_RPORT]!;
      if (rPort >= 0) this.learnListener(TCP, f, rPort);
    }
    if (flags & FIN) {
      bits |= fwd ? B_FIN_FWD : B_FIN_REV;
      if ((bits & (B_FIN_FWD | B_FIN_REV)) === (B_FIN_FWD | B_FIN_REV)) {
        if (i32[i + I_STATE] === ST_ESTABLISHED) i32[i + I_STATE] = ST_CLOSED;
        this.cold[f * COLD_STRIDE + C_CLOSE_REASON] = CLOSE_FIN;
        bits |= B_CLOSED;
      }
      i32[i + I_BITS] = bits;
    }
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
    const f = this.find(qp, qs, ps, qd, pd, p.tunnelType, p.tunnelId);
    if (f === NONE) return false;
    this.stats.icmpErrorsMatched++;
    const i = f * STRIDE_I32;
    const i32 = this.i32;
    const quotedWasFwd = qs === this.iIp[f] && (ps === i32[i + I_IPORT] || qs !== this.rIp[f]);
    // The error travels against the packet it quotes.
    this.countPackets(f, !quotedWasFwd, 1, bytes, p.ts);
    if (quotedWasFwd && isUnreachable(p.proto, p.icmpType) && i32[i + I_STATE] === ST_ATTEMPTED) {
      i32[i + I_STATE] = ST_REJECTED;
      if (i32[i + I_PROTO] === TCP) {
        this.cold[f * COLD_STRIDE + C_CLOSE_REASON] = CLOSE_RST;
        i32[i + I_BITS]! |= B_CLOSED;
      }
    }
    this.touch(f);
    return true;
  }

  // ---- fragments ----

  private fragmentKey(p: DecodedPacket): string {
    return `${p.src}|${p.dst}|${p.proto}|${p.fragId}|${p.tunnelType}|${p.tunnelId}`;
  }

  private rememberFirstFragment(p: DecodedPacket, f: number): void {
    const k = this.fragmentKey(p);
    this.fragments.delete(k); // re-insert so the map stays in expiry order
    if (this.fragments.size >= MAX_FRAGMENT_ENTRIES) {
      const oldest = this.fragments.keys().next().value;
      if (oldest !== undefined) this.fragments.delete(oldest);
    }
    this.fragments.set(k, {
      flow: f,
      gen: this.i32[f * STRIDE_I32 + I_GEN]!,
      expires: p.ts + FRAGMENT_TIMEOUT_MS,
    });
    const o = this.orphans.get(k);
    if (o !== undefined) {
      // Later fragments that arrived before their first fragment.
      this.orphans.delete(k);
      this.countPackets(f, o.src === this.iIp[f], o.packets, o.bytes, o.last);
      const d = f * STRIDE_F64;
      if (o.first < this.f64[d + F_SLICE]! && this.cold[f * COLD_STRIDE + C_SEQ] === 0)
        this.f64[d + F_SLICE] = o.first;
      this.stats.fragmentsMatched += o.packets;
    }
  }

  /** Counts packets and bytes in one direction of flow f; `ts` is when the last of them was seen. */
  private countPackets(f: number, fwd: boolean, packets: number, bytes: number, ts: number): void {
    const d = f * STRIDE_F64;
    const f64 = this.f64;
    if (fwd) {
      f64[d + F_PKT_FWD] += packets;
      f64[d + F_BYTES_FWD] += bytes;
    } else {
      f64[d + F_PKT_REV] += packets;
      f64[d + F_BYTES_REV] += bytes;
    }
    if (ts > f64[d + F_LAST]!) f64[d + F_LAST] = ts;
  }

  private addLaterFragment(p: DecodedPacket, bytes: number): void {
    const k = this.fragmentKey(p);
    const e = this.fragments.get(k);
    if (e !== undefined && this.isAlive(e.flow, e.gen)) {
      const f = e.flow;
      this.stats.fragmentsMatched++;
      this.countPackets(f, p.src === this.iIp[f], 1, bytes, p.ts);
      this.touch(f);
      return;
    }
    let o = this.orphans.get(k);
    if (o === undefined) {
      if (this.orphans.size >= MAX_FRAGMENT_ENTRIES) {
        const [oldestKey, oldest] = this.orphans.entries().next().value!;
        this.orphans.delete(oldestKey);
        this.accountOrphans(oldest);
      }
      o = {
        src: p.src,
        dst: p.dst,
        proto: p.proto,
        first: p.ts,
        last: p.ts,
        packets: 0,
        bytes: 0,
        tunnelType: p.tunnelType,
        tunnelId: p.tunnelId,
        expires: p.ts + FRAGMENT_TIMEOUT_MS,
      };
      this.orphans.set(k, o);
    }
    o.packets++;
    o.bytes += bytes;
    if (p.ts > o.last) o.last = p.ts;
    if (p.ts < o.first) o.first = p.ts;
  }

  /** Fragments whose first fragment never came: a port-less flow of their address pair takes them. */
  private accountOrphans(o: OrphanFragments): void {
    this.stats.fragmentsOrphaned += o.packets;
    let f = this.find(o.proto, o.src, -1, o.dst, -1, o.tunnelType, o.tunnelId);
    if (f === NONE) {
      if (this.count >= this.maxFlows) this.evictOldest();
      const sHeld = this.holdAddress(o.src);
      const dHeld = this.holdAddress(o.dst);
      f = this.allocate(o.proto, o.src, sHeld, -1, o.dst, dHeld, -1, BASIS_FIRST_PACKET, o.first, -1);
      if (o.tunnelType !== '') {
        this.tunnels[f] = {
          type: o.tunnelType,
          id: o.tunnelId,
          src: '',
          dst: '',
          port: -1,
          key: flowKey(o.proto, o.src, -1, o.dst, -1, o.tunnelType, o.tunnelId),
        };
      }
      this.insert(f);
      this.stats.flowsCreated++;
      this.stats.active = this.count;
    }
    const d = f * STRIDE_F64;
    const i = f * STRIDE_I32;
    const f64 = this.f64;
    if (o.src === this.iIp[f]) {
      f64[d + F_PKT_FWD] += o.packets;
      f64[d + F_BYTES_FWD] += o.bytes;
    } else {
      f64[d + F_PKT_REV] += o.packets;
      f64[d + F_BYTES_REV] += o.bytes;
      if (this.i32[i + I_STATE] === ST_ATTEMPTED) this.i32[i + I_STATE] = ST_ESTABLISHED;
    }
    if (o.last > f64[d + F_LAST]!) f64[d + F_LAST] = o.last;
    this.touch(f);
  }

  // ---- LRU lists and export ----

  private classOf(f: number): number {
    const i = f * STRIDE_I32;
    const proto = this.i32[i + I_PROTO]!;
    if (proto === TCP) {
      if (this.i32[i + I_BITS]! & B_CLOSED) return CLS_TCP_CLOSED;
      return this.i32[i + I_STATE] === ST_ESTABLISHED ? CLS_TCP_EST : CLS_TCP_UNANSWERED;
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
  private touch(f: number): void {
    const c = this.classOf(f);
    const now = this.now;
    const i = f * STRIDE_I32;
    const d = f * STRIDE_F64;
    const i32 = this.i32;
    const cls = i32[i + I_CLS]!;
    if (cls === c) {
      if (now - this.f64[d + F_QUEUED]! < TOUCH_GRANULARITY_MS) return;
      this.f64[d + F_QUEUED] = now;
      if (this.tails[c] === f) return;
      this.unlink(f);
    } else if (cls >= 0) {
      this.unlink(f);
    }
    i32[i + I_CLS] = c;
    this.f64[d + F_QUEUED] = now;
    const t = this.tails[c]!;
    i32[i + I_PREV] = t;
    i32[i + I_NEXT] = NONE;
    if (t === NONE) this.heads[c] = f;
    else i32[t * STRIDE_I32 + I_NEXT] = f;
    this.tails[c] = f;
  }

  private unlink(f: number): void {
    const i32 = this.i32;
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

  private evictOldest(): void {
    let oldest = NONE;
    let oldestQueued = 0;
    for (let c = 0; c < CLASS_COUNT; c++) {
      const h = this.heads[c]!;
      if (h === NONE) continue;
      const q = this.f64[h * STRIDE_F64 + F_QUEUED]!;
      if (oldest === NONE || q < oldestQueued) {
        oldest = h;
        oldestQueued = q;
      }
    }
    if (oldest !== NONE) {
      this.stats.evicted++;
      this.finish(oldest, 'evicted');
    }
  }

  private finish(f: number, reason: ExportReason): void {
    const i = f * STRIDE_I32;
    if (this.i32[i + I_CLS]! >= 0) this.unlink(f);
    this.i32[i + I_CLS] = NONE;
    this.i32[i + I_BITS]! &= ~B_ALIVE;
    this.unindex(f);
    const d = f * STRIDE_F64;
    this.dropAddress(this.iIp[f]!, this.f64[d + F_IKEY]!);
    this.dropAddress(this.rIp[f]!, this.f64[d + F_RKEY]!);
    this.stats.active = this.count - 1;
    this.exportSlice(f, reason);
    this.release(f);
  }

  private exportSlice(f: number, reason: ExportReason): void {
    const d = f * STRIDE_F64;
    const i = f * STRIDE_I32;
    const c = f * COLD_STRIDE;
    const f64 = this.f64;
    const i32 = this.i32;
    const cold = this.cold;
    const proto = i32[i + I_PROTO]!;
    const iIp = this.iIp[f]!;
    const rIp = this.rIp[f]!;
    const iPort = i32[i + I_IPORT]!;
    const rPort = i32[i + I_RPORT]!;
    const t = this.tunnels[f] ?? null;
    let id = this.ids[f]!;
    if (id === '') {
      id = flowHash(
        `${flowKey(proto, iIp, iPort, rIp, rPort, t === null ? '' : t.type, t === null ? -1 : t.id)}|${f64[d + F_FIRST]}`,
      );
      this.ids[f] = id;
    }
    const seq = cold[c + C_SEQ]!;
    const rec: FlowRecord = {
      v: 1,
      start: f64[d + F_SLICE]!,
      end: f64[d + F_LAST]!,
      proto: protocolValue(proto),
      src: iPort >= 0 && hasPorts(proto) ? { ip: iIp, port: iPort } : { ip: iIp },
      dst: rPort >= 0 && hasPorts(proto) ? { ip: rIp, port: rPort } : { ip: rIp },
      packets: { fwd: f64[d + F_PKT_FWD]!, rev: f64[d + F_PKT_REV]! },
      bytes: { fwd: f64[d + F_BYTES_FWD]!, rev: f64[d + F_BYTES_REV]! },
      state: STATE_NAMES[i32[i + I_STATE]!]!,
      observer: this.observer,
      id,
      seq,
      initiator: BASIS_NAMES[cold[c + C_BASIS]!]!,
      reason,
    };
    if (proto === TCP) rec.tcpFlags = { fwd: i32[i + I_FLAGS_FWD]!, rev: i32[i + I_FLAGS_REV]! };
    const icmpType = cold[c + C_ICMP_TYPE]!;
    if (icmpType >= 0) {
      const icmpId = cold[c + C_ICMP_ID]!;
      const icmpCode = cold[c + C_ICMP_CODE]!;
      rec.icmp =
        icmpId >= 0
          ? { type: icmpType, code: icmpCode, id: icmpId }
          : { type: icmpType, code: Math.max(0, icmpCode) };
    }
    if (t !== null) {
      const tunnel: NonNullable<FlowRecord['tunnel']> = {
        type: t.type as NonNullable<FlowRecord['tunnel']>['type'],
        src: t.src,
        dst: t.dst,
      };
      if (t.id >= 0) {
        if (t.type === 'gre') tunnel.key = t.id;
        else tunnel.vni = t.id;
      }
      if (t.port >= 0) tunnel.port = t.port;
      rec.tunnel = tunnel;
    }
    const vlans = this.vlans[f] ?? null;
    if (vlans !== null) rec.vlan = vlans;
    if (i32[i + I_BITS]! & B_CONTINUED) rec.continued = true;
    cold[c + C_SEQ] = seq + 1;
    f64[d + F_PKT_FWD] = 0;
    f64[d + F_PKT_REV] = 0;
    f64[d + F_BYTES_FWD] = 0;
    f64[d + F_BYTES_REV] = 0;
    i32[i + I_FLAGS_FWD] = 0;
    i32[i + I_FLAGS_REV] = 0;
    this.stats.recordsExported++;
    this.onExport(rec);
  }
}

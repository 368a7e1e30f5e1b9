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
export const FRAGMENT_TIMEOUT_MS = 30_000;
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

class Flow {
  prev: Flow | null = null;
  next: Flow | null = null;
  cls = -1;
  /** Capture time the flow was last moved to the tail of its class list. */
  queued = 0;
  alive = true;
  id = '';
  seq = 0;
  packetsFwd = 0;
  packetsRev = 0;
  bytesFwd = 0;
  bytesRev = 0;
  flagsFwd = 0;
  flagsRev = 0;
  finFwd = false;
  /** TCP finished (FIN both ways, RST, or rejected): lingers in the closed list. */
  closed = false;
  finRev = false;
  closeReason: ExportReason = 'fin';
  sliceStart: number;
  last: number;
  state: State = 'attempted';
  continued = false;
  /** First ICMP type/code of the flow (-1 when not ICMP). */
  icmpType = -1;
  icmpCode = -1;
  tunnelSrc = '';
  tunnelDst = '';
  tunnelPort = -1;
  vlans: number[] | null = null;

  /** Where FlowIndex keeps the flow (see there). */
  slot = -1;
  tunnelKey = '';
  srcSlot: AddressSlot | null = null;
  dstSlot: AddressSlot | null = null;

  constructor(
    readonly proto: number,
    readonly iIp: string,
    readonly iPort: number,
    readonly rIp: string,
    readonly rPort: number,
    readonly basis: InitiatorBasis,
    readonly first: number,
    readonly tunnelType: DecodedPacket['tunnelType'],
    readonly tunnelId: number,
    /** ICMP echo identifier carried in the key (-1 otherwise). */
    readonly icmpId: number,
  ) {
    this.sliceStart = first;
    this.last = first;
  }
}

interface FragmentEntry {
  flow: Flow;
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
 * lookups go through FlowIndex's numeric table.
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

interface AddressSlot {
  id: number;
  /** Flows in the table with this address on either side. */
  refs: number;
}

/**
 * The table's index: both directions of a conversation find the same flow. A string key per packet
 * (build, flatten, hash) dominated the collector's profile, and so did boxed numeric keys in nested
 * Maps. So addresses get small integer ids (the decoder hands out the same string object for a
 * repeated address, whose hash V8 caches) and flows live in an open-addressing hash table over
 * typed arrays: lookups allocate nothing and touch one probe run plus the flow. Tunnelled packets
 * (rare on a node, keyed by tunnel identity too) use a Map with a string key.
 */
class FlowIndex {
  private readonly addresses = new Map<string, AddressSlot>();
  private readonly freeIds: number[] = [];
  private nextId = 0;
  private readonly tunnelled = new Map<string, Flow>();
  // Open addressing, linear probing, backward-shift deletion. Per slot: the two address ids (lower
  // endpoint first), both ports (16 bits each) and protocol | port-less flags, and the hash.
  private mask = (1 << 14) - 1;
  private slots: (Flow | null)[] = new Array(1 << 14).fill(null);
  private keyA = new Int32Array(1 << 14);
  private keyB = new Int32Array(1 << 14);
  private keyPorts = new Int32Array(1 << 14);
  private keyProto = new Int32Array(1 << 14);
  private hashes = new Int32Array(1 << 14);
  private used = 0;
  size = 0;

  find(
    proto: number,
    src: string,
    sport: number,
    dst: string,
    dport: number,
    tunnelType: string,
    tunnelId: number,
  ): Flow | undefined {
    if (tunnelType !== '')
      return this.tunnelled.get(flowKey(proto, src, sport, dst, dport, tunnelType, tunnelId));
    const sa = this.addresses.get(src);
    if (sa === undefined) return undefined;
    const sb = this.addresses.get(dst);
    if (sb === undefined) return undefined;
    let a: number;
    let b: number;
    let ports: number;
    let pr: number;
    if (sa.id < sb.id || (sa.id === sb.id && sport <= dport)) {
      a = sa.id;
      b = sb.id;
      ports = ((sport & 0xffff) << 16) | (dport & 0xffff);
      pr = proto | (sport < 0 ? 0x100 : 0) | (dport < 0 ? 0x200 : 0);
    } else {
      a = sb.id;
      b = sa.id;
      ports = ((dport & 0xffff) << 16) | (sport & 0xffff);
      pr = proto | (dport < 0 ? 0x100 : 0) | (sport < 0 ? 0x200 : 0);
    }
    const mask = this.mask;
    let i = hashKey(a, b, ports, pr) & mask;
    const slots = this.slots;
    for (;;) {
      const f = slots[i]!;
      if (f === null) return undefined;
      if (this.keyA[i] === a && this.keyB[i] === b && this.keyPorts[i] === ports && this.keyProto[i] === pr)
        return f;
      i = (i + 1) & mask;
    }
  }

  insert(f: Flow): void {
    this.size++;
    if (f.tunnelType !== '') {
      f.tunnelKey = flowKey(f.proto, f.iIp, f.iPort, f.rIp, f.rPort, f.tunnelType, f.tunnelId);
      this.tunnelled.set(f.tunnelKey, f);
      return;
    }
    const sa = this.slot(f.iIp);
    sa.refs++;
    const sb = this.slot(f.rIp);
    sb.refs++;
    f.srcSlot = sa;
    f.dstSlot = sb;
    if (this.used + 1 > (this.mask + 1) >>> 1) this.grow();
    this.place(f);
    this.used++;
  }

  remove(f: Flow): void {
    this.size--;
    if (f.tunnelType !== '') {
      this.tunnelled.delete(f.tunnelKey);
      return;
    }
    const mask = this.mask;
    const slots = this.slots;
    let i = f.slot;
    slots[i] = null;
    this.used--;
    // Backward-shift deletion: pull later entries of the probe run into the hole when their home
    // slot allows it, so lookups never need tombstones.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const g = slots[j]!;
      if (g === null) break;
      const home = this.hashes[j]! & mask;
      const between = i <= j ? i < home && home <= j : i < home || home <= j;
      if (between) continue;
      slots[i] = g;
      this.keyA[i] = this.keyA[j]!;
      this.keyB[i] = this.keyB[j]!;
      this.keyPorts[i] = this.keyPorts[j]!;
      this.keyProto[i] = this.keyProto[j]!;
      this.hashes[i] = this.hashes[j]!;
      g.slot = i;
      slots[j] = null;
      i = j;
    }
    this.release(f.iIp, f.srcSlot!);
    this.release(f.rIp, f.dstSlot!);
    f.srcSlot = null;
    f.dstSlot = null;
  }

  /** Writes f into the first free slot of its probe run (the caller keeps the load factor <= 1/2). */
  private place(f: Flow): void {
    const sa = f.srcSlot!;
    const sb = f.dstSlot!;
    let a: number;
    let b: number;
    let ports: number;
    let pr: number;
    if (sa.id < sb.id || (sa.id === sb.id && f.iPort <= f.rPort)) {
      a = sa.id;
      b = sb.id;
      ports = ((f.iPort & 0xffff) << 16) | (f.rPort & 0xffff);
      pr = f.proto | (f.iPort < 0 ? 0x100 : 0) | (f.rPort < 0 ? 0x200 : 0);
    } else {
      a = sb.id;
      b = sa.id;
      ports = ((f.rPort & 0xffff) << 16) | (f.iPort & 0xffff);
      pr = f.proto | (f.rPort < 0 ? 0x100 : 0) | (f.iPort < 0 ? 0x200 : 0);
    }
    const h = hashKey(a, b, ports, pr);
    const mask = this.mask;
    let i = h & mask;
    while (this.slots[i] !== null) i = (i + 1) & mask;
    this.slots[i] = f;
    this.keyA[i] = a;
    this.keyB[i] = b;
    this.keyPorts[i] = ports;
    this.keyProto[i] = pr;
    this.hashes[i] = h;
    f.slot = i;
  }

  private grow(): void {
    const old = this.slots;
    const n = old.length * 2;
    this.mask = n - 1;
    this.slots = new Array(n).fill(null);
    this.keyA = new Int32Array(n);
    this.keyB = new Int32Array(n);
    this.keyPorts = new Int32Array(n);
    this.keyProto = new Int32Array(n);
    this.hashes = new Int32Array(n);
    for (const f of old) if (f !== null) this.place(f);
  }

  private slot(address: string): AddressSlot {
    let s = this.addresses.get(address);
    if (s === undefined) {
      const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.nextId++;
      s = { id, refs: 0 };
      this.addresses.set(address, s);
    }
    return s;
  }

  private release(address: string, s: AddressSlot): void {
    if (--s.refs === 0) {
      this.addresses.delete(address);
      this.freeIds.push(s.id);
    }
  }
}

/** Mixes the four key words (murmur3-style finalizer); the caller masks it to the table size. */
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
  private readonly flows = new FlowIndex();
  /** One LRU list per idle class, least recently seen at the head. */
  private readonly heads: (Flow | null)[] = new Array(CLASS_COUNT).fill(null);
  private readonly tails: (Flow | null)[] = new Array(CLASS_COUNT).fill(null);
  private readonly timeouts: number[];
  private readonly activeTimeout: number;
  private readonly maxFlows: number;
  private readonly wireBytes: boolean;
  private readonly observer: FlowObserver;
  private readonly onExport: (r: FlowRecord) => void;
  /** `proto|ip|port` of endpoints seen answering: they are servers for later mid-stream flows. */
  private readonly listeners = new Set<string>();
  private readonly fragments = new Map<string, FragmentEntry>();
  private readonly orphans = new Map<string, OrphanFragments>();
  private nextExpire = Number.NEGATIVE_INFINITY;
  private lastFlow: Flow | null = null;
  private now = 0;

  constructor(opts: FlowTableOptions) {
    this.timeouts = classTimeouts(opts);
    this.activeTimeout = opts.activeTimeoutMs ?? DEFAULT_ACTIVE_TIMEOUT_MS;
    this.maxFlows = Math.max(1, opts.maxFlows ?? DEFAULT_MAX_FLOWS);
    this.wireBytes = opts.bytes === 'wire';
    this.observer = { ...opts.observer };
    this.onExport = opts.onExport;
  }

  get size(): number {
    return this.flows.size;
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
      let f: Flow | null = this.heads[c]!;
      // Ordered by `queued`; a head seen again since it was queued ends the scan (see touch()).
      while (f !== null && f.last <= limit) {
        const next: Flow | null = f.next;
        this.finish(f, c === CLS_TCP_CLOSED ? f.closeReason : 'idle-timeout');
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
    const all: Flow[] = [];
    for (let c = 0; c < CLASS_COUNT; c++) {
      for (let f: Flow | null = this.heads[c]!; f !== null; f = f.next) all.push(f);
    }
    all.sort((a, b) => a.first - b.first);
    for (const f of all) {
      // A closed TCP flow waiting out its linger is complete: keep its fin/rst reason.
      this.finish(f, f.closed ? f.closeReason : reason);
    }
  }

  // ---- packets ----

  private addPacket(p: DecodedPacket, proto: number, sport: number, dport: number, bytes: number): Flow {
    const src = p.src;
    const dst = p.dst;
    // Packets come in trains: the previous packet's flow saves building and hashing a key.
    const c = this.lastFlow;
    let f: Flow | undefined;
    if (
      c?.alive &&
      c.proto === proto &&
      c.tunnelId === p.tunnelId &&
      c.tunnelType === p.tunnelType &&
      ((c.iPort === sport && c.rPort === dport && c.iIp === src && c.rIp === dst) ||
        (c.iPort === dport && c.rPort === sport && c.iIp === dst && c.rIp === src))
    ) {
      f = c;
    } else {
      f = this.flows.find(proto, src, sport, dst, dport, p.tunnelType, p.tunnelId);
    }
    if (f !== undefined && proto === TCP && (p.tcpFlags & (SYN | ACK)) === SYN && f.closed) {
      // A new SYN on a finished connection: the port pair is being reused for a new connection.
      this.finish(f, f.closeReason);
      f = undefined;
    }
    if (f === undefined) {
      f = this.create(p, proto, sport, dport);
    } else if (p.ts - f.sliceStart >= this.activeTimeout) {
      this.exportSlice(f, 'active-timeout');
      f.sliceStart = p.ts;
    }
    const fwd = src === f.iIp && (sport === f.iPort || src !== f.rIp);
    if (fwd) {
      f.packetsFwd++;
      f.bytesFwd += bytes;
    } else {
      f.packetsRev++;
      f.bytesRev += bytes;
    }
    if (p.ts > f.last) f.last = p.ts;
    if (proto === TCP) this.tcpTransition(f, p.tcpFlags, fwd);
    else if (!fwd && f.state === 'attempted') {
      f.state = 'established';
      if (f.rPort >= 0 && hasPorts(proto)) this.learnListener(proto, f.rIp, f.rPort);
    }
    this.touch(f);
    this.lastFlow = f;
    return f;
  }

  private create(p: DecodedPacket, proto: number, sport: number, dport: number): Flow {
    if (this.flows.size >= this.maxFlows) this.evictOldest();
    let srcInitiates = true;
    let basis: InitiatorBasis = 'first-packet';
    let continued = false;
    let state: State = 'attempted';
    if (proto === TCP) {
      const syn = p.tcpFlags & (SYN | ACK);
      if (syn === SYN) {
        basis = 'handshake';
      } else if (syn === (SYN | ACK)) {
        basis = 'handshake';
        srcInitiates = false;
        state = 'established';
      } else {
        continued = true;
        ({ srcInitiates, basis } = this.byPorts(proto, p.src, sport, p.dst, dport));
      }
    } else if (proto === ICMP || proto === ICMPV6) {
      const t = p.icmpType;
      const req = proto === ICMP ? ICMP4_REQUEST : ICMP6_REQUEST;
      const rep = proto === ICMP ? ICMP4_REPLY : ICMP6_REPLY;
      if (req.has(t)) basis = 'icmp-type';
      else if (rep.has(t)) {
        basis = 'icmp-type';
        srcInitiates = false;
      }
    } else if (sport >= 0 && dport >= 0) {
      ({ srcInitiates, basis } = this.byPorts(proto, p.src, sport, p.dst, dport));
    }
    const f = srcInitiates
      ? new Flow(proto, p.src, sport, p.dst, dport, basis, p.ts, p.tunnelType, p.tunnelId, p.icmpId)
      : new Flow(proto, p.dst, dport, p.src, sport, basis, p.ts, p.tunnelType, p.tunnelId, p.icmpId);
    f.state = state;
    f.continued = continued;
    if (proto === ICMP || proto === ICMPV6) {
      f.icmpType = p.icmpType;
      f.icmpCode = p.icmpCode;
    }
    if (p.tunnelType !== '') {
      // The outer addresses oriented like the inner flow: the initiator's tunnel endpoint first.
      f.tunnelSrc = srcInitiates ? p.tunnelSrc : p.tunnelDst;
      f.tunnelDst = srcInitiates ? p.tunnelDst : p.tunnelSrc;
      f.tunnelPort = p.tunnelPort;
    }
    if (p.vlans.length > 0) f.vlans = p.vlans.slice();
    if (state === 'established' && proto === TCP) this.learnListener(proto, f.rIp, f.rPort);
    this.flows.insert(f);
    this.stats.flowsCreated++;
    this.stats.active = this.flows.size;
    return f;
  }

  /** Who initiated a flow whose start was not seen: a known listener, else a well-known port, else the sender. */
  private byPorts(
    proto: number,
    src: string,
    sport: number,
    dst: string,
    dport: number,
  ): { srcInitiates: boolean; basis: InitiatorBasis } {
    const dstListens = this.listeners.has(`${proto}|${dst}|${dport}`);
    const srcListens = this.listeners.has(`${proto}|${src}|${sport}`);
    if (dstListens !== srcListens) return { srcInitiates: dstListens, basis: 'listening-port' };
    const dstWellKnown = dport < 1024;
    const srcWellKnown = sport < 1024;
    if (dstWellKnown !== srcWellKnown) return { srcInitiates: dstWellKnown, basis: 'well-known-port' };
    return { srcInitiates: true, basis: 'first-packet' };
  }

  private learnListener(proto: number, ip: string, port: number): void {
    if (this.listeners.size >= MAX_LISTENERS) this.listeners.clear();
    this.listeners.add(`${proto}|${ip}|${port}`);
  }

  private tcpTransition(f: Flow, flags: number, fwd: boolean): void {
    if (fwd) f.flagsFwd |= flags;
    else f.flagsRev |= flags;
    if (f.closed) return;
    if (flags & RST) {
      if (f.state === 'attempted' && !fwd && f.flagsFwd & SYN) {
        f.state = 'rejected';
      } else if (f.state === 'established') {
        f.state = 'closed';
      }
      f.closeReason = 'rst';
      f.closed = true;
      return;
    }
    if (!fwd && f.state === 'attempted') {
      f.state = 'established';
      if (f.rPort >= 0) this.learnListener(TCP, f.rIp, f.rPort);
    }
    if (flags & FIN) {
      if (fwd) f.finFwd = true;
      else f.finRev = true;
      if (f.finFwd && f.finRev) {
        if (f.state === 'established') f.state = 'closed';
        f.closeReason = 'fin';
        f.closed = true;
      }
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
    const f = this.flows.find(qp, qs, ps, qd, pd, p.tunnelType, p.tunnelId);
    if (f === undefined) return false;
    this.stats.icmpErrorsMatched++;
    const quotedWasFwd = qs === f.iIp && (ps === f.iPort || qs !== f.rIp);
    if (quotedWasFwd) {
      f.packetsRev++;
      f.bytesRev += bytes;
    } else {
      f.packetsFwd++;
      f.bytesFwd += bytes;
    }
    if (p.ts > f.last) f.last = p.ts;
    if (quotedWasFwd && isUnreachable(p.proto, p.icmpType) && f.state === 'attempted') {
      f.state = 'rejected';
      if (f.proto === TCP) {
        f.closeReason = 'rst';
        f.closed = true;
      }
    }
    this.touch(f);
    return true;
  }

  // ---- fragments ----

  private fragmentKey(p: DecodedPacket): string {
    return `${p.src}|${p.dst}|${p.proto}|${p.fragId}|${p.tunnelType}|${p.tunnelId}`;
  }

  private rememberFirstFragment(p: DecodedPacket, f: Flow): void {
    const k = this.fragmentKey(p);
    this.fragments.delete(k); // re-insert so the map stays in expiry order
    if (this.fragments.size >= MAX_FRAGMENT_ENTRIES) {
      const oldest = this.fragments.keys().next().value;
      if (oldest !== undefined) this.fragments.delete(oldest);
    }
    this.fragments.set(k, { flow: f, expires: p.ts + FRAGMENT_TIMEOUT_MS });
    const o = this.orphans.get(k);
    if (o !== undefined) {
      // Later fragments that arrived before their first fragment.
      this.orphans.delete(k);
      const fwd = o.src === f.iIp;
      if (fwd) {
        f.packetsFwd += o.packets;
        f.bytesFwd += o.bytes;
      } else {
        f.packetsRev += o.packets;
        f.bytesRev += o.bytes;
      }
      if (o.first < f.sliceStart && f.seq === 0) f.sliceStart = o.first;
      if (o.last > f.last) f.last = o.last;
      this.stats.fragmentsMatched += o.packets;
    }
  }

  private addLaterFragment(p: DecodedPacket, bytes: number): void {
    const k = this.fragmentKey(p);
    const e = this.fragments.get(k);
    if (e?.flow.alive) {
      const f = e.flow;
      this.stats.fragmentsMatched++;
      if (p.src === f.iIp) {
        f.packetsFwd++;
        f.bytesFwd += bytes;
      } else {
        f.packetsRev++;
        f.bytesRev += bytes;
      }
      if (p.ts > f.last) f.last = p.ts;
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
    let f = this.flows.find(o.proto, o.src, -1, o.dst, -1, o.tunnelType, o.tunnelId);
    if (f === undefined) {
      if (this.flows.size >= this.maxFlows) this.evictOldest();
      f = new Flow(o.proto, o.src, -1, o.dst, -1, 'first-packet', o.first, o.tunnelType, o.tunnelId, -1);
      this.flows.insert(f);
      this.stats.flowsCreated++;
      this.stats.active = this.flows.size;
    }
    if (o.src === f.iIp) {
      f.packetsFwd += o.packets;
      f.bytesFwd += o.bytes;
    } else {
      f.packetsRev += o.packets;
      f.bytesRev += o.bytes;
      if (f.state === 'attempted') f.state = 'established';
    }
    if (o.last > f.last) f.last = o.last;
    this.touch(f);
  }

  // ---- LRU lists and export ----

  private classOf(f: Flow): number {
    if (f.proto === TCP) {
      if (f.closed) return CLS_TCP_CLOSED;
      return f.state === 'established' ? CLS_TCP_EST : CLS_TCP_UNANSWERED;
    }
    if (f.proto === UDP) return CLS_UDP;
    if (f.proto === ICMP || f.proto === ICMPV6) return CLS_ICMP;
    return CLS_OTHER;
  }

  /**
   * Keeps a flow's place in its class list: the tail is the most recently seen. Moving a flow costs
   * writes to two neighbours (cache misses in a large table), so a flow seen again within
   * TOUCH_GRANULARITY_MS of its last move stays put: lists are ordered by `queued`, which trails
   * `last` by less than that, and expiry and eviction are exact to within it.
   */
  private touch(f: Flow): void {
    const c = this.classOf(f);
    const now = this.now;
    if (f.cls === c) {
      if (now - f.queued < TOUCH_GRANULARITY_MS) return;
      f.queued = now;
      if (this.tails[c] === f) return;
      this.unlink(f);
    } else if (f.cls >= 0) {
      this.unlink(f);
    }
    f.cls = c;
    f.queued = now;
    const t = this.tails[c]!;
    f.prev = t;
    f.next = null;
    if (t === null) this.heads[c] = f;
    else t.next = f;
    this.tails[c] = f;
  }

  private unlink(f: Flow): void {
    const c = f.cls;
    if (f.prev === null) this.heads[c] = f.next;
    else f.prev.next = f.next;
    if (f.next === null) this.tails[c] = f.prev;
    else f.next.prev = f.prev;
    f.prev = null;
    f.next = null;
  }

  private evictOldest(): void {
    let oldest: Flow | null = null;
    for (let c = 0; c < CLASS_COUNT; c++) {
      const h = this.heads[c]!;
      if (h !== null && (oldest === null || h.queued < oldest.queued)) oldest = h;
    }
    if (oldest !== null) {
      this.stats.evicted++;
      this.finish(oldest, 'evicted');
    }
  }

  private finish(f: Flow, reason: ExportReason): void {
    if (f.cls >= 0) this.unlink(f);
    f.cls = -1;
    f.alive = false;
    this.flows.remove(f);
    this.stats.active = this.flows.size;
    this.exportSlice(f, reason);
  }

  private exportSlice(f: Flow, reason: ExportReason): void {
    if (f.id === '') {
      f.id = flowHash(
        `${flowKey(f.proto, f.iIp, f.iPort, f.rIp, f.rPort, f.tunnelType, f.tunnelId)}|${f.first}`,
      );
    }
    const proto = f.proto;
    const rec: FlowRecord = {
      v: 1,
      start: f.sliceStart,
      end: f.last,
      proto: protocolValue(proto),
      src: f.iPort >= 0 && hasPorts(proto) ? { ip: f.iIp, port: f.iPort } : { ip: f.iIp },
      dst: f.rPort >= 0 && hasPorts(proto) ? { ip: f.rIp, port: f.rPort } : { ip: f.rIp },
      packets: { fwd: f.packetsFwd, rev: f.packetsRev },
      bytes: { fwd: f.bytesFwd, rev: f.bytesRev },
      state: f.state,
      observer: this.observer,
      id: f.id,
      seq: f.seq,
      initiator: f.basis,
      reason,
    };
    if (proto === TCP) rec.tcpFlags = { fwd: f.flagsFwd, rev: f.flagsRev };
    if (f.icmpType >= 0) {
      rec.icmp =
        f.icmpId >= 0
          ? { type: f.icmpType, code: f.icmpCode, id: f.icmpId }
          : { type: f.icmpType, code: Math.max(0, f.icmpCode) };
    }
    if (f.tunnelType !== '') {
      const tunnel: NonNullable<FlowRecord['tunnel']> = {
        type: f.tunnelType,
        src: f.tunnelSrc,
        dst: f.tunnelDst,
      };
      if (f.tunnelId >= 0) {
        if (f.tunnelType === 'gre') tunnel.key = f.tunnelId;
        else tunnel.vni = f.tunnelId;
      }
      if (f.tunnelPort >= 0) tunnel.port = f.tunnelPort;
      rec.tunnel = tunnel;
    }
    if (f.vlans !== null) rec.vlan = f.vlans;
    if (f.continued) rec.continued = true;
    f.seq++;
    f.packetsFwd = 0;
    f.packetsRev = 0;
    f.bytesFwd = 0;
    f.bytesRev = 0;
    f.flagsFwd = 0;
    f.flagsRev = 0;
    this.stats.recordsExported++;
    this.onExport(rec);
  }
}

import type { DecodedPacket } from '../decode/packet.js';

/*
 * Flow storage. A table of Flow objects spent its time in cache misses (each object plus the boxes of
 * its double fields plus its list neighbours) and in the garbage collector (every flow outlived
 * several scavenges). So a flow is an index into one ArrayBuffer: 128 bytes per flow, read through a
 * Float64Array and an Int32Array view, with the fields a packet touches in the same two cache
 * lines. Fields needed only when a flow is made or exported live in side arrays.
 */
export const STRIDE_F64 = 16;
export const STRIDE_I32 = 32;
// Float64 words.
export const F_LAST = 0;
/** Capture time the flow was last moved to the tail of its class list. */
export const F_QUEUED = 1;
export const F_SLICE = 2;
export const F_PKT_FWD = 3;
export const F_PKT_REV = 4;
export const F_BYTES_FWD = 5;
export const F_BYTES_REV = 6;
/** Address keys (see address-keys.ts) of the initiator and the responder. */
export const F_IKEY = 7;
export const F_RKEY = 8;
export const F_FIRST = 9;
// Int32 words (after the ten Float64 words).
export const I_PREV = 20;
export const I_NEXT = 21;
export const I_CLS = 22;
export const I_STATE = 23;
export const I_FLAGS_FWD = 24;
export const I_FLAGS_REV = 25;
export const I_PROTO = 26;
export const I_IPORT = 27;
export const I_RPORT = 28;
/** Where the hash index keeps the flow. */
export const I_SLOT = 29;
export const I_BITS = 30;
/** Bumped when the flow ends, so a stale reference (fragment entry) can tell its flow is gone. */
export const I_GEN = 31;
// I_BITS.
/** TCP finished (FIN both ways, RST, or rejected): lingers in the closed list. */
export const B_CLOSED = 1;
export const B_FIN_FWD = 2;
export const B_FIN_REV = 4;
export const B_CONTINUED = 8;
export const B_ALIVE = 16;
/** Carried by a tunnel (its key is in store.tunnels): never the untunnelled packet's flow. */
export const B_TUNNELLED = 32;
// Cold Int32 words (side array).
export const COLD_STRIDE = 8;
export const C_SEQ = 0;
/** First ICMP type/code of the flow (-1 when not ICMP). */
export const C_ICMP_TYPE = 1;
export const C_ICMP_CODE = 2;
/** ICMP echo identifier carried in the key (-1 otherwise). */
export const C_ICMP_ID = 3;
export const C_BASIS = 4;
export const C_CLOSE_REASON = 5;

/** No flow (also the end of a list, and a flow in no class list). */
export const NONE = -1;

// I_STATE (names in export.ts).
export const ST_ATTEMPTED = 0;
export const ST_ESTABLISHED = 1;
export const ST_CLOSED = 2;
export const ST_REJECTED = 3;

// C_CLOSE_REASON (names in export.ts).
export const CLOSE_FIN = 0;
export const CLOSE_RST = 1;

export const INITIAL_FLOW_CAPACITY = 1 << 12;

export interface TunnelInfo {
  type: DecodedPacket['tunnelType'];
  id: number;
  src: string;
  dst: string;
  port: number;
  /** Key of the tunnelled-flow map. */
  key: string;
}

/**
 * The flows' columns and the free list. The typed arrays are replaced when the storage grows
 * (allocate), so read them from the store after any call that may allocate.
 */
export class FlowStore {
  capacity = 0;
  f64 = new Float64Array(0);
  i32 = new Int32Array(0);
  cold = new Int32Array(0);
  readonly iIp: string[] = [];
  readonly rIp: string[] = [];
  readonly ids: string[] = [];
  readonly tunnels: (TunnelInfo | null)[] = [];
  readonly vlans: (number[] | null)[] = [];
  /** Flow indexes not in use, reused last-freed first (its memory is the most likely cached). */
  private free = new Int32Array(0);
  private freeCount = 0;
  /** Indexes below this have been handed out at least once. */
  private highWater = 0;
  /** Flows allocated and not yet released. */
  count = 0;

  constructor(capacity: number) {
    this.grow(capacity);
  }

  private grow(capacity: number): void {
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
  allocate(
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
      if (this.highWater === this.capacity) this.grow(this.capacity * 2);
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

  /** Returns flow f's index to the free list (it is out of the index and its class list). */
  release(f: number): void {
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
  }

  /** Whether flow index f still holds the flow it held at generation `gen`. */
  isAlive(f: number, gen: number): boolean {
    const i = f * STRIDE_I32;
    return this.i32[i + I_GEN] === gen && (this.i32[i + I_BITS]! & B_ALIVE) !== 0;
  }

  /** Counts packets and bytes in one direction of flow f; `ts` is when the last of them was seen. */
  countPackets(f: number, fwd: boolean, packets: number, bytes: number, ts: number): void {
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
}

import { type AddressKeys, V4_LIMIT } from './address-keys.js';
import { flowKey } from './flow-key.js';
import {
  F_IKEY,
  F_RKEY,
  type FlowStore,
  I_IPORT,
  I_PROTO,
  I_RPORT,
  I_SLOT,
  NONE,
  STRIDE_F64,
  STRIDE_I32,
} from './storage.js';

/*
 * The index from a flow key to its flow: open addressing, linear probing, backward-shift deletion.
 * Untunnelled flows are keyed by their address keys (address-keys.ts), ports and protocol; tunnelled
 * ones (rare on a node, keyed by tunnel identity too) by flowKey in a Map.
 */

/** Hash index slot: both address keys' low 32 bits, the ports, protocol | flags, flow + 1 (0: empty), hash. */
const X_STRIDE = 8;
const X_A = 0;
const X_B = 1;
const X_PORTS = 2;
const X_PROTO = 3;
const X_FLOW = 4;
const X_HASH = 5;
const INITIAL_INDEX_SLOTS = 1 << 14;

function hashKey(a: number, b: number, ports: number, proto: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b);
  h = Math.imul(h ^ ports, 0xc2b2ae35) ^ proto;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h;
}

export class FlowIndex {
  private readonly store: FlowStore;
  private readonly addresses: AddressKeys;
  private xmask = INITIAL_INDEX_SLOTS - 1;
  private index = new Int32Array(INITIAL_INDEX_SLOTS * X_STRIDE);
  private used = 0;
  /** Tunnelled flows by flowKey. */
  private readonly tunnelled = new Map<string, number>();
  /** canonicalKey's answer. */
  private keyA = 0;
  private keyB = 0;
  private keyPorts = 0;
  private keyProto = 0;

  /** The index keeps each flow's slot in `store` (I_SLOT); `addresses` gives find its address keys. */
  constructor(store: FlowStore, addresses: AddressKeys) {
    this.store = store;
    this.addresses = addresses;
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
  lookup(proto: number, sKey: number, sport: number, dKey: number, dport: number): number {
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

  /** The flow with this key, tunnelled or not (either direction), or NONE. */
  find(
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
    return this.lookup(proto, this.addresses.key(src), sport, this.addresses.key(dst), dport);
  }

  /** Puts a flow (fields set by allocate, tunnel info set) into the index. */
  insert(f: number): void {
    const store = this.store;
    const t = store.tunnels[f] ?? null;
    if (t !== null) {
      this.tunnelled.set(t.key, f);
      return;
    }
    const d = f * STRIDE_F64;
    const iKey = store.f64[d + F_IKEY]!;
    const rKey = store.f64[d + F_RKEY]!;
    const i = f * STRIDE_I32;
    const iPort = store.i32[i + I_IPORT]!;
    const rPort = store.i32[i + I_RPORT]!;
    const proto = store.i32[i + I_PROTO]!;
    this.canonicalKey(proto, iKey, iPort, rKey, rPort);
    const ai = this.keyA;
    const bi = this.keyB;
    const ports = this.keyPorts;
    const pr = this.keyProto;
    if (this.used + 1 > (this.xmask + 1) >>> 1) this.grow();
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
    store.i32[i + I_SLOT] = j;
    this.used++;
  }

  /** Takes a flow out of the index. */
  remove(f: number): void {
    const t = this.store.tunnels[f] ?? null;
    if (t !== null) {
      this.tunnelled.delete(t.key);
      return;
    }
    const mask = this.xmask;
    const x = this.index;
    const i32 = this.store.i32;
    let i = i32[f * STRIDE_I32 + I_SLOT]!;
    x[i * X_STRIDE + X_FLOW] = 0;
    this.used--;
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

  private grow(): void {
    const old = this.index;
    const n = (this.xmask + 1) * 2;
    const mask = n - 1;
    const x = new Int32Array(n * X_STRIDE);
    const i32 = this.store.i32;
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
}

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

/**
 * Hash index slot: the key's hash and flow + 1 (0: empty), 8 bytes. A candidate whose hash matches is
 * confirmed against the flow's own fields in the store, which the packet reads next anyway: with the
 * whole key in the slot (32 bytes) the index of a busy table outgrew the CPU cache, and every packet
 * paid a cache miss in the index on top of the one in the flow.
 */
const X_STRIDE = 2;
const X_HASH = 0;
const X_FLOW = 1;
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

  /** The index keeps each flow's slot in `store` (I_SLOT); `addresses` gives find its address keys. */
  constructor(store: FlowStore, addresses: AddressKeys) {
    this.store = store;
    this.addresses = addresses;
  }

  /**
   * The direction-free hash of an untunnelled flow's key: the lower endpoint comes first; flag bits
   * tell a missing port (-1) from port 0 and an address id from an IPv4 number.
   */
  private hash(proto: number, xKey: number, xPort: number, yKey: number, yPort: number): number {
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
    return hashKey(
      a | 0,
      b | 0,
      ((aPort & 0xffff) << 16) | (bPort & 0xffff),
      proto |
        (aPort < 0 ? 0x100 : 0) |
        (bPort < 0 ? 0x200 : 0) |
        (a >= V4_LIMIT ? 0x400 : 0) |
        (b >= V4_LIMIT ? 0x800 : 0),
    );
  }

  /** The untunnelled flow with this key (either direction), or NONE. */
  lookup(proto: number, sKey: number, sport: number, dKey: number, dport: number): number {
    if (sKey < 0 || dKey < 0) return NONE;
    const h = this.hash(proto, sKey, sport, dKey, dport);
    const mask = this.xmask;
    const x = this.index;
    const f64 = this.store.f64;
    const i32 = this.store.i32;
    let j = h & mask;
    for (;;) {
      const s = j * X_STRIDE;
      const f1 = x[s + X_FLOW]!;
      if (f1 === 0) return NONE;
      if (x[s + X_HASH] === h) {
        // The same hash: the flow's own key decides (exact, either direction).
        const f = f1 - 1;
        const i = f * STRIDE_I32;
        const d = f * STRIDE_F64;
        if (
          i32[i + I_PROTO] === proto &&
          ((f64[d + F_IKEY] === sKey &&
            f64[d + F_RKEY] === dKey &&
            i32[i + I_IPORT] === sport &&
            i32[i + I_RPORT] === dport) ||
            (f64[d + F_IKEY] === dKey &&
              f64[d + F_RKEY] === sKey &&
              i32[i + I_IPORT] === dport &&
              i32[i + I_RPORT] === sport))
        )
          return f;
      }
      j = (j + 1) & mask;
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
    const i = f * STRIDE_I32;
    const h = this.hash(
      store.i32[i + I_PROTO]!,
      store.f64[d + F_IKEY]!,
      store.i32[i + I_IPORT]!,
      store.f64[d + F_RKEY]!,
      store.i32[i + I_RPORT]!,
    );
    if (this.used + 1 > (this.xmask + 1) >>> 1) this.grow();
    const mask = this.xmask;
    const x = this.index;
    let j = h & mask;
    while (x[j * X_STRIDE + X_FLOW] !== 0) j = (j + 1) & mask;
    const s = j * X_STRIDE;
    x[s + X_HASH] = h;
    x[s + X_FLOW] = f + 1;
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
      x[i * X_STRIDE + X_HASH] = x[sj + X_HASH]!;
      x[i * X_STRIDE + X_FLOW] = g1;
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
      x[j * X_STRIDE + X_HASH] = old[s + X_HASH]!;
      x[j * X_STRIDE + X_FLOW] = f1;
      i32[(f1 - 1) * STRIDE_I32 + I_SLOT] = j;
    }
    this.index = x;
    this.xmask = mask;
  }
}

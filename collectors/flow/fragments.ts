import type { DecodedPacket } from '../decode/packet.js';
import { type FlowStore, NONE } from './storage.js';

/*
 * IP fragments: only the first fragment carries the ports, so it leaves its flow here for the later
 * fragments of the same datagram. Later fragments that come before their first one wait as orphans;
 * the flow table accounts those whose first fragment never came to a port-less flow.
 */

/** How long a first fragment's flow is remembered for its later fragments (RFC 791 reassembly bound). */
const FRAGMENT_TIMEOUT_MS = 30_000;
const MAX_FRAGMENT_ENTRIES = 65_536;

interface FragmentEntry {
  flow: number;
  gen: number;
  expires: number;
}

export interface OrphanFragments {
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

/** The datagram a fragment belongs to. */
export function fragmentKey(p: DecodedPacket): string {
  return `${p.src}|${p.dst}|${p.proto}|${p.fragId}|${p.tunnelType}|${p.tunnelId}`;
}

/** Both maps are kept in expiry order (insertion order, one timeout). */
export class Fragments {
  private readonly store: FlowStore;
  private readonly entries = new Map<string, FragmentEntry>();
  private readonly orphans = new Map<string, OrphanFragments>();

  constructor(store: FlowStore) {
    this.store = store;
  }

  /**
   * Remembers flow f (at generation gen) for the later fragments of datagram k, whose first fragment
   * came at ts. Returns the orphans of k that came before it, now removed, if any.
   */
  rememberFirst(k: string, f: number, gen: number, ts: number): OrphanFragments | undefined {
    this.entries.delete(k); // re-insert so the map stays in expiry order
    if (this.entries.size >= MAX_FRAGMENT_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(k, { flow: f, gen, expires: ts + FRAGMENT_TIMEOUT_MS });
    const o = this.orphans.get(k);
    if (o !== undefined) this.orphans.delete(k);
    return o;
  }

  /** The flow of datagram k's first fragment while it is still in the table, else NONE. */
  flowOf(k: string): number {
    const e = this.entries.get(k);
    return e !== undefined && this.store.isAlive(e.flow, e.gen) ? e.flow : NONE;
  }

  orphan(k: string): OrphanFragments | undefined {
    return this.orphans.get(k);
  }

  /** When the orphans are at their bound: the oldest, removed (to be accounted), else undefined. */
  evictOrphan(): OrphanFragments | undefined {
    if (this.orphans.size < MAX_FRAGMENT_ENTRIES) return undefined;
    const [oldestKey, oldest] = this.orphans.entries().next().value!;
    this.orphans.delete(oldestKey);
    return oldest;
  }

  /** A new, empty orphan entry for datagram k, of which p is a later fragment. */
  addOrphan(k: string, p: DecodedPacket): OrphanFragments {
    const o: OrphanFragments = {
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
    return o;
  }

  /** Forgets first fragments remembered until `nowMs` or before. */
  expireEntries(nowMs: number): void {
    for (const [k, e] of this.entries) {
      if (e.expires > nowMs) break;
      this.entries.delete(k);
    }
  }

  /** The oldest orphan entry if it expired by `nowMs`, removed (to be accounted), else undefined. */
  takeExpiredOrphan(nowMs: number): OrphanFragments | undefined {
    const first = this.orphans.entries().next();
    if (first.done === true) return undefined;
    const [k, o] = first.value;
    if (o.expires > nowMs) return undefined;
    this.orphans.delete(k);
    return o;
  }

  /** Every orphan entry, oldest first. */
  allOrphans(): IterableIterator<OrphanFragments> {
    return this.orphans.values();
  }

  clear(): void {
    this.orphans.clear();
    this.entries.clear();
  }
}

import type Database from 'better-sqlite3';
import { IDENTITY_BUCKET_MS } from './schema.js';
import type { StoredFlow } from './types.js';

/**
 * The ingestion-identity check of a batch (docs/store.md, "Ingestion identity"): which flows the
 * store has not counted yet, their identities recorded, inside the caller's transaction.
 *
 * A flow was counted when flow_identities holds the same tuple and slice with a start within the
 * tolerance (which is at most one bucket, so the start's bucket and its neighbours hold every
 * candidate). Asking SQLite that once per flow (three index seeks and a round trip through the
 * driver) cost more than everything else the store does; instead the batch's bucket range is read
 * once, in key order, and the flows are checked against it in memory, together with the identities
 * the batch itself adds; the buckets read stay in memory for the next batches (IdentityCache). The
 * answer is the per-flow query's, including which earlier observation a duplicate is compared with
 * (the earliest start, as that query's LIMIT 1 in key order found it).
 * A range that holds far more identities than the batch has flows (a batch spread over a long period
 * of a busy store) is not read whole: past a bound, the batch falls back to one query per flow.
 */

/** Identities a read may visit per flow of the batch before the per-flow queries are cheaper. */
export const RANGE_ROWS_PER_FLOW = 4;

/** Identities the store keeps in memory between batches (~50 MB at most): past it the cache starts over. */
export const CACHED_ROWS = 250_000;

/** Buckets not needed by a batch but lying between two that are: read with them, up to this gap. */
const BUCKET_GAP = 16;

/** Identities written per INSERT when the range was read (the driver's cost per statement, shared). */
const ROWS_PER_INSERT = 64;
const IDENTITY_INSERT = `INSERT OR IGNORE INTO flow_identities (bucket, tuple, seq, start, packets, bytes, run) VALUES `;
const IDENTITY_ROW = '(?, ?, ?, ?, ?, ?, ?)';

/**
 * The buckets this connection has read (or written) whole, kept between batches. A processor that
 * catches up on a topic gets batches spanning the same hours from every partition; without it each
 * batch read all the identities of those hours again (at 200,000 flows in 6 batches: 11% of the
 * processor's time). It holds only what is committed, or being committed by the current
 * transaction: the store forgets it when a transaction fails, when it prunes, and when another
 * connection has committed to the file since (SQLite's `PRAGMA data_version`).
 */
export class IdentityCache {
  /** The identities of the buckets read, per tuple, as a flat [seq, start, packets, ...] list in start order. */
  readonly known = new Map<string, number[]>();
  /** The buckets whose identities are all in `known`. */
  readonly buckets = new Set<number>();
  rows = 0;
  /** data_version as this connection saw it in its last batch. */
  version: number | undefined;

  constructor(readonly maxRows = CACHED_ROWS) {}

  add(tuple: string, seq: number, start: number, packets: number): void {
    this.insert(this.known.get(tuple), tuple, seq, start, packets);
  }

  /**
   * The packets of the earliest identity of this tuple and slice with a start within `tol` of
   * `start`; when there is none, the identity is added (one lookup for both).
   */
  seenOrAdd(tuple: string, seq: number, start: number, tol: number, packets: number): number | undefined {
    const list = this.known.get(tuple);
    if (list) {
      const from = start - tol;
      const to = start + tol;
      // Short lists (most tuples) are scanned from their start; long ones from the first candidate.
      for (let i = list.length > 24 ? 3 * firstFrom(list, from) : 0; i < list.length; i += 3) {
        const s = list[i + 1]!;
        if (s > to) break;
        if (list[i] === seq && s >= from) return list[i + 2];
      }
    }
    this.insert(list, tuple, seq, start, packets);
    return undefined;
  }

  /** Adds an identity to the tuple's list (`list`, as looked up), keeping it in start order. */
  private insert(
    list: number[] | undefined,
    tuple: string,
    seq: number,
    start: number,
    packets: number,
  ): void {
    this.rows++;
    if (!list) this.known.set(tuple, [seq, start, packets]);
    else if (start >= list[list.length - 2]!) list.push(seq, start, packets);
    else list.splice(3 * firstFrom(list, start), 0, seq, start, packets);
  }

  forget(): void {
    this.known.clear();
    this.buckets.clear();
    this.rows = 0;
  }
}

/** The index (in triples) of the first identity of a start-ordered list starting at `start` or later. */
function firstFrom(list: number[], start: number): number {
  let lo = 0;
  let hi = list.length / 3;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[3 * mid + 1]! < start) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function prepareDedupe(db: Database.Database, maxCachedRows = CACHED_ROWS) {
  return {
    range: db
      .prepare('SELECT tuple, seq, start, packets FROM flow_identities WHERE bucket BETWEEN ? AND ?')
      .raw(),
    seen: db
      .prepare(`SELECT packets FROM flow_identities
      WHERE bucket IN (?, ?, ?) AND tuple = ? AND seq = ? AND start BETWEEN ? AND ? ORDER BY bucket, start LIMIT 1`)
      .pluck(),
    add: db.prepare(IDENTITY_INSERT + IDENTITY_ROW),
    addMany: db.prepare(IDENTITY_INSERT + Array(ROWS_PER_INSERT).fill(IDENTITY_ROW).join(', ')),
    version: db.prepare('PRAGMA data_version').pluck(),
    cache: new IdentityCache(maxCachedRows),
  };
}

export type DedupeStatements = ReturnType<typeof prepareDedupe>;

/**
 * Reads the buckets in `missing` (sorted) into the cache, or returns false when that would visit more
 * than `limit` identities (the cache is left empty then).
 */
function readBuckets(s: DedupeStatements, missing: number[], limit: number): boolean {
  const cache = s.cache;
  let n = 0;
  for (let i = 0; i < missing.length; ) {
    const lo = missing[i]!;
    let hi = lo;
    while (++i < missing.length && missing[i]! - hi <= BUCKET_GAP) hi = missing[i]!;
    const it = s.range.iterate(lo, hi) as IterableIterator<[string, number, number, number]>;
    for (const [tuple, seq, start, packets] of it) {
      if (++n > limit) {
        it.return?.();
        cache.forget();
        return false;
      }
      cache.add(tuple, seq, start, packets);
    }
    // Every bucket of the run is now known whole, the empty ones too.
    for (let b = lo; b <= hi; b++) cache.buckets.add(b);
  }
  return true;
}

/** The flows of a batch not counted yet, their identities recorded (inside the caller's transaction). */
export function unseen(
  s: DedupeStatements,
  flows: readonly StoredFlow[],
  tol: number,
  runId: number | null,
  rangeRowsPerFlow = RANGE_ROWS_PER_FLOW,
): { fresh: StoredFlow[]; larger: number } {
  const cache = s.cache;
  const version = s.version.get() as number;
  if (version !== cache.version || cache.rows > cache.maxRows) cache.forget();
  cache.version = version;
  const needed: number[] = [];
  let withIdentity = 0;
  let last = Number.NaN;
  for (const f of flows) {
    if (!f.identity) continue;
    withIdentity++;
    const b = Math.floor(f.identity.start / IDENTITY_BUCKET_MS);
    if (b === last) continue;
    last = b;
    needed.push(b - 1, b, b + 1);
  }
  let missing = needed.filter((b) => !cache.buckets.has(b));
  // A stream that moves on in time (the embedded wiring, a processor that keeps up) finds few of its
  // buckets held: keeping the others makes the lists longer and the heap larger for nothing.
  if (cache.buckets.size > 0 && 2 * missing.length > needed.length) {
    cache.forget();
    missing = needed;
  }
  missing.sort((a, b) => a - b);
  // The per-flow queries write past the cache: readBuckets left it empty, and it starts over.
  const cached = withIdentity === 0 || readBuckets(s, missing, rangeRowsPerFlow * withIdentity + 1000);
  const out: StoredFlow[] = [];
  const rows: unknown[] = [];
  let larger = 0;
  for (const f of flows) {
    const id = f.identity;
    if (id) {
      const b = Math.floor(id.start / IDENTITY_BUCKET_MS);
      const from = id.start - tol;
      const to = id.start + tol;
      let seenPackets: number | undefined;
      if (cached) seenPackets = cache.seenOrAdd(id.tuple, id.seq, id.start, tol, f.packets);
      else seenPackets = s.seen.get(b - 1, b, b + 1, id.tuple, id.seq, from, to) as number | undefined;
      if (seenPackets !== undefined) {
        if (f.packets > seenPackets) larger++;
        continue;
      }
      if (cached) {
        // In memory from here on (seenOrAdd): the row can wait for its INSERT.
        rows.push(b, id.tuple, id.seq, id.start, f.packets, f.bytes, runId);
        if (rows.length === ROWS_PER_INSERT * 7) {
          s.addMany.run(rows);
          rows.length = 0;
        }
      } else s.add.run(b, id.tuple, id.seq, id.start, f.packets, f.bytes, runId);
    }
    out.push(f);
  }
  for (let i = 0; i < rows.length; i += 7) s.add.run(rows.slice(i, i + 7));
  return { fresh: out, larger };
}

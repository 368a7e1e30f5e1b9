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
 * the batch itself adds. The answer is the per-flow query's, including which earlier observation a
 * duplicate is compared with (the earliest start, as that query's LIMIT 1 in key order found it).
 * A range that holds far more identities than the batch has flows (a batch spread over a long period
 * of a busy store) is not read whole: past a bound, the batch falls back to one query per flow.
 */

/** Identities the range read may visit per flow of the batch before the per-flow queries are cheaper. */
export const RANGE_ROWS_PER_FLOW = 4;

/** Identities written per INSERT when the range was read (the driver's cost per statement, shared). */
const ROWS_PER_INSERT = 64;
const IDENTITY_INSERT = `INSERT OR IGNORE INTO flow_identities (bucket, tuple, seq, start, packets, bytes, run) VALUES `;
const IDENTITY_ROW = '(?, ?, ?, ?, ?, ?, ?)';

export function prepareDedupe(db: Database.Database) {
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
  };
}

export type DedupeStatements = ReturnType<typeof prepareDedupe>;

/** The identities held per tuple, as a flat [seq, start, packets, ...] list. */
type Known = Map<string, number[]>;

/** The identities of buckets lo..hi, or undefined when there are more than `limit` of them. */
function readRange(s: DedupeStatements, lo: number, hi: number, limit: number): Known | undefined {
  const known: Known = new Map();
  let n = 0;
  const it = s.range.iterate(lo, hi) as IterableIterator<[string, number, number, number]>;
  for (const [tuple, seq, start, packets] of it) {
    if (++n > limit) {
      it.return?.();
      return undefined;
    }
    const list = known.get(tuple);
    if (list) list.push(seq, start, packets);
    else known.set(tuple, [seq, start, packets]);
  }
  return known;
}

/** The flows of a batch not counted yet, their identities recorded (inside the caller's transaction). */
export function unseen(
  s: DedupeStatements,
  flows: readonly StoredFlow[],
  tol: number,
  runId: number | null,
  rangeRowsPerFlow = RANGE_ROWS_PER_FLOW,
): { fresh: StoredFlow[]; larger: number } {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  let withIdentity = 0;
  for (const f of flows) {
    if (!f.identity) continue;
    withIdentity++;
    const b = Math.floor(f.identity.start / IDENTITY_BUCKET_MS);
    if (b < lo) lo = b;
    if (b > hi) hi = b;
  }
  const known =
    withIdentity > 0 ? readRange(s, lo - 1, hi + 1, rangeRowsPerFlow * withIdentity + 1000) : undefined;
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
      let list: number[] | undefined;
      if (known) {
        list = known.get(id.tuple);
        if (list) {
          let earliest = Number.POSITIVE_INFINITY;
          for (let i = 0; i < list.length; i += 3) {
            const start = list[i + 1]!;
            if (list[i] === id.seq && start >= from && start <= to && start < earliest) {
              earliest = start;
              seenPackets = list[i + 2]!;
            }
          }
        }
      } else seenPackets = s.seen.get(b - 1, b, b + 1, id.tuple, id.seq, from, to) as number | undefined;
      if (seenPackets !== undefined) {
        if (f.packets > seenPackets) larger++;
        continue;
      }
      if (known) {
        // Checked in memory from here on: the row can wait for its INSERT.
        if (list) list.push(id.seq, id.start, f.packets);
        else known.set(id.tuple, [id.seq, id.start, f.packets]);
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

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../schema/migrations.js';
import { prepareDedupe, unseen } from './dedupe.js';
import type { StoredFlow } from './index.js';
import { IDENTITY_BUCKET_MS } from './schema.js';

const T0 = Date.UTC(2026, 10, 2, 10, 0, 0);

function memoryStore(): Database.Database {
  const db = new Database(':memory:');
  for (const m of MIGRATIONS) db.exec(m.sql);
  return db;
}

/** A deterministic pseudo-random stream (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Flows over few tuples and slices, starts close together (fractions of ms too), so many collide. */
function batch(r: () => number, n: number, spreadMs: number): StoredFlow[] {
  return Array.from({ length: n }, () => {
    const start = T0 + Math.floor(r() * spreadMs) + (r() < 0.3 ? 0.25 : 0);
    return {
      start,
      end: start + 10,
      proto: 'TCP',
      port: 80,
      srcWorkload: 'a',
      dstWorkload: 'b',
      srcName: 'a',
      dstName: 'b',
      packets: 1 + Math.floor(r() * 20),
      bytes: 100,
      result: 'allowed',
      classification: 'allowed',
      rules: [],
      evidence: null,
      ...(r() < 0.95
        ? {
            identity: {
              tuple: `6|10.0.0.${Math.floor(r() * 6)}#1|10.0.0.9#80`,
              seq: Math.floor(r() * 2),
              start,
            },
          }
        : {}),
    } satisfies StoredFlow;
  });
}

/** The definition, one flow at a time: the earliest identity within the tolerance, or record it. */
function reference(db: Database.Database, flows: StoredFlow[], tol: number) {
  const find =
    db.prepare(`SELECT packets FROM flow_identities WHERE tuple = ? AND seq = ? AND start >= ? AND start <= ?
    ORDER BY start LIMIT 1`);
  const add = db.prepare(
    'INSERT INTO flow_identities (bucket, tuple, seq, start, packets, bytes, run) VALUES (?, ?, ?, ?, ?, ?, 7)',
  );
  let larger = 0;
  const fresh: StoredFlow[] = [];
  for (const f of flows) {
    const id = f.identity;
    if (id) {
      const seen = find.get(id.tuple, id.seq, id.start - tol, id.start + tol) as
        | { packets: number }
        | undefined;
      if (seen) {
        if (f.packets > seen.packets) larger++;
        continue;
      }
      add.run(Math.floor(id.start / IDENTITY_BUCKET_MS), id.tuple, id.seq, id.start, f.packets, f.bytes);
    }
    fresh.push(f);
  }
  return { fresh, larger };
}

const dump = (db: Database.Database) =>
  db.prepare('SELECT * FROM flow_identities ORDER BY bucket, tuple, seq, start').all();

describe('unseen (ingestion identity of a batch)', () => {
  it('answers as the per-flow definition does, reading the range or falling back to one query per flow', () => {
    for (const [seed, tol, spread] of [
      [1, 2000, 60_000],
      [2, 5000, 20_000],
      [3, 0, 50],
      [4, 2000, 3_600_000],
    ] as const) {
      const r = rng(seed);
      const batches = Array.from({ length: 6 }, () => batch(r, 300, spread));
      const ref = memoryStore();
      const range = memoryStore();
      const perFlow = memoryStore();
      const sRange = prepareDedupe(range);
      const sPerFlow = prepareDedupe(perFlow);
      let duplicates = 0;
      for (const b of batches) {
        const want = reference(ref, b, tol);
        // A bound of 0 identities per flow (and none spare) makes every read with content fall back.
        const gotRange = range.transaction(() => unseen(sRange, b, tol, 7))();
        const gotPerFlow = perFlow.transaction(() => unseen(sPerFlow, b, tol, 7, -1000))();
        for (const got of [gotRange, gotPerFlow]) {
          expect(got.fresh).toEqual(want.fresh);
          expect(got.larger).toBe(want.larger);
        }
        duplicates += b.length - want.fresh.length;
      }
      // The case is not trivial: duplicates within and across batches, and larger re-observations.
      expect(duplicates).toBeGreaterThan(50);
      expect(dump(range)).toEqual(dump(ref));
      expect(dump(perFlow)).toEqual(dump(ref));
    }
  });

  it('falls back to per-flow queries when the buckets it needs hold far more identities than the batch has flows', () => {
    const db = memoryStore();
    const r = rng(9);
    // 3,000 distinct conversations in the 4 s after T0 (one or two buckets).
    const dense = batch(r, 3000, 4000).map((f, i) => ({
      ...f,
      identity: { tuple: `6|10.0.${i >> 8}.${i & 255}#1|10.0.0.9#80`, seq: 0, start: f.start },
    }));
    db.transaction(() => unseen(prepareDedupe(db), dense, 2000, 1))();
    // A connection that has not read those buckets yet (another process opening the store).
    const s = prepareDedupe(db);
    let perFlow = 0;
    const get = s.seen.get.bind(s.seen);
    s.seen.get = ((...a: unknown[]) => {
      perFlow++;
      return get(...a);
    }) as typeof s.seen.get;
    // Two flows of the dense period: the read stops early, and each is asked about alone, with the
    // same answer; the cache is left empty, since the per-flow path writes past it.
    const first = dense[0]!;
    const sparse = [first, { ...first, identity: { ...first.identity, tuple: 'new' } }];
    const got = db.transaction(() => unseen(s, sparse, 2000, 1))();
    expect(perFlow).toBe(2);
    expect(got.fresh.map((f) => f.identity?.tuple)).toEqual(['new']);
    expect(s.cache.buckets.size).toBe(0);
    // A batch an hour either side reads only the buckets its flows need, not the dense ones between.
    const around = [-3_600_000, 3_600_000].map((d) => ({
      ...first,
      start: first.start + d,
      identity: { ...first.identity, start: first.start + d },
    }));
    const got2 = db.transaction(() => unseen(s, around, 2000, 1))();
    expect(perFlow).toBe(2);
    expect(got2.fresh).toHaveLength(2);
  });

  it('keeps the buckets it read between batches, and reads them again only after a failed transaction, a prune or another writer', () => {
    const r = rng(11);
    const tol = 2000;
    const batches = Array.from({ length: 8 }, () => batch(r, 400, 120_000));
    const path = join(mkdtempSync(join(tmpdir(), 'dedupe-')), 'store.db');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    for (const m of MIGRATIONS) db.exec(m.sql);
    const other = new Database(path);
    const ref = memoryStore();
    const s = prepareDedupe(db);
    let read = 0;
    const iterate = s.range.iterate.bind(s.range);
    s.range.iterate = ((...a: unknown[]) => {
      const it = iterate(...a) as IterableIterator<unknown>;
      return (function* () {
        for (const row of it) {
          read++;
          yield row;
        }
      })();
    }) as typeof s.range.iterate;
    const check = (b: StoredFlow[]) => {
      const want = reference(ref, b, tol);
      const got = db.transaction(() => unseen(s, b, tol, 7))();
      expect(got.fresh).toEqual(want.fresh);
      expect(got.larger).toBe(want.larger);
    };
    // The first batch reads its buckets (empty), the second the same buckets again: from memory.
    check(batches[0]!);
    check(batches[1]!);
    expect(read).toBe(0);
    expect(s.cache.buckets.size).toBeGreaterThan(0);

    // Another connection commits an identity the cache does not hold: data_version tells.
    const b2 = batches[2]!;
    const stranger = b2.find((f) => f.identity)!;
    const row = [
      Math.floor(stranger.identity!.start / IDENTITY_BUCKET_MS),
      stranger.identity!.tuple,
      stranger.identity!.seq,
      stranger.identity!.start,
      1,
      1,
    ];
    other
      .prepare(
        'INSERT INTO flow_identities (bucket, tuple, seq, start, packets, bytes, run) VALUES (?, ?, ?, ?, ?, ?, 8)',
      )
      .run(...row);
    ref
      .prepare(
        'INSERT INTO flow_identities (bucket, tuple, seq, start, packets, bytes, run) VALUES (?, ?, ?, ?, ?, ?, 8)',
      )
      .run(...row);
    check(b2);
    expect(read).toBeGreaterThan(0);

    // A transaction that fails after the check: its identities are not in the file, nor in memory.
    const b3 = batches[3]!;
    expect(() =>
      db.transaction(() => {
        unseen(s, b3, tol, 7);
        throw new Error('disk full');
      })(),
    ).toThrow('disk full');
    s.cache.forget(); // as AuditStore.applyBatch does when its transaction fails
    check(b3);
    for (const b of batches.slice(4)) check(b);
    expect(dump(db)).toEqual(dump(ref));

    // Past its bound the cache starts over, with the same answers.
    const small = prepareDedupe(memoryStore(), 50);
    const ref2 = memoryStore();
    for (const b of batches) {
      const want = reference(ref2, b, tol);
      const got = unseen(small, b, tol, 7);
      expect(got.fresh).toEqual(want.fresh);
      expect(small.cache.rows).toBeLessThanOrEqual(50 + 3 * b.length + b.length);
    }
    other.close();
    db.close();
  });
});

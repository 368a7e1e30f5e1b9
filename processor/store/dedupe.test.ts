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

  it('falls back to per-flow queries when the range holds far more identities than the batch has flows', () => {
    const db = memoryStore();
    const s = prepareDedupe(db);
    const r = rng(9);
    const dense = batch(r, 5000, 600_000);
    db.transaction(() => unseen(s, dense, 2000, 1))();
    let perFlow = 0;
    const get = s.seen.get.bind(s.seen);
    s.seen.get = ((...a: unknown[]) => {
      perFlow++;
      return get(...a);
    }) as typeof s.seen.get;
    // The earliest and the latest flow of the dense period: the range read stops early, and each of
    // the two is asked about alone, with the same answer.
    const withId = dense.filter((f) => f.identity).sort((x, y) => x.start - y.start);
    const first = withId[0]!;
    const last = withId[withId.length - 1]!;
    const sparse = [first, { ...last, identity: { ...last.identity!, tuple: 'new' } }];
    const got = db.transaction(() => unseen(s, sparse, 2000, 1))();
    expect(perFlow).toBe(2);
    expect(got.fresh.map((f) => f.identity?.tuple)).toEqual(['new']);
  });
});

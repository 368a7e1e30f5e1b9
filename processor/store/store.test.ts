import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../schema/migrations.js';
import { AuditStore, type StoredFlow } from './index.js';

const T0 = Date.UTC(2026, 10, 2, 10, 0, 0);
const HOUR = 3_600_000;

function flow(over: Partial<StoredFlow> = {}): StoredFlow {
  return {
    start: T0,
    end: T0 + 1000,
    proto: 'TCP',
    port: 9000,
    srcWorkload: 'dev/debug',
    dstWorkload: 'shop/payments',
    srcName: '10-244-2-40.dev.pod.cluster.local',
    dstName: '10-244-2-20.shop.pod.cluster.local',
    packets: 10,
    bytes: 1000,
    result: 'denied',
    classification: 'denied-but-observed',
    rules: [],
    evidence: { n: 1 },
    ...over,
  };
}

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'npa-store-'));
  path = join(dir, 'audit.db');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('AuditStore', () => {
  it('creates a WAL database at the current schema version, and reopens it without migrating twice', () => {
    AuditStore.open(path).close();
    const s = AuditStore.open(path);
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    const versions = s.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[];
    expect(versions.map((v) => v.version)).toEqual([SCHEMA_VERSION]);
    s.close();
  });

  it('refuses a store written by a newer schema', () => {
    AuditStore.open(path).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(SCHEMA_VERSION + 1, 'future', 0);
    db.close();
    expect(() => AuditStore.open(path)).toThrow(/STORE_SCHEMA_TOO_NEW|newer than this netpol-audit supports/);
  });

  it('deduplicates violations per window, source workload, destination, protocol and port', () => {
    const s = AuditStore.open(path, { windowMs: HOUR });
    s.applyBatch([flow(), flow({ start: T0 + 60_000, end: T0 + 61_000, srcName: 'other-name' })]);
    s.applyBatch([flow({ start: T0 + 120_000, end: T0 + 125_000 })]);
    s.applyBatch([flow({ port: 9001 }), flow({ start: T0 + HOUR, end: T0 + HOUR + 1 })]);
    const v = s.violations();
    expect(v).toHaveLength(3);
    const main = v.find((r) => r.port === 9000 && r.windowStart === T0)!;
    expect(main).toMatchObject({ flows: 3, packets: 30, bytes: 3000, firstSeen: T0, lastSeen: T0 + 125_000 });
    expect(main.srcNames.sort()).toEqual(['10-244-2-40.dev.pod.cluster.local', 'other-name']);
    expect(main.evidence).toHaveLength(3);
    expect(s.deniedAttempts()).toHaveLength(0);
    s.close();
  });

  it('caps evidence per aggregate but keeps counting', () => {
    const s = AuditStore.open(path);
    for (let i = 0; i < 4; i++) s.applyBatch([flow({ evidence: { i } }), flow({ evidence: { i, j: 1 } })]);
    const [v] = s.violations();
    expect(v!.flows).toBe(8);
    expect(v!.evidence).toHaveLength(5);
    expect(v!.evidence[0]).toEqual({ i: 0 });
    s.close();
  });

  it('keeps denied attempts apart from violations, and allowed flows only as edges', () => {
    const s = AuditStore.open(path);
    s.applyBatch([
      flow({ classification: 'denied-attempt' }),
      flow({ classification: 'allowed', result: 'allowed' }),
      flow({ classification: 'ambiguous', result: 'ambiguous' }),
    ]);
    expect(s.violations()).toHaveLength(0);
    expect(s.deniedAttempts()).toHaveLength(1);
    expect(s.totals()).toEqual({
      flows: 3,
      packets: 30,
      bytes: 3000,
      byResult: { allowed: 1, denied: 1, ambiguous: 1 },
    });
    s.close();
  });

  it('counts rule usage and lists rules never hit since a time', () => {
    const s = AuditStore.open(path);
    const rule = (policy: string, rule: number) => ({
      kind: 'NetworkPolicy',
      policy,
      direction: 'ingress' as const,
      rule,
      summary: `${policy}#${rule}`,
    });
    s.recordPolicies([], [rule('shop/a', 0), rule('shop/a', 1), rule('shop/b', 0)], T0);
    const used = { policy: 'shop/a', kind: 'NetworkPolicy' as const, direction: 'ingress' as const, rule: 0 };
    s.applyBatch([flow({ result: 'allowed', classification: 'allowed', rules: [used] })]);
    s.applyBatch([
      flow({
        result: 'allowed',
        classification: 'allowed',
        rules: [used],
        start: T0 + 2 * 86_400_000,
        end: T0 + 2 * 86_400_000 + 5,
      }),
    ]);
    const all = s.rules();
    expect(all.find((r) => r.policy === 'shop/a' && r.rule === 0)).toMatchObject({
      hits: 2,
      bytes: 2000,
      firstHit: T0,
      lastHit: T0 + 2 * 86_400_000 + 5,
    });
    expect(s.rules({ unusedSince: T0 }).map((r) => `${r.policy}#${r.rule}`)).toEqual([
      'shop/a#1',
      'shop/b#0',
    ]);
    expect(s.ruleHits(used, { since: T0 + 86_400_000 })).toBe(1);
    expect(s.ruleHits(used)).toBe(2);
    s.close();
  });

  it('defines a rule it was not told about when a flow hits it', () => {
    const s = AuditStore.open(path);
    s.applyBatch([
      flow({
        result: 'allowed',
        classification: 'allowed',
        rules: [{ policy: 'x/y', direction: 'egress', rule: 3 }],
      }),
    ]);
    expect(s.rules()).toMatchObject([
      { policy: 'x/y', direction: 'egress', rule: 3, hits: 1, definedFirst: T0 },
    ]);
    s.close();
  });

  it('stores offsets in the same transaction as the data: a failing batch leaves neither', () => {
    const s = AuditStore.open(path);
    s.applyBatch([flow()], [{ consumer: 'p', topic: 'flows', partition: 0, nextOffset: '10' }]);
    const bad = flow({
      result: 'allowed',
      classification: 'allowed',
      rules: [{ policy: 'x/y', direction: 'sideways' as 'egress', rule: 0 }],
    });
    expect(() =>
      s.applyBatch([flow(), bad], [{ consumer: 'p', topic: 'flows', partition: 0, nextOffset: '20' }]),
    ).toThrow();
    expect(s.offsets('p')).toEqual([{ consumer: 'p', topic: 'flows', partition: 0, nextOffset: '10' }]);
    expect(s.violations()[0]!.flows).toBe(1);
    s.applyBatch(
      [flow()],
      [{ consumer: 'p', topic: 'flows', partition: 0, nextOffset: '9223372036854775807' }],
    );
    expect(s.offsets('p')[0]!.nextOffset).toBe('9223372036854775807');
    s.close();
  });

  it('survives a reopen with everything committed, and prunes by data time', () => {
    let s = AuditStore.open(path);
    s.applyBatch([flow(), flow({ start: T0 + 3 * HOUR, end: T0 + 3 * HOUR + 1 })]);
    s.close();
    s = AuditStore.open(path);
    expect(s.violations()).toHaveLength(2);
    expect(s.latestDataTime()).toBe(T0 + 4 * HOUR);
    s.prune(T0 + 2 * HOUR);
    expect(s.violations().map((v) => v.windowStart)).toEqual([T0 + 3 * HOUR]);
    expect(s.totals().flows).toBe(1);
    s.close();
  });
});

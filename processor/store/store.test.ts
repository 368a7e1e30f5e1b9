import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, SCHEMA_VERSION } from '../../schema/migrations.js';
import { StoreRecorder } from '../../sinks/store.js';
import type { FlowIdentity } from './identity.js';
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
    expect(versions.map((v) => v.version)).toEqual(MIGRATIONS.map((m) => m.version));
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

const ID: FlowIdentity = { tuple: '6|10.244.2.20#9000|10.244.2.40#40020', seq: 0, start: T0 };

describe('AuditStore ingestion identity', () => {
  it('counts a flow once however often it arrives: across batches, within a batch, across reopens', () => {
    let s = AuditStore.open(path);
    expect(s.applyBatch([flow({ identity: ID }), flow({ identity: ID })])).toEqual({
      stored: 1,
      duplicates: 1,
      largerThanStored: 0,
    });
    s.close();
    s = AuditStore.open(path);
    expect(s.applyBatch([flow({ identity: ID })])).toEqual({ stored: 0, duplicates: 1, largerThanStored: 0 });
    expect(s.violations()[0]!.flows).toBe(1);
    expect(s.totals().flows).toBe(1);
    s.close();
  });

  it('one flow whose starts differ by the clock skew tolerance is one flow; beyond it, two', () => {
    const s = AuditStore.open(path, { dedupeToleranceMs: 2000 });
    s.applyBatch([flow({ identity: ID })]);
    expect(s.applyBatch([flow({ identity: { ...ID, start: T0 + 2000 } })]).duplicates).toBe(1);
    expect(s.applyBatch([flow({ identity: { ...ID, start: T0 - 1999 } })]).duplicates).toBe(1);
    expect(s.applyBatch([flow({ identity: { ...ID, start: T0 + 2001 } })]).stored).toBe(1);
    // Another slice of the same long flow is another unit of data, but not another flow.
    expect(s.applyBatch([flow({ identity: { ...ID, seq: 1 } })]).stored).toBe(1);
    expect(s.violations()[0]).toMatchObject({ flows: 2, packets: 30 });
    s.close();
  });

  it('a long flow reported in slices is one flow: its slices add packets, bytes and times, everywhere', () => {
    const s = AuditStore.open(path);
    const slice = (seq: number) =>
      flow({
        identity: { ...ID, seq, start: T0 + seq * 60_000 },
        start: T0 + seq * 60_000,
        end: T0 + seq * 60_000 + 59_000,
        rules: [{ policy: 'shop/allow', direction: 'ingress', rule: 0 }],
        facts: { srcNamespace: 'dev', dstNamespace: 'shop', observer: 'conntrack', node: 'node-2' },
      });
    // Two slices in one batch, the third (the connection's end) in another: one flow either way.
    s.applyBatch([slice(0), slice(1)]);
    s.applyBatch([slice(2)]);
    expect(s.violations()).toHaveLength(1);
    expect(s.violations()[0]).toMatchObject({ flows: 1, packets: 30, bytes: 3000, lastSeen: T0 + 179_000 });
    expect(s.totals()).toMatchObject({ flows: 1, packets: 30, bytes: 3000 });
    expect(s.facts.namespaceTraffic(0, T0 + 86_400_000)).toEqual([
      expect.objectContaining({ src: 'dev', dst: 'shop', flows: 1, bytes: 3000 }),
    ]);
    expect(s.facts.observerHours(0, T0 + 86_400_000)).toEqual([
      expect.objectContaining({ observer: 'conntrack', node: 'node-2', flows: 1 }),
    ]);
    s.close();
  });

  it('the first observation counted stays: a larger later one of the same flow is not added', () => {
    const s = AuditStore.open(path);
    s.applyBatch([flow({ identity: ID, packets: 4, bytes: 400 })]);
    expect(s.applyBatch([flow({ identity: ID, packets: 10, bytes: 1000 })])).toEqual({
      stored: 0,
      duplicates: 1,
      largerThanStored: 1,
    });
    expect(s.violations()[0]).toMatchObject({ flows: 1, packets: 4, bytes: 400 });
    s.close();
  });

  it('flows without an identity are always counted (callers that cannot identify a flow)', () => {
    const s = AuditStore.open(path);
    s.applyBatch([flow(), flow()]);
    expect(s.violations()[0]!.flows).toBe(2);
    s.close();
  });

  it('a failed batch leaves no identity behind: the rerun counts its flows', () => {
    const s = AuditStore.open(path);
    const bad = flow({
      identity: { ...ID, tuple: '6|a#1|b#2' },
      result: 'allowed',
      classification: 'allowed',
      rules: [{ policy: 'x/y', direction: 'sideways' as 'egress', rule: 0 }],
    });
    expect(() => s.applyBatch([flow({ identity: ID }), bad])).toThrow();
    expect(s.db.prepare('SELECT count(*) AS n FROM flow_identities').get()).toEqual({ n: 0 });
    expect(s.applyBatch([flow({ identity: ID })]).stored).toBe(1);
    s.close();
  });

  it('an interrupted run resumed or repeated gives the store of one clean run', () => {
    const flows = Array.from({ length: 40 }, (_, i) =>
      flow({
        start: T0 + i * 60_000,
        end: T0 + i * 60_000 + 5,
        port: 9000 + (i % 3),
        identity: { ...ID, tuple: `6|10.0.0.1#${40000 + i}|10.0.0.2#9000`, start: T0 + i * 60_000 },
      }),
    );
    const clean = AuditStore.open(join(dir, 'clean.db'));
    clean.applyBatch(flows);
    const expected = clean.violations();
    clean.close();
    // The first run commits two batches of 10, then dies (SIGKILL, full disk: the rest never commits).
    let s = AuditStore.open(path);
    s.applyBatch(flows.slice(0, 10));
    s.applyBatch(flows.slice(10, 20));
    s.close();
    // The rerun reads everything again, in other batches.
    s = AuditStore.open(path);
    const rec = new StoreRecorder(s, 7);
    for (const f of flows) rec.write({ stored: f } as Parameters<StoreRecorder['write']>[0]);
    rec.commit();
    expect({ written: rec.written, duplicates: rec.duplicates }).toEqual({ written: 20, duplicates: 20 });
    expect(s.violations()).toEqual(expected);
    s.close();
  });

  it('the recorder identifies a Kafka verdict (no record) from its evidence, and commits offsets of a batch of duplicates', () => {
    const record = {
      v: 1,
      start: T0,
      end: T0 + 5,
      proto: 'TCP',
      src: { ip: '10.244.2.40', port: 40020 },
      dst: { ip: '10.244.2.20', port: 9000 },
    };
    const s = AuditStore.open(path);
    const rec = new StoreRecorder(s);
    rec.write({ stored: flow({ evidence: record }) } as Parameters<StoreRecorder['write']>[0]);
    rec.commit();
    rec.write({ stored: flow({ evidence: record }) } as Parameters<StoreRecorder['write']>[0]);
    rec.advance({ consumer: 'recorder', topic: 'verdicts', partition: 0, nextOffset: '2' });
    rec.commit();
    expect(rec.duplicates).toBe(1);
    expect(s.violations()[0]!.flows).toBe(1);
    expect(s.offsets('recorder')[0]!.nextOffset).toBe('2');
    s.close();
  });

  it("the recorder lets go of an allowed flow's evidence at once, keeps a finding's, and still identifies both", () => {
    const record = (port: number) => ({
      v: 1,
      start: T0,
      end: T0 + 5,
      proto: 'TCP',
      src: { ip: '10.244.2.40', port },
      dst: { ip: '10.244.2.20', port: 9000 },
    });
    const allowed = flow({ result: 'allowed', classification: 'allowed', evidence: record(40001) });
    const violation = flow({ evidence: record(40002) });
    const s = AuditStore.open(path);
    const handed: StoredFlow[] = [];
    const apply = s.applyBatch.bind(s);
    s.applyBatch = (flows, ...rest) => {
      handed.push(...flows);
      return apply(flows, ...rest);
    };
    const rec = new StoreRecorder(s);
    const judged = (stored: StoredFlow) =>
      ({ stored, record: stored.evidence }) as Parameters<StoreRecorder['write']>[0];
    rec.write(judged(allowed));
    rec.write(judged(violation));
    rec.commit();
    expect(handed.map((f) => f.evidence)).toEqual([null, violation.evidence]);
    expect(handed.map((f) => f.identity?.tuple)).toEqual([
      '6|10.244.2.20#9000|10.244.2.40#40001',
      '6|10.244.2.20#9000|10.244.2.40#40002',
    ]);
    // The judged flows handed in are left as they were (a tee may hand them to another sink too).
    expect(allowed.evidence).toEqual(record(40001));
    expect(s.violations()[0]!.evidence).toEqual([violation.evidence]);
    // Seen again, both are recognised: the identity came from the record, not from the dropped evidence.
    rec.write(judged(allowed));
    rec.write(judged(violation));
    rec.commit();
    expect({ written: rec.written, duplicates: rec.duplicates }).toEqual({ written: 2, duplicates: 2 });
    s.close();
  });

  it('prune drops identities a day older than the cut', () => {
    const s = AuditStore.open(path);
    s.applyBatch([flow({ identity: ID }), flow({ identity: { ...ID, start: T0 + 3 * 86_400_000 } })]);
    s.prune(T0 + 2 * 86_400_000);
    const left = s.db.prepare('SELECT start FROM flow_identities').all();
    expect(left).toEqual([{ start: T0 + 3 * 86_400_000 }]);
    // What this connection remembered of the pruned identities went with them: re-ingested, it counts.
    expect(s.applyBatch([flow({ identity: ID })]).stored).toBe(1);
    s.close();
  });

  it('a finished run marks earlier unfinished runs of exactly its inputs as resumed, never for standard input', () => {
    const s = AuditStore.open(path);
    const killed = s.beginRun('embedded', ['a.pcap', 'c.yaml'], 1);
    const other = s.beginRun('embedded', ['b.pcap', 'c.yaml'], 2);
    const stdin = s.beginRun('embedded', ['-', 'c.yaml'], 3);
    const rerun = s.beginRun('embedded', ['a.pcap', 'c.yaml'], 4);
    expect(s.markResumed(rerun)).toEqual([]); // not finished yet
    s.finishRun(rerun, {}, 5);
    expect(s.markResumed(rerun)).toEqual([killed]);
    const stdinAgain = s.beginRun('embedded', ['-', 'c.yaml'], 6);
    s.finishRun(stdinAgain, {}, 7);
    expect(s.markResumed(stdinAgain)).toEqual([]);
    const rows = s.db.prepare('SELECT id, resumed_by FROM runs ORDER BY id').all();
    expect(rows).toEqual([
      { id: killed, resumed_by: rerun },
      { id: other, resumed_by: null },
      { id: stdin, resumed_by: null },
      { id: rerun, resumed_by: null },
      { id: stdinAgain, resumed_by: null },
    ]);
    s.close();
  });
});

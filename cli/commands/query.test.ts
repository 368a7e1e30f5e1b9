import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditStore, type StoredFlow } from '../../processor/store/index.js';
import { runCli } from '../../test/support/cli.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 2, 10, 0, 0);
let dir: string;
let db: string;

function flow(over: Partial<StoredFlow>): StoredFlow {
  return {
    start: T0,
    end: T0 + 10,
    proto: 'TCP',
    port: 9000,
    srcWorkload: 'dev/debug',
    dstWorkload: 'shop/payments',
    srcName: 'a',
    dstName: 'b, "quoted"',
    packets: 3,
    bytes: 300,
    result: 'denied',
    classification: 'denied-but-observed',
    rules: [],
    evidence: {},
    ...over,
  };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'npa-query-'));
  db = join(dir, 'audit.db');
  const s = AuditStore.open(db);
  const r = (policy: string, rule: number) => ({
    kind: 'NetworkPolicy',
    policy,
    direction: 'ingress' as const,
    rule,
    summary: `rule ${rule}, of "${policy}"`,
  });
  s.recordPolicies([], [r('shop/old', 0), r('shop/live', 0)], T0 - 30 * DAY);
  s.recordPolicies([], [r('shop/old', 0), r('shop/live', 0)], T0);
  s.applyBatch([
    flow({}),
    flow({ classification: 'denied-attempt', port: 5432 }),
    flow({
      result: 'allowed',
      classification: 'allowed',
      rules: [{ policy: 'shop/live', direction: 'ingress', rule: 0, kind: 'NetworkPolicy' }],
    }),
    flow({
      result: 'allowed',
      classification: 'allowed',
      start: T0 - 20 * DAY,
      end: T0 - 20 * DAY,
      rules: [{ policy: 'shop/old', direction: 'ingress', rule: 0, kind: 'NetworkPolicy' }],
    }),
  ]);
  s.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('violations and rules commands', () => {
  it('lists violations as JSON, and denied attempts apart', async () => {
    const v = await runCli(['violations', '--db', db, '--format', 'json']);
    expect(v.code).toBe(0);
    const rows = JSON.parse(v.stdout);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      srcWorkload: 'dev/debug',
      dstWorkload: 'shop/payments',
      port: 9000,
      flows: 1,
    });
    const a = await runCli(['violations', '--db', db, '--attempts', '--format', 'json']);
    expect(JSON.parse(a.stdout)[0]).toMatchObject({ port: 5432 });
  });

  it('prints a table and RFC 4180 CSV', async () => {
    const t = await runCli(['violations', '--db', db]);
    expect(t.stdout.split('\n')[0]).toMatch(/^WINDOW\s+SOURCE\s+DESTINATION\s+PROTO\s+PORT/);
    expect(t.stdout).toContain('dev/debug');
    const c = await runCli(['rules', '--db', db, '--format', 'csv']);
    const lines = c.stdout.trim().split('\r\n');
    expect(lines[0]).toBe('policy,kind,direction,rule,hits,bytes,first_hit,last_hit,summary');
    expect(lines).toContain(
      'shop/old,NetworkPolicy,ingress,0,1,300,2026-10-13T10:00:00.000Z,2026-10-13T10:00:00.000Z,"rule 0, of ""shop/old"""',
    );
  });

  it('lists rules unused in the last 7 days of data, but not rules used in that period', async () => {
    const r = await runCli(['rules', '--db', db, '--unused', '--since', '7d', '--format', 'json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).map((x: { policy: string }) => x.policy)).toEqual(['shop/old']);
    const all = await runCli(['rules', '--db', db, '--unused', '--since', '30d', '--format', 'json']);
    expect(JSON.parse(all.stdout)).toEqual([]);
  });

  it('rejects a bad --since or --format with a usage error', async () => {
    expect((await runCli(['rules', '--db', db, '--unused', '--since', 'yesterday-ish'])).code).toBe(2);
    expect((await runCli(['violations', '--db', db, '--format', 'xml'])).code).toBe(2);
  });
});

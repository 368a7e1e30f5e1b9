import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../schema/flow-record.js';
import { deadLetter, decodeFlow, encodeFlow, flowKey, HEADER_VERSION, jsonLines } from './codec.js';
import { DiskSpool, type SpooledMessage } from './spool.js';

const rec: FlowRecord = {
  v: 1,
  start: 1,
  end: 2,
  proto: 'UDP',
  src: { ip: '10.0.0.1', port: 5000 },
  dst: { ip: '10.0.0.2', port: 53 },
  packets: { fwd: 1, rev: 1 },
  bytes: { fwd: 60, rev: 90 },
  state: 'established',
  observer: { source: 'pcap' },
};

describe('flow codec', () => {
  it('round-trips a record, keyed by flow', () => {
    const m = encodeFlow(rec);
    expect(m.key).toBe('UDP|10.0.0.1|5000|10.0.0.2|53');
    expect(flowKey({ ...rec, id: 'abc' })).toBe('abc');
    const d = decodeFlow({ ...m, value: Buffer.from(m.value as string) });
    expect(d).toEqual({ ok: true, record: rec });
  });

  it.each([
    ['a newer schema version header', { headers: { [HEADER_VERSION]: '2' } }, 'MESSAGE_UNKNOWN_VERSION'],
    [
      'a newer version in the body',
      { value: JSON.stringify({ ...rec, v: 2 }), headers: {} },
      'MESSAGE_UNKNOWN_VERSION',
    ],
    ['bad JSON', { value: '{"v":1,' }, 'MESSAGE_BAD_JSON'],
    ['a tombstone', { value: null }, 'MESSAGE_EMPTY'],
    ['an invalid record', { value: JSON.stringify({ ...rec, state: 'open' }) }, 'MESSAGE_INVALID_RECORD'],
    ['another schema', { headers: { 'netpol-audit-schema': 'verdict' } }, 'MESSAGE_WRONG_SCHEMA'],
  ])('refuses %s with a reason', (_n, over, code) => {
    const d = decodeFlow({ ...encodeFlow(rec), ...over });
    expect(d.ok).toBe(false);
    if (!d.ok) {
      expect(d.code).toBe(code);
      expect(d.reason.length).toBeGreaterThan(5);
    }
  });

  it('dead-letters with the original bytes, the reason and the origin', () => {
    const m = { key: 'k', value: 'garbage', headers: { a: 'b' } };
    const dl = deadLetter(
      m,
      { topic: 'flows', partition: 3, offset: '42' },
      { code: 'MESSAGE_BAD_JSON', reason: 'nope' },
    );
    expect(dl.value).toBe('garbage');
    expect(dl.headers).toMatchObject({
      a: 'b',
      'netpol-audit-dlq-code': 'MESSAGE_BAD_JSON',
      'netpol-audit-dlq-origin': 'flows/3/42',
    });
  });
});

describe('jsonLines (a pack value)', () => {
  const general = (lines: string[]) => Buffer.from(lines.join('\n'), 'utf8');
  it('is the lines joined by newlines, as UTF-8, whatever characters they hold', () => {
    const ascii = ['{"a":1}', '{"ip":"10.0.0.1"}', '{}'];
    const cases = [
      [],
      [''],
      ['', ''],
      ascii,
      // Not ASCII first, in the middle, last (where the buffer has only its spare bytes left), and
      // a line of nothing but four-byte characters and an unpaired surrogate.
      ['{"n":"café"}', ...ascii],
      [...ascii.slice(0, 1), '{"n":"Straße 名前"}', ...ascii.slice(1)],
      [...ascii, '{"n":"é"}'],
      [...ascii, '🛰️🛰️🛰️'],
      ['{"n":"\ud800"}', ...ascii],
    ];
    for (const lines of cases)
      expect(jsonLines(lines).equals(general(lines)), JSON.stringify(lines)).toBe(true);
  });
});

describe('DiskSpool', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'npa-spool-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const msg = (i: number): SpooledMessage => ({ topic: 't', key: `k${i}`, value: `v${i}`.padEnd(50, '.') });

  it('resends in order across segments and removes what was delivered', async () => {
    const s = new DiskSpool(dir, 1_000_000, 500);
    for (let i = 0; i < 40; i++) expect(s.append(msg(i))).toBe(true);
    const got: string[] = [];
    expect(await s.drain(async (b) => void got.push(...b.map((m) => m.key!)))).toBe(40);
    expect(got).toEqual(Array.from({ length: 40 }, (_, i) => `k${i}`));
    expect(s.empty).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('keeps what the broker did not take, and a new spool object finds it', async () => {
    const s = new DiskSpool(dir, 1_000_000, 300);
    for (let i = 0; i < 20; i++) s.append(msg(i));
    let calls = 0;
    await expect(
      s.drain(async () => {
        if (++calls === 2) throw new Error('broker away');
      }),
    ).rejects.toThrow('broker away');
    s.close();
    const again = new DiskSpool(dir, 1_000_000, 300);
    const got: string[] = [];
    await again.drain(async (b) => void got.push(...b.map((m) => m.key!)));
    // The first segment was delivered and removed; everything after it comes back, in order.
    expect(got[0]).not.toBe('k0');
    expect(got.at(-1)).toBe('k19');
    expect(got).toEqual([...got].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))));
  });

  it('spools a buffer value (a pack) as its text', async () => {
    const s = new DiskSpool(dir, 1_000_000);
    const value = jsonLines(['{"n":"café"}', '{"a":1}']);
    s.append({ topic: 't', key: null, value, partition: 2, count: 2 });
    const got: SpooledMessage[] = [];
    await s.drain(async (b) => void got.push(...b));
    expect(got).toEqual([{ topic: 't', key: null, value: '{"n":"café"}\n{"a":1}', partition: 2, count: 2 }]);
  });

  it('counts what it refuses when full, and refuses nothing before that', () => {
    const s = new DiskSpool(dir, 700);
    let accepted = 0;
    for (let i = 0; i < 20; i++) if (s.append(msg(i))) accepted++;
    expect(accepted).toBeGreaterThan(0);
    expect(s.stats.dropped).toBe(20 - accepted);
    expect(s.stats.spooled).toBe(accepted);
    expect(s.stats.bytes).toBeLessThanOrEqual(700);
  });
});

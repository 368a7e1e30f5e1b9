import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type FlowRecord, validateFlowRecord } from '../../schema/flow-record.js';
import { ROOT, runCli } from '../../test/support/cli.js';

const FIXTURES = resolve(ROOT, 'collectors/conntrack/fixtures');
const jsonl = (text: string) =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as FlowRecord);

describe('netpol-audit collect conntrack --input', () => {
  it('turns a real event log into valid FlowRecords with the node name, summary on stderr', async () => {
    const r = await runCli([
      'collect',
      'conntrack',
      '--input',
      join(FIXTURES, 'events-nat-ipv6-icmp.log'),
      '--node',
      'worker-1',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const records = jsonl(r.stdout);
    // The log holds five connections, each NEW ... DESTROY (five DESTROY lines).
    expect(records).toHaveLength(5);
    for (const rec of records) {
      expect(validateFlowRecord(rec).ok).toBe(true);
      expect(rec.observer).toEqual({
        source: 'conntrack',
        node: 'worker-1',
        file: join(FIXTURES, 'events-nat-ipv6-icmp.log'),
      });
    }
    expect(r.stderr).toMatch(/5 NEW, 14 UPDATE, 5 DESTROY, 0 malformed/);
    expect(r.stderr).toMatch(/5 flows in 5 records/);
  });

  it('reads standard input, reports garbled lines with their numbers and exits 1', async () => {
    const good = readFileSync(join(FIXTURES, 'events-pod-traffic.log'), 'utf8').split('\n');
    const input = [
      good[0],
      'this is not conntrack',
      good[1],
      `${good[2]!.slice(0, 60)}`,
      ...good.slice(3),
    ].join('\n');
    const r = await runCli(['collect', 'conntrack', '--input', '-'], { input });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error CONNTRACK_MALFORMED_LINE: <stdin>: line 2: /);
    expect(r.stderr).toMatch(/error CONNTRACK_MALFORMED_LINE: <stdin>: line 4: /);
    expect(r.stderr).toMatch(/2 malformed/);
    // The good lines still make their flows.
    expect(
      jsonl(r.stdout)
        .map((x) => x.dst.port)
        .sort(),
    ).toEqual([5353, 80, 8080, 9999]);
  });

  it('dates dump lines with --time and writes to --output', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'collect-conntrack-'));
    const out = join(dir, 'flows.jsonl');
    const r = await runCli([
      'collect',
      'conntrack',
      '-i',
      join(FIXTURES, 'dump-pod-traffic.txt'),
      '--time',
      '2026-11-23T07:42:40Z',
      '-o',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const records = jsonl(readFileSync(out, 'utf8'));
    expect(records).toHaveLength(3);
    for (const rec of records) {
      expect(rec).toMatchObject({
        reason: 'conntrack-dump',
        continued: true,
        end: Date.parse('2026-11-23T07:42:40Z'),
      });
    }
  });

  it('usage errors exit 2', async () => {
    expect((await runCli(['collect', 'conntrack', '--input', 'x', '--netns', 'y'])).code).toBe(2);
    expect((await runCli(['collect', 'conntrack', '--input', 'x', '--time', 'yesterday-ish'])).code).toBe(2);
    expect((await runCli(['collect', 'conntrack', '--active-timeout', '-5'])).code).toBe(2);
    const source = await runCli(['collect', 'conntrack', '--events', 'netlink']);
    expect(source.code).toBe(2);
    expect(source.stderr).toContain("--events must be one of reliable, conntrack, got 'netlink'");
    const replay = await runCli(['collect', 'conntrack', '--input', 'x', '--event-buffer', '4096']);
    expect(replay.code).toBe(2);
    expect(replay.stderr).toContain('--event-buffer applies to a live collection');
    const save = await runCli(['collect', 'conntrack', '--input', 'x', '--save-events', 'y']);
    expect(save.code).toBe(2);
    expect(save.stderr).toContain('--save-events applies to a live collection');
  });

  it('an unreadable input is a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'collect-conntrack-'));
    const missing = join(dir, 'nope.log');
    const r = await runCli(['collect', 'conntrack', '--input', missing]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/CONNTRACK_INPUT_UNREADABLE/);
    writeFileSync(join(dir, 'empty.log'), '');
    const empty = await runCli(['collect', 'conntrack', '--input', join(dir, 'empty.log')]);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toBe('');
  });
});

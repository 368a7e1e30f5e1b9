import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConntrackState } from '../../collectors/conntrack/state.js';
import type { FlowRecord } from '../../schema/flow-record.js';
import { inNs, NamespaceTest, PEER, type Proc, start, type Topology } from './topology.js';

/**
 * A live conntrack collector SIGKILLed in the middle of a long connection and started again with
 * the same `--state` file, as a collector container is restarted in its pod: the connection is one
 * flow (one first record), its records go on with the same id and the next seq, and its packets
 * are counted once (their sum is the kernel's own count at DESTROY).
 */

const ns = new NamespaceTest();
let topo: Topology | undefined;
let dir = '';
const records: Record<'first' | 'second', FlowRecord[]> = { first: [], second: [] };
let secondStderr = '';
let destroyLine = '';
let stateBeforeKill: ReturnType<typeof readConntrackState> = { flows: [] };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const track = (p: Proc) => ns.track(p);

function collector(out: string, state: string): Proc {
  return ns.cli([
    'collect',
    'conntrack',
    '--netns',
    topo!.node,
    '--active-timeout',
    '1',
    '--state',
    state,
    '-o',
    out,
  ]);
}

/** Whole lines only: a SIGKILL may cut the last line a collector was writing. */
function jsonl(path: string): FlowRecord[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as FlowRecord];
      } catch {
        return [];
      }
    });
}

beforeAll(async () => {
  topo = await ns.up('npa-ct-restart-');
  dir = ns.dir;
  const t = topo;
  const state = join(dir, 'conntrack.state');
  const server = track(
    start('ip', ['netns', 'exec', t.podB, process.execPath, PEER, 'tcp-echo-server', '8080']),
  );
  await server.waitFor(/ready/, 'stdout');
  // The kernel's own account of the connection, for the totals.
  const events = track(
    start('ip', [
      'netns',
      'exec',
      t.node,
      'conntrack',
      '-E',
      '-o',
      'extended,id',
      '-e',
      'DESTROY',
      '-p',
      'tcp',
    ]),
  );

  const first = collector(join(dir, 'first.jsonl'), state);
  await first.waitFor(/collect conntrack: listening/, 'stderr', 60_000);
  // One connection of 40 lines, 250 ms apart: 10 s, longer than the kill and the restart.
  const chat = track(
    start('ip', ['netns', 'exec', t.podA, process.execPath, PEER, 'tcp-chat', t.ip.b, '8080', '40', '250']),
  );
  // An event makes the collector look at its flows: the connection is older than the active
  // timeout (1 s), so it writes its first record, then its state within a second.
  await sleep(1500);
  // (A datagram to a closed port of pod B: a NEW event.)
  await start('ip', ['netns', 'exec', t.podA, process.execPath, PEER, 'udp-client', t.ip.b, '7777', 'nudge'])
    .exited;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    stateBeforeKill = readConntrackState(state);
    if (stateBeforeKill.flows.some((f) => f.seq >= 1)) break;
    await sleep(100);
  }
  first.child.kill('SIGKILL');
  await first.exited;
  records.first = jsonl(join(dir, 'first.jsonl'));

  const second = collector(join(dir, 'second.jsonl'), state);
  await second.waitFor(/collect conntrack: listening/, 'stderr', 60_000);
  expect(await chat.exited).toBe(0);
  // TIME_WAIT is 1 s here; a table dump reaps expired entries at once.
  const until = Date.now() + 15_000;
  while (!/dport=8080/.test(events.stdout()) && Date.now() < until) {
    await inNs(t.node, 'conntrack', ['-L']);
    await sleep(300);
  }
  await sleep(500);
  expect(await second.stop('SIGTERM'), second.stderr()).toBe(0);
  secondStderr = second.stderr();
  records.second = jsonl(join(dir, 'second.jsonl'));
  destroyLine =
    events
      .stdout()
      .split('\n')
      .find((l) => l.includes('dport=8080')) ?? '';
}, 150_000);

afterAll(() => ns.down());

const chatRecords = (rs: FlowRecord[]) => rs.filter((r) => r.dst.ip === topo!.ip.b && r.dst.port === 8080);

describe('a conntrack collector killed and restarted with its --state file', () => {
  it('before the kill: the first collector reported the connection in part and saved it', () => {
    expect(stateBeforeKill.problem).toBeUndefined();
    expect(chatRecords(records.first).map((r) => [r.reason, r.seq])).toEqual([['active-timeout', 0]]);
    expect(stateBeforeKill.flows).toEqual([expect.objectContaining({ seq: 1, continued: false })]);
  });

  it('after the restart: no second first record; the same id, the next seq', () => {
    const second = chatRecords(records.second);
    expect(second.length).toBeGreaterThanOrEqual(1);
    expect(second.map((r) => r.reason)).not.toContain('conntrack-dump');
    expect(second.at(-1)!.reason).toBe('conntrack-destroy');
    const all = [...chatRecords(records.first), ...second];
    expect(new Set(all.map((r) => r.id)).size).toBe(1);
    expect(all.map((r) => r.seq)).toEqual(all.map((_, i) => i));
    // One record starts the flow: the store counts it once (processor/store/identity.ts flowsIn).
    expect(all.filter((r) => (r.seq ?? 0) === 0)).toHaveLength(1);
    expect(secondStderr).toMatch(
      /1 flow\(s\) taken up from the previous run, 0 of its open flow\(s\) had ended/,
    );
  });

  it('the packets and bytes of both runs add up to what the kernel counted for the connection', () => {
    const counter = (name: string, nth: number) =>
      Number([...destroyLine.matchAll(new RegExp(`${name}=(\\d+)`, 'g'))][nth]?.[1]);
    expect(destroyLine).not.toBe('');
    const all = [...chatRecords(records.first), ...chatRecords(records.second)];
    const sum = (f: (r: FlowRecord) => number) => all.reduce((a, r) => a + f(r), 0);
    expect(sum((r) => r.packets.fwd)).toBe(counter('packets', 0));
    expect(sum((r) => r.packets.rev)).toBe(counter('packets', 1));
    expect(sum((r) => r.bytes.fwd)).toBe(counter('bytes', 0));
    expect(sum((r) => r.bytes.rev)).toBe(counter('bytes', 1));
    expect(sum((r) => r.packets.fwd)).toBeGreaterThan(40);
  });
});

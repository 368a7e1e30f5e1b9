import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConntrackLine } from '../../collectors/conntrack/parse.js';
import { RELIABLE_EVENTS_PY, reliableEventsArgs } from '../../collectors/conntrack/reliable.js';
import type { FlowRecord } from '../../schema/flow-record.js';
import { inNs, NamespaceTest, PEER, type Proc, start, type Topology } from './topology.js';

/**
 * The reliable conntrack listener (collectors/conntrack/reliable.ts) in real namespaces: it prints
 * what `conntrack -E -o timestamp,extended,id` prints, and a collector that fell behind a burst of
 * connections (stopped, with a small netlink buffer) still writes every one of them, where
 * `conntrack -E` in the same place loses DESTROY events for good.
 */

const ns = new NamespaceTest();
let topo: Topology | undefined;
let dir = '';
const SMALL_BUFFER = 212_992;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const track = (p: Proc) => ns.track(p);

const peer = (args: string[]) =>
  track(start('ip', ['netns', 'exec', topo!.podA, process.execPath, PEER, ...args]));

/** Until the node's table holds no pod connection (a listing reaps expired entries at once). */
async function untilTableEmpty(): Promise<void> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const table = await inNs(topo!.node, 'conntrack', ['-L']).catch(() => '');
    if (!table.includes(topo!.ip.a)) return;
    await sleep(500);
  }
  throw new Error('conntrack did not forget the connections within 60 s');
}

/** A listener's lines without the time conntrack (or the listener) read them. */
const untimed = (out: string) =>
  out
    .split('\n')
    .filter((l) => l.includes(topo!.ip.a))
    .map((l) => l.replace(/^\[\d+\.\d+\]\t/, ''));

beforeAll(async () => {
  topo = await ns.up('npa-ct-reliable-');
  dir = ns.dir;
  const server = track(
    start('ip', ['netns', 'exec', topo.podB, process.execPath, PEER, 'tcp-echo-server', '8080']),
  );
  await server.waitFor(/ready/, 'stdout');
}, 60_000);

afterAll(() => ns.down());

describe('the reliable conntrack listener', () => {
  it('prints what conntrack -E -o timestamp,extended,id prints, line for line', async () => {
    const t = topo!;
    const reliable = track(
      start('ip', ['netns', 'exec', t.node, 'python3', ...reliableEventsArgs(8 << 20, 'NEW,UPDATE,DESTROY')]),
    );
    const conntrack = track(
      start('ip', ['netns', 'exec', t.node, 'conntrack', '-E', '-o', 'timestamp,extended,id']),
    );
    await sleep(1500);
    expect(await peer(['tcp-client', t.ip.b, '8080', 'hello']).exited).toBe(0);
    expect(await peer(['tcp-refused', t.ip.b, '9999']).exited).toBe(0);
    expect(await peer(['udp-client', t.ip.b, '7777', 'x']).exited).toBe(1); // port unreachable
    await untilTableEmpty();
    await sleep(500);
    await reliable.stop('SIGTERM');
    await conntrack.stop('SIGTERM');
    const mine = untimed(reliable.stdout());
    const theirs = untimed(conntrack.stdout());
    // NEW, UPDATEs and DESTROY of the answered connection, NEW and DESTROY of the refused one and
    // of the datagram.
    expect(mine.filter((l) => l.includes('[DESTROY]'))).toHaveLength(3);
    expect(mine).toEqual(theirs);
    // And the timestamps parse as conntrack's do.
    const first = reliable.stdout().split('\n')[0]!;
    const parsed = parseConntrackLine(first, 1);
    expect(parsed.kind === 'entry' && parsed.entry.event === 'NEW' && parsed.entry.timeMs).toBeGreaterThan(0);
    expect(RELIABLE_EVENTS_PY).toContain('NETLINK_BROADCAST_ERROR');
  }, 90_000);

  it('a collector stopped during a burst, with a small buffer, still writes every connection once', async () => {
    const t = topo!;
    const out = join(dir, 'burst.jsonl');
    const saved = join(dir, 'burst.events');
    const collector = ns.cli([
      'collect',
      'conntrack',
      '--netns',
      t.node,
      '--event-buffer',
      String(SMALL_BUFFER),
      '--save-events',
      saved,
      '-o',
      out,
    ]);
    await collector.waitFor(/collect conntrack: listening/, 'stderr', 60_000);
    const plain = track(
      start('ip', ['netns', 'exec', t.node, 'conntrack', '-E', '-e', 'DESTROY', '-b', String(SMALL_BUFFER)]),
    );
    await sleep(500);
    // Both fall behind: the collector stops reading its listener's pipe, which fills, and the
    // listener's socket overruns; conntrack -E simply stops reading.
    collector.child.kill('SIGSTOP');
    plain.child.kill('SIGSTOP');
    const answered = peer(['tcp-burst', t.ip.b, '8080', '1500']);
    const refused = peer(['tcp-burst', t.ip.b, '9999', '500']);
    expect(await answered.exited).toBe(0);
    expect(await refused.exited).toBe(0);
    expect(answered.stdout().trim()).toBe('1500 0');
    expect(refused.stdout().trim()).toBe('0 500');
    await sleep(2000);
    collector.child.kill('SIGCONT');
    plain.child.kill('SIGCONT');
    await untilTableEmpty();
    // The kernel sends the DESTROY events it could not deliver again until they fit.
    const until = Date.now() + 60_000;
    const destroyed = () => (readFileSync(out, 'utf8').match(/"reason":"conntrack-destroy"/g) ?? []).length;
    while (destroyed() < 2000 && Date.now() < until) await sleep(500);
    await sleep(1000);
    expect(await collector.stop('SIGTERM'), collector.stderr()).toBe(0);
    await plain.stop('SIGTERM');

    const read = (file: string) =>
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as FlowRecord)
        .filter((r) => r.src.ip === t.ip.a && r.dst.ip === t.ip.b);
    const records = read(out);
    const first = records.filter((r) => (r.seq ?? 0) === 0);
    const byPort = (port: number) => first.filter((r) => r.dst.port === port);
    // Every connection is one flow, none twice: the answered ones and the refused ones.
    expect(byPort(8080)).toHaveLength(1500);
    expect(byPort(9999)).toHaveLength(500);
    expect(new Set(first.map((r) => `${r.src.port}>${r.dst.port}`)).size).toBe(2000);
    const states = (rs: FlowRecord[]) => {
      const n: Record<string, number> = {};
      for (const r of rs) n[r.state] = (n[r.state] ?? 0) + 1;
      return n;
    };
    expect(states(byPort(9999))).toEqual({ rejected: 500 });
    expect(states(byPort(8080))).toEqual({ closed: 1500 });
    // The burst did overrun the socket: the listener reported lost (NEW/UPDATE) events.
    expect(collector.stderr()).toMatch(
      /conntrack lost events [1-9]\d* time\(s\) \(ENOBUFS; NEW and UPDATE only: the kernel sends a DESTROY again until it is read, so no flow was lost\)/,
    );
    // --save-events kept the lines behind the records: replayed, they give the same flows.
    const replayed = join(dir, 'replayed.jsonl');
    const replay = ns.cli(['collect', 'conntrack', '--input', saved, '-o', replayed]);
    expect(await replay.exited, replay.stderr()).toBe(0);
    const again = read(replayed).filter((r) => (r.seq ?? 0) === 0);
    const flowsOf = (rs: FlowRecord[]) => rs.map((r) => `${r.src.port}>${r.dst.port} ${r.state}`).sort();
    expect(flowsOf(again)).toEqual(flowsOf(first));
    // For comparison only (the kernel's retries reach it too: it may print some twice).
    const plainDestroys = plain
      .stdout()
      .split('\n')
      .filter((l) => l.includes(t.ip.a)).length;
    console.info(
      `burst of 2,000 connections, ${SMALL_BUFFER}-byte buffers, readers stopped: the collector wrote ` +
        `${first.length} flows; conntrack -E beside it printed ${plainDestroys} DESTROY events`,
    );
  }, 180_000);
});

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { InputIssue } from '../../lib/errors.js';
import { type FlowRecord, validateFlowRecord } from '../../schema/flow-record.js';
import { ArraySink } from '../sink.js';
import { CONNTRACK_NO_COUNTERS, ConntrackCollector, ConntrackFlows, parseConntrackLine } from './index.js';
import { collectConntrackLog } from './run.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const fixturePath = (name: string) => join(FIXTURES, name);

async function collect(text: string, fallback = 1_700_000_000_000, opts = {}) {
  const sink = new ArraySink();
  const issues: InputIssue[] = [];
  const c = new ConntrackCollector(sink, { ...opts, onIssue: (i) => issues.push(i) });
  let n = 0;
  for (const line of text.split('\n')) await c.line(line, ++n, fallback);
  await c.end();
  return { records: sink.records, issues, summary: c.summary };
}

function byPort(records: FlowRecord[], port: number): FlowRecord[] {
  return records.filter((r) => r.dst.port === port || r.nat?.dst?.port === port);
}

/** One conntrack line, parsed (a fixture that does not parse fails the test). */
function entryOf(line: string) {
  const p = parseConntrackLine(line, 1, 'test');
  if (p.kind !== 'entry') throw new Error(`did not parse: ${line}`);
  return p.entry;
}

describe('conntrack events → FlowRecords (real event log)', async () => {
  const sink = new ArraySink();
  const summary = await collectConntrackLog(fixturePath('events-pod-traffic.log'), sink, {});
  const records = sink.records;

  it('every record is a valid FlowRecord from conntrack', () => {
    expect(records.length).toBeGreaterThan(0);
    for (const r of records) {
      expect(validateFlowRecord(r)).toEqual({ ok: true, value: r });
      expect(r.observer.source).toBe('conntrack');
      expect(r.initiator).toBe('conntrack');
    }
  });

  it('the refused connection (SYN_SENT → CLOSE, [UNREPLIED], 1 reply packet = the RST) is rejected', () => {
    const [r] = byPort(records, 9999);
    expect(r).toMatchObject({
      proto: 'TCP',
      src: { ip: '10.240.1.2', port: 45066 },
      dst: { ip: '10.240.2.2', port: 9999 },
      state: 'rejected',
      reason: 'conntrack-destroy',
      packets: { fwd: 1, rev: 1 },
      bytes: { fwd: 60, rev: 40 },
    });
    // NEW at .438588, DESTROY at .438630.
    expect(r!.start).toBeCloseTo(1795419757438.588, 3);
    expect(r!.end).toBeCloseTo(1795419757438.63, 3);
    expect(r!.continued).toBeUndefined();
  });

  it('the answered UDP request is established (connectionless: no close to see)', () => {
    const [r] = byPort(records, 5353);
    expect(r).toMatchObject({
      proto: 'UDP',
      state: 'established',
      packets: { fwd: 1, rev: 1 },
      bytes: { fwd: 33, rev: 33 },
    });
  });

  it('TCP flows still in TIME_WAIT at the end of the log are closed, with no counters yet', () => {
    const [r] = byPort(records, 8080).filter((x) => x.nat === undefined);
    expect(r).toMatchObject({ state: 'closed', reason: 'end-of-input', packets: { fwd: 0, rev: 0 } });
  });

  it('the ClusterIP connection carries the DNAT target', () => {
    const [r] = records.filter((x) => x.dst.ip === '10.96.0.10');
    expect(r).toMatchObject({
      dst: { ip: '10.96.0.10', port: 80 },
      nat: { dst: { ip: '10.240.2.2', port: 8080 } },
    });
    expect(r!.nat!.src).toBeUndefined();
  });

  it('one record per flow here, and the summary counts', () => {
    expect(records).toHaveLength(4);
    expect(summary).toMatchObject({
      malformed: 0,
      flows: 4,
      records: 4,
      events: { NEW: 4, UPDATE: 13, DESTROY: 2 },
    });
  });
});

describe('SNAT, ICMP, IPv6, unanswered UDP (real event log)', async () => {
  const sink = new ArraySink();
  await collectConntrackLog(fixturePath('events-nat-ipv6-icmp.log'), sink, {});
  const records = sink.records;

  it('masquerade shows as nat.src (the node address the server saw)', () => {
    const [r] = records.filter((x) => x.dst.ip === '10.240.3.2');
    expect(r).toMatchObject({ state: 'closed', nat: { src: { ip: '10.240.3.1', port: 56346 } } });
    expect(r!.nat!.dst).toBeUndefined();
  });

  it('ICMP echo answered: established, with type/code/id', () => {
    const [r] = records.filter((x) => x.proto === 'ICMP');
    expect(r).toMatchObject({
      state: 'established',
      icmp: { type: 8, code: 0, id: 4660 },
      src: { ip: '10.240.1.2' },
    });
    expect(r!.src.port).toBeUndefined();
  });

  it('UDP to a closed port: conntrack keeps it [UNREPLIED] (the ICMP error is not a reply): attempted', () => {
    const [r] = byPort(records, 7777);
    expect(r).toMatchObject({ state: 'attempted', packets: { fwd: 1, rev: 0 } });
  });

  it('IPv6', () => {
    const [r] = records.filter((x) => x.src.ip === 'fd00:1::2');
    expect(r).toMatchObject({ proto: 'UDP', state: 'established', dst: { ip: 'fd00:2::2', port: 5353 } });
  });
});

describe('joining and slicing', () => {
  const NEW =
    '[1700000000.000000]\t    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 id=11';
  const EST =
    '[1700000000.001000]\t [UPDATE] ipv4     2 tcp      6 432000 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 [ASSURED] id=11';
  const END = (t: string, pf: number, pr: number) =>
    `[${t}]\t[DESTROY] ipv4     2 tcp      6 TIME_WAIT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 packets=${pf} bytes=${pf * 100} src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 packets=${pr} bytes=${pr * 100} [ASSURED] id=11`;

  it('NEW, UPDATE and DESTROY of one id make one record from NEW to DESTROY', async () => {
    const { records } = await collect([NEW, EST, END('1700000002.500000', 5, 4)].join('\n'));
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      start: 1700000000000,
      end: 1700000002500,
      state: 'closed',
      seq: 0,
      packets: { fwd: 5, rev: 4 },
    });
  });

  it('a long flow gets an active-timeout record, and the DESTROY record carries the counters once', async () => {
    const other =
      '[1700000400.000000]\t    [NEW] ipv4     2 udp      17 30 src=10.0.0.9 dst=10.0.0.2 sport=5 dport=53 [UNREPLIED] src=10.0.0.2 dst=10.0.0.9 sport=53 dport=5 id=99';
    const { records } = await collect([NEW, EST, other, END('1700000900.000000', 50, 40)].join('\n'), 0, {
      activeTimeoutMs: 300_000,
    });
    const flow = records.filter((r) => r.src.port === 40000);
    expect(flow.map((r) => [r.reason, r.seq, r.state])).toEqual([
      ['active-timeout', 0, 'established'],
      ['conntrack-destroy', 1, 'closed'],
    ]);
    expect(flow[0]!.end).toBe(1700000400000);
    expect(flow[1]!.start).toBe(1700000400000);
    expect(flow[0]!.id).toBe(flow[1]!.id);
    expect(flow[1]!.packets).toEqual({ fwd: 50, rev: 40 });
  });

  it('a dump line is reported at once; its later DESTROY carries only what came after', async () => {
    const dump =
      'ipv4     2 tcp      6 431000 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 packets=10 bytes=1000 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 packets=8 bytes=800 [ASSURED] mark=0 use=1 id=11';
    const { records } = await collect([dump, END('1700000010.000000', 15, 9)].join('\n'), 1_700_000_000_000);
    expect(records.map((r) => r.reason)).toEqual(['conntrack-dump', 'conntrack-destroy']);
    expect(records[0]).toMatchObject({
      continued: true,
      start: 1_700_000_000_000,
      packets: { fwd: 10, rev: 8 },
      state: 'established',
    });
    expect(records[1]).toMatchObject({
      continued: true,
      seq: 1,
      packets: { fwd: 5, rev: 1 },
      bytes: { fwd: 500, rev: 100 },
    });
  });

  it('a restarted collector goes on with a flow the previous run reported in part: same id, next seq, counters net of what was reported', async () => {
    const other =
      '[1700000400.000000]\t    [NEW] ipv4     2 udp      17 30 src=10.0.0.9 dst=10.0.0.2 sport=5 dport=53 [UNREPLIED] src=10.0.0.2 dst=10.0.0.9 sport=53 dport=5 id=99';
    const UPD =
      '[1700000399.000000]\t [UPDATE] ipv4     2 tcp      6 432000 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 packets=20 bytes=2000 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 packets=16 bytes=1600 [ASSURED] id=11';
    // Run 1: NEW, counters, then an active-timeout record; then the collector is gone (no end()).
    const sink1 = new ArraySink();
    // Live, as the restarted collector runs (a saved log's lines are held back to check their times).
    const live = { activeTimeoutMs: 300_000, live: true, now: () => 1_700_000_450_000 };
    const run1 = new ConntrackCollector(sink1, live);
    let n = 0;
    for (const l of [NEW, EST, UPD, other]) await run1.line(l, ++n, 0);
    expect(sink1.records.map((r) => [r.reason, r.seq])).toEqual([['active-timeout', 0]]);
    const saved = run1.flows.resumableFlows();
    expect(saved).toHaveLength(1);

    // Run 2 resumes: the table dump lists the flow (delta-time 450 s: started at the NEW's time),
    // then its DESTROY comes.
    const dump =
      'ipv4     2 tcp      6 431000 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 packets=30 bytes=3000 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 packets=25 bytes=2500 [ASSURED] mark=0 delta-time=450 use=1 id=11';
    const sink2 = new ArraySink();
    const run2 = new ConntrackCollector(sink2, live);
    run2.flows.resume(JSON.parse(JSON.stringify(saved)));
    await run2.line(dump, 1, 1_700_000_450_000);
    expect(run2.flows.dropUnresumed()).toEqual([]);
    expect(sink2.records).toEqual([]); // no second "first" record of the flow
    await run2.line(END('1700000500.000000', 50, 40), 2, 0);
    expect(run2.flows.resumedCount).toBe(1);
    const [end] = sink2.records;
    expect(end).toMatchObject({
      reason: 'conntrack-destroy',
      seq: 1,
      id: sink1.records[0]!.id,
      start: sink1.records[0]!.end,
      packets: { fwd: 30, rev: 24 },
      bytes: { fwd: 3000, rev: 2400 },
    });
    // Both runs together carry the flow's counters exactly once.
    const total = [...sink1.records, end!].reduce((a, r) => a + r.packets.fwd + r.packets.rev, 0);
    expect(total).toBe(50 + 40);
  });

  it('resuming: a flow met again with another start (conntrack reused the id) or as NEW is a new flow; flows not met again are dropped', async () => {
    const flows = new ConntrackFlows({});
    const state = {
      start: 1_600_000_000_000,
      sliceStart: 1_600_000_100_000,
      seq: 2,
      continued: false,
      emitted: { pf: 1, pr: 1, bf: 1, br: 1 },
    };
    flows.resume([
      { ...state, key: '11|6|10.0.0.1>10.0.0.2|40000>80|0' },
      { ...state, key: '12|6|10.0.0.3>10.0.0.2|40000>80|0' },
    ]);
    const dump =
      'ipv4     2 tcp      6 431000 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 packets=30 bytes=3000 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 packets=25 bytes=2500 [ASSURED] mark=0 delta-time=5 use=1 id=11';
    const out = flows.push(entryOf(dump), 1_700_000_000_000);
    expect(out.map((r) => [r.reason, r.seq, r.continued])).toEqual([['conntrack-dump', 0, true]]);
    expect(flows.resumedCount).toBe(0);
    expect(flows.dropUnresumed().map((r) => r.key)).toEqual(['12|6|10.0.0.3>10.0.0.2|40000>80|0']);
  });

  it('a catch-up dump ends a flow the kernel no longer holds; its DESTROY, late rather than lost, goes on with it', () => {
    const flows = new ConntrackFlows({});
    flows.push(entryOf(NEW), 0);
    flows.push(entryOf(EST), 0);
    flows.beginResync(1_700_000_005_000);
    const gone = flows.endResync();
    expect(gone.map((r) => [r.reason, r.seq, r.state, r.end])).toEqual([
      ['conntrack-gone', 0, 'closed', 1_700_000_000_001],
    ]);
    expect(flows.size).toBe(0);
    const late = flows.push(entryOf(END('1700000006.000000', 5, 4)), 0);
    expect(late.map((r) => [r.reason, r.seq, r.id])).toEqual([['conntrack-destroy', 1, gone[0]!.id]]);
    expect(late[0]!.packets).toEqual({ fwd: 5, rev: 4 });
  });

  it('a DESTROY read late under load (its delta-time as of the kernel, its timestamp later) still goes on with the flow ended as gone', () => {
    const flows = new ConntrackFlows({});
    flows.push(entryOf(NEW), 0);
    flows.beginResync(1_700_000_005_000);
    const [gone] = flows.endResync();
    // Destroyed 3 s after its start, read 8 s after that: the start it implies is 8 s off.
    const late = END('1700000011.000000', 5, 4).replace(' [ASSURED] id=11', ' [ASSURED] delta-time=3 id=11');
    const out = flows.push(entryOf(late), 0);
    expect(out.map((r) => [r.reason, r.seq, r.id, r.start])).toEqual([
      ['conntrack-destroy', 1, gone!.id, gone!.end],
    ]);
  });

  it('with reliable delivery a catch-up dump ends no flow: its DESTROY is on its way and ends it, one flow', () => {
    const flows = new ConntrackFlows({});
    flows.push(entryOf(NEW), 0);
    flows.push(entryOf(EST), 0);
    flows.beginResync(1_700_000_005_000, true);
    expect(flows.endResync()).toEqual([]);
    expect(flows.size).toBe(1);
    // Two minutes later still (past the minute a gone flow is remembered): no second flow.
    const out = flows.push(entryOf(END('1700000125.000000', 5, 4)), 0);
    expect(out.map((r) => [r.reason, r.seq, r.continued ?? false])).toEqual([
      ['conntrack-destroy', 0, false],
    ]);
  });

  it('a DESTROY the kernel sends again (for another reliable listener) after the flow ended starts no second flow', () => {
    const flows = new ConntrackFlows({});
    flows.push(entryOf(NEW), 0);
    expect(flows.push(entryOf(END('1700000002.000000', 5, 4)), 0)).toHaveLength(1);
    expect(flows.push(entryOf(END('1700000002.500000', 5, 4)), 0)).toEqual([]);
    expect(flows.repeatedDestroys).toBe(1);
    // Remembered for a minute: after that the same id and tuple is taken for a new connection.
    expect(flows.push(entryOf(END('1700000070.000000', 5, 4)), 0)).toHaveLength(1);
  });

  it('a catch-up dump line read after the DESTROY of its connection (two pipes, no order) does not start it again', () => {
    const flows = new ConntrackFlows({});
    flows.push(entryOf(NEW), 0);
    flows.beginResync(1_700_000_004_000, true);
    expect(flows.push(entryOf(END('1700000004.500000', 5, 4)), 0)).toHaveLength(1);
    // The listing saw it just before it ended: same id and tuple, no event, no timestamp.
    const listed =
      'ipv4     2 tcp      6 118 FIN_WAIT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 packets=5 bytes=500 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 packets=4 bytes=400 [ASSURED] mark=0 use=1 id=11';
    expect(flows.push(entryOf(listed), 1_700_000_004_600)).toEqual([]);
    expect(flows.endResync()).toEqual([]);
    expect(flows.size).toBe(0);
    expect(flows.listedAfterEnd).toBe(1);
    // A listing line with another id (conntrack reuses tuples) is another connection.
    expect(flows.push(entryOf(listed.replace(/id=\d+/, 'id=99')), 1_700_000_004_700)).toHaveLength(1);
  });

  it('a refused connection whose DESTROY came late (sent again: no [UNREPLIED]) is still rejected, an answered one closed', () => {
    const flows = new ConntrackFlows({});
    const late =
      '[1700000200.000000]\t[DESTROY] ipv4     2 tcp      6 120 CLOSE src=10.0.0.1 dst=10.0.0.2 sport=41000 dport=9999 packets=1 bytes=60 src=10.0.0.2 dst=10.0.0.1 sport=9999 dport=41000 packets=1 bytes=40 delta-time=0 id=31';
    expect(flows.push(entryOf(late), 0).map((r) => r.state)).toEqual(['rejected']);
    // Established, then reset: two packets forward at least, and assured.
    const reset =
      '[1700000200.000000]\t[DESTROY] ipv4     2 tcp      6 120 CLOSE src=10.0.0.1 dst=10.0.0.2 sport=41001 dport=80 packets=3 bytes=160 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=41001 packets=2 bytes=100 [ASSURED] delta-time=0 id=32';
    expect(flows.push(entryOf(reset), 0).map((r) => r.state)).toEqual(['closed']);
  });

  it('a catch-up dump keeps the flows it lists and those with an event since it began', () => {
    const flows = new ConntrackFlows({});
    flows.push(entryOf(NEW), 0);
    flows.beginResync(1_699_999_999_000); // the NEW came after the dump began
    expect(flows.endResync()).toEqual([]);
    expect(flows.size).toBe(1);
  });

  it('a dump-only flow with nothing new is not repeated at the end', async () => {
    const { records } = await collect(readFileSync(fixturePath('dump-pod-traffic.txt'), 'utf8'));
    expect(records.map((r) => r.reason)).toEqual(['conntrack-dump', 'conntrack-dump', 'conntrack-dump']);
  });

  it('a DESTROY of a flow never seen before is continued; delta-time dates its start', async () => {
    const { records } = await collect(
      '[1700000100.000000]\t[DESTROY] ipv4     2 udp      17 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 packets=1 bytes=30 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 packets=1 bytes=30 delta-time=40 id=5',
    );
    expect(records).toEqual([
      expect.objectContaining({ continued: true, start: 1700000060000, end: 1700000100000 }),
    ]);
  });

  it('DESTROY without counters: zeros and one warning', async () => {
    const { records, issues, summary } = await collect(
      [
        NEW,
        EST,
        '[1700000001.000000]\t[DESTROY] ipv4     2 tcp      6 TIME_WAIT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 [ASSURED] id=11',
      ].join('\n'),
    );
    expect(records[0]!.packets).toEqual({ fwd: 0, rev: 0 });
    expect(issues.map((i) => i.code)).toEqual([CONNTRACK_NO_COUNTERS]);
    expect(summary.recordsWithoutCounters).toBe(1);
  });

  it('an unanswered SYN that times out is attempted; without counters CLOSE+[UNREPLIED] counts as rejected', async () => {
    const timeout = await collect(
      [
        NEW,
        '[1700000120.000000]\t[DESTROY] ipv4     2 tcp      6 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 packets=3 bytes=180 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 packets=0 bytes=0 id=11',
      ].join('\n'),
    );
    expect(timeout.records[0]!.state).toBe('attempted');
    const selfAbort = await collect(
      [
        NEW,
        '[1700000001.000000]\t[DESTROY] ipv4     2 tcp      6 CLOSE src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 packets=2 bytes=100 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 packets=0 bytes=0 id=11',
      ].join('\n'),
    );
    expect(selfAbort.records[0]!.state).toBe('attempted');
    const noAcct = await collect(
      [
        NEW,
        '[1700000001.000000]\t[DESTROY] ipv4     2 tcp      6 CLOSE src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 id=11',
      ].join('\n'),
    );
    expect(noAcct.records[0]!.state).toBe('rejected');
  });

  it('bounded: beyond maxFlows the least recently updated flow is evicted', () => {
    const flows = new ConntrackFlows({ maxFlows: 2 });
    const mk = (id: number, port: number) => {
      return entryOf(
        NEW.replace('sport=40000', `sport=${port}`)
          .replace('dport=40000', `dport=${port}`)
          .replace('id=11', `id=${id}`),
      );
    };
    expect(flows.push(mk(1, 1001), 0)).toEqual([]);
    expect(flows.push(mk(2, 1002), 0)).toEqual([]);
    flows.push(mk(1, 1001), 0); // flow 1 touched again: flow 2 is now the oldest
    const out = flows.push(mk(3, 1003), 0);
    expect(out.map((r) => [r.reason, r.src.port])).toEqual([['evicted', 1002]]);
    expect(flows.size).toBe(2);
  });

  it('garbled lines are reported with their line numbers and the good ones still count', async () => {
    const { records, issues, summary } = await collect(
      [NEW, 'not a conntrack line', EST, END('1700000002.000000', 1, 1)].join('\n'),
    );
    expect(records).toHaveLength(1);
    expect(issues).toEqual([expect.objectContaining({ code: 'CONNTRACK_MALFORMED_LINE', line: 2 })]);
    expect(summary).toMatchObject({ malformed: 1, errors: 1 });
  });
});

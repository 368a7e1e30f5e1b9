import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FlowRecord, validateFlowRecord } from '../../schema/flow-record.js';
import { runCli } from '../support/cli.js';
import { inNs, NamespaceTest, PEER, type Proc, start, type Topology } from './topology.js';

/**
 * Real traffic between network-namespace "pods", observed at once by tcpdump (→ collect pcap),
 * conntrack -E (→ collect conntrack --input), and the live collectors (collect live, collect
 * conntrack without --input) in the node namespace that routes between the pods. The flows are
 * known because the test makes them; both views must find each one with the right initiator and
 * the state each collector can see (docs/conntrack.md says what conntrack cannot).
 */

const ns = new NamespaceTest();
/** Datagrams in the burst: one UDP flow of BURST requests and BURST answers. */
const BURST = 300;
let topo: Topology | undefined;
let dir = '';

const flows: Record<string, FlowRecord[]> = {};
const clientOutput: Record<string, string> = {};
let destroyedNaturally = false;
let liveStderr = '';
let burstAnswers = 0;
/**
 * Answers the burst server sent: what crossed the wire. The client may receive fewer (its receive
 * buffer overflows on a loaded machine), but tcpdump and conntrack on the node see every one.
 */
let burstSent = 0;

const track = (p: Proc) => ns.track(p);

const jsonl = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as FlowRecord);

const cli = (args: string[]) => ns.cli(args);

async function peer(ns: string, args: string[]): Promise<string> {
  const p = start('ip', ['netns', 'exec', ns, process.execPath, PEER, ...args]);
  await p.exited;
  return p.stdout().trim();
}

beforeAll(async () => {
  topo = await ns.up('npa-netns-');
  dir = ns.dir;
  const t = topo;

  const tcpServer = track(
    start('ip', ['netns', 'exec', t.podB, process.execPath, PEER, 'tcp-echo-server', '8080']),
  );
  const udpServer = track(
    start('ip', ['netns', 'exec', t.podB, process.execPath, PEER, 'udp-echo-server', '5353']),
  );
  const burstServer = track(
    start('ip', ['netns', 'exec', t.podB, process.execPath, PEER, 'udp-echo-server', '5354', 'count']),
  );
  await tcpServer.waitFor(/ready/, 'stdout');
  await udpServer.waitFor(/ready/, 'stdout');
  await burstServer.waitFor(/ready/, 'stdout');

  // Raw tools, their output kept for the file-based collectors.
  const pcapFile = join(dir, 'node-vpa.pcap');
  const tcpdump = track(
    start('ip', ['netns', 'exec', t.node, 'tcpdump', '-i', t.iface.a, '-w', pcapFile, '-U', '-n']),
  );
  const events = track(
    start('ip', ['netns', 'exec', t.node, 'conntrack', '-E', '-o', 'timestamp,extended,id']),
  );
  await tcpdump.waitFor(/listening on/, 'stderr');

  // The live collectors, as an operator would run them.
  const live = cli([
    'collect',
    'live',
    '--iface',
    t.iface.a,
    '--netns',
    t.node,
    '-o',
    join(dir, 'live.jsonl'),
  ]);
  const ctLive = cli(['collect', 'conntrack', '--netns', t.node, '-o', join(dir, 'conntrack-live.jsonl')]);
  await live.waitFor(/listening on/, 'stderr', 60_000);
  await ctLive.waitFor(/collect conntrack: listening/, 'stderr', 60_000);

  clientOutput.direct = await peer(t.podA, ['tcp-client', t.ip.b, '8080', 'hello-direct']);
  clientOutput.service = await peer(t.podA, ['tcp-client', t.ip.service, '80', 'hello-service']);
  clientOutput.udp = await peer(t.podA, ['udp-client', t.ip.b, '5353', 'query']);
  clientOutput.refused = await peer(t.podA, ['tcp-refused', t.ip.b, '9999']);
  clientOutput.udpClosed = await peer(t.podA, ['udp-client', t.ip.b, '7777', 'nobody-home']);
  burstAnswers = Number(await peer(t.podA, ['udp-burst', t.ip.b, '5354', String(BURST)]));

  // TIME_WAIT and UDP timeouts are 1 s in the node namespace. The kernel's garbage collector may
  // take a minute to notice; a table dump reaps expired entries at once (kernel DESTROY events,
  // not [USERSPACE] ones). A flush is the last resort.
  const destroyed = () => (events.stdout().match(/\[DESTROY\]/g) ?? []).length;
  const FLOWS = 6;
  await new Promise((r) => setTimeout(r, 1500));
  const deadline = Date.now() + 10_000;
  while (destroyed() < FLOWS && Date.now() < deadline) {
    await inNs(t.node, 'conntrack', ['-L']);
    await new Promise((r) => setTimeout(r, 500));
  }
  destroyedNaturally = destroyed() >= FLOWS;
  if (!destroyedNaturally) {
    console.info(
      `netns test: ${destroyed()} DESTROY events after 10 s; flushing the table\n${events.stdout()}`,
    );
    await inNs(t.node, 'conntrack', ['-F']);
  }
  await new Promise((r) => setTimeout(r, 300));
  burstSent = (burstServer.stdout().match(/^answered$/gm) ?? []).length;

  await tcpdump.stop('SIGINT');
  await events.stop('SIGTERM');
  expect(await live.stop('SIGINT'), live.stderr()).toBe(0);
  expect(await ctLive.stop('SIGTERM'), ctLive.stderr()).toBe(0);
  liveStderr = live.stderr();
  const eventLog = join(dir, 'events.log');
  writeFileSync(eventLog, events.stdout());

  const pcap = await runCli(['collect', 'pcap', pcapFile, '-o', join(dir, 'pcap.jsonl')]);
  expect(pcap.code, pcap.stderr).toBe(0);
  const ct = await runCli(['collect', 'conntrack', '--input', eventLog, '-o', join(dir, 'conntrack.jsonl')]);
  expect(ct.code, ct.stderr).toBe(0);

  for (const name of ['pcap', 'conntrack', 'live', 'conntrack-live']) {
    flows[name] = jsonl(readFileSync(join(dir, `${name}.jsonl`), 'utf8'));
  }
}, 150_000);

afterAll(() => ns.down());

/** The records of one conversation from pod A (a flow may span several records). */
function find(name: string, proto: string, dst: string, dport: number): FlowRecord[] {
  return flows[name]!.filter(
    (r) => r.src.ip === topo!.ip.a && r.proto === proto && r.dst.ip === dst && r.dst.port === dport,
  );
}

function last(records: FlowRecord[]): FlowRecord {
  expect(records.length).toBeGreaterThan(0);
  return records[records.length - 1]!;
}

const conversationKey = (r: FlowRecord) => `${r.proto} ${r.src.ip} > ${r.dst.ip}:${r.dst.port ?? '-'}`;
const keysFromPodA = (name: string) =>
  [...new Set(flows[name]!.filter((r) => r.src.ip === topo!.ip.a).map(conversationKey))].sort();

describe('network namespaces: real traffic seen by tcpdump and conntrack', () => {
  it('the traffic happened as intended', () => {
    expect(clientOutput).toEqual({
      direct: 'hello-direct',
      service: 'hello-service',
      udp: 'query',
      refused: 'ECONNREFUSED',
      udpClosed: 'timeout',
    });
    // A receive buffer may overflow in a burst; the collectors must count what really went by.
    expect(burstAnswers).toBeGreaterThan(BURST / 2);
    expect(burstSent).toBeGreaterThanOrEqual(burstAnswers);
  });

  it('every collector writes valid FlowRecords', () => {
    for (const [name, records] of Object.entries(flows)) {
      expect(records.length, name).toBeGreaterThan(0);
      for (const r of records) expect(validateFlowRecord(r).ok, `${name}: ${JSON.stringify(r)}`).toBe(true);
    }
  });

  it('the pcap, live and conntrack views agree on the conversations pod A started', () => {
    const expected = [
      `TCP ${topo!.ip.a} > ${topo!.ip.b}:8080`,
      `TCP ${topo!.ip.a} > ${topo!.ip.service}:80`,
      `UDP ${topo!.ip.a} > ${topo!.ip.b}:5353`,
      `TCP ${topo!.ip.a} > ${topo!.ip.b}:9999`,
      `UDP ${topo!.ip.a} > ${topo!.ip.b}:7777`,
      `UDP ${topo!.ip.a} > ${topo!.ip.b}:5354`,
    ].sort();
    expect(keysFromPodA('pcap')).toEqual(expected);
    expect(keysFromPodA('live')).toEqual(expected);
    expect(keysFromPodA('conntrack')).toEqual(expected);
    expect(keysFromPodA('conntrack-live')).toEqual(expected);
    // Nothing was seen the wrong way round (a responder taken for the initiator).
    for (const name of Object.keys(flows)) {
      expect(
        flows[name]!.filter((r) => r.dst.ip === topo!.ip.a),
        name,
      ).toEqual([]);
    }
  });

  it('TCP with data, closed: closed in every view; conntrack saw its DESTROY', () => {
    for (const name of ['pcap', 'live']) {
      const r = last(find(name, 'TCP', topo!.ip.b, 8080));
      expect(r, name).toMatchObject({ state: 'closed', initiator: 'handshake', reason: 'fin' });
    }
    for (const name of ['conntrack', 'conntrack-live']) {
      const r = last(find(name, 'TCP', topo!.ip.b, 8080));
      expect(r, name).toMatchObject({ state: 'closed', initiator: 'conntrack', reason: 'conntrack-destroy' });
      expect(r.continued).toBeUndefined();
    }
    // Expired and reaped by the kernel (a table dump), not flushed by the test's fallback.
    expect(destroyedNaturally).toBe(true);
  });

  it('packet and byte counts agree between tcpdump, the live capture and conntrack accounting (all count IP bytes)', () => {
    for (const [proto, dst, port] of [
      ['TCP', topo!.ip.b, 8080],
      ['TCP', topo!.ip.service, 80],
      ['UDP', topo!.ip.b, 5353],
      ['TCP', topo!.ip.b, 9999],
      ['UDP', topo!.ip.b, 5354],
    ] as const) {
      const sum = (rs: FlowRecord[]) =>
        rs.reduce(
          (a, r) => ({
            p: [a.p[0] + r.packets.fwd, a.p[1] + r.packets.rev],
            b: [a.b[0] + r.bytes.fwd, a.b[1] + r.bytes.rev],
          }),
          { p: [0, 0], b: [0, 0] },
        );
      const fromPcap = sum(find('pcap', proto, dst, port));
      expect(fromPcap.p[0], `${proto} ${port}`).toBeGreaterThan(0);
      expect(sum(find('conntrack', proto, dst, port)), `${proto} ${port}`).toEqual(fromPcap);
      expect(sum(find('conntrack-live', proto, dst, port)), `live conntrack ${proto} ${port}`).toEqual(
        fromPcap,
      );
      expect(sum(find('live', proto, dst, port)), `live ${proto} ${port}`).toEqual(fromPcap);
    }
  });

  it('the Service connection: conntrack reveals the DNAT to pod B; tcpdump on pod A’s side sees the ClusterIP', () => {
    const ct = last(find('conntrack', 'TCP', topo!.ip.service, 80));
    expect(ct.nat).toEqual({ dst: { ip: topo!.ip.b, port: 8080 } });
    expect(ct.state).toBe('closed');
    const pcap = last(find('pcap', 'TCP', topo!.ip.service, 80));
    expect(pcap.state).toBe('closed');
    expect(pcap.nat).toBeUndefined();
  });

  it('refused TCP: rejected in every view (conntrack: SYN_SENT → CLOSE, unreplied, one reply packet)', () => {
    for (const name of Object.keys(flows)) {
      expect(last(find(name, 'TCP', topo!.ip.b, 9999)).state, name).toBe('rejected');
    }
    expect(last(find('conntrack', 'TCP', topo!.ip.b, 9999)).packets).toEqual({ fwd: 1, rev: 1 });
  });

  it('answered UDP: established in every view', () => {
    for (const name of Object.keys(flows)) {
      expect(last(find(name, 'UDP', topo!.ip.b, 5353)).state, name).toBe('established');
    }
  });

  it('UDP to a closed port: tcpdump sees the ICMP port unreachable (rejected); conntrack only that no reply came (attempted)', () => {
    for (const name of ['pcap', 'live'])
      expect(last(find(name, 'UDP', topo!.ip.b, 7777)).state, name).toBe('rejected');
    for (const name of ['conntrack', 'conntrack-live']) {
      const r = last(find(name, 'UDP', topo!.ip.b, 7777));
      expect(r.state, name).toBe('attempted');
      if (name === 'conntrack') expect(r.packets).toEqual({ fwd: 1, rev: 0 });
    }
  });

  it('the UDP burst: every request and every answer counted, by tcpdump, the live capture and conntrack', () => {
    for (const name of Object.keys(flows)) {
      const rs = find(name, 'UDP', topo!.ip.b, 5354);
      const fwd = rs.reduce((a, r) => a + r.packets.fwd, 0);
      const rev = rs.reduce((a, r) => a + r.packets.rev, 0);
      expect([fwd, rev], name).toEqual([BURST, burstSent]);
    }
  });

  it('collect live reports tcpdump’s own counts', () => {
    expect(liveStderr).toMatch(
      /collect live: tcpdump: \d+ packets captured, \d+ received by filter, 0 dropped by kernel/,
    );
    const captured = Number(/tcpdump: (\d+) packets captured/.exec(liveStderr)![1]);
    const read = Number(/collect live: (\d+) packets read/.exec(liveStderr)![1]);
    expect(read).toBe(captured);
    expect(read).toBeGreaterThanOrEqual(10 + 10 + 2 + 2 + 2 + BURST + burstSent);
  });
});

describe('collect live: failures', () => {
  it('a missing interface is a clear error with exit status 3', async () => {
    const r = await runCli(['collect', 'live', '--iface', 'npa-no-such-if0']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/LIVE_CAPTURE_FAILED/);
    expect(r.stderr).toMatch(/npa-no-such-if0/);
  });

  it('conntrack in a namespace that does not exist is a clear error with exit status 3', async () => {
    const r = await runCli(['collect', 'conntrack', '--netns', `${ns.prefix}-missing`]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/CONNTRACK_TOOL_FAILED/);
  });
});

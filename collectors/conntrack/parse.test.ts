import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONNTRACK_MALFORMED_LINE, type ConntrackEntry, parseConntrackLine } from './parse.js';

// Fixtures are real output of conntrack-tools 1.4.7 on Linux 6.18, recorded in network namespaces
// built like test/netns (pods 10.240.1.2 and 10.240.2.2 routed through a node namespace).
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8').split('\n');

function entry(text: string): ConntrackEntry {
  const p = parseConntrackLine(text, 1, 'test');
  if (p.kind !== 'entry') throw new Error(`not an entry: ${JSON.stringify(p)}`);
  return p.entry;
}

describe('parseConntrackLine: real event lines', () => {
  const lines = fixture('events-pod-traffic.log');

  it('parses a NEW TCP event with timestamp, state, both tuples and the id', () => {
    const e = entry(lines[0]!);
    expect(e).toEqual({
      event: 'NEW',
      timeMs: 1795419756326.29,
      l3: 'ipv4',
      protoName: 'tcp',
      protoNumber: 6,
      timeout: 120,
      state: 'SYN_SENT',
      orig: { src: '10.240.1.2', dst: '10.240.2.2', sport: 44928, dport: 8080 },
      reply: { src: '10.240.2.2', dst: '10.240.1.2', sport: 8080, dport: 44928 },
      unreplied: true,
      assured: false,
      id: 1559436897,
    });
  });

  it('reads [ASSURED] after the reply tuple and no [UNREPLIED] once answered', () => {
    const e = entry(lines[2]!);
    expect(e.event).toBe('UPDATE');
    expect(e.state).toBe('ESTABLISHED');
    expect(e.timeout).toBe(432000);
    expect(e.assured).toBe(true);
    expect(e.unreplied).toBe(false);
  });

  it('parses a DESTROY with counters on both sides of [UNREPLIED]', () => {
    const destroy = lines.find((l) => l.includes('[DESTROY]') && l.includes('dport=9999'))!;
    const e = entry(destroy);
    expect(e.event).toBe('DESTROY');
    expect(e.state).toBe('CLOSE');
    expect(e.unreplied).toBe(true);
    expect(e.orig).toMatchObject({ dport: 9999, packets: 1, bytes: 60 });
    expect(e.reply).toMatchObject({ sport: 9999, packets: 1, bytes: 40 });
  });

  it('parses a DESTROY without a timeout (expired UDP)', () => {
    const e = entry(lines.find((l) => l.includes('[DESTROY]') && l.includes(' udp '))!);
    expect(e.timeout).toBeUndefined();
    expect(e.state).toBeUndefined();
    expect(e.protoNumber).toBe(17);
    expect(e.orig.packets).toBe(1);
  });

  it('parses every line of every fixture', () => {
    for (const name of [
      'events-pod-traffic.log',
      'events-nat-ipv6-icmp.log',
      'events-reap-and-flush.log',
      'dump-pod-traffic.txt',
      'dump-mark-zone.txt',
    ]) {
      fixture(name).forEach((text, i) => {
        const p = parseConntrackLine(text, i + 1, name);
        expect(p.kind, `${name}:${i + 1}`).not.toBe('issue');
      });
    }
  });
});

describe('parseConntrackLine: other protocols and fields', () => {
  const lines = fixture('events-nat-ipv6-icmp.log');

  it('ICMP: type/code/id inside the tuples, the last id= is the conntrack id', () => {
    const e = entry(lines.find((l) => l.includes('[DESTROY]') && l.includes('icmp'))!);
    expect(e.protoNumber).toBe(1);
    expect(e.orig).toEqual({
      src: '10.240.1.2',
      dst: '10.240.2.2',
      icmpType: 8,
      icmpCode: 0,
      icmpId: 4660,
      packets: 1,
      bytes: 36,
    });
    expect(e.reply).toMatchObject({ icmpType: 0, icmpId: 4660 });
    expect(e.id).toBe(1907863337);
    expect(e.deltaTime).toBe(2);
  });

  it('IPv6 UDP', () => {
    const e = entry(lines.find((l) => l.includes('ipv6') && l.includes('[NEW]'))!);
    expect(e.l3).toBe('ipv6');
    expect(e.orig).toMatchObject({ src: 'fd00:1::2', dst: 'fd00:2::2', dport: 5353 });
  });

  it('DNAT shows in the reply tuple source, SNAT in its destination', () => {
    const dnat = entry(lines.find((l) => l.includes('dst=10.96.0.10'))!);
    expect(dnat.orig).toMatchObject({ dst: '10.96.0.10', dport: 80 });
    expect(dnat.reply).toMatchObject({ src: '10.240.2.2', sport: 8080 });
    const snat = entry(lines.find((l) => l.includes('dst=10.240.3.2') && l.includes('[NEW]'))!);
    expect(snat.reply).toMatchObject({ src: '10.240.3.2', dst: '10.240.3.1' });
  });

  it('dump lines: no event, mark=, zone=, use=', () => {
    const dump = fixture('dump-mark-zone.txt');
    expect(parseConntrackLine(dump[0]!, 1).kind).toBe('ignored');
    const e = entry(dump[1]!);
    expect(e.event).toBeUndefined();
    expect(e.timeMs).toBeUndefined();
    expect(e).toMatchObject({ mark: 42, zone: 7, use: 1, id: 1124697899, deltaTime: 1, timeout: 119 });
  });

  it('[USERSPACE] portid= progname=: a DESTROY caused by a program (here conntrack -F)', () => {
    const lines = fixture('events-reap-and-flush.log');
    const flushed = entry(lines.find((l) => l.includes('[USERSPACE]'))!);
    expect(flushed).toMatchObject({
      event: 'DESTROY',
      id: 3648639449,
      userspace: { portid: 24652, progname: 'conntrack' },
    });
    // Reaped on expiry by the kernel (during a table dump): no [USERSPACE].
    const reaped = entry(lines.find((l) => l.includes('[DESTROY]') && l.includes('dport=7001'))!);
    expect(reaped.userspace).toBeUndefined();
  });

  it('[OFFLOAD] and [HW_OFFLOAD] imply assured', () => {
    const base =
      'ipv4     2 tcp      6 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1';
    expect(entry(`${base} [OFFLOAD] mark=0 use=2 id=7`)).toMatchObject({ assured: true, offload: 'sw' });
    expect(entry(`${base} [HW_OFFLOAD] mark=0 use=2 id=7`)).toMatchObject({ assured: true, offload: 'hw' });
  });

  it('lines without -o extended (no layer-3 columns) and other protocols by number', () => {
    const e = entry(
      'tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [ASSURED] mark=0 use=1',
    );
    expect(e.l3).toBe('ipv4');
    expect(e.id).toBeUndefined();
    const gre = entry(
      'ipv4     2 gre      47 179 src=10.0.0.1 dst=10.0.0.2 srckey=0x0 dstkey=0x0 src=10.0.0.2 dst=10.0.0.1 srckey=0x0 dstkey=0x0 mark=0 use=1 id=5',
    );
    expect(gre.protoNumber).toBe(47);
    const unknown = entry(
      'ipv4     2 unknown  253 599 src=10.0.0.1 dst=10.0.0.2 src=10.0.0.2 dst=10.0.0.1 mark=0 use=1 id=9',
    );
    expect(unknown.protoNumber).toBe(253);
  });

  it('keeps [start=...] tokens with blanks together', () => {
    const e = entry(
      '[1700000000.5]\t[DESTROY] ipv4     2 udp      17 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 delta-time=3 [start=Tue Nov 14 22:13:17 2023] [stop=Tue Nov 14 22:13:20 2023] id=3',
    );
    expect(e.timeMs).toBe(1700000000500);
    expect(e.id).toBe(3);
  });
});

describe('parseConntrackLine: garbled lines', () => {
  const good = fixture('events-pod-traffic.log')[0]!;
  const cases: [string, string, RegExp][] = [
    ['free text', 'garbage line here', /layer-4 protocol/],
    ['unknown event', good.replace('[NEW]', '[RENEW]'), /\[RENEW\]: expected an event/],
    [
      'bad address',
      good.replace('src=10.240.1.2', 'src=10.240.1.999'),
      /src=10.240.1.999: expected an IPv4 address/,
    ],
    ['port out of range', good.replace('dport=8080', 'dport=80800'), /dport=80800: expected at most 65535/],
    ['cut after the original tuple', good.slice(0, good.indexOf('[UNREPLIED]')), /found 1 address tuple/],
    [
      'missing dport',
      good.replace(' dport=8080 [UNREPLIED]', ' [UNREPLIED]'),
      /original tuple: expected sport= and dport= for tcp/,
    ],
    ['wrong protocol number', good.replace('tcp      6', 'tcp      17'), /expected tcp 6/],
    ['wrong layer-3 number', good.replace('ipv4     2', 'ipv4     10'), /expected layer-3 number 2/],
    [
      'packets without bytes',
      good.replace(' [UNREPLIED]', ' packets=3 [UNREPLIED]'),
      /packets= and bytes= together/,
    ],
    ['unknown flag', good.replace('[UNREPLIED]', '[SLEEPY]'), /\[SLEEPY\]: unknown flag/],
  ];
  for (const [name, text, message] of cases) {
    it(`${name} → ${CONNTRACK_MALFORMED_LINE} with the line number`, () => {
      const p = parseConntrackLine(text, 42, 'events.log');
      expect(p.kind).toBe('issue');
      if (p.kind !== 'issue') return;
      expect(p.issue).toMatchObject({
        code: CONNTRACK_MALFORMED_LINE,
        line: 42,
        source: 'events.log',
        severity: 'error',
      });
      expect(p.issue.message).toMatch(message);
    });
  }

  it('ignores blank lines and conntrack summaries', () => {
    expect(parseConntrackLine('', 1).kind).toBe('ignored');
    expect(
      parseConntrackLine('conntrack v1.4.7 (conntrack-tools): 24 flow events have been shown.', 1).kind,
    ).toBe('ignored');
  });
});

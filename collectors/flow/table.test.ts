import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type FlowRecord, validateFlowRecord } from '../../schema/flow-record.js';
import { type DecodedPacket, newDecodedPacket } from '../decode/packet.js';
import { FlowTable, type FlowTableOptions } from './table.js';

const FIN = 1;
const SYN = 2;
const RST = 4;
const PSH = 8;
const ACK = 16;

type PacketSpec = Partial<Omit<DecodedPacket, 'vlans'>> & { vlans?: number[] };

function pkt(spec: PacketSpec): DecodedPacket {
  const p = newDecodedPacket();
  Object.assign(p, { ipLen: 60, wireLen: 74 }, spec);
  return p;
}

function tcp(ts: number, src: string, sport: number, dst: string, dport: number, flags: number, ipLen = 60) {
  return pkt({
    ts,
    src,
    dst,
    proto: 6,
    srcPort: sport,
    dstPort: dport,
    tcpFlags: flags,
    ipLen,
    wireLen: ipLen + 14,
  });
}

function udp(ts: number, src: string, sport: number, dst: string, dport: number, ipLen = 80) {
  return pkt({ ts, src, dst, proto: 17, srcPort: sport, dstPort: dport, ipLen, wireLen: ipLen + 14 });
}

function table(opts: Partial<FlowTableOptions> = {}) {
  const out: FlowRecord[] = [];
  const t = new FlowTable({
    observer: { source: 'pcap', file: 'test.pcap' },
    onExport: (r) => out.push(r),
    ...opts,
  });
  return { t, out };
}

function expectValid(records: FlowRecord[]) {
  for (const r of records) {
    const v = validateFlowRecord(JSON.parse(JSON.stringify(r)));
    expect(v.ok, JSON.stringify(v)).toBe(true);
  }
}

const C = '10.0.0.1';
const S = '10.0.0.2';

describe('FlowTable: TCP', () => {
  it('folds a full connection into one closed record, initiator from the SYN, exported after the linger', () => {
    const { t, out } = table();
    t.add(tcp(1000, C, 40000, S, 80, SYN));
    t.add(tcp(1001, S, 80, C, 40000, SYN | ACK));
    t.add(tcp(1002, C, 40000, S, 80, ACK, 52));
    t.add(tcp(1003, C, 40000, S, 80, PSH | ACK, 152));
    t.add(tcp(1004, S, 80, C, 40000, PSH | ACK, 1052));
    t.add(tcp(1005, C, 40000, S, 80, FIN | ACK, 52));
    t.add(tcp(1006, S, 80, C, 40000, FIN | ACK, 52));
    t.add(tcp(1007, C, 40000, S, 80, ACK, 52));
    expect(out).toHaveLength(0);
    // Another flow's packet 10 s later moves capture time past the 5 s linger.
    t.add(udp(11_007, C, 5000, S, 5001));
    expect(out).toHaveLength(1);
    const r = out[0]!;
    expect(r).toMatchObject({
      proto: 'TCP',
      src: { ip: C, port: 40000 },
      dst: { ip: S, port: 80 },
      packets: { fwd: 5, rev: 3 },
      bytes: { fwd: 60 + 52 + 152 + 52 + 52, rev: 60 + 1052 + 52 },
      state: 'closed',
      reason: 'fin',
      initiator: 'handshake',
      start: 1000,
      end: 1007,
      seq: 0,
      tcpFlags: { fwd: SYN | ACK | PSH | FIN, rev: SYN | ACK | PSH | FIN },
    });
    expect(r.continued).toBeUndefined();
    expectValid(out);
  });

  it('counts wire bytes when asked', () => {
    const { t, out } = table({ bytes: 'wire' });
    t.add(tcp(0, C, 40000, S, 80, SYN, 60));
    t.add(tcp(1, S, 80, C, 40000, SYN | ACK, 60));
    t.flushAll();
    expect(out[0]!.bytes).toEqual({ fwd: 74, rev: 74 });
  });

  it('marks a SYN answered by RST as rejected', () => {
    const { t, out } = table();
    t.add(tcp(0, C, 40000, S, 81, SYN));
    t.add(tcp(1, S, 81, C, 40000, RST | ACK));
    t.flushAll();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ state: 'rejected', reason: 'rst', packets: { fwd: 1, rev: 1 } });
  });

  it('marks an unanswered SYN as attempted and expires it after the unanswered timeout', () => {
    const { t, out } = table();
    t.add(tcp(0, C, 40000, S, 443, SYN));
    t.add(tcp(3000, C, 40000, S, 443, SYN));
    t.add(udp(59_000, C, 1, S, 2));
    expect(out).toHaveLength(0);
    t.add(udp(63_001, C, 1, S, 2));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ state: 'attempted', reason: 'idle-timeout', packets: { fwd: 2, rev: 0 } });
  });

  it('takes the receiver of a SYN-ACK seen first as the initiator', () => {
    const { t, out } = table();
    t.add(tcp(0, S, 8443, C, 51000, SYN | ACK));
    t.add(tcp(1, C, 51000, S, 8443, ACK));
    t.flushAll();
    expect(out[0]).toMatchObject({
      src: { ip: C, port: 51000 },
      dst: { ip: S, port: 8443 },
      initiator: 'handshake',
      state: 'established',
      packets: { fwd: 1, rev: 1 },
      reason: 'end-of-input',
    });
  });

  it('marks mid-stream flows continued and picks the responder by well-known port, then listening port', () => {
    const { t, out } = table();
    // Mid-stream, the first packet comes from the server on port 22.
    t.add(tcp(0, S, 22, C, 50000, PSH | ACK));
    // A handshake reveals 10.0.0.2:9000 as a listener ...
    t.add(tcp(1, C, 50001, S, 9000, SYN));
    t.add(tcp(2, S, 9000, C, 50001, SYN | ACK));
    // ... so a later mid-stream flow whose first packet comes from it is still initiated by the client.
    t.add(tcp(3, S, 9000, '10.0.0.3', 50002, PSH | ACK));
    // Neither side known nor well-known: the first packet's sender.
    t.add(tcp(4, '10.0.0.4', 7000, '10.0.0.5', 6000, ACK));
    t.flushAll();
    const by = (port: number) => out.find((r) => r.src.port === port || r.dst.port === port)!;
    expect(by(22)).toMatchObject({
      src: { ip: C, port: 50000 },
      initiator: 'well-known-port',
      continued: true,
      packets: { fwd: 0, rev: 1 },
    });
    expect(by(50002)).toMatchObject({ src: { ip: '10.0.0.3', port: 50002 }, initiator: 'listening-port' });
    expect(by(7000)).toMatchObject({ src: { ip: '10.0.0.4', port: 7000 }, initiator: 'first-packet' });
    expect(by(50001).continued).toBeUndefined();
  });

  it('starts a new flow when a finished port pair is reused by a new SYN', () => {
    const { t, out } = table();
    t.add(tcp(0, C, 40000, S, 80, SYN));
    t.add(tcp(1, S, 80, C, 40000, SYN | ACK));
    t.add(tcp(2, C, 40000, S, 80, FIN | ACK));
    t.add(tcp(3, S, 80, C, 40000, FIN | ACK));
    t.add(tcp(4, C, 40000, S, 80, SYN));
    t.flushAll();
    expect(out).toHaveLength(2);
    expect(out[0]).toMatchObject({ state: 'closed', reason: 'fin', packets: { fwd: 2, rev: 2 } });
    expect(out[1]).toMatchObject({ state: 'attempted', packets: { fwd: 1, rev: 0 }, start: 4 });
    expect(out[0]!.id).not.toBe(out[1]!.id);
  });

  it('slices long flows at the active timeout with one id and increasing seq', () => {
    const { t, out } = table({ activeTimeoutMs: 10_000 });
    t.add(tcp(0, C, 40000, S, 80, SYN));
    t.add(tcp(1, S, 80, C, 40000, SYN | ACK));
    for (let ts = 1000; ts <= 25_000; ts += 1000) t.add(tcp(ts, C, 40000, S, 80, ACK, 100));
    t.flushAll();
    expect(out.map((r) => r.seq)).toEqual([0, 1, 2]);
    expect(new Set(out.map((r) => r.id)).size).toBe(1);
    expect(out.map((r) => r.reason)).toEqual(['active-timeout', 'active-timeout', 'end-of-input']);
    expect(out.reduce((n, r) => n + r.packets.fwd + r.packets.rev, 0)).toBe(27);
    expect(out[1]!.start).toBe(10_000);
    expect(out.every((r) => r.state === 'established')).toBe(true);
    expectValid(out);
  });
});

describe('FlowTable: UDP and other protocols', () => {
  it('takes the client of a DNS response seen first as the initiator; the answer makes it established', () => {
    const { t, out } = table();
    t.add(udp(0, '192.168.120.21', 53, '192.168.90.10', 64006));
    t.flushAll();
    expect(out[0]).toMatchObject({
      proto: 'UDP',
      src: { ip: '192.168.90.10', port: 64006 },
      dst: { ip: '192.168.120.21', port: 53 },
      initiator: 'well-known-port',
      state: 'established',
      packets: { fwd: 0, rev: 1 },
    });
    expect(out[0]!.tcpFlags).toBeUndefined();
  });

  it('reports unnamed protocols by number and without ports', () => {
    const { t, out } = table();
    t.add(pkt({ ts: 0, src: C, dst: S, proto: 89, ipLen: 64 }));
    t.add(pkt({ ts: 1, src: S, dst: C, proto: 89, ipLen: 64 }));
    t.flushAll();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ proto: 89, src: { ip: C }, state: 'established' });
    expect(out[0]!.src.port).toBeUndefined();
    expectValid(out);
  });

  it('splits the same inner 5-tuple by tunnel identity (VNI)', () => {
    const { t, out } = table();
    const inner = { src: '10.244.1.5', dst: '10.244.2.7', proto: 17, srcPort: 5000, dstPort: 53 };
    const vx = {
      tunnelType: 'vxlan' as const,
      tunnelSrc: '192.168.0.1',
      tunnelDst: '192.168.0.2',
      tunnelPort: 4789,
    };
    t.add(pkt({ ts: 0, ...inner, ...vx, tunnelId: 100 }));
    t.add(pkt({ ts: 1, ...inner, ...vx, tunnelId: 200 }));
    t.add(
      pkt({
        ts: 2,
        ...inner,
        src: inner.dst,
        dst: inner.src,
        srcPort: 53,
        dstPort: 5000,
        ...vx,
        tunnelSrc: vx.tunnelDst,
        tunnelDst: vx.tunnelSrc,
        tunnelId: 100,
      }),
    );
    t.flushAll();
    expect(out).toHaveLength(2);
    const vni100 = out.find((r) => r.tunnel?.vni === 100)!;
    expect(vni100).toMatchObject({
      packets: { fwd: 1, rev: 1 },
      tunnel: { type: 'vxlan', src: '192.168.0.1', dst: '192.168.0.2', vni: 100, port: 4789 },
      state: 'established',
    });
    expect(out.find((r) => r.tunnel?.vni === 200)).toMatchObject({ packets: { fwd: 1, rev: 0 } });
    expectValid(out);
  });

  it('keeps VLAN tags of the first packet', () => {
    const { t, out } = table();
    t.add(pkt({ ts: 0, src: C, dst: S, proto: 17, srcPort: 1, dstPort: 2, vlans: [10, 20] }));
    t.flushAll();
    expect(out[0]!.vlan).toEqual([10, 20]);
  });
});

describe('FlowTable: ICMP', () => {
  const echo = (ts: number, src: string, dst: string, type: number, id: number) =>
    pkt({ ts, src, dst, proto: 1, icmpType: type, icmpCode: 0, icmpId: id, ipLen: 84 });

  it('pairs echo request and reply by identifier; the request sender initiates', () => {
    const { t, out } = table();
    t.add(echo(0, C, S, 8, 7));
    t.add(echo(1, S, C, 0, 7));
    t.add(echo(2, C, S, 8, 8));
    t.add(echo(3, S, '10.0.0.9', 0, 9)); // a reply whose request was not seen
    t.flushAll();
    expect(out).toHaveLength(3);
    expect(out[0]).toMatchObject({
      proto: 'ICMP',
      src: { ip: C },
      dst: { ip: S },
      icmp: { type: 8, code: 0, id: 7 },
      initiator: 'icmp-type',
      state: 'established',
      packets: { fwd: 1, rev: 1 },
    });
    expect(out[0]!.src.port).toBeUndefined();
    expect(out[1]).toMatchObject({ icmp: { id: 8 }, state: 'attempted' });
    expect(out[2]).toMatchObject({ src: { ip: '10.0.0.9' }, dst: { ip: S }, packets: { fwd: 0, rev: 1 } });
    expectValid(out);
  });

  it('counts an unreachable quoting a UDP packet against that flow and marks it rejected', () => {
    const { t, out } = table();
    t.add(udp(0, C, 40000, S, 53));
    t.add(
      pkt({
        ts: 1,
        src: S,
        dst: C,
        proto: 1,
        icmpType: 3,
        icmpCode: 3,
        ipLen: 56,
        quotedProto: 17,
        quotedSrc: C,
        quotedDst: S,
        quotedSrcPort: 40000,
        quotedDstPort: 53,
      }),
    );
    t.flushAll();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      proto: 'UDP',
      state: 'rejected',
      packets: { fwd: 1, rev: 1 },
      bytes: { rev: 56 },
    });
    expect(t.stats.icmpErrorsMatched).toBe(1);
  });

  it('makes an ICMP flow from an error whose quoted flow is unknown', () => {
    const { t, out } = table();
    t.add(
      pkt({
        ts: 1,
        src: '192.168.1.1',
        dst: '192.168.1.102',
        proto: 1,
        icmpType: 3,
        icmpCode: 3,
        quotedProto: 17,
        quotedSrc: '192.168.1.102',
        quotedDst: '192.168.1.1',
        quotedSrcPort: 59207,
        quotedDstPort: 53,
      }),
    );
    t.flushAll();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ proto: 'ICMP', src: { ip: '192.168.1.1' }, icmp: { type: 3, code: 3 } });
  });
});

describe('FlowTable: fragments', () => {
  const frag = (ts: number, offset: number, more: boolean, ports: boolean, fragId = 77) =>
    pkt({
      ts,
      src: S,
      dst: C,
      proto: 17,
      srcPort: ports ? 53 : -1,
      dstPort: ports ? 40000 : -1,
      fragId,
      fragOffset: offset,
      moreFragments: more,
      ipLen: 1500,
    });

  it('puts later fragments in the flow of their first fragment', () => {
    const { t, out } = table();
    t.add(udp(0, C, 40000, S, 53));
    t.add(frag(1, 0, true, true));
    t.add(frag(2, 1480, false, false));
    t.flushAll();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ packets: { fwd: 1, rev: 2 }, bytes: { rev: 3000 } });
  });

  it('holds later fragments that arrive before their first fragment', () => {
    const { t, out } = table();
    t.add(frag(1, 1480, false, false));
    t.add(frag(2, 0, true, true));
    t.flushAll();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      packets: { fwd: 0, rev: 2 },
      start: 1,
      end: 2,
      src: { ip: C, port: 40000 },
    });
    expect(t.stats.fragmentsMatched).toBe(1);
  });

  it('gives fragments whose first fragment never came to a port-less flow', () => {
    const { t, out } = table();
    t.add(frag(1, 1480, true, false));
    t.add(frag(2, 2960, false, false));
    t.flushAll();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      proto: 'UDP',
      src: { ip: S },
      dst: { ip: C },
      packets: { fwd: 2, rev: 0 },
    });
    expect(out[0]!.src.port).toBeUndefined();
    expect(t.stats.fragmentsOrphaned).toBe(2);
    expectValid(out);
  });
});

describe('FlowTable: bounds and conservation', () => {
  it('evicts the least recently seen flow when full, never losing it', () => {
    // Recency is kept to within a second of capture time (IdleLists.touch, expiry.ts), so packets 2 s apart.
    const { t, out } = table({ maxFlows: 2 });
    t.add(udp(0, C, 1, S, 1001));
    t.add(udp(2000, C, 2, S, 1002));
    t.add(udp(4000, C, 1, S, 1001)); // flow 1 is now the most recent
    t.add(udp(6000, C, 3, S, 1003));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ reason: 'evicted', src: { port: 2 } });
    expect(t.size).toBe(2);
    t.flushAll();
    expect(out.reduce((n, r) => n + r.packets.fwd + r.packets.rev, 0)).toBe(4);
    expect(t.stats.evicted).toBe(1);
  });

  it('exports every accepted packet exactly once, whatever the traffic (property)', () => {
    const hosts = ['10.0.0.1', '10.0.0.2', 'fd00::1'];
    const arbPacket = fc.record({
      dt: fc.integer({ min: 0, max: 20_000 }),
      s: fc.integer({ min: 0, max: 2 }),
      d: fc.integer({ min: 0, max: 2 }),
      proto: fc.constantFrom(6, 17, 1, 132, 47),
      sp: fc.integer({ min: 0, max: 3 }),
      dp: fc.integer({ min: 0, max: 3 }),
      flags: fc.integer({ min: 0, max: 31 }),
      frag: fc.constantFrom('none', 'first', 'later'),
      icmpType: fc.constantFrom(0, 8, 3, 11),
      len: fc.integer({ min: 20, max: 1500 }),
    });
    fc.assert(
      fc.property(
        fc.array(arbPacket, { maxLength: 200 }),
        fc.integer({ min: 1, max: 8 }),
        (specs, maxFlows) => {
          const { t, out } = table({ maxFlows, activeTimeoutMs: 30_000 });
          let ts = 0;
          let bytes = 0;
          for (const x of specs) {
            ts += x.dt;
            const ports = x.proto === 6 || x.proto === 17 || x.proto === 132;
            const p = pkt({
              ts,
              src: hosts[x.s]!,
              dst: hosts[x.d]!,
              proto: x.proto,
              srcPort: ports && x.frag !== 'later' ? [53, 80, 40000, 40001][x.sp]! : -1,
              dstPort: ports && x.frag !== 'later' ? [53, 80, 40000, 40001][x.dp]! : -1,
              tcpFlags: x.proto === 6 ? x.flags : 0,
              icmpType: x.proto === 1 ? x.icmpType : -1,
              icmpCode: x.proto === 1 ? 0 : -1,
              icmpId: x.proto === 1 && (x.icmpType === 0 || x.icmpType === 8) ? x.sp : -1,
              quotedProto: x.proto === 1 && x.icmpType === 3 ? 17 : -1,
              quotedSrc: hosts[x.d]!,
              quotedDst: hosts[x.s]!,
              quotedSrcPort: 40000,
              quotedDstPort: 53,
              fragId: x.frag === 'none' || x.proto === 1 ? -1 : x.sp,
              fragOffset: x.frag === 'later' && x.proto !== 1 ? 1480 : 0,
              moreFragments: x.frag === 'first',
              ipLen: x.len,
            });
            bytes += x.len;
            t.add(p);
            expect(t.size).toBeLessThanOrEqual(maxFlows);
          }
          t.flushAll();
          expect(t.size).toBe(0);
          expect(out.reduce((n, r) => n + r.packets.fwd + r.packets.rev, 0)).toBe(specs.length);
          expect(out.reduce((n, r) => n + r.bytes.fwd + r.bytes.rev, 0)).toBe(bytes);
          for (const r of out) {
            expect(r.end).toBeGreaterThanOrEqual(r.start);
            expect(validateFlowRecord(r).ok).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('finds every flow again after the index grew and lost many entries (hash table stress)', () => {
    const { t, out } = table();
    const n = 40_000;
    const host = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    // Phase 1: n UDP and n TCP flows between few addresses (long probe runs) and many ports.
    for (let i = 0; i < n; i++) {
      t.add(udp(i * 0.001, host(i % 50), 1024 + (i % 60000), host(50 + (i % 7)), 53));
      t.add(tcp(i * 0.001, host(i % 50), 1024 + (i % 60000), host(50 + (i % 7)), 80, ACK));
    }
    expect(t.size).toBe(2 * n);
    // Phase 2: 100 s later the UDP flows (60 s timeout) go, the TCP ones (60 s unanswered) too, except
    // those that get a reply now: their rev packets must find the existing flows.
    for (let i = 0; i < n; i += 2)
      t.add(tcp(59_000, host(50 + (i % 7)), 80, host(i % 50), 1024 + (i % 60000), ACK));
    t.add(udp(100_000, '192.0.2.1', 1, '192.0.2.2', 2));
    expect(out.filter((r) => r.proto === 'UDP')).toHaveLength(n);
    expect(out.filter((r) => r.proto === 'TCP')).toHaveLength(n / 2);
    // Phase 3: one more packet each way for the survivors; nothing new may be created.
    const created = t.stats.flowsCreated;
    for (let i = 0; i < n; i += 2)
      t.add(tcp(100_001, host(i % 50), 1024 + (i % 60000), host(50 + (i % 7)), 80, ACK));
    expect(t.stats.flowsCreated).toBe(created);
    t.flushAll();
    const survivors = out.filter((r) => r.proto === 'TCP' && r.reason === 'end-of-input');
    expect(survivors).toHaveLength(n / 2);
    expect(survivors.every((r) => r.packets.fwd === 2 && r.packets.rev === 1)).toBe(true);
  });

  it('is deterministic: the same packets give the same records', () => {
    const run = () => {
      const { t, out } = table();
      for (let i = 0; i < 500; i++) t.add(udp(i * 700, C, 40000 + (i % 37), S, 53 + (i % 3)));
      t.flushAll();
      return out;
    };
    expect(run()).toEqual(run());
  });
});

describe('FlowTable: address keys (IPv4 as numbers, other text as ids)', () => {
  /** The decoder's form of an IPv4 packet: numbers next to the text (DecodedPacket.srcV4/dstV4). */
  const v4 = (s: string) => s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  function numeric(p: DecodedPacket): DecodedPacket {
    const q = newDecodedPacket();
    Object.assign(q, p);
    q.srcV4 = v4(p.src);
    q.dstV4 = v4(p.dst);
    return q;
  }

  it('gives a packet with numbers and the same packet as text the same flow', () => {
    const { t, out } = table();
    t.add(numeric(tcp(0, C, 40000, '192.168.200.7', 443, SYN)));
    t.add(tcp(1, '192.168.200.7', 443, C, 40000, SYN | ACK));
    t.add(numeric(tcp(2, C, 40000, '192.168.200.7', 443, ACK)));
    t.add(
      pkt({
        ts: 3,
        src: '192.168.200.7',
        dst: C,
        proto: 1,
        icmpType: 3,
        icmpCode: 1,
        ipLen: 56,
        quotedProto: 6,
        quotedSrc: C,
        quotedDst: '192.168.200.7',
        quotedSrcPort: 40000,
        quotedDstPort: 443,
      }),
    );
    t.flushAll();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      src: { ip: C, port: 40000 },
      dst: { ip: '192.168.200.7', port: 443 },
      packets: { fwd: 2, rev: 2 },
      state: 'established',
    });
    expect(t.stats.icmpErrorsMatched).toBe(1);
  });

  it('keeps text that only looks like a dotted quad apart from the address', () => {
    const { t, out } = table();
    t.add(udp(0, '10.0.0.1', 5000, S, 53));
    t.add(udp(1, '010.0.0.1', 5000, S, 53));
    t.add(udp(2, S, 53, '10.0.0.1', 5000));
    t.flushAll();
    expect(out).toHaveLength(2);
    expect(out.map((r) => [r.src.ip, r.packets.fwd, r.packets.rev])).toEqual([
      ['10.0.0.1', 1, 1],
      ['010.0.0.1', 1, 0],
    ]);
  });

  it('learns listeners on IPv4 and IPv6 alike', () => {
    const { t, out } = table();
    for (const [client, server] of [
      [C, S],
      ['fd00::1', 'fd00::2'],
    ] as const) {
      // The server answers on 9000 (not well known); a later mid-stream flow to it is oriented by that.
      t.add(tcp(0, client, 40000, server, 9000, SYN));
      t.add(tcp(1, server, 9000, client, 40000, SYN | ACK));
      t.add(tcp(2, server, 9000, client, 40001, ACK | PSH));
    }
    t.flushAll();
    const midStream = out.filter((r) => r.continued);
    expect(midStream).toHaveLength(2);
    for (const r of midStream) {
      expect(r.initiator).toBe('listening-port');
      expect(r.dst.port).toBe(9000);
    }
  });

  it('hands an ended IPv6 flow’s address id to another address without mixing their flows', () => {
    const { t, out } = table({ idleTimeoutMs: 1000 });
    t.add(udp(0, 'fd00::1', 3000, 'fd00::2', 4000));
    // Both flows above expire; new addresses get the released ids.
    t.add(udp(5000, 'fd00::3', 3000, 'fd00::4', 4000));
    t.add(udp(5001, 'fd00::1', 3000, 'fd00::2', 4000));
    t.add(udp(5002, 'fd00::4', 4000, 'fd00::3', 3000));
    t.add(udp(5003, 'fd00::2', 4000, 'fd00::1', 3000));
    t.flushAll();
    expect(out.map((r) => [r.src.ip, r.dst.ip, r.packets.fwd, r.packets.rev])).toEqual([
      ['fd00::1', 'fd00::2', 1, 0],
      ['fd00::3', 'fd00::4', 1, 1],
      ['fd00::1', 'fd00::2', 1, 1],
    ]);
  });

  it('does not give a later fragment to a new flow that took the storage of its ended flow', () => {
    const { t, out } = table({ tcpClosedLingerMs: 10 });
    const frag = (ts: number, offset: number, more: boolean, ports: boolean) =>
      pkt({
        ts,
        src: C,
        dst: S,
        proto: 6,
        srcPort: ports ? 40000 : -1,
        dstPort: ports ? 80 : -1,
        tcpFlags: ports ? RST : 0,
        fragId: 9,
        fragOffset: offset,
        moreFragments: more,
        ipLen: 1500,
      });
    t.add(frag(0, 0, true, true)); // first fragment of a RST: the flow is closed at once
    t.add(udp(2000, '10.9.9.9', 1, '10.9.9.8', 2)); // expiry ends the TCP flow; this one reuses its slot
    t.add(frag(2001, 1480, false, false)); // the later fragment: its flow is gone
    t.flushAll();
    const udpFlow = out.find((r) => r.proto === 'UDP')!;
    expect(udpFlow.packets).toEqual({ fwd: 1, rev: 0 });
    expect(t.stats.fragmentsMatched).toBe(0);
    expect(t.stats.fragmentsOrphaned).toBe(1);
    expect(out.reduce((n, r) => n + r.packets.fwd + r.packets.rev, 0)).toBe(3);
  });
});

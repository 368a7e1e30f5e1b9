import { describe, expect, it } from 'vitest';
import type { CaptureRecord } from '../capture/record.js';
import * as b from './craft.js';
import { DecodeStatus, decodePacket, ipv6ToString, MAX_TUNNEL_DEPTH, newDecodedPacket } from './index.js';
import type { DecodedPacket } from './packet.js';

const TCP = 6;
const UDP = 17;

function rec(data: Uint8Array, linkType = 1, wireLen = data.length): CaptureRecord {
  return { ts: 1700000000123.456, linkType, iface: 2, wireLen, data, record: 0, offset: 24 };
}

function decode(data: Uint8Array, linkType = 1, wireLen?: number): [DecodeStatus, DecodedPacket] {
  const out = newDecodedPacket();
  return [decodePacket(rec(data, linkType, wireLen), out), out];
}

const v4tcp = (flags = 0x12) => b.ipv4('10.0.0.1', '10.0.0.2', { proto: TCP }, b.tcp(40000, 443, flags));

describe('Ethernet, VLAN and IPv4', () => {
  it('decodes IPv4/TCP on Ethernet with record metadata', () => {
    const [st, p] = decode(b.ethernet(0x0800, v4tcp(0x12)));
    expect(st).toBe(DecodeStatus.OK);
    expect(p).toMatchObject({
      ts: 1700000000123.456,
      iface: 2,
      wireLen: 54,
      ipVersion: 4,
      src: '10.0.0.1',
      dst: '10.0.0.2',
      proto: TCP,
      srcPort: 40000,
      dstPort: 443,
      tcpFlags: 0x12,
      ipLen: 40,
      fragId: -1,
      tunnelType: '',
      vlans: [],
    });
  });

  it('skips IPv4 options by the header length', () => {
    const ip = b.ipv4(
      '1.2.3.4',
      '5.6.7.8',
      { proto: UDP, options: Uint8Array.of(1, 1, 1, 0, 0x94, 4, 0, 0) },
      b.udp(53, 5353),
    );
    const [st, p] = decode(b.ethernet(0x0800, ip));
    expect(st).toBe(DecodeStatus.OK);
    expect([p.srcPort, p.dstPort]).toEqual([53, 5353]);
  });

  it('ignores Ethernet padding after the IPv4 total length', () => {
    const ip = b.ipv4('1.2.3.4', '5.6.7.8', { proto: 1 }, b.icmpEcho(8, 77));
    const [st, p] = decode(b.concat(b.ethernet(0x0800, ip), new Uint8Array(18).fill(0xee)));
    expect(st).toBe(DecodeStatus.OK);
    expect(p.ipLen).toBe(28);
    expect(p.icmpId).toBe(77);
  });

  it('collects 802.1Q, 802.1ad and 0x9100 tags outermost first', () => {
    const inner = b.ethernet(0x0800, v4tcp(), [100]);
    // Rebuild with an 802.1ad outer tag: S-tag 0x88a8 (vid 7) then C-tag 0x8100 (vid 100).
    const qinq = b.concat(inner.subarray(0, 12), Uint8Array.of(0x88, 0xa8, 0x20, 0x07), inner.subarray(12));
    const [st, p] = decode(qinq);
    expect(st).toBe(DecodeStatus.OK);
    expect(p.vlans).toEqual([7, 100]);
    const [, p2] = decode(b.ethernet(0x0800, v4tcp(), [5, 6], 0x9100));
    expect(p2.vlans).toEqual([5, 6]);
    expect(p2.dstPort).toBe(443);
  });

  it('reports ports only on the first fragment', () => {
    const first = b.ipv4(
      '1.1.1.1',
      '2.2.2.2',
      { proto: UDP, id: 0xbeef, moreFragments: true },
      b.udp(123, 456, new Uint8Array(64)),
    );
    const [st1, p1] = decode(b.ethernet(0x0800, first));
    expect(st1).toBe(DecodeStatus.OK);
    expect(p1).toMatchObject({
      fragId: 0xbeef,
      fragOffset: 0,
      moreFragments: true,
      srcPort: 123,
      dstPort: 456,
    });
    const later = b.ipv4(
      '1.1.1.1',
      '2.2.2.2',
      { proto: UDP, id: 0xbeef, fragOffset: 1480 },
      new Uint8Array(100),
    );
    const [st2, p2] = decode(b.ethernet(0x0800, later));
    expect(st2).toBe(DecodeStatus.OK);
    expect(p2).toMatchObject({
      fragId: 0xbeef,
      fragOffset: 1480,
      moreFragments: false,
      srcPort: -1,
      dstPort: -1,
      proto: UDP,
    });
  });

  it('reports SCTP ports', () => {
    const [, p] = decode(b.ethernet(0x0800, b.ipv4('1.1.1.1', '2.2.2.2', { proto: 132 }, b.sctp(2905, 7))));
    expect([p.proto, p.srcPort, p.dstPort]).toEqual([132, 2905, 7]);
  });

  it('keeps ports of a TCP header with a bogus data offset and flags it', () => {
    const [st, p] = decode(
      b.ethernet(0x0800, b.ipv4('1.1.1.1', '2.2.2.2', { proto: TCP }, b.tcp(1, 2, 0x02, undefined, 2))),
    );
    expect(st).toBe(DecodeStatus.OK);
    expect([p.srcPort, p.dstPort, p.anomaly]).toEqual([1, 2, 'tcp-data-offset-too-small']);
  });

  it('accepts a zero IPv4 total length (segmentation offload) and flags it', () => {
    const [st, p] = decode(
      b.ethernet(0x0800, b.ipv4('1.1.1.1', '2.2.2.2', { proto: TCP, totalLength: 0 }, b.tcp(5, 6, 0x10))),
    );
    expect(st).toBe(DecodeStatus.OK);
    expect([p.dstPort, p.anomaly]).toEqual([6, 'ipv4-total-length-zero']);
  });

  it('classifies non-IP frames', () => {
    expect(decode(b.ethernet(0x0806, new Uint8Array(28)))[0]).toBe(DecodeStatus.NOT_IP);
    // 802.3 length field + LLC (STP).
    expect(decode(b.ethernet(38, Uint8Array.of(0x42, 0x42, 3, 0, 0)))[0]).toBe(DecodeStatus.NOT_IP);
    expect(decode(b.ethernet(0x88cc, new Uint8Array(20)), 1)[0]).toBe(DecodeStatus.NOT_IP);
  });

  it('resets every field between packets', () => {
    const out = newDecodedPacket();
    decodePacket(rec(b.ethernet(0x0800, v4tcp(), [9])), out);
    expect(out.srcPort).toBe(40000);
    expect(decodePacket(rec(b.ethernet(0x0806, new Uint8Array(28))), out)).toBe(DecodeStatus.NOT_IP);
    expect(out).toMatchObject({
      src: '',
      dst: '',
      srcPort: -1,
      dstPort: -1,
      tcpFlags: 0,
      proto: 0,
      vlans: [],
    });
  });
});

describe('truncated and malformed headers', () => {
  const frame = b.ethernet(0x0800, v4tcp(0x18));

  it('TRUNCATED when the Ethernet header is cut', () => {
    const [st, p] = decode(frame.subarray(0, 10), 1, frame.length);
    expect(st).toBe(DecodeStatus.TRUNCATED);
    expect(p.src).toBe('');
  });

  it('TRUNCATED with no address when the IPv4 header is cut', () => {
    const [st, p] = decode(frame.subarray(0, 14 + 12), 1, frame.length);
    expect(st).toBe(DecodeStatus.TRUNCATED);
    expect(p.src).toBe('');
  });

  it('TRUNCATED with ports but no flags when TCP is cut after 4 bytes', () => {
    const [st, p] = decode(frame.subarray(0, 14 + 20 + 6), 1, frame.length);
    expect(st).toBe(DecodeStatus.TRUNCATED);
    expect([p.src, p.srcPort, p.dstPort, p.tcpFlags]).toEqual(['10.0.0.1', 40000, 443, 0]);
  });

  it('MALFORMED on a wrong version nibble or header length', () => {
    const bad = frame.slice();
    bad[14] = 0x55;
    expect(decode(bad)[0]).toBe(DecodeStatus.MALFORMED);
    bad[14] = 0x44;
    expect(decode(bad)[0]).toBe(DecodeStatus.MALFORMED);
  });

  it('MALFORMED when the total length is shorter than the header', () => {
    const [st, p] = decode(
      b.ethernet(0x0800, b.ipv4('1.1.1.1', '2.2.2.2', { proto: TCP, totalLength: 12 }, b.tcp(1, 2, 2))),
    );
    expect(st).toBe(DecodeStatus.MALFORMED);
    expect(p.src).toBe('1.1.1.1');
  });

  it('MALFORMED (not TRUNCATED) when the IP total length, not the capture, cuts the transport header', () => {
    const ip = b.ipv4('1.1.1.1', '2.2.2.2', { proto: TCP, totalLength: 22 }, b.tcp(1, 2, 2));
    expect(decode(b.ethernet(0x0800, ip))[0]).toBe(DecodeStatus.MALFORMED);
  });
});

describe('IPv6', () => {
  it('formats addresses per RFC 5952', () => {
    const f = (s: string) => ipv6ToString(b.ip6Bytes(s), 0);
    expect(f('2001:db8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(f('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(f('0:0:0:0:0:0:0:0')).toBe('::');
    expect(f('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(f('2001:0:0:1:0:0:0:1')).toBe('2001:0:0:1::1');
    expect(f('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(f('fe80:0:0:0:0:0:0:0')).toBe('fe80::');
    expect(f('2200:0:0:244:212:3fff:feae:22f7')).toBe('2200::244:212:3fff:feae:22f7');
  });

  it('walks hop-by-hop, routing, destination options and AH to reach UDP', () => {
    const pkt = b.ipv6('2001:db8::1', '2001:db8::2', UDP, b.udp(546, 547), [
      { type: 0 },
      { type: 43 },
      { type: 60 },
      { type: 51 },
    ]);
    const [st, p] = decode(b.ethernet(0x86dd, pkt));
    expect(st).toBe(DecodeStatus.OK);
    expect(p).toMatchObject({
      ipVersion: 6,
      src: '2001:db8::1',
      dst: '2001:db8::2',
      proto: UDP,
      srcPort: 546,
      dstPort: 547,
    });
  });

  it('uses the on-the-wire destination, not the routing header final segment', () => {
    const rh = new Uint8Array(22);
    rh[0] = 0; // type 0
    rh[1] = 1; // segments left
    rh.set(b.ip6Bytes('2001:db8::99'), 6);
    const pkt = b.ipv6('2001:db8::1', '2001:db8::2', 58, b.icmpEcho(128, 5), [{ type: 43, body: rh }]);
    const [, p] = decode(b.ethernet(0x86dd, pkt));
    expect([p.dst, p.proto, p.icmpType, p.icmpId]).toEqual(['2001:db8::2', 58, 128, 5]);
  });

  it('reads the fragment header: first fragment has ports, later ones not', () => {
    const first = b.ipv6('::1', '::2', TCP, b.tcp(1000, 80, 2), [
      { type: 44, fragOffset: 0, moreFragments: true, fragId: 0xabcdef01 },
    ]);
    const [, p1] = decode(b.ethernet(0x86dd, first));
    expect(p1).toMatchObject({
      fragId: 0xabcdef01,
      fragOffset: 0,
      moreFragments: true,
      srcPort: 1000,
      proto: TCP,
    });
    const later = b.ipv6('::1', '::2', TCP, new Uint8Array(16), [
      { type: 0 },
      { type: 44, fragOffset: 1448, fragId: 7 },
    ]);
    const [st2, p2] = decode(b.ethernet(0x86dd, later));
    expect(st2).toBe(DecodeStatus.OK);
    expect(p2).toMatchObject({ fragId: 7, fragOffset: 1448, moreFragments: false, srcPort: -1, proto: TCP });
  });

  it('TRUNCATED inside the extension chain keeps the addresses', () => {
    const pkt = b.ipv6('::1', '::2', UDP, b.udp(1, 2), [{ type: 0, body: new Uint8Array(14) }]);
    const [st, p] = decode(b.ethernet(0x86dd, pkt).subarray(0, 14 + 40 + 1), 1, 100);
    expect(st).toBe(DecodeStatus.TRUNCATED);
    expect(p.src).toBe('::1');
  });

  // RFC 8200 section 4.2: options are type, length, data (Pad1 = a lone 0 byte). Linux drops a packet
  // whose Hop-by-Hop or Destination Options overrun their header, so it never reached a socket.
  const withOptions = (type: number, body: number[]) =>
    b.ethernet(
      0x86dd,
      b.ipv6('2001:db8::1', '2001:db8::2', UDP, b.udp(5000, 53), [{ type, body: new Uint8Array(body) }]),
    );

  it.each([
    ['Router Alert + PadN(0)', [5, 2, 0, 0, 1, 0]],
    ['Pad1 x6', [0, 0, 0, 0, 0, 0]],
    ['PadN filling the header', [1, 4, 0, 0, 0, 0]],
    ['Pad1 then PadN(3)', [0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
  ])('well-formed options (%s) in Hop-by-Hop and Destination Options pass', (_, body) => {
    for (const type of [0, 60]) {
      const [st, p] = decode(withOptions(type, body));
      expect(st).toBe(DecodeStatus.OK);
      expect([p.proto, p.srcPort, p.dstPort, p.anomaly]).toEqual([UDP, 5000, 53, '']);
    }
  });

  it.each([
    ['a length past the header end', [1, 5, 0, 0, 0, 0]],
    ['Router Alert with a length one too long', [5, 5, 0, 0, 1, 0]],
    ["a type byte as the header's last byte", [0, 0, 0, 0, 0, 7]],
    ['a long option in a 16-byte header', [0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0xc2, 4, 0]],
  ])(
    'an option overrunning its header (%s) is MALFORMED in Hop-by-Hop and Destination Options',
    (_, body) => {
      for (const type of [0, 60]) {
        const [st, p] = decode(withOptions(type, body));
        expect(st).toBe(DecodeStatus.MALFORMED);
        expect(p.anomaly).toBe('ipv6-option-overrun');
      }
    },
  );

  it('the same bytes in a Routing header are not options (no overrun check)', () => {
    const [st] = decode(withOptions(43, [0, 0, 1, 5, 0, 0]));
    expect(st).toBe(DecodeStatus.OK);
  });

  it('a capture cut inside the options is TRUNCATED, not an overrun', () => {
    const frame = withOptions(0, [5, 2, 0, 0, 1, 0]);
    // Ethernet 14 + IPv6 40 + next header, length, option type: the option's length byte is not captured.
    const [st] = decode(frame.subarray(0, 14 + 40 + 3), 1, frame.length);
    expect(st).toBe(DecodeStatus.TRUNCATED);
  });
});

describe('ICMP and ICMPv6', () => {
  it('reads echo type, code and identifier', () => {
    const [, p] = decode(
      b.ethernet(0x0800, b.ipv4('1.1.1.1', '2.2.2.2', { proto: 1 }, b.icmpEcho(8, 0x4242))),
    );
    expect([p.icmpType, p.icmpCode, p.icmpId, p.quotedProto]).toEqual([8, 0, 0x4242, -1]);
    const [, p6] = decode(b.ethernet(0x86dd, b.ipv6('::1', '::2', 58, b.icmpEcho(129, 9))));
    expect([p6.icmpType, p6.icmpId]).toEqual([129, 9]);
  });

  it('decodes the header quoted by a destination unreachable', () => {
    const quoted = b.ipv4('10.1.1.1', '10.2.2.2', { proto: UDP }, b.udp(33000, 53)).subarray(0, 28);
    const err = b.ipv4('10.2.2.2', '10.1.1.1', { proto: 1 }, b.icmpError(3, 3, quoted));
    const [st, p] = decode(b.ethernet(0x0800, err));
    expect(st).toBe(DecodeStatus.OK);
    expect(p).toMatchObject({
      src: '10.2.2.2',
      proto: 1,
      icmpType: 3,
      icmpCode: 3,
      icmpId: -1,
      srcPort: -1,
      quotedProto: UDP,
      quotedSrc: '10.1.1.1',
      quotedDst: '10.2.2.2',
      quotedSrcPort: 33000,
      quotedDstPort: 53,
    });
  });

  it('decodes time exceeded with a quote too short for ports', () => {
    const quoted = b.ipv4('10.1.1.1', '10.2.2.2', { proto: TCP }, b.tcp(1, 2, 2)).subarray(0, 22);
    const [, p] = decode(
      b.ethernet(0x0800, b.ipv4('9.9.9.9', '10.1.1.1', { proto: 1 }, b.icmpError(11, 0, quoted))),
    );
    expect([p.quotedProto, p.quotedSrc, p.quotedSrcPort]).toEqual([TCP, '10.1.1.1', -1]);
  });

  it('decodes ICMPv6 packet too big quoting IPv6/TCP', () => {
    const quoted = b.ipv6('2001:db8::a', '2001:db8::b', TCP, b.tcp(5555, 443, 0x10));
    const [, p] = decode(
      b.ethernet(0x86dd, b.ipv6('2001:db8::1', '2001:db8::a', 58, b.icmpError(2, 0, quoted))),
    );
    expect(p).toMatchObject({
      icmpType: 2,
      quotedProto: TCP,
      quotedSrc: '2001:db8::a',
      quotedDst: '2001:db8::b',
      quotedSrcPort: 5555,
      quotedDstPort: 443,
    });
  });

  it('does not treat a redirect as quoting a flow', () => {
    const quoted = b.ipv4('10.1.1.1', '10.2.2.2', { proto: UDP }, b.udp(1, 2));
    const [, p] = decode(
      b.ethernet(0x0800, b.ipv4('10.0.0.254', '10.1.1.1', { proto: 1 }, b.icmpError(5, 1, quoted))),
    );
    expect(p.quotedProto).toBe(-1);
  });
});

describe('tunnels', () => {
  const innerTcp = b.ethernet(
    0x0800,
    b.ipv4('192.168.1.10', '192.168.1.20', { proto: TCP }, b.tcp(12345, 80, 0x02)),
  );

  it.each([4789, 8472])('VXLAN on UDP %i: innermost packet plus outer tunnel fields', (port) => {
    const outer = b.ethernet(
      0x0800,
      b.ipv4('172.16.0.1', '172.16.0.2', { proto: UDP }, b.udp(51000, port, b.vxlan(4242, innerTcp))),
    );
    const [st, p] = decode(outer);
    expect(st).toBe(DecodeStatus.OK);
    expect(p).toMatchObject({
      src: '192.168.1.10',
      dst: '192.168.1.20',
      proto: TCP,
      srcPort: 12345,
      dstPort: 80,
      tunnelType: 'vxlan',
      tunnelSrc: '172.16.0.1',
      tunnelDst: '172.16.0.2',
      tunnelId: 4242,
      tunnelPort: port,
      tunnelSrcPort: 51000,
      ipLen: 40,
    });
  });

  it('VXLAN carrying ARP reports the carrier UDP packet', () => {
    const arp = b.ethernet(0x0806, new Uint8Array(28), [30]);
    const [st, p] = decode(
      b.ethernet(0x0800, b.ipv4('172.16.0.1', '172.16.0.2', { proto: UDP }, b.udp(1, 4789, b.vxlan(1, arp)))),
    );
    expect(st).toBe(DecodeStatus.OK);
    expect(p).toMatchObject({
      src: '172.16.0.1',
      proto: UDP,
      dstPort: 4789,
      tunnelType: '',
      tunnelId: -1,
      vlans: [],
      anomaly: 'tunnel-payload-not-ip',
    });
  });

  it('VXLAN cut before the inner IP header reports the carrier as TRUNCATED', () => {
    const full = b.ethernet(
      0x0800,
      b.ipv4('172.16.0.1', '172.16.0.2', { proto: UDP }, b.udp(1, 4789, b.vxlan(1, innerTcp))),
    );
    const [st, p] = decode(full.subarray(0, 14 + 20 + 8 + 8 + 10), 1, full.length);
    expect(st).toBe(DecodeStatus.TRUNCATED);
    expect([p.src, p.dstPort, p.tunnelType]).toEqual(['172.16.0.1', 4789, '']);
  });

  it('Geneve skips options; payload Ethernet (0x6558) or IP (0x0800)', () => {
    const opts = new Uint8Array(8).fill(0xaa);
    const g1 = b.ethernet(
      0x0800,
      b.ipv4('20.0.0.1', '20.0.0.2', { proto: UDP }, b.udp(9, 6081, b.geneve(11, 0x6558, innerTcp, opts))),
    );
    const [, p1] = decode(g1);
    expect([p1.src, p1.dstPort, p1.tunnelType, p1.tunnelId, p1.tunnelPort]).toEqual([
      '192.168.1.10',
      80,
      'geneve',
      11,
      6081,
    ]);
    const ip = b.ipv4('30.0.0.1', '30.0.0.2', { proto: UDP }, b.udp(7, 8));
    const g2 = b.ethernet(
      0x0800,
      b.ipv4('20.0.0.1', '20.0.0.2', { proto: UDP }, b.udp(9, 6081, b.geneve(12, 0x0800, ip))),
    );
    const [, p2] = decode(g2);
    expect([p2.src, p2.srcPort, p2.tunnelId]).toEqual(['30.0.0.1', 7, 12]);
  });

  it('GRE with checksum, key and sequence carrying IPv4; key is the tunnel id', () => {
    const ip = b.ipv4('10.9.0.1', '10.9.0.2', { proto: UDP }, b.udp(1000, 2000));
    const g = b.ethernet(
      0x0800,
      b.ipv4(
        '1.0.0.1',
        '1.0.0.2',
        { proto: 47 },
        b.gre({ protocol: 0x0800, key: 0xdeadbeef, seq: 5, checksum: true }, ip),
      ),
    );
    const [st, p] = decode(g);
    expect(st).toBe(DecodeStatus.OK);
    expect(p).toMatchObject({
      src: '10.9.0.1',
      srcPort: 1000,
      tunnelType: 'gre',
      tunnelSrc: '1.0.0.1',
      tunnelId: 0xdeadbeef,
      tunnelPort: -1,
    });
  });

  it('GRE transparent Ethernet bridging (0x6558) and IPv6 payloads', () => {
    const teb = b.ethernet(
      0x0800,
      b.ipv4('1.0.0.1', '1.0.0.2', { proto: 47 }, b.gre({ protocol: 0x6558 }, innerTcp)),
    );
    expect(decode(teb)[1]).toMatchObject({ src: '192.168.1.10', tunnelType: 'gre', tunnelId: -1 });
    const v6 = b.ipv6('2001:db8::1', '2001:db8::2', UDP, b.udp(3, 4));
    const g6 = b.ethernet(0x86dd, b.ipv6('fd00::1', 'fd00::2', 47, b.gre({ protocol: 0x86dd, key: 1 }, v6)));
    expect(decode(g6)[1]).toMatchObject({
      ipVersion: 6,
      src: '2001:db8::1',
      srcPort: 3,
      tunnelType: 'gre',
      tunnelSrc: 'fd00::1',
    });
  });

  it('GRE version 1 (PPTP) is reported as the carrier with an anomaly', () => {
    const g = b.ethernet(
      0x0800,
      b.ipv4(
        '1.0.0.1',
        '1.0.0.2',
        { proto: 47 },
        b.gre({ protocol: 0x880b, version: 1 }, new Uint8Array(12)),
      ),
    );
    const [st, p] = decode(g);
    expect(st).toBe(DecodeStatus.OK);
    expect([p.src, p.proto, p.tunnelType, p.anomaly]).toEqual(['1.0.0.1', 47, '', 'gre-unsupported-variant']);
  });

  it('ERSPAN type II inside GRE is opened to the mirrored frame', () => {
    const erspan = b.concat(new Uint8Array(8), innerTcp);
    const g = b.ethernet(
      0x0800,
      b.ipv4('1.0.0.1', '1.0.0.2', { proto: 47 }, b.gre({ protocol: 0x88be, seq: 1 }, erspan)),
    );
    expect(decode(g)[1]).toMatchObject({ src: '192.168.1.10', dstPort: 80, tunnelType: 'gre' });
  });

  it.each([
    [
      'ipip',
      () =>
        b.ipv4(
          '1.1.1.1',
          '2.2.2.2',
          { proto: 4 },
          b.ipv4('10.0.0.1', '10.0.0.2', { proto: UDP }, b.udp(1, 2)),
        ),
      0x0800,
    ],
    [
      'ip6ip',
      () => b.ipv4('1.1.1.1', '2.2.2.2', { proto: 41 }, b.ipv6('fd00::1', 'fd00::2', UDP, b.udp(1, 2))),
      0x0800,
    ],
    [
      'ip4ip6',
      () =>
        b.ipv6('2001:db8::1', '2001:db8::2', 4, b.ipv4('10.0.0.1', '10.0.0.2', { proto: UDP }, b.udp(1, 2))),
      0x86dd,
    ],
    [
      'ip6ip6',
      () => b.ipv6('2001:db8::1', '2001:db8::2', 41, b.ipv6('fd00::1', 'fd00::2', UDP, b.udp(1, 2))),
      0x86dd,
    ],
  ] as const)('%s', (name, build, etherType) => {
    const [st, p] = decode(b.ethernet(etherType, build()));
    expect(st).toBe(DecodeStatus.OK);
    expect(p.tunnelType).toBe(name);
    expect([p.srcPort, p.dstPort]).toEqual([1, 2]);
    expect(p.src === '10.0.0.1' || p.src === 'fd00::1').toBe(true);
  });

  it('reports the outermost tunnel when tunnels nest (VXLAN inside GRE)', () => {
    const vx = b.ipv4('172.16.0.1', '172.16.0.2', { proto: UDP }, b.udp(1, 4789, b.vxlan(77, innerTcp)));
    const g = b.ethernet(
      0x0800,
      b.ipv4('1.0.0.1', '1.0.0.2', { proto: 47 }, b.gre({ protocol: 0x0800, key: 3 }, vx)),
    );
    const [, p] = decode(g);
    expect([p.src, p.dstPort, p.tunnelType, p.tunnelSrc, p.tunnelId]).toEqual([
      '192.168.1.10',
      80,
      'gre',
      '1.0.0.1',
      3,
    ]);
  });

  it(`stops opening tunnels beyond depth ${MAX_TUNNEL_DEPTH}`, () => {
    let pkt = b.ipv4('10.0.0.99', '10.0.0.98', { proto: UDP }, b.udp(1, 2));
    for (let i = 0; i < 6; i++) pkt = b.ipv4(`10.0.${i}.1`, `10.0.${i}.2`, { proto: 4 }, pkt);
    const [st, p] = decode(b.ethernet(0x0800, pkt));
    expect(st).toBe(DecodeStatus.OK);
    // Outermost is 10.0.5.x; four tunnels opened reach 10.0.1.x, which still carries proto 4.
    expect([p.tunnelType, p.tunnelSrc, p.src, p.proto, p.anomaly]).toEqual([
      'ipip',
      '10.0.5.1',
      '10.0.1.1',
      4,
      'tunnel-depth-limit',
    ]);
  });
});

describe('link types', () => {
  const ip4 = v4tcp();
  const ip6 = b.ipv6('2001:db8::1', '2001:db8::2', TCP, b.tcp(1, 2, 2));

  it('Linux SLL (113), also with an address length above 8', () => {
    expect(decode(b.sll(0x0800, ip4), 113)[1].dstPort).toBe(443);
    const [st, p] = decode(b.sll(0x86dd, ip6, 20), 113);
    expect(st).toBe(DecodeStatus.OK);
    expect(p.src).toBe('2001:db8::1');
    expect(decode(b.sll(0x0806, new Uint8Array(28)), 113)[0]).toBe(DecodeStatus.NOT_IP);
  });

  it('Linux SLL2 (276)', () => {
    expect(decode(b.sll2(0x0800, ip4), 276)[1].src).toBe('10.0.0.1');
    expect(decode(b.sll2(0x86dd, ip6), 276)[1].ipVersion).toBe(6);
  });

  it.each([101, 12, 14])('raw IP (%i) by version nibble', (lt) => {
    expect(decode(ip4, lt)[1].src).toBe('10.0.0.1');
    expect(decode(ip6, lt)[1].src).toBe('2001:db8::1');
  });

  it('LINKTYPE_IPV4 (228) and LINKTYPE_IPV6 (229)', () => {
    expect(decode(ip4, 228)[0]).toBe(DecodeStatus.OK);
    expect(decode(ip6, 229)[0]).toBe(DecodeStatus.OK);
    expect(decode(ip6, 228)[0]).toBe(DecodeStatus.MALFORMED);
  });

  it('BSD NULL (0) in either byte order, and LOOP (108)', () => {
    expect(decode(b.nullHeader(2, ip4, false), 0)[1].src).toBe('10.0.0.1');
    expect(decode(b.nullHeader(2, ip4, true), 0)[1].src).toBe('10.0.0.1');
    for (const af of [24, 28, 30]) {
      expect(decode(b.nullHeader(af, ip6, false), 0)[1].ipVersion).toBe(6);
      expect(decode(b.nullHeader(af, ip6, true), 108)[1].ipVersion).toBe(6);
    }
    expect(decode(b.nullHeader(2, ip4, true), 108)[0]).toBe(DecodeStatus.OK);
    expect(decode(b.nullHeader(7, ip4, false), 0)[0]).toBe(DecodeStatus.NOT_IP);
  });

  it('UNSUPPORTED_LINKTYPE for anything else', () => {
    expect(decode(ip4, 147)[0]).toBe(DecodeStatus.UNSUPPORTED_LINKTYPE);
  });

  it('PPPoE session and MPLS on Ethernet', () => {
    const pppoe = b.concat(Uint8Array.of(0x11, 0, 0, 1, 0, 0, 0, 0x21), ip4);
    expect(decode(b.ethernet(0x8864, pppoe))[1].dstPort).toBe(443);
    const mpls = b.concat(Uint8Array.of(0, 0x01, 0x00, 0x40, 0, 0x02, 0x01, 0x40), ip6);
    expect(decode(b.ethernet(0x8847, mpls))[1].src).toBe('2001:db8::1');
  });
});

describe('IPv4 addresses as numbers (DecodedPacket.srcV4/dstV4)', () => {
  it('gives IPv4 addresses as numbers and as text, and only text for IPv6', () => {
    const [, p] = decode(
      b.ethernet(0x0800, b.ipv4('192.168.1.200', '10.0.0.2', { proto: UDP }, b.udp(1, 2))),
    );
    expect([p.srcV4, p.dstV4]).toEqual([0xc0a801c8, 0x0a000002]);
    expect([p.src, p.dst]).toEqual(['192.168.1.200', '10.0.0.2']);
    // A copy sees the text like any other field.
    expect({ ...p }).toMatchObject({ src: '192.168.1.200', dst: '10.0.0.2' });
    const [, p6] = decode(b.ethernet(0x86dd, b.ipv6('2001:db8::1', '2001:db8::2', UDP, b.udp(1, 2))));
    expect([p6.srcV4, p6.dstV4, p6.src]).toEqual([-1, -1, '2001:db8::1']);
  });

  it('forgets the numbers when the text is assigned, and when the packet object is reused', () => {
    const out = newDecodedPacket();
    decodePacket(rec(b.ethernet(0x0800, b.ipv4('1.2.3.4', '5.6.7.8', { proto: UDP }, b.udp(1, 2)))), out);
    out.src = 'fd00::9';
    expect([out.src, out.srcV4, out.dst, out.dstV4]).toEqual(['fd00::9', -1, '5.6.7.8', 0x05060708]);
    decodePacket(rec(b.ethernet(0x0806, new Uint8Array(28))), out);
    expect([out.src, out.dst, out.srcV4, out.dstV4]).toEqual(['', '', -1, -1]);
  });

  it('restores the carrier’s numbers when a tunnel payload is not IP', () => {
    const arp = b.ethernet(0x0806, new Uint8Array(28));
    const [st, p] = decode(
      b.ethernet(0x0800, b.ipv4('172.16.0.1', '172.16.0.2', { proto: UDP }, b.udp(1, 4789, b.vxlan(1, arp)))),
    );
    expect(st).toBe(DecodeStatus.OK);
    expect([p.src, p.dst, p.srcV4, p.dstV4, p.tunnelType]).toEqual([
      '172.16.0.1',
      '172.16.0.2',
      0xac100001,
      0xac100002,
      '',
    ]);
  });
});

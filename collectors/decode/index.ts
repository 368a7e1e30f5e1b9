import type { CaptureRecord } from '../capture/record.js';
import { type DecodedPacket, type DecodedPacketState, ipv4Text } from './packet.js';

export type { DecodedPacket } from './packet.js';
export { ipv4Text, newDecodedPacket } from './packet.js';

/** Result of decodePacket. */
export const DecodeStatus = {
  /** The innermost IP packet was decoded (ports present when the transport header was readable). */
  OK: 0,
  /** The frame carries no IP packet (ARP, STP, LLC, CDP, LLDP...). */
  NOT_IP: 1,
  /** The capture's link type is not one the decoder knows. */
  UNSUPPORTED_LINKTYPE: 2,
  /** Headers were cut by the snapshot length: `out` holds what was readable (src '' when no IP header was). */
  TRUNCATED: 3,
  /** Headers contradict themselves (bad IP version, header length beyond total length...). */
  MALFORMED: 4,
} as const;
export type DecodeStatus = (typeof DecodeStatus)[keyof typeof DecodeStatus];

export const DecodeStatusName: Record<DecodeStatus, string> = {
  0: 'OK',
  1: 'NOT_IP',
  2: 'UNSUPPORTED_LINKTYPE',
  3: 'TRUNCATED',
  4: 'MALFORMED',
};

/** Tunnels inside tunnels beyond this depth are not opened (the carrier at that depth is reported). */
export const MAX_TUNNEL_DEPTH = 4;
const MAX_VLAN_TAGS = 8;

const UDP_PORT_VXLAN = 4789;
/** Linux kernel's pre-IANA VXLAN port, used by Flannel and Cilium. */
const UDP_PORT_VXLAN_LINUX = 8472;
const UDP_PORT_GENEVE = 6081;

const OK = 0;
const NOT_IP = 1;
const UNSUPPORTED = 2;
const TRUNCATED = 3;
const MALFORMED = 4;

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_TEB = 0x6558;

/*
 * Decoding state for one call. Module-level so that the hot path allocates nothing; decodePacket is
 * synchronous and not re-entrant, which makes this safe.
 */
let out: DecodedPacketState;
/** Count of IP headers whose addresses were filled: tells a tunnel whether its payload reached IP. */
let ipLayers = 0;
/** Length of the captured data: reading past it means snaplen truncation, not a malformed header. */
let capLen = 0;

/**
 * Decodes a captured frame down to the innermost IP packet and its transport header, filling `out`
 * (every field is reset first; `o` comes from newDecodedPacket). Never throws and never reads
 * outside rec.data.
 */
export function decodePacket(rec: CaptureRecord, o: DecodedPacket): DecodeStatus {
  out = o as DecodedPacketState;
  resetPacket(out);
  o.ts = rec.ts;
  o.iface = rec.iface;
  o.wireLen = rec.wireLen;
  ipLayers = 0;
  const d = rec.data;
  capLen = d.length;
  let st: number;
  switch (rec.linkType) {
    case 1:
      st = ethernet(d, 0, d.length, 0);
      break;
    case 113:
      st = sll(d);
      break;
    case 276:
      st = sll2(d);
      break;
    case 101:
    case 12:
    case 14:
      st = rawIp(d, 0, d.length, 0);
      break;
    case 228:
      st = ipv4(d, 0, d.length, 0);
      break;
    case 229:
      st = ipv6(d, 0, d.length, 0);
      break;
    case 0:
      st = nullLoopback(d, d.length >= 4 && d[0] === 0 && d[1] === 0);
      break;
    case 108:
      st = nullLoopback(d, true);
      break;
    default:
      st = UNSUPPORTED;
  }
  return st as DecodeStatus;
}

function resetPacket(o: DecodedPacketState): void {
  o.ipVersion = 4;
  o.srcText = '';
  o.dstText = '';
  o.srcV4 = -1;
  o.dstV4 = -1;
  o.proto = 0;
  o.ipLen = 0;
  clearTunnel(o);
  // The length setter is a runtime call even when nothing changes.
  if (o.vlans.length !== 0) o.vlans.length = 0;
  o.anomaly = '';
  resetNetwork(o);
}

/** No tunnel around the packet. */
function clearTunnel(o: DecodedPacket): void {
  o.tunnelType = '';
  o.tunnelSrc = '';
  o.tunnelDst = '';
  o.tunnelId = -1;
  o.tunnelPort = -1;
  o.tunnelSrcPort = -1;
}

/** Fields owned by one IP layer: reset whenever a (more inner) IP header is decoded. */
function resetNetwork(o: DecodedPacket): void {
  o.srcPort = -1;
  o.dstPort = -1;
  o.tcpFlags = 0;
  o.icmpType = -1;
  o.icmpCode = -1;
  o.icmpId = -1;
  o.fragId = -1;
  o.fragOffset = 0;
  o.moreFragments = false;
  o.quotedProto = -1;
  o.quotedSrc = '';
  o.quotedDst = '';
  o.quotedSrcPort = -1;
  o.quotedDstPort = -1;
}

function u16(d: Uint8Array, i: number): number {
  return (d[i] << 8) | d[i + 1];
}

function u32(d: Uint8Array, i: number): number {
  return ((d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3]) >>> 0;
}

/** Not enough bytes before `end`: truncation when the capture ran out, malformed when a length field did. */
function short(end: number): number {
  return end >= capLen ? TRUNCATED : MALFORMED;
}

function ipv4ToString(d: Uint8Array, i: number): string {
  return ipv4Text(u32(d, i));
}

const HEX = Array.from({ length: 65536 }, (_, i) => i.toString(16));

/** RFC 5952 text form (longest run of two or more zero groups compressed, lowercase). */
export function ipv6ToString(d: Uint8Array, i: number): string {
  let bestStart = -1;
  let bestLen = 0;
  let runStart = -1;
  for (let g = 0; g < 8; g++) {
    const zero = d[i + 2 * g] === 0 && d[i + 2 * g + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = g;
      const len = g - runStart + 1;
      if (len > bestLen) {
        bestLen = len;
        bestStart = runStart;
      }
    } else runStart = -1;
  }
  if (bestLen < 2) bestStart = -1;
  let s = '';
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      s += g === 0 ? '::' : ':';
      g += bestLen - 1;
      continue;
    }
    s += HEX[(d[i + 2 * g] << 8) | d[i + 2 * g + 1]];
    if (g < 7) s += ':';
  }
  return s;
}

// ------------------------------------------------------------------ link layers

function ethernet(d: Uint8Array, o: number, end: number, depth: number): number {
  if (end - o < 14) return short(end);
  return etherType(d, o + 14, end, u16(d, o + 12), depth);
}

/** Dispatches on an EtherType, peeling VLAN tags, PPPoE, MPLS and Cisco MetaData on the way. */
function etherType(d: Uint8Array, p: number, end: number, type: number, depth: number): number {
  for (let guard = 0; guard < 16; guard++) {
    switch (type) {
      case ETH_IPV4:
        return ipv4(d, p, end, depth);
      case ETH_IPV6:
        return ipv6(d, p, end, depth);
      case 0x8100:
      case 0x88a8:
      case 0x9100:
      case 0x9200:
        if (end - p < 4) return short(end);
        if (out.vlans.length < MAX_VLAN_TAGS) out.vlans.push(u16(d, p) & 0x0fff);
        type = u16(d, p + 2);
        p += 4;
        continue;
      case 0x8909:
        // Cisco MetaData on Ethernet: version, length, option, SGT, then the next EtherType.
        if (end - p < 8) return short(end);
        type = u16(d, p + 6);
        p += 8;
        continue;
      case 0x8864: {
        // PPPoE session: 6-byte header, then the 2-byte PPP protocol.
        if (end - p < 8) return short(end);
        const ppp = u16(d, p + 6);
        p += 8;
        if (ppp === 0x0021) return ipv4(d, p, end, depth);
        if (ppp === 0x0057) return ipv6(d, p, end, depth);
        return NOT_IP;
      }
      case 0x8847:
      case 0x8848: {
        // MPLS: labels until bottom-of-stack; the payload type is guessed from the IP version nibble.
        for (;;) {
          if (end - p < 4) return short(end);
          const bos = d[p + 2] & 1;
          p += 4;
          if (bos) break;
        }
        return rawIp(d, p, end, depth);
      }
      default:
        // Lengths (<= 1500: 802.3/LLC), ARP, LLDP, loop, STP...: not IP.
        return NOT_IP;
    }
  }
  return MALFORMED;
}

function sll(d: Uint8Array): number {
  // The header is 16 bytes whatever the address-length field says (it may exceed 8: only the
  // address is truncated, the protocol field stays at offset 14).
  if (d.length < 16) return short(d.length);
  const proto = u16(d, 14);
  if (proto <= 0x05ff) return NOT_IP;
  return etherType(d, 16, d.length, proto, 0);
}

function sll2(d: Uint8Array): number {
  if (d.length < 20) return short(d.length);
  const proto = u16(d, 0);
  if (proto <= 0x05ff) return NOT_IP;
  return etherType(d, 20, d.length, proto, 0);
}

function nullLoopback(d: Uint8Array, bigEndian: boolean): number {
  if (d.length < 4) return short(d.length);
  const af = bigEndian ? u32(d, 0) : (d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)) >>> 0;
  if (af === 2) return ipv4(d, 4, d.length, 0);
  if (af === 24 || af === 28 || af === 30) return ipv6(d, 4, d.length, 0);
  return NOT_IP;
}

function rawIp(d: Uint8Array, o: number, end: number, depth: number): number {
  if (end - o < 1) return short(end);
  const v = d[o] >> 4;
  if (v === 4) return ipv4(d, o, end, depth);
  if (v === 6) return ipv6(d, o, end, depth);
  return MALFORMED;
}

// ------------------------------------------------------------------ IP

function ipv4(d: Uint8Array, o: number, end: number, depth: number): number {
  if (end - o < 20) return end - o >= 1 && d[o] >> 4 !== 4 ? MALFORMED : short(end);
  const vihl = d[o];
  if (vihl >> 4 !== 4) return MALFORMED;
  const ihl = (vihl & 15) * 4;
  resetNetwork(out);
  out.ipVersion = 4;
  // The text is made when read (DecodedPacketState).
  out.srcV4 = u32(d, o + 12);
  out.dstV4 = u32(d, o + 16);
  out.srcText = '';
  out.dstText = '';
  const proto = d[o + 9];
  out.proto = proto;
  ipLayers++;
  const totalLen = u16(d, o + 2);
  out.ipLen = totalLen;
  const frag = u16(d, o + 6);
  const fragOffset = (frag & 0x1fff) * 8;
  const mf = (frag & 0x2000) !== 0;
  if (mf || fragOffset !== 0) {
    out.fragId = u16(d, o + 4);
    out.fragOffset = fragOffset;
    out.moreFragments = mf;
  }
  if (ihl < 20) return MALFORMED;
  let pend = end;
  if (totalLen === 0) {
    // Segmentation offload: the NIC fills in the length later, so the capture shows 0.
    out.anomaly = 'ipv4-total-length-zero';
  } else if (totalLen < ihl) {
    return MALFORMED;
  } else if (o + totalLen < end) {
    pend = o + totalLen;
  }
  if (o + ihl > pend) return short(pend);
  if (fragOffset !== 0) return OK;
  return transport(d, o + ihl, pend, proto, depth);
}

/** IPv6 extension headers that are skipped by their length field. */
function isSkippableExtension(nh: number): boolean {
  return (
    nh === 0 || nh === 43 || nh === 60 || nh === 135 || nh === 139 || nh === 140 || nh === 253 || nh === 254
  );
}

/**
 * True when an option of the Hop-by-Hop or Destination Options header at [p, hdrEnd) runs past the
 * header (RFC 8200 section 4.2: options are type, length, data; Pad1, type 0, is a lone byte). Linux
 * (ip6_parse_tlv) drops such a packet before any socket sees it, so it is no flow traffic. Only the
 * bytes before `avail` are read: a header the capture cut is checked as far as it was captured.
 */
function optionOverruns(d: Uint8Array, p: number, hdrEnd: number, avail: number): boolean {
  let off = p + 2;
  while (off < hdrEnd && off < avail) {
    if (d[off] === 0) {
      off++;
      continue;
    }
    // A type byte with no room for its length byte inside the header overruns it too.
    if (off + 1 >= hdrEnd) return true;
    if (off + 1 >= avail) return false;
    off += d[off + 1] + 2;
    if (off > hdrEnd) return true;
  }
  return false;
}

function ipv6(d: Uint8Array, o: number, end: number, depth: number): number {
  if (end - o < 40) return end - o >= 1 && d[o] >> 4 !== 6 ? MALFORMED : short(end);
  if (d[o] >> 4 !== 6) return MALFORMED;
  resetNetwork(out);
  out.ipVersion = 6;
  // On-the-wire addresses, deliberately not a routing header's final destination.
  out.src = ipv6ToString(d, o + 8);
  out.dst = ipv6ToString(d, o + 24);
  ipLayers++;
  const plen = u16(d, o + 4);
  out.ipLen = plen + 40;
  let pend = end;
  if (plen === 0) out.anomaly = 'ipv6-payload-length-zero';
  else if (o + 40 + plen < end) pend = o + 40 + plen;
  let nh = d[o + 6];
  let p = o + 40;
  out.proto = nh;
  // Every extension header is at least 8 bytes, so the walk ends within the packet.
  for (;;) {
    if (isSkippableExtension(nh) || nh === 51) {
      if (pend - p < 2) return short(pend);
      const len = nh === 51 ? (d[p + 1] + 2) * 4 : (d[p + 1] + 1) * 8;
      if ((nh === 0 || nh === 60) && optionOverruns(d, p, p + len, pend)) {
        out.anomaly = 'ipv6-option-overrun';
        return MALFORMED;
      }
      nh = d[p];
      out.proto = nh;
      p += len;
      if (p > pend) return short(pend);
      continue;
    }
    if (nh === 44) {
      if (pend - p < 8) return short(pend);
      const next = d[p];
      const x = u16(d, p + 2);
      out.fragId = u32(d, p + 4);
      out.fragOffset = x & 0xfff8;
      out.moreFragments = (x & 1) !== 0;
      nh = next;
      out.proto = nh;
      p += 8;
      if (out.fragOffset !== 0) return OK;
      continue;
    }
    break;
  }
  return transport(d, p, pend, nh, depth);
}

// ------------------------------------------------------------------ transport

function transport(d: Uint8Array, p: number, end: number, proto: number, depth: number): number {
  const avail = end - p;
  switch (proto) {
    case 6: {
      if (avail < 4) return short(end);
      out.srcPort = u16(d, p);
      out.dstPort = u16(d, p + 2);
      if (avail < 14) return short(end);
      out.tcpFlags = d[p + 13];
      const doff = (d[p + 12] >> 4) * 4;
      // A bogus data offset does not hide the ports: keep them, flag the header.
      if (doff < 20) out.anomaly = 'tcp-data-offset-too-small';
      else if (doff > avail && end < capLen) out.anomaly = 'tcp-data-offset-beyond-packet';
      return OK;
    }
    case 17: {
      if (avail < 4) return short(end);
      const sport = u16(d, p);
      const dport = u16(d, p + 2);
      out.srcPort = sport;
      out.dstPort = dport;
      if (avail < 8) return short(end);
      if (dport === UDP_PORT_VXLAN || dport === UDP_PORT_VXLAN_LINUX || dport === UDP_PORT_GENEVE) {
        return udpTunnel(d, p + 8, end, dport, depth);
      }
      return OK;
    }
    case 132:
      if (avail < 4) return short(end);
      out.srcPort = u16(d, p);
      out.dstPort = u16(d, p + 2);
      return OK;
    case 1:
      return icmp(d, p, end, false);
    case 58:
      return icmp(d, p, end, true);
    case 4:
      return tunnel(d, p, end, depth, out.ipVersion === 4 ? 'ipip' : 'ip4ip6', -1, -1, 4);
    case 41:
      return tunnel(d, p, end, depth, out.ipVersion === 4 ? 'ip6ip' : 'ip6ip6', -1, -1, 6);
    case 47:
      return gre(d, p, end, depth);
    default:
      return OK;
  }
}

function icmp(d: Uint8Array, p: number, end: number, v6: boolean): number {
  if (end - p < 2) return short(end);
  const type = d[p];
  out.icmpType = type;
  out.icmpCode = d[p + 1];
  const echo = v6 ? type === 128 || type === 129 : type === 0 || type === 8;
  if (echo) {
    if (end - p < 6) return short(end);
    out.icmpId = u16(d, p + 4);
    return OK;
  }
  const error = v6 ? type >= 1 && type <= 4 : type === 3 || type === 11 || type === 12;
  if (error) {
    if (v6) quoteIpv6(d, p + 8, end);
    else quoteIpv4(d, p + 8, end);
  }
  return OK;
}

/** Reads the header quoted by an ICMP error (best effort: an unreadable quote leaves quotedProto -1). */
function quoteIpv4(d: Uint8Array, q: number, end: number): void {
  if (end - q < 20 || d[q] >> 4 !== 4) return;
  const ihl = (d[q] & 15) * 4;
  if (ihl < 20) return;
  const proto = d[q + 9];
  out.quotedProto = proto;
  out.quotedSrc = ipv4ToString(d, q + 12);
  out.quotedDst = ipv4ToString(d, q + 16);
  const firstFragment = (u16(d, q + 6) & 0x1fff) === 0;
  const l4 = q + ihl;
  if (firstFragment && (proto === 6 || proto === 17 || proto === 132) && end - l4 >= 4) {
    out.quotedSrcPort = u16(d, l4);
    out.quotedDstPort = u16(d, l4 + 2);
  }
}

function quoteIpv6(d: Uint8Array, q: number, end: number): void {
  if (end - q < 40 || d[q] >> 4 !== 6) return;
  out.quotedSrc = ipv6ToString(d, q + 8);
  out.quotedDst = ipv6ToString(d, q + 24);
  let nh = d[q + 6];
  let p = q + 40;
  let ports = true;
  for (;;) {
    if (isSkippableExtension(nh) || nh === 51) {
      if (end - p < 2) break;
      const len = nh === 51 ? (d[p + 1] + 2) * 4 : (d[p + 1] + 1) * 8;
      nh = d[p];
      p += len;
      continue;
    }
    if (nh === 44) {
      if (end - p < 8) break;
      if ((u16(d, p + 2) & 0xfff8) !== 0) ports = false;
      nh = d[p];
      p += 8;
      continue;
    }
    break;
  }
  out.quotedProto = nh;
  if (ports && (nh === 6 || nh === 17 || nh === 132) && end - p >= 4) {
    out.quotedSrcPort = u16(d, p);
    out.quotedDstPort = u16(d, p + 2);
  }
}

// ------------------------------------------------------------------ tunnels

type TunnelType = DecodedPacket['tunnelType'];
/** Payload kinds a tunnel carries. */
const PAYLOAD_ETHERNET = -1;
const PAYLOAD_IPV4 = 4;
const PAYLOAD_IPV6 = 6;

/**
 * Opens a tunnel: records it (when outermost) and decodes the payload. If the payload holds no IP
 * packet (ARP in VXLAN, a GRE keepalive, a payload cut before its IP header, depth exceeded), the
 * carrier is restored and reported, so the frame still counts as the carrier's flow, like tshark does.
 */
function tunnel(
  d: Uint8Array,
  p: number,
  end: number,
  depth: number,
  type: TunnelType,
  id: number,
  port: number,
  payload: number,
): number {
  const o = out;
  if (depth >= MAX_TUNNEL_DEPTH) {
    o.anomaly = 'tunnel-depth-limit';
    return OK;
  }
  // Carrier fields, restored if the payload is not IP.
  const src = o.src;
  const dst = o.dst;
  const srcV4 = o.srcV4;
  const dstV4 = o.dstV4;
  const ipVersion = o.ipVersion;
  const proto = o.proto;
  const srcPort = o.srcPort;
  const dstPort = o.dstPort;
  const ipLen = o.ipLen;
  const fragId = o.fragId;
  const fragOffset = o.fragOffset;
  const moreFragments = o.moreFragments;
  const vlanCount = o.vlans.length;
  const anomaly = o.anomaly;
  const outermost = o.tunnelType === '';
  if (outermost) {
    o.tunnelType = type;
    o.tunnelSrc = src;
    o.tunnelDst = dst;
    o.tunnelId = id;
    o.tunnelPort = port;
    o.tunnelSrcPort = port >= 0 ? srcPort : -1;
  }
  const layersBefore = ipLayers;
  let st: number;
  if (payload === PAYLOAD_ETHERNET) st = ethernet(d, p, end, depth + 1);
  else if (payload === PAYLOAD_IPV4) st = ipv4(d, p, end, depth + 1);
  else if (payload === PAYLOAD_IPV6) st = ipv6(d, p, end, depth + 1);
  else st = etherType(d, p, end, payload, depth + 1);
  if (ipLayers > layersBefore) return st;
  resetNetwork(o);
  o.srcText = src;
  o.dstText = dst;
  o.srcV4 = srcV4;
  o.dstV4 = dstV4;
  o.ipVersion = ipVersion;
  o.proto = proto;
  o.srcPort = srcPort;
  o.dstPort = dstPort;
  o.ipLen = ipLen;
  o.fragId = fragId;
  o.fragOffset = fragOffset;
  o.moreFragments = moreFragments;
  o.vlans.length = vlanCount;
  if (outermost) clearTunnel(o);
  o.anomaly =
    st === NOT_IP ? 'tunnel-payload-not-ip' : st === TRUNCATED ? anomaly : 'tunnel-payload-malformed';
  return st === TRUNCATED ? TRUNCATED : OK;
}

function udpTunnel(d: Uint8Array, p: number, end: number, dport: number, depth: number): number {
  if (dport === UDP_PORT_GENEVE) {
    if (end - p < 8) return short(end);
    // Version must be 0; options are skipped by their total length (6 bits, 4-byte words).
    if (d[p] >> 6 !== 0) return OK;
    const optLen = (d[p] & 0x3f) * 4;
    const proto = u16(d, p + 2);
    const vni = (d[p + 4] << 16) | (d[p + 5] << 8) | d[p + 6];
    const payload = p + 8 + optLen;
    if (payload > end) return short(end);
    return tunnel(d, payload, end, depth, 'geneve', vni, dport, proto === ETH_TEB ? PAYLOAD_ETHERNET : proto);
  }
  if (end - p < 8) return short(end);
  const vni = (d[p + 4] << 16) | (d[p + 5] << 8) | d[p + 6];
  return tunnel(d, p + 8, end, depth, 'vxlan', vni, dport, PAYLOAD_ETHERNET);
}

function gre(d: Uint8Array, p: number, end: number, depth: number): number {
  if (end - p < 4) return short(end);
  const flags = u16(d, p);
  const proto = u16(d, p + 2);
  // Version 1 is PPTP's enhanced GRE (PPP payload); the routing bit means RFC 1701 source routes.
  if ((flags & 7) !== 0 || (flags & 0x4000) !== 0) {
    out.anomaly = 'gre-unsupported-variant';
    return OK;
  }
  let hl = 4;
  if (flags & 0x8000) hl += 4;
  let key = -1;
  if (flags & 0x2000) {
    if (end - p < hl + 4) return short(end);
    key = u32(d, p + hl);
    hl += 4;
  }
  const seq = (flags & 0x1000) !== 0;
  if (seq) hl += 4;
  if (end - p < hl) return short(end);
  return greBody(d, p + hl, end, proto, depth, key, seq);
}

function greBody(
  d: Uint8Array,
  p: number,
  end: number,
  proto: number,
  depth: number,
  key = -1,
  seq = false,
): number {
  switch (proto) {
    case ETH_TEB:
      return tunnel(d, p, end, depth, 'gre', key, -1, PAYLOAD_ETHERNET);
    case 0x88be:
      // ERSPAN type II has an 8-byte header (signalled by the sequence bit); type I has none.
      if (seq) {
        if (end - p < 8) return short(end);
        p += 8;
      }
      return tunnel(d, p, end, depth, 'gre', key, -1, PAYLOAD_ETHERNET);
    case 0x22eb: {
      // ERSPAN type III: 12-byte header, plus an 8-byte platform subheader when the O flag is set.
      if (end - p < 12) return short(end);
      const sub = d[p + 11] & 1 ? 8 : 0;
      p += 12 + sub;
      if (p > end) return short(end);
      return tunnel(d, p, end, depth, 'gre', key, -1, PAYLOAD_ETHERNET);
    }
    case 0x8909:
      // Cisco MetaData inside GRE: the next EtherType comes first, then version, length, option, SGT.
      if (end - p < 8) return short(end);
      return tunnel(d, p + 8, end, depth, 'gre', key, -1, u16(d, p));
    default:
      return tunnel(
        d,
        p,
        end,
        depth,
        'gre',
        key,
        -1,
        proto === ETH_IPV4 ? PAYLOAD_IPV4 : proto === ETH_IPV6 ? PAYLOAD_IPV6 : proto,
      );
  }
}

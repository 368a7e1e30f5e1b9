/**
 * The decoder's output: the innermost IP packet's flow-relevant fields, and the tunnel that carried
 * it. The decoder fills a caller-owned object (no allocation per packet on the hot path); strings
 * are created for addresses only.
 */
export interface DecodedPacket {
  ts: number;
  iface: number;
  /** Bytes on the wire of the whole frame (frame.len). */
  wireLen: number;
  /** IP version of the innermost IP header: 4 or 6. */
  ipVersion: 4 | 6;
  src: string;
  dst: string;
  /**
   * src and dst of an IPv4 header as unsigned 32-bit numbers, so consumers can key on addresses
   * without text; -1 when not set (IPv6, or src/dst assigned as text), src/dst are then the truth.
   */
  srcV4: number;
  dstV4: number;
  /** IP protocol number of the innermost transport (6, 17, 132, 1, 58, or any other). */
  proto: number;
  /** Ports for TCP/UDP/SCTP when present (first fragment or unfragmented); -1 when absent. */
  srcPort: number;
  dstPort: number;
  /** TCP flag bits (FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ECE=64 CWR=128); 0 otherwise. */
  tcpFlags: number;
  /** ICMP/ICMPv6 type, code and echo identifier (-1 when not ICMP / not echo). */
  icmpType: number;
  icmpCode: number;
  icmpId: number;
  /** Length of the innermost IP packet per its header (total length / payload length + 40). */
  ipLen: number;
  /**
   * Fragment info: fragId is the IPv4 identification or IPv6 fragment identification (-1 when not
   * fragmented), fragOffset in bytes, moreFragments flag.
   */
  fragId: number;
  fragOffset: number;
  moreFragments: boolean;
  /**
   * ICMP errors (unreachable, time exceeded, packet too big, parameter problem) quote the header of
   * the packet that caused them; quoted.* describe that packet (as sent, so quotedSrc is the sender
   * of the original packet). quotedProto is -1 when the packet is not an ICMP error or the quote is
   * unreadable.
   */
  quotedProto: number;
  quotedSrc: string;
  quotedDst: string;
  quotedSrcPort: number;
  quotedDstPort: number;
  /** Tunnel carrying the innermost packet; tunnelType '' when none. Outermost tunnel if several. */
  tunnelType: '' | 'vxlan' | 'geneve' | 'gre' | 'ipip' | 'ip6ip' | 'ip4ip6' | 'ip6ip6';
  tunnelSrc: string;
  tunnelDst: string;
  /** VNI (VXLAN/Geneve) or GRE key; -1 when absent. */
  tunnelId: number;
  /** Outer UDP destination port of a UDP tunnel; -1 otherwise. */
  tunnelPort: number;
  /** Outer UDP source port of a UDP tunnel (with tunnelSrc/tunnelDst/tunnelPort: the carrier flow); -1 otherwise. */
  tunnelSrcPort?: number;
  /**
   * Something odd but survivable about the frame, '' when none: 'tcp-data-offset-too-small',
   * 'ipv4-total-length-zero', 'tunnel-payload-not-ip', 'tunnel-depth-limit', ... (docs/capture.md).
   */
  anomaly?: string;
  /** 802.1Q VLAN IDs outermost first; length 0 when untagged. The array is reused. */
  vlans: number[];
}

/**
 * The decoder's view of a packet: src/dst text is made from srcV4/dstV4 only when someone reads it
 * (a flow table keyed on the numbers reads it once per flow, not per packet).
 */
export interface DecodedPacketState extends DecodedPacket {
  /** Text of src/dst, '' when not made yet from srcV4/dstV4. */
  srcText: string;
  dstText: string;
}

function getSrc(this: DecodedPacketState): string {
  if (this.srcText === '' && this.srcV4 >= 0) this.srcText = ipv4Text(this.srcV4);
  return this.srcText;
}

function setSrc(this: DecodedPacketState, text: string): void {
  this.srcText = text;
  this.srcV4 = -1;
}

function getDst(this: DecodedPacketState): string {
  if (this.dstText === '' && this.dstV4 >= 0) this.dstText = ipv4Text(this.dstV4);
  return this.dstText;
}

function setDst(this: DecodedPacketState, text: string): void {
  this.dstText = text;
  this.dstV4 = -1;
}

/**
 * A class whose src/dst are own accessors (a spread copy or Object.keys sees them like data) made of
 * shared functions: an object literal with accessors gets a slow shape, and the decoder writes some
 * twenty fields of this object per packet.
 */
class PacketFields {
  ts = 0;
  iface = 0;
  wireLen = 0;
  ipVersion: 4 | 6 = 4;
  srcText = '';
  dstText = '';
  srcV4 = -1;
  dstV4 = -1;
  proto = 0;
  srcPort = -1;
  dstPort = -1;
  tcpFlags = 0;
  icmpType = -1;
  icmpCode = -1;
  icmpId = -1;
  ipLen = 0;
  fragId = -1;
  fragOffset = 0;
  moreFragments = false;
  quotedProto = -1;
  quotedSrc = '';
  quotedDst = '';
  quotedSrcPort = -1;
  quotedDstPort = -1;
  tunnelType: DecodedPacket['tunnelType'] = '';
  tunnelSrc = '';
  tunnelDst = '';
  tunnelId = -1;
  tunnelPort = -1;
  tunnelSrcPort = -1;
  anomaly = '';
  vlans: number[] = [];

  constructor() {
    Object.defineProperty(this, 'src', { get: getSrc, set: setSrc, enumerable: true, configurable: true });
    Object.defineProperty(this, 'dst', { get: getDst, set: setDst, enumerable: true, configurable: true });
  }
}

export function newDecodedPacket(): DecodedPacket {
  return new PacketFields() as unknown as DecodedPacketState;
}

/**
 * Recently formatted IPv4 addresses: captures reuse few addresses, and a cache hit is cheaper than
 * building the string. Direct-mapped on a hash of the address: a lookup is two array reads, and
 * memory stays bounded on address scans.
 */
const IPV4_CACHE_BITS = 16;
const ipv4CacheKeys = new Float64Array(1 << IPV4_CACHE_BITS).fill(-1);
const ipv4CacheText: string[] = new Array<string>(1 << IPV4_CACHE_BITS).fill('');

/** The dotted-quad text of the IPv4 address `key` (its unsigned 32-bit value). */
export function ipv4Text(key: number): string {
  const h = (Math.imul(key | 0, 0x9e3779b1) >>> (32 - IPV4_CACHE_BITS)) | 0;
  if (ipv4CacheKeys[h] === key) return ipv4CacheText[h]!;
  const s = `${key >>> 24}.${(key >>> 16) & 255}.${(key >>> 8) & 255}.${key & 255}`;
  ipv4CacheKeys[h] = key;
  ipv4CacheText[h] = s;
  return s;
}

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

export function newDecodedPacket(): DecodedPacket {
  return {
    ts: 0,
    iface: 0,
    wireLen: 0,
    ipVersion: 4,
    src: '',
    dst: '',
    proto: 0,
    srcPort: -1,
    dstPort: -1,
    tcpFlags: 0,
    icmpType: -1,
    icmpCode: -1,
    icmpId: -1,
    ipLen: 0,
    fragId: -1,
    fragOffset: 0,
    moreFragments: false,
    quotedProto: -1,
    quotedSrc: '',
    quotedDst: '',
    quotedSrcPort: -1,
    quotedDstPort: -1,
    tunnelType: '',
    tunnelSrc: '',
    tunnelDst: '',
    tunnelId: -1,
    tunnelPort: -1,
    tunnelSrcPort: -1,
    anomaly: '',
    vlans: [],
  };
}

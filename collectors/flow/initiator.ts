import type { FlowRecord } from '../../schema/flow-record.js';
import type { DecodedPacket } from '../decode/packet.js';
import { V4_LIMIT } from './address-keys.js';
import { ACK, ICMP, ICMPV6, SCTP, SYN, TCP, UDP } from './protocols.js';
import { F_RKEY, type FlowStore, NONE, ST_ATTEMPTED, ST_ESTABLISHED, STRIDE_F64 } from './storage.js';

/*
 * Who initiated a flow: the handshake when it was seen, the ICMP message type, else the endpoints
 * seen answering before (listeners), a well-known port, or the first packet's sender.
 */

type InitiatorBasis = NonNullable<FlowRecord['initiator']>;

// C_BASIS.
export const BASIS_HANDSHAKE = 0;
export const BASIS_FIRST_PACKET = 1;
export const BASIS_LISTENING_PORT = 2;
export const BASIS_WELL_KNOWN_PORT = 3;
export const BASIS_ICMP_TYPE = 4;
export const BASIS_NAMES: readonly InitiatorBasis[] = [
  'handshake',
  'first-packet',
  'listening-port',
  'well-known-port',
  'icmp-type',
];

const MAX_LISTENERS = 262_144;

/** ICMP messages that ask (the sender initiates) and those that answer (the receiver initiated). */
const ICMP4_REQUEST = new Set([8, 13, 15, 17]);
const ICMP4_REPLY = new Set([0, 14, 16, 18]);
const ICMP6_REQUEST = new Set([128, 133, 135, 139]);
const ICMP6_REPLY = new Set([129, 134, 136, 140]);

/** An IPv4 TCP/UDP/SCTP endpoint as one number (address, protocol, port + 1), else -1. */
function listenerNumber(proto: number, key: number, port: number): number {
  if (key < 0 || key >= V4_LIMIT || port < -1 || port > 0xffff) return NONE;
  const pc = proto === TCP ? 0 : proto === UDP ? 1 : proto === SCTP ? 2 : -1;
  if (pc < 0) return NONE;
  return key * 524288 + pc * 131072 + port + 1;
}

/**
 * Decides the initiator of new flows (decide), and learns the listeners that decision uses from
 * flows being answered (learnListener).
 */
export class Initiators {
  /** decide's answer (fields, not an object). */
  basis = BASIS_FIRST_PACKET;
  srcInitiates = true;
  /** The flow may have started before it was seen (B_CONTINUED). */
  continued = false;
  /** The new flow's I_STATE. */
  state = ST_ATTEMPTED;
  /** Idle timeouts of UDP and of other port-carrying protocols (see decide). */
  private readonly udpTimeout: number;
  private readonly otherTimeout: number;
  /**
   * Endpoints seen answering: they are servers for later mid-stream flows. IPv4 TCP/UDP/SCTP
   * endpoints as numbers (listenerNumber), the rest as `proto|ip|port`; bounded together.
   */
  private readonly listeners = new Set<number>();
  private readonly listenerTexts = new Set<string>();

  constructor(udpTimeout: number, otherTimeout: number) {
    this.udpTimeout = udpTimeout;
    this.otherTimeout = otherTimeout;
  }

  /**
   * Who initiated the new flow of packet p (address keys sKey, dKey: see address-keys.ts), into
   * basis/srcInitiates/continued/state. `inputStart` is the time of the table's first packet.
   */
  decide(
    p: DecodedPacket,
    proto: number,
    sport: number,
    dport: number,
    sKey: number,
    dKey: number,
    inputStart: number,
  ): void {
    let srcInitiates = true;
    let basis = BASIS_FIRST_PACKET;
    let continued = false;
    let state = ST_ATTEMPTED;
    if (proto === TCP) {
      const syn = p.tcpFlags & (SYN | ACK);
      if (syn === SYN) {
        basis = BASIS_HANDSHAKE;
      } else if (syn === (SYN | ACK)) {
        basis = BASIS_HANDSHAKE;
        srcInitiates = false;
        state = ST_ESTABLISHED;
      } else {
        continued = true;
        basis = this.byPorts(proto, p.src, sKey, sport, p.dst, dKey, dport);
        srcInitiates = this.byPortsSrcInitiates;
      }
    } else if (proto === ICMP || proto === ICMPV6) {
      const t = p.icmpType;
      const req = proto === ICMP ? ICMP4_REQUEST : ICMP6_REQUEST;
      const rep = proto === ICMP ? ICMP4_REPLY : ICMP6_REPLY;
      if (req.has(t)) basis = BASIS_ICMP_TYPE;
      else if (rep.has(t)) {
        basis = BASIS_ICMP_TYPE;
        srcInitiates = false;
      }
    } else if (sport >= 0 && dport >= 0) {
      basis = this.byPorts(proto, p.src, sKey, sport, p.dst, dKey, dport);
      srcInitiates = this.byPortsSrcInitiates;
      // Without a handshake, the first packet seen is the first packet sent only if the conversation
      // could not have been going on before the observation began: it would have timed out since.
      const timeout = proto === UDP ? this.udpTimeout : this.otherTimeout;
      if (p.ts - inputStart < timeout) continued = true;
    }
    this.basis = basis;
    this.srcInitiates = srcInitiates;
    this.continued = continued;
    this.state = state;
  }

  /** Second result of byPorts. */
  private byPortsSrcInitiates = true;

  /**
   * Who initiated a flow whose start was not seen: a known listener, else a well-known port, else
   * the sender. Returns the basis; whether the source initiates is left in byPortsSrcInitiates.
   */
  private byPorts(
    proto: number,
    src: string,
    sKey: number,
    sport: number,
    dst: string,
    dKey: number,
    dport: number,
  ): number {
    const dstListens = this.listens(proto, dst, dKey, dport);
    const srcListens = this.listens(proto, src, sKey, sport);
    if (dstListens !== srcListens) {
      this.byPortsSrcInitiates = dstListens;
      return BASIS_LISTENING_PORT;
    }
    const dstWellKnown = dport < 1024;
    const srcWellKnown = sport < 1024;
    if (dstWellKnown !== srcWellKnown) {
      this.byPortsSrcInitiates = dstWellKnown;
      return BASIS_WELL_KNOWN_PORT;
    }
    this.byPortsSrcInitiates = true;
    return BASIS_FIRST_PACKET;
  }

  private listens(proto: number, ip: string, key: number, port: number): boolean {
    const n = listenerNumber(proto, key, port);
    return n >= 0 ? this.listeners.has(n) : this.listenerTexts.has(`${proto}|${ip}|${port}`);
  }

  /** Remembers flow f's responder endpoint (protocol proto, port) as a listener. */
  learnListener(store: FlowStore, proto: number, f: number, port: number): void {
    if (this.listeners.size + this.listenerTexts.size >= MAX_LISTENERS) {
      this.listeners.clear();
      this.listenerTexts.clear();
    }
    const n = listenerNumber(proto, store.f64[f * STRIDE_F64 + F_RKEY]!, port);
    if (n >= 0) this.listeners.add(n);
    else this.listenerTexts.add(`${proto}|${store.rIp[f]!}|${port}`);
  }
}

import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import ipaddr from 'ipaddr.js';

/**
 * FlowRecord: one observed conversation (or one slice of a long one), the contract between
 * collectors and the processor. Field names are public: other tools read them. docs/flow-record.md
 * describes every field; schema/flow-record.schema.json is generated from this definition.
 */

export const FLOW_RECORD_VERSION = 1;

export const ProtocolName = Type.Union([
  Type.Literal('TCP'),
  Type.Literal('UDP'),
  Type.Literal('SCTP'),
  Type.Literal('ICMP'),
  Type.Literal('ICMPv6'),
]);
export const Protocol = Type.Union([ProtocolName, Type.Integer({ minimum: 0, maximum: 255 })], {
  description: 'Transport protocol by name, or the IP protocol number for any other protocol.',
});

export const Endpoint = Type.Object({
  ip: Type.String({ description: 'IPv4 or IPv6 address, textual form.' }),
  port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
});

export const Counters = Type.Object({
  fwd: Type.Number({ minimum: 0, description: 'Initiator to responder.' }),
  rev: Type.Number({ minimum: 0, description: 'Responder to initiator.' }),
});

export const FlowState = Type.Union(
  [Type.Literal('attempted'), Type.Literal('rejected'), Type.Literal('established'), Type.Literal('closed')],
  {
    description:
      'attempted: no reply seen; rejected: reset or ICMP unreachable in reply; established: the peer answered; closed: established and then finished.',
  },
);

export const InitiatorBasis = Type.Union(
  [
    Type.Literal('handshake'), // TCP SYN (or SYN-ACK) seen
    Type.Literal('first-packet'), // first packet seen in the capture
    Type.Literal('well-known-port'), // the side with the lower, well-known port is the responder
    Type.Literal('listening-port'), // the side seen answering on this port before is the responder
    Type.Literal('icmp-type'), // ICMP echo request versus reply and the like
    Type.Literal('conntrack'), // conntrack's original direction
  ],
  { description: 'How the collector decided which side initiated.' },
);

export const ExportReason = Type.Union([
  Type.Literal('fin'),
  Type.Literal('rst'),
  Type.Literal('idle-timeout'),
  Type.Literal('active-timeout'),
  Type.Literal('evicted'),
  Type.Literal('end-of-input'),
  Type.Literal('conntrack-destroy'),
  Type.Literal('conntrack-update'),
  Type.Literal('conntrack-dump'),
  Type.Literal('conntrack-gone'),
]);

export const Tunnel = Type.Object({
  type: Type.Union([
    Type.Literal('vxlan'),
    Type.Literal('geneve'),
    Type.Literal('gre'),
    Type.Literal('ipip'),
    Type.Literal('ip6ip'),
    Type.Literal('ip4ip6'),
    Type.Literal('ip6ip6'),
  ]),
  src: Type.String({ description: 'Outer source address.' }),
  dst: Type.String({ description: 'Outer destination address.' }),
  vni: Type.Optional(Type.Integer({ minimum: 0 })),
  key: Type.Optional(Type.Integer({ minimum: 0 })),
  port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'Outer UDP port.' })),
});

export const Nat = Type.Object(
  {
    src: Type.Optional(Endpoint),
    dst: Type.Optional(Endpoint),
  },
  {
    description:
      'Addresses after translation, as the reply direction revealed them: dst is the real destination (a Service ClusterIP rewritten to a pod), src the translated source (SNAT/masquerade).',
  },
);

export const Observer = Type.Object({
  node: Type.Optional(Type.String()),
  source: Type.String({ description: '"pcap", "pcapng", "live", "conntrack", or another collector name.' }),
  iface: Type.Optional(Type.String()),
  file: Type.Optional(Type.String()),
});

export const FlowRecordSchema = Type.Object(
  {
    v: Type.Literal(FLOW_RECORD_VERSION),
    start: Type.Number({ minimum: 0, description: 'Unix epoch milliseconds of the first packet.' }),
    end: Type.Number({ minimum: 0, description: 'Unix epoch milliseconds of the last packet.' }),
    proto: Protocol,
    src: Endpoint,
    dst: Endpoint,
    packets: Counters,
    bytes: Counters,
    state: FlowState,
    observer: Observer,
    // Optional detail.
    id: Type.Optional(Type.String({ description: 'Stable identifier of the flow across its records.' })),
    seq: Type.Optional(
      Type.Integer({ minimum: 0, description: 'Index of this record among the records of one long flow.' }),
    ),
    initiator: Type.Optional(InitiatorBasis),
    reason: Type.Optional(ExportReason),
    tcpFlags: Type.Optional(
      Type.Object(
        { fwd: Type.Integer({ minimum: 0, maximum: 255 }), rev: Type.Integer({ minimum: 0, maximum: 255 }) },
        {
          description: 'OR of TCP flag bits each way: FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ECE=64 CWR=128.',
        },
      ),
    ),
    icmp: Type.Optional(
      Type.Object({
        type: Type.Integer({ minimum: 0, maximum: 255 }),
        code: Type.Integer({ minimum: 0, maximum: 255 }),
        id: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
      }),
    ),
    nat: Type.Optional(Nat),
    tunnel: Type.Optional(Tunnel),
    vlan: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 4095 }))),
    continued: Type.Optional(
      Type.Boolean({
        description:
          'The flow may have been under way before the first packet observed: TCP without its SYN, or a flow without handshake (UDP, SCTP) first seen within its idle timeout of the start of the observation.',
      }),
    ),
  },
  { $id: 'https://netpol-audit.dev/schema/flow-record.json', title: 'FlowRecord' },
);

export type FlowRecord = Static<typeof FlowRecordSchema>;
export type FlowEndpoint = Static<typeof Endpoint>;
export type FlowStateName = Static<typeof FlowState>;
export type ProtocolValue = Static<typeof Protocol>;

const compiled = TypeCompiler.Compile(FlowRecordSchema);

export type Validation<T> = { ok: true; value: T } | { ok: false; errors: string[] };

/**
 * Addresses already found valid. A processor sees the same few thousand addresses in every batch,
 * and parsing each twice per record (ipaddr.js) cost about a microsecond of every record's
 * validation; the answer for a string never changes, so it is remembered (bounded: cleared when full).
 */
const validAddresses = new Set<string>();
const VALID_ADDRESSES_MAX = 65_536;

function isAddress(text: string): boolean {
  if (validAddresses.has(text)) return true;
  if (!ipaddr.isValid(text)) return false;
  if (validAddresses.size >= VALID_ADDRESSES_MAX) validAddresses.clear();
  validAddresses.add(text);
  return true;
}

/** Structural validation plus what a JSON Schema cannot say (addresses parse, start <= end). */
export function validateFlowRecord(value: unknown): Validation<FlowRecord> {
  if (!compiled.Check(value)) {
    const errors: string[] = [];
    for (const e of compiled.Errors(value)) {
      errors.push(`${e.path || '/'}: ${e.message}`);
      if (errors.length >= 5) break;
    }
    if (
      typeof value === 'object' &&
      value !== null &&
      'v' in value &&
      (value as { v: unknown }).v !== FLOW_RECORD_VERSION
    ) {
      errors.unshift(
        `/v: unsupported FlowRecord version ${JSON.stringify((value as { v: unknown }).v)}, expected ${FLOW_RECORD_VERSION}`,
      );
    }
    return { ok: false, errors };
  }
  const errors: string[] = [];
  if (!isAddress(value.src.ip)) errors.push(`/src/ip: not an IP address: ${JSON.stringify(value.src.ip)}`);
  if (!isAddress(value.dst.ip)) errors.push(`/dst/ip: not an IP address: ${JSON.stringify(value.dst.ip)}`);
  if (value.end < value.start) errors.push(`/end: ${value.end} is before /start ${value.start}`);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value };
}

const PROTO_NUMBERS: Record<string, number> = { ICMP: 1, TCP: 6, UDP: 17, ICMPv6: 58, SCTP: 132 };
const PROTO_NAMES: Record<number, FlowRecord['proto']> = {
  1: 'ICMP',
  6: 'TCP',
  17: 'UDP',
  58: 'ICMPv6',
  132: 'SCTP',
};

export function protocolNumber(p: ProtocolValue): number {
  return typeof p === 'number' ? p : PROTO_NUMBERS[p]!;
}

/** The contract's name for an IP protocol number (a name where one exists). */
export function protocolValue(n: number): ProtocolValue {
  return PROTO_NAMES[n] ?? n;
}

import type { ErrorCode } from '../lib/errors.js';
import { FLOW_RECORD_VERSION, type FlowRecord, validateFlowRecord } from '../schema/flow-record.js';

/**
 * How FlowRecords travel through Kafka. The value is the record's JSON; headers say what it is and
 * which schema version wrote it, so a processor can refuse what it does not understand (to the
 * dead-letter topic, with the reason) instead of guessing. The key keeps all records of one flow
 * in one partition, in order.
 */

export const HEADER_SCHEMA = 'netpol-audit-schema';
export const HEADER_VERSION = 'netpol-audit-schema-version';
const FLOW_SCHEMA_NAME = 'flow-record';

export interface WireMessage {
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
}

export function flowKey(r: FlowRecord): string {
  if (r.id) return r.id;
  return `${r.proto}|${r.src.ip}|${r.src.port ?? ''}|${r.dst.ip}|${r.dst.port ?? ''}`;
}

/** The headers of a v1 message carrying a record of FlowRecord version `v`. */
export function flowHeaders(v: number): Record<string, string> {
  return { [HEADER_SCHEMA]: FLOW_SCHEMA_NAME, [HEADER_VERSION]: String(v) };
}

export function encodeFlow(r: FlowRecord): WireMessage {
  return { key: flowKey(r), value: JSON.stringify(r), headers: flowHeaders(r.v) };
}

export type DecodeResult = { ok: true; record: FlowRecord } | { ok: false; code: ErrorCode; reason: string };

function header(m: WireMessage, name: string): string | undefined {
  const h = m.headers?.[name];
  if (h === undefined) return undefined;
  const v = Array.isArray(h) ? h[0] : h;
  return v === undefined ? undefined : v.toString();
}

export function decodeFlow(m: WireMessage): DecodeResult {
  const schema = header(m, HEADER_SCHEMA);
  if (schema !== undefined && schema !== FLOW_SCHEMA_NAME)
    return {
      ok: false,
      code: 'MESSAGE_WRONG_SCHEMA',
      reason: `message schema '${schema}', expected '${FLOW_SCHEMA_NAME}'`,
    };
  const version = header(m, HEADER_VERSION);
  if (version !== undefined && version !== String(FLOW_RECORD_VERSION))
    return {
      ok: false,
      code: 'MESSAGE_UNKNOWN_VERSION',
      reason: `FlowRecord schema version ${version} is not supported (this processor reads version ${FLOW_RECORD_VERSION})`,
    };
  if (m.value === null)
    return { ok: false, code: 'MESSAGE_EMPTY', reason: 'message has no value (tombstone)' };
  return decodeLine(m.value.toString(), 'value');
}

/** The dead-letter copy of a message: the original bytes and headers, plus why and where from. */
export function deadLetter(
  m: WireMessage,
  from: { topic: string; partition: number; offset: string },
  failure: { code: ErrorCode; reason: string },
): WireMessage {
  return {
    key: m.key,
    value: m.value,
    headers: {
      ...(m.headers ?? {}),
      'netpol-audit-dlq-code': failure.code,
      'netpol-audit-dlq-reason': failure.reason,
      'netpol-audit-dlq-origin': `${from.topic}/${from.partition}/${from.offset}`,
    },
  };
}

/**
 * Wire format v2: one Kafka message carries many FlowRecords bound for one partition (a "pack"),
 * so the client's per-message cost (encoder, headers, sequence numbers) is paid once per pack.
 * Its headers name the pack schema and its version (`flow-record-pack`, 2) and the encoding of the
 * value; each record inside carries its own FlowRecord version (`v`). A processor reads v1 messages
 * (one record, schema `flow-record`) and v2 packs side by side in one topic, so an upgrade rolls.
 * Encoding `jsonl`: the records' JSON, one per line ('\n' never occurs inside JSON.stringify's
 * output); Kafka's batch compression (gzip) does the rest. docs/kafka.md compares it with a binary
 * encoding. Per-key order: the collector puts every record of a key in the partition kafkajs'
 * default partitioner would choose for that key (murmur2), in write order.
 */
export const PACK_SCHEMA_NAME = 'flow-record-pack';
export const PACK_VERSION = 2;
export const HEADER_ENCODING = 'netpol-audit-encoding';
export const PACK_ENCODINGS = ['jsonl'] as const;
export type PackEncoding = (typeof PACK_ENCODINGS)[number];
/** Which wire format a collector writes: 1, one message per record; 2, packs. */
export type WireFormat = 1 | 2;

/**
 * A pack's value and headers (without the collector's origin and sequence, which the sink adds).
 * The value is the UTF-8 bytes the client sends, written line by line into one buffer: joining the
 * lines into a string first, measuring its bytes and converting it cost the collector more than
 * zstd did (docs/kafka.md, "Publishing").
 */
export function encodePack(
  lines: readonly string[],
  alloc?: (bytes: number) => Buffer,
): WireMessage & { value: Buffer } {
  return {
    key: null,
    value: jsonLines(lines, alloc),
    headers: {
      [HEADER_SCHEMA]: PACK_SCHEMA_NAME,
      [HEADER_VERSION]: String(PACK_VERSION),
      [HEADER_ENCODING]: 'jsonl',
    },
  };
}

/**
 * `lines` joined by '\n', as UTF-8. Records are ASCII but for the odd name or label: the buffer is
 * sized for ASCII (one byte per character) and filled line by line; the first line that is not
 * ASCII (it writes more bytes than it has characters, the spare 4 bytes guarantee that much room)
 * sends the whole pack through the general conversion.
 */
export function jsonLines(
  lines: readonly string[],
  alloc: (bytes: number) => Buffer = Buffer.allocUnsafe,
): Buffer {
  let chars = lines.length > 0 ? lines.length - 1 : 0;
  for (const l of lines) chars += l.length;
  const out = alloc(chars + 4);
  let at = 0;
  for (let i = 0; i < lines.length; i++) {
    if (i > 0) out[at++] = 0x0a;
    const line = lines[i]!;
    const n = out.write(line, at);
    if (n !== line.length) return Buffer.from(lines.join('\n'));
    at += n;
  }
  return out.subarray(0, at);
}

/** One record of a message: decoded, or why not, with its bytes for the dead-letter topic. */
export type DecodedItem =
  | { ok: true; record: FlowRecord; index: number }
  | { ok: false; code: ErrorCode; reason: string; index: number; raw: string };

export type DecodeMessageResult =
  | { ok: true; packed: false; record: FlowRecord }
  | { ok: true; packed: true; items: DecodedItem[] }
  | { ok: false; code: ErrorCode; reason: string };

export function isPack(m: WireMessage): boolean {
  return header(m, HEADER_SCHEMA) === PACK_SCHEMA_NAME;
}

function decodeLine(line: string, what: 'value' | 'record'): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (e) {
    return { ok: false, code: 'MESSAGE_BAD_JSON', reason: `${what} is not JSON: ${(e as Error).message}` };
  }
  const v = validateFlowRecord(parsed);
  if (!v.ok) {
    const unknownVersion = v.errors.find((e) => e.includes('unsupported FlowRecord version'));
    return unknownVersion
      ? { ok: false, code: 'MESSAGE_UNKNOWN_VERSION', reason: unknownVersion }
      : { ok: false, code: 'MESSAGE_INVALID_RECORD', reason: v.errors.join('; ') };
  }
  return { ok: true, record: v.value };
}

/**
 * Decodes a v1 message or a v2 pack. A message that cannot be read as a whole (wrong schema,
 * unknown pack version or encoding, no value) fails as a whole; inside a pack each record is
 * decoded on its own, so one bad record is dead-lettered alone, with its index.
 */
export function decodeMessage(m: WireMessage): DecodeMessageResult {
  if (!isPack(m)) {
    const d = decodeFlow(m);
    return d.ok ? { ok: true, packed: false, record: d.record } : d;
  }
  const version = header(m, HEADER_VERSION);
  if (version !== String(PACK_VERSION))
    return {
      ok: false,
      code: 'MESSAGE_UNKNOWN_VERSION',
      reason: `flow-record-pack version ${version} is not supported (this processor reads version ${PACK_VERSION})`,
    };
  const encoding = header(m, HEADER_ENCODING) ?? 'jsonl';
  if (!(PACK_ENCODINGS as readonly string[]).includes(encoding))
    return {
      ok: false,
      code: 'MESSAGE_UNKNOWN_VERSION',
      reason: `flow-record-pack encoding '${encoding}' is not supported (this processor reads ${PACK_ENCODINGS.join(', ')})`,
    };
  if (m.value === null)
    return { ok: false, code: 'MESSAGE_EMPTY', reason: 'message has no value (tombstone)' };
  const lines = m.value.toString().split('\n');
  const items: DecodedItem[] = new Array(lines.length);
  for (let i = 0; i < lines.length; i++) {
    const d = decodeLine(lines[i]!, 'record');
    items[i] = d.ok ? { ok: true, record: d.record, index: i } : { ...d, index: i, raw: lines[i]! };
  }
  return { ok: true, packed: true, items };
}

/** The dead-letter copy of one record of a pack: its line, the pack's headers, and its index in the pack. */
export function deadLetterItem(
  m: WireMessage,
  from: { topic: string; partition: number; offset: string },
  item: { index: number; raw: string; code: ErrorCode; reason: string },
): WireMessage {
  const out = deadLetter({ ...m, value: item.raw }, from, item);
  out.headers!['netpol-audit-dlq-index'] = String(item.index);
  return out;
}

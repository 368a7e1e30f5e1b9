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

export function encodeFlow(r: FlowRecord): WireMessage {
  return {
    key: flowKey(r),
    value: JSON.stringify(r),
    headers: { [HEADER_SCHEMA]: FLOW_SCHEMA_NAME, [HEADER_VERSION]: String(r.v) },
  };
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
  let parsed: unknown;
  try {
    parsed = JSON.parse(m.value.toString());
  } catch (e) {
    return { ok: false, code: 'MESSAGE_BAD_JSON', reason: `value is not JSON: ${(e as Error).message}` };
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

import type { ErrorCode } from '../../lib/errors.js';
import { identityOf } from '../../processor/store/identity.js';
import type { StoredFlow } from '../../processor/store/index.js';
import { HEADER_SCHEMA, HEADER_VERSION, type WireMessage } from '../codec.js';

/**
 * What a `--role judge` processor hands the recorder: the judged flow reduced to what the store
 * keeps (evidence only for violations, denied attempts and ambiguous flows, the rows that keep it), and where
 * the flow came from. The recorder drops a verdict whose source offset is not above the highest one
 * it stored for that source partition, so a judge that re-judges after a crash or a rebalance
 * causes no double counting. Keyed by source partition: one source partition's verdicts stay in
 * one verdicts partition, in order.
 */
const VERDICT_SCHEMA_NAME = 'judged-flow';
const VERDICT_VERSION = 1;

export interface VerdictMessage {
  v: 1;
  /** Where the judged record came from; `index` is its place in a v2 pack (absent for a v1 message). */
  source: { topic: string; partition: number; offset: string; index?: number };
  /** The collector's origin and sequence headers, when it sent them. */
  origin?: string;
  seq?: number;
  flow: StoredFlow;
}

function verdictKey(source: { topic: string; partition: number }): string {
  return `${source.topic}/${source.partition}`;
}

export function encodeVerdict(m: VerdictMessage): WireMessage {
  const flow = m.flow;
  const keepEvidence =
    flow.classification === 'denied-but-observed' ||
    flow.classification === 'denied-attempt' ||
    flow.classification === 'ambiguous';
  // The recorder derives a flow's ingestion identity from its evidence; an allowed flow travels without
  // evidence, so it carries its identity instead (without it, a flow two nodes saw is counted twice).
  const identity = keepEvidence ? undefined : (flow.identity ?? identityOf(flow.evidence));
  const compact: VerdictMessage = keepEvidence
    ? m
    : { ...m, flow: { ...flow, evidence: null, ...(identity ? { identity } : {}) } };
  return {
    key: verdictKey(m.source),
    value: JSON.stringify(compact),
    headers: { [HEADER_SCHEMA]: VERDICT_SCHEMA_NAME, [HEADER_VERSION]: String(VERDICT_VERSION) },
  };
}

export type VerdictDecode =
  | { ok: true; verdict: VerdictMessage }
  | { ok: false; code: ErrorCode; reason: string };

export function decodeVerdict(m: WireMessage): VerdictDecode {
  const h = (name: string) => m.headers?.[name]?.toString();
  if (h(HEADER_SCHEMA) !== VERDICT_SCHEMA_NAME)
    return {
      ok: false,
      code: 'MESSAGE_WRONG_SCHEMA',
      reason: `message schema '${h(HEADER_SCHEMA)}', expected '${VERDICT_SCHEMA_NAME}'`,
    };
  if (h(HEADER_VERSION) !== String(VERDICT_VERSION))
    return {
      ok: false,
      code: 'MESSAGE_UNKNOWN_VERSION',
      reason: `judged-flow version ${h(HEADER_VERSION)} is not supported (this recorder reads ${VERDICT_VERSION})`,
    };
  if (m.value === null) return { ok: false, code: 'MESSAGE_EMPTY', reason: 'message has no value' };
  let v: VerdictMessage;
  try {
    v = JSON.parse(m.value.toString()) as VerdictMessage;
  } catch (e) {
    return { ok: false, code: 'MESSAGE_BAD_JSON', reason: `value is not JSON: ${(e as Error).message}` };
  }
  const s = v?.source;
  if (
    v?.v !== 1 ||
    typeof s?.topic !== 'string' ||
    !Number.isInteger(s.partition) ||
    !/^\d+$/.test(String(s.offset)) ||
    (s.index !== undefined && !(Number.isInteger(s.index) && s.index >= 0)) ||
    typeof v.flow?.start !== 'number' ||
    typeof v.flow?.classification !== 'string'
  )
    return {
      ok: false,
      code: 'MESSAGE_INVALID_RECORD',
      reason: 'judged-flow lacks v=1, source {topic, partition, offset} or flow {start, classification}',
    };
  return { ok: true, verdict: v };
}

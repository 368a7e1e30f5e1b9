import type { ErrorCode } from '../../lib/errors.js';
import { identityOf } from '../../processor/store/identity.js';
import { keepsEvidence, type StoredFlow } from '../../processor/store/index.js';
import { HEADER_SCHEMA, HEADER_VERSION, jsonLines, type WireMessage } from '../codec.js';
import { stringifySharingReplay } from '../stored-json.js';

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

/**
 * Verdict packs (`--wire 2` on a judge): the verdicts of one source partition's Kafka batch, up to
 * VERDICTS_PER_PACK per message, as JSON lines (each line a VerdictMessage as above), so the
 * judge's producer and the recorder's consumer pay their per-message cost once per pack, as the
 * collectors' flow packs do. A recorder reads v1 messages and packs side by side; a bad line is
 * dead-lettered alone, with its index.
 */
export const VERDICT_PACK_SCHEMA_NAME = 'judged-flow-pack';
export const VERDICT_PACK_VERSION = 2;
export const VERDICTS_PER_PACK = 1000;
/** Characters of JSON per verdict pack at most (a violation's verdict, with its evidence, is ~2 KB). */
export const VERDICT_PACK_CHARS = 256 << 10;

export interface VerdictMessage {
  v: 1;
  /** Where the judged record came from; `index` is its place in a v2 pack (absent for a v1 message). */
  source: { topic: string; partition: number; offset: string; index?: number };
  /** The collector's origin and sequence headers, when it sent them. */
  origin?: string;
  seq?: number;
  flow: StoredFlow;
}

/** A header's text (kafkajs gives a Buffer, the other client and tests a string). */
function headerOf(m: WireMessage, name: string): string | undefined {
  return m.headers?.[name]?.toString();
}

function verdictKey(source: { topic: string; partition: number }): string {
  return `${source.topic}/${source.partition}`;
}

export function encodeVerdict(m: VerdictMessage): WireMessage {
  const flow = m.flow;
  const keepEvidence = keepsEvidence(flow.classification);
  // The recorder derives a flow's ingestion identity from its evidence; an allowed flow travels without
  // evidence, so it carries its identity instead (without it, a flow two nodes saw is counted twice).
  const identity = keepEvidence ? undefined : (flow.identity ?? identityOf(flow.evidence));
  const compact: VerdictMessage = keepEvidence
    ? m
    : { ...m, flow: { ...flow, evidence: null, ...(identity ? { identity } : {}) } };
  return {
    key: verdictKey(m.source),
    value: stringifySharingReplay(compact, compact.flow.facts),
    headers: { [HEADER_SCHEMA]: VERDICT_SCHEMA_NAME, [HEADER_VERSION]: String(VERDICT_VERSION) },
  };
}

export type VerdictDecode =
  | { ok: true; verdict: VerdictMessage }
  | { ok: false; code: ErrorCode; reason: string };

/** The verdicts (one key: their source partition) as packs of at most `size` and `chars`, in order. */
export function packVerdicts(
  messages: readonly WireMessage[],
  size = VERDICTS_PER_PACK,
  chars = VERDICT_PACK_CHARS,
): WireMessage[] {
  const packs: WireMessage[] = [];
  const headers = {
    [HEADER_SCHEMA]: VERDICT_PACK_SCHEMA_NAME,
    [HEADER_VERSION]: String(VERDICT_PACK_VERSION),
  };
  let lines: string[] = [];
  let used = 0;
  let key: WireMessage['key'] | undefined;
  const flush = () => {
    if (lines.length > 0) packs.push({ key: key ?? null, value: jsonLines(lines), headers: { ...headers } });
    lines = [];
    used = 0;
  };
  for (const m of messages) {
    const line = String(m.value);
    if (lines.length > 0 && (m.key !== key || lines.length === size || used + line.length > chars)) flush();
    key = m.key;
    lines.push(line);
    used += line.length + 1;
  }
  flush();
  return packs;
}

/** One line of a verdict pack: the verdict, or why not, with its text for the dead-letter topic. */
export type VerdictItem =
  | { ok: true; verdict: VerdictMessage; index: number }
  | { ok: false; code: ErrorCode; reason: string; index: number; raw: string };

export type VerdictsDecode =
  | { ok: true; packed: false; verdict: VerdictMessage }
  | { ok: true; packed: true; items: VerdictItem[] }
  | { ok: false; code: ErrorCode; reason: string };

/** Decodes a v1 verdict message or a v2 verdict pack (each line on its own). */
export function decodeVerdicts(m: WireMessage): VerdictsDecode {
  if (headerOf(m, HEADER_SCHEMA) !== VERDICT_PACK_SCHEMA_NAME) {
    const d = decodeVerdict(m);
    return d.ok ? { ok: true, packed: false, verdict: d.verdict } : d;
  }
  const version = headerOf(m, HEADER_VERSION);
  if (version !== String(VERDICT_PACK_VERSION))
    return {
      ok: false,
      code: 'MESSAGE_UNKNOWN_VERSION',
      reason: `judged-flow-pack version ${version} is not supported (this recorder reads ${VERDICT_PACK_VERSION})`,
    };
  if (m.value === null) return { ok: false, code: 'MESSAGE_EMPTY', reason: 'message has no value' };
  const lines = m.value.toString().split('\n');
  return {
    ok: true,
    packed: true,
    items: lines.map((line, index): VerdictItem => {
      const d = verdictOf(line);
      return d.ok ? { ok: true, verdict: d.verdict, index } : { ...d, index, raw: line };
    }),
  };
}

export function decodeVerdict(m: WireMessage): VerdictDecode {
  const h = (name: string) => headerOf(m, name);
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
  return verdictOf(m.value.toString());
}

function verdictOf(text: string): VerdictDecode {
  let v: VerdictMessage;
  try {
    v = JSON.parse(text) as VerdictMessage;
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

import type { InputIssue } from '../../lib/errors.js';
import type { RuleRefValue } from '../../schema/verdict.js';
import type { Classification } from '../classify.js';
import type { FlowFacts } from './facts.js';
import type { FlowIdentity } from './identity.js';

/** What the audit store takes and gives back (index.ts is the store; these are its rows). */

/** One judged flow, reduced to what the store keeps. */
export interface StoredFlow {
  start: number;
  end: number;
  proto: string;
  /** Destination port; -1 when the protocol has none. */
  port: number;
  srcWorkload: string;
  dstWorkload: string;
  srcName: string;
  dstName: string;
  packets: number;
  bytes: number;
  result: 'allowed' | 'denied' | 'ambiguous';
  classification: Classification;
  /** Every rule that allowed the flow, in either direction. */
  rules: RuleRefValue[];
  /** The judged record, kept as evidence for violations and denied attempts. */
  evidence: unknown;
  /** The direction was guessed: the collector did not see who initiated and the cluster did not say. */
  directionGuessed?: boolean;
  /**
   * Who the flow is (see identity.ts). A flow whose identity the store already holds, within the
   * start-time tolerance, is not counted again. Without one, the flow is always counted.
   */
  identity?: FlowIdentity;
  /** What the report needs beyond the aggregates (facts.ts). */
  facts?: FlowFacts;
}

/**
 * Whether the store keeps a flow's evidence (the judged record): only for what the report shows as
 * findings (violations, denied attempts, unsettled flows). An allowed flow's is never read, so a
 * recorder drops it as soon as the flow arrives and a judge does not send it.
 */
export function keepsEvidence(classification: Classification): boolean {
  return classification !== 'allowed';
}

/** What one applyBatch did. */
export interface BatchResult {
  /** Flows counted in the aggregates. */
  stored: number;
  /** Flows the store had already counted (same identity), skipped. */
  duplicates: number;
  /**
   * Of the duplicates, those observed here with more packets than the observation the store kept
   * (a capture cut by rotation counted first): the store keeps the first, so it undercounts these.
   */
  largerThanStored: number;
}

export interface RuleDefinition {
  kind: string;
  policy: string;
  direction: 'ingress' | 'egress';
  rule: number;
  summary: string;
}

export interface OffsetPosition {
  consumer: string;
  topic: string;
  partition: number;
  /** The next offset to consume, as a decimal string (Kafka offsets are 64-bit). */
  nextOffset: string;
}

export interface StoreOptions {
  /** Violations and denied attempts are deduplicated within windows of this length. Default 1 h. */
  windowMs?: number;
  readonly?: boolean;
  /** Two observations of one flow whose starts differ by at most this much are one flow. Default 2 s. */
  dedupeToleranceMs?: number;
  /** The run whose flows this store object writes (recorded with each flow identity). */
  runId?: number;
}

export interface AggregateRow {
  windowStart: number;
  srcWorkload: string;
  dstWorkload: string;
  proto: string;
  port: number;
  flows: number;
  packets: number;
  bytes: number;
  firstSeen: number;
  lastSeen: number;
  srcNames: string[];
  dstNames: string[];
  evidence: unknown[];
  /** Flows of the row whose direction was guessed (docs/check.md, "Direction"). */
  directionGuessed: number;
}

export interface RuleRow {
  kind: string;
  policy: string;
  direction: 'ingress' | 'egress';
  rule: number;
  summary: string;
  definedFirst: number;
  definedLast: number;
  hits: number;
  bytes: number;
  firstHit: number | null;
  lastHit: number | null;
}

export interface TimeRange {
  since?: number;
  until?: number;
}

/** An embedded audit run, as `runsFor` reads it back. */
export interface RunRow {
  id: number;
  startedWall: number;
  finished: boolean;
  /** Input problems of severity error the run met. */
  errors: number;
  /** The input problems the run's record keeps. */
  issues: InputIssue[];
}

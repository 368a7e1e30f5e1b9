import type { FlowRecord } from '../schema/flow-record.js';
import type { Verdict } from '../schema/verdict.js';

/**
 * What a judged flow means for an auditor. Denied traffic that was observed to flow (the peer
 * answered) is a violation: enforcement failed or is missing. Denied traffic that only got as far
 * as an attempt (no answer, or a reset/unreachable) shows enforcement working.
 */
export type Classification = 'allowed' | 'denied-but-observed' | 'denied-attempt' | 'ambiguous';

export function classify(state: FlowRecord['state'], verdict: Pick<Verdict, 'result'>): Classification {
  if (verdict.result === 'allowed') return 'allowed';
  if (verdict.result === 'ambiguous') return 'ambiguous';
  return state === 'established' || state === 'closed' ? 'denied-but-observed' : 'denied-attempt';
}

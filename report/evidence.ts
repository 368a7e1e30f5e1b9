import type { InputIssue } from '../lib/errors.js';
import type { AuditStore, RunRow } from '../processor/store/index.js';

/**
 * What the store can say about a period before anything is concluded from it. An empty period is
 * not a compliant one, and a period that an interrupted run wrote to is not known whole: readers
 * (report, violations, rules) say "no data: cannot assess" instead of drawing a conclusion
 * (docs/trust.md).
 */
export interface Evidence {
  /** Flows stored for the period. */
  flows: number;
  /** Unfinished embedded runs: what they stored is unknown, so they may bear on any period. */
  unfinishedRuns: number;
  /** The input problems recorded by the runs that bear on the period (capped per run). */
  issues: InputIssue[];
  /** 'ok': there is data and every run bearing on it finished; otherwise why it cannot be assessed. */
  status: 'ok' | 'no-data' | 'incomplete';
}

export function evidenceFor(store: AuditStore, since: number, until: number): Evidence {
  const flows = store.totals({ since, until }).flows;
  const runs: RunRow[] = store.runsFor(since, until);
  const unfinishedRuns = runs.filter((r) => !r.finished).length;
  const status = flows === 0 ? 'no-data' : unfinishedRuns > 0 ? 'incomplete' : 'ok';
  return { flows, unfinishedRuns, issues: runs.flatMap((r) => r.issues), status };
}

/** One line for a human: why the period cannot be assessed. */
export function noDataMessage(e: Evidence, period: string): string {
  return e.status === 'no-data'
    ? `no data: cannot assess ${period} (the store holds no flow for it)`
    : `no data: cannot assess ${period} (${e.unfinishedRuns} audit run(s) did not finish: what they stored is incomplete; re-run them)`;
}

import type { InputIssue } from '../lib/errors.js';
import type { AggregateRow, AuditStore, RuleRow } from '../processor/store/index.js';
import { evidenceFor } from './evidence.js';

/**
 * The report model: what a compliance report says about a period, built from the store once and
 * rendered by any renderer (report/render/). Nothing here formats text.
 */

const DAY = 86_400_000;

/** Start (Monday 00:00 UTC) of ISO week `YYYY-Www`. */
export function isoWeekStart(value: string): number {
  const m = /^(\d{4})-W(\d{2})$/.exec(value);
  if (!m) throw new Error(`--week must look like 2026-W47, got '${value}'`);
  const year = Number(m[1]);
  const week = Number(m[2]);
  // Week 1 is the week with the year's first Thursday, i.e. the one holding January 4th.
  const jan4 = Date.UTC(year, 0, 4);
  const jan4Weekday = (new Date(jan4).getUTCDay() + 6) % 7; // Monday = 0
  const week1 = jan4 - jan4Weekday * DAY;
  const weeksInYear = isoWeekOf(Date.UTC(year, 11, 28)).week;
  if (week < 1 || week > weeksInYear) throw new Error(`${value}: ${year} has weeks 1 to ${weeksInYear}`);
  return week1 + (week - 1) * 7 * DAY;
}

export function isoWeekOf(ms: number): { year: number; week: number } {
  const d = new Date(Math.floor(ms / DAY) * DAY);
  const weekday = (d.getUTCDay() + 6) % 7;
  const thursday = d.getTime() + (3 - weekday) * DAY;
  const year = new Date(thursday).getUTCFullYear();
  const week = 1 + Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * DAY));
  return { year, week };
}

export interface ComplianceReport {
  period: { since: number; until: number; label: string };
  /** True only when the period has data, every run bearing on it finished, and no violation. */
  compliant: boolean;
  /**
   * 'compliant' | 'not-compliant' | 'no-data' (nothing stored) | 'incomplete' (an unfinished run) |
   * 'unsettled' (no violation, but flows whose verdict depends on what was not observed).
   */
  assessment: 'compliant' | 'not-compliant' | 'no-data' | 'incomplete' | 'unsettled';
  /** Unfinished audit runs that may bear on the period. */
  unfinishedRuns: number;
  /** Input problems recorded by the audit runs whose data falls in the period. */
  inputProblems: InputIssue[];
  traffic: { flows: number; packets: number; bytes: number; byResult: Record<string, number> };
  violations: AggregateRow[];
  deniedAttempts: AggregateRow[];
  /**
   * Flows whose verdict could not be settled: a Service whose backends disagree, or a flow that began
   * before the capture whose direction the cluster did not settle and whose result depends on it.
   */
  unsettled: AggregateRow[];
  rules: { total: number; used: number; unused: RuleRow[] };
  policyVersions: { kind: string; policy: string; hash: string; firstSeen: number; lastSeen: number }[];
}

/** Merges the store's per-window rows over the whole period: one row per (source, destination, proto, port). */
function overPeriod(rows: AggregateRow[]): AggregateRow[] {
  const byKey = new Map<string, AggregateRow>();
  for (const r of rows) {
    const k = `${r.srcWorkload}\u0000${r.dstWorkload}\u0000${r.proto}\u0000${r.port}`;
    const cur = byKey.get(k);
    if (!cur) {
      byKey.set(k, { ...r, srcNames: [...r.srcNames], dstNames: [...r.dstNames], evidence: [] });
      continue;
    }
    cur.windowStart = Math.min(cur.windowStart, r.windowStart);
    cur.flows += r.flows;
    cur.packets += r.packets;
    cur.bytes += r.bytes;
    cur.firstSeen = Math.min(cur.firstSeen, r.firstSeen);
    cur.lastSeen = Math.max(cur.lastSeen, r.lastSeen);
    for (const n of r.srcNames) if (!cur.srcNames.includes(n)) cur.srcNames.push(n);
    for (const n of r.dstNames) if (!cur.dstNames.includes(n)) cur.dstNames.push(n);
  }
  return [...byKey.values()].sort((a, b) => b.flows - a.flows || a.firstSeen - b.firstSeen);
}

export function buildReport(
  store: AuditStore,
  since: number,
  until: number,
  label: string,
): ComplianceReport {
  const range = { since, until };
  // Windowed rows overlapping the period; a window straddling an edge counts whole (windows are 1 h).
  const all = Number.MAX_SAFE_INTEGER;
  const violations = overPeriod(store.violations(range, all).filter((r) => r.firstSeen < until));
  const deniedAttempts = overPeriod(store.deniedAttempts(range, all).filter((r) => r.firstSeen < until));
  const unsettled = overPeriod(store.ambiguous(range, all).filter((r) => r.firstSeen < until));
  const rules = store.ruleUsage(range);
  const evidence = evidenceFor(store, since, until);
  // A violation is evidence whatever else is missing; its absence is only evidence when the period
  // has data and every run that wrote to it finished.
  // Nor is it evidence while some flow's verdict hangs on what was not observed.
  const assessment =
    violations.length > 0
      ? 'not-compliant'
      : evidence.status !== 'ok'
        ? evidence.status
        : unsettled.length > 0
          ? 'unsettled'
          : 'compliant';
  return {
    period: { since, until, label },
    compliant: assessment === 'compliant',
    assessment,
    unfinishedRuns: evidence.unfinishedRuns,
    inputProblems: evidence.issues,
    traffic: store.totals(range),
    violations,
    deniedAttempts,
    unsettled,
    rules: {
      total: rules.length,
      used: rules.filter((r) => r.hits > 0).length,
      unused: rules.filter((r) => r.hits === 0),
    },
    policyVersions: store.policyVersions(range),
  };
}

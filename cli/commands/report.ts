import { formatIssue, type InputIssue } from '../../lib/errors.js';
import { escapeMarkdown } from '../../lib/escape.js';
import { isoTime, parseSince } from '../../lib/format.js';
import { type AggregateRow, AuditStore, type RuleRow } from '../../processor/store/index.js';
import { asUsage, parse } from '../args.js';
import { type Command, EXIT_INPUT_PROBLEMS, EXIT_NO_DATA, EXIT_OK, UsageError } from '../command.js';
import { evidenceFor, noDataMessage } from './evidence.js';

const USAGE = `usage: netpol-audit report --db FILE [--week YYYY-Www | --since 7d|DATE [--until DATE]] [--format markdown|json] [--fail-on-violation]

The compliance report for a period (default: the 7 days up to the newest data in the store; --week
takes an ISO week, UTC): traffic judged, whether the NetworkPolicies held (violations: flows they
deny that were observed to flow), denied attempts, rules unused in the period, and the policy
versions in force. A period with no flow stored, or written to by an audit run that did not finish,
is reported as "no data: cannot assess", never as compliant; one with flows whose verdict depends on
what was not observed (a direction the capture did not see) as "cannot fully assess". With
--fail-on-violation the exit status is 1 when the period has a violation and 4 when it cannot be
(fully) assessed, for CI jobs and alerting.`;

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

const md = escapeMarkdown;
const port = (r: AggregateRow) => (r.port < 0 ? r.proto : `${r.proto}/${r.port}`);

export function renderMarkdown(r: ComplianceReport): string {
  const out: string[] = [];
  out.push(`# NetworkPolicy compliance report: ${r.period.label}`, '');
  out.push(`Period: ${isoTime(r.period.since)} to ${isoTime(r.period.until)} (data time, UTC).`, '');
  const verdicts: Record<ComplianceReport['assessment'], string> = {
    compliant: '**Compliant**: no flow that the NetworkPolicies deny was observed to flow.',
    'not-compliant': `**Not compliant**: ${r.violations.length} connection(s) the NetworkPolicies deny were observed to flow (${r.violations.reduce((a, v) => a + v.flows, 0)} flows). Enforcement failed or is missing for them.`,
    'no-data':
      '**No data: cannot assess.** The store holds no flow for this period; nothing can be said about compliance.',
    incomplete: `**No data: cannot assess.** ${r.unfinishedRuns} audit run(s) did not finish, so the data for this period is incomplete; re-run them.`,
    unsettled: `**Cannot fully assess.** No flow the NetworkPolicies deny was observed to flow, but the verdict of ${r.unsettled.length} connection(s) (${r.unsettled.reduce((a, v) => a + v.flows, 0)} flows) depends on what was not observed; see "Unsettled verdicts".`,
  };
  out.push(verdicts[r.assessment], '');
  if (r.assessment === 'not-compliant' && r.unfinishedRuns > 0)
    out.push(
      `Note: ${r.unfinishedRuns} audit run(s) did not finish; the data may be incomplete, so there may be more.`,
      '',
    );
  const b = r.traffic.byResult;
  out.push('## Traffic judged', '');
  out.push('| flows | allowed | denied | ambiguous | packets | bytes |', '|---:|---:|---:|---:|---:|---:|');
  out.push(
    `| ${r.traffic.flows} | ${b.allowed ?? 0} | ${b.denied ?? 0} | ${b.ambiguous ?? 0} | ${r.traffic.packets} | ${r.traffic.bytes} |`,
    '',
  );
  const table = (rows: AggregateRow[], why?: (v: AggregateRow) => string) => {
    out.push(
      `| source | destination | port | flows | bytes | first seen | last seen | ${why ? 'why' : 'direction'} |`,
      '|---|---|---|---:|---:|---|---|---|',
    );
    for (const v of rows)
      out.push(
        `| ${md(v.srcWorkload)} | ${md(v.dstWorkload)} | ${md(port(v))} | ${v.flows} | ${v.bytes} | ${isoTime(v.firstSeen)} | ${isoTime(v.lastSeen)} | ${why ? why(v) : v.directionGuessed > 0 ? `guessed for ${v.directionGuessed} flow(s): same result either way` : 'observed'} |`,
      );
    out.push('');
  };
  out.push(`## Violations (${r.violations.length})`, '');
  if (r.violations.length === 0) out.push('None.', '');
  else {
    out.push('Denied by the policies in force, and observed to flow (established or closed).', '');
    table(r.violations);
  }
  out.push(`## Denied attempts (${r.deniedAttempts.length})`, '');
  if (r.deniedAttempts.length === 0) out.push('None.', '');
  else {
    out.push('Denied, and only attempted or rejected: enforcement held.', '');
    table(r.deniedAttempts);
  }
  if (r.unsettled.length > 0) {
    out.push(`## Unsettled verdicts (${r.unsettled.length})`, '');
    out.push(
      'Neither a violation nor compliance can be claimed for these: the verdict depends on what was not observed.',
      '',
    );
    table(r.unsettled, (v) =>
      v.directionGuessed === 0
        ? 'a Service whose backends disagree'
        : `began before the capture; the cluster declares neither port, and it is allowed one way, denied the other (${v.directionGuessed} flow(s))`,
    );
  }
  out.push(`## Rules (${r.rules.used} of ${r.rules.total} used)`, '');
  if (r.traffic.flows === 0) out.push('No data: cannot tell which rules were used.', '');
  else if (r.rules.unused.length === 0) out.push('Every rule in force was used.', '');
  else {
    out.push('In force during the period and used by no flow: candidates for review.', '');
    out.push('| policy | rule | what it allows |', '|---|---|---|');
    for (const u of r.rules.unused)
      out.push(
        `| ${u.kind === 'NetworkPolicy' ? '' : `${md(u.kind)} `}${md(u.policy)} | ${u.direction}[${u.rule}] | ${md(u.summary)} |`,
      );
    out.push('');
  }
  out.push(`## Policy versions in force (${r.policyVersions.length})`, '');
  for (const p of r.policyVersions)
    out.push(
      `- ${md(p.kind)} ${md(p.policy)} (${p.hash.slice(0, 12)}): ${isoTime(p.firstSeen)} to ${isoTime(p.lastSeen)}`,
    );
  out.push('');
  if (r.inputProblems.length > 0) {
    out.push(`## Input problems (${r.inputProblems.length})`, '');
    out.push('Recorded by the audit runs whose data falls in the period.', '');
    for (const i of r.inputProblems.slice(0, 100)) out.push(`- ${md(formatIssue(i))}`);
    if (r.inputProblems.length > 100) out.push(`- ... and ${r.inputProblems.length - 100} more`);
    out.push('');
  }
  return out.join('\n');
}

export const reportCommand: Command = {
  path: ['report'],
  summary: 'weekly compliance report (Markdown or JSON) from the store',
  usage: USAGE,
  async run(argv) {
    const { values } = parse(argv, {
      db: { type: 'string' },
      week: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      format: { type: 'string' },
      'fail-on-violation': { type: 'boolean' },
    });
    if (!values.db) throw new UsageError('--db is required');
    const format = values.format ?? 'markdown';
    if (format !== 'markdown' && format !== 'json') throw new UsageError('--format must be markdown or json');
    if (values.week && (values.since || values.until))
      throw new UsageError('--week excludes --since and --until');
    const store = AuditStore.open(values.db, { readonly: true });
    try {
      const newest = store.latestDataTime() ?? 0;
      let since: number;
      let until: number;
      let label: string;
      if (values.week) {
        since = asUsage(() => isoWeekStart(values.week!));
        until = since + 7 * DAY;
        label = values.week;
      } else {
        until = values.until ? asUsage(() => parseSince(values.until!, newest)) : newest;
        since = values.since ? asUsage(() => parseSince(values.since!, newest)) : until - 7 * DAY;
        label =
          values.since || values.until
            ? `${isoTime(since)} to ${isoTime(until)}`
            : store.latestDataTime() === undefined
              ? 'the last 7 days (the store holds no data)'
              : `the 7 days to ${isoTime(until)}`;
      }
      if (since >= until) throw new UsageError('the period is empty (--since must be before --until)');
      const report = buildReport(store, since, until, label);
      process.stdout.write(
        format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderMarkdown(report),
      );
      if (report.assessment === 'no-data' || report.assessment === 'incomplete')
        process.stderr.write(`report: ${noDataMessage(evidenceFor(store, since, until), label)}\n`);
      if (report.assessment === 'unsettled')
        process.stderr.write(
          `report: cannot fully assess ${label}: ${report.unsettled.length} connection(s) have a verdict that depends on what was not observed\n`,
        );
      if (!values['fail-on-violation']) return EXIT_OK;
      if (report.assessment === 'not-compliant') return EXIT_INPUT_PROBLEMS;
      return report.assessment === 'compliant' ? EXIT_OK : EXIT_NO_DATA;
    } finally {
      store.close();
    }
  },
};

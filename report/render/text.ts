import { formatIssue, type InputIssue } from '../../lib/errors.js';
import { escapeTerminal as t } from '../../lib/escape.js';
import { isoTime } from '../../lib/format.js';
import type { Finding, ReportModel } from '../../schema/report.js';
import { portText, withoutHeadline } from '../sections.js';

/** The compliance report for a terminal: the verdict first, then the rows; control characters shown. */

const ASSESSMENT: Record<ReportModel['assessment'], string> = {
  compliant: 'COMPLIANT',
  'not-compliant': 'NOT COMPLIANT',
  'no-data': 'NO DATA: cannot assess',
  incomplete: 'NO DATA: cannot assess',
  unsettled: 'CANNOT FULLY ASSESS',
};

export function renderText(r: ReportModel): string {
  const out: string[] = [];
  out.push(`NetworkPolicy compliance report: ${t(r.period.label)}`);
  out.push(`period: ${isoTime(r.period.since)} to ${isoTime(r.period.until)} (data time, UTC)`);
  out.push(`${ASSESSMENT[r.assessment]}. ${t(withoutHeadline(r.summary))}`);
  const b = r.traffic.byResult;
  out.push(
    `${r.traffic.flows} flows judged: ${b.allowed ?? 0} allowed, ${b.denied ?? 0} denied, ${b.ambiguous ?? 0} ambiguous`,
  );
  out.push('', 'KEY FIGURES (previous period)');
  for (const k of r.keyFigures) out.push(`  ${k.label}: ${k.value ?? 'n/a'} (${k.previous ?? 'no data'})`);
  const rows = (title: string, list: Finding[]) => {
    out.push('', `${title} (${list.length})`);
    for (const v of list)
      out.push(
        `  ${t(v.src)} -> ${t(v.dst)} ${portText(v)}: ${v.flows} flow(s), ${v.bytes} bytes, ${isoTime(v.firstSeen)} .. ${isoTime(v.lastSeen)}` +
          (v.directionGuessed > 0 ? ` (direction guessed for ${v.directionGuessed})` : '') +
          (v.since.stillOccurring ? ` (still occurring, last ${isoTime(v.since.lastSeen)})` : ''),
      );
    if (list.length === 0) out.push('  none');
  };
  rows('VIOLATIONS', r.violations);
  rows('DENIED ATTEMPTS', r.deniedAttempts);
  if (r.unsettled.length > 0) rows('UNSETTLED', r.unsettled);
  const c = r.coverage;
  out.push(
    '',
    c.available
      ? `COVERAGE: ${c.ingressIsolated} of ${c.workloads} workloads isolated for ingress, ${c.egressIsolated} of ${c.workloads} for egress`
      : 'COVERAGE: not known for this period',
  );
  for (const u of c.unisolatedTraffic.slice(0, 10)) out.push(`  ${t(u.sentence)}`);
  out.push('', `RULES: ${r.rules.used} of ${r.rules.total} used`);
  for (const u of r.rules.unused)
    out.push(
      `  unused: ${t(u.policy)} ${u.direction}[${u.rule}]${u.summary ? `: ${t(u.summary)}` : ''} (${u.lastHit === null ? 'never hit' : `last hit ${isoTime(u.lastHit)}`})`,
    );
  const k = r.completeness;
  out.push(
    '',
    `COMPLETENESS: ${k.hoursWithData} of ${k.hours} hours hold flows, ${k.observers.length} collector(s), ${k.unattributed.flows} flow(s) not attributable, ${k.deadLetters} dead letter(s)`,
  );
  if (r.inputProblems.length > 0) {
    out.push('', `INPUT PROBLEMS (${r.inputProblems.length})`);
    for (const i of r.inputProblems.slice(0, 50)) out.push(`  ${t(formatIssue(i as unknown as InputIssue))}`);
  }
  return `${out.join('\n')}\n`;
}

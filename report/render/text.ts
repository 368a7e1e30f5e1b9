import { formatIssue } from '../../lib/errors.js';
import { escapeTerminal as t } from '../../lib/escape.js';
import { isoTime } from '../../lib/format.js';
import type { AggregateRow } from '../../processor/store/index.js';
import type { ComplianceReport } from '../model.js';

/** The compliance report for a terminal: the verdict first, then the rows; control characters shown. */

const ASSESSMENT: Record<ComplianceReport['assessment'], string> = {
  compliant: 'COMPLIANT: no flow that the NetworkPolicies deny was observed to flow',
  'not-compliant': 'NOT COMPLIANT: flows that the NetworkPolicies deny were observed to flow',
  'no-data': 'NO DATA: cannot assess (the store holds no flow for this period)',
  incomplete: 'NO DATA: cannot assess (an audit run that wrote to this period did not finish)',
  unsettled: 'CANNOT FULLY ASSESS: some verdicts depend on what was not observed',
};

const port = (r: AggregateRow) => (r.port < 0 ? r.proto : `${r.proto}/${r.port}`);

export function renderText(r: ComplianceReport): string {
  const out: string[] = [];
  out.push(`NetworkPolicy compliance report: ${t(r.period.label)}`);
  out.push(`period: ${isoTime(r.period.since)} to ${isoTime(r.period.until)} (data time, UTC)`);
  out.push(ASSESSMENT[r.assessment]);
  const b = r.traffic.byResult;
  out.push(
    `${r.traffic.flows} flows judged: ${b.allowed ?? 0} allowed, ${b.denied ?? 0} denied, ${b.ambiguous ?? 0} ambiguous`,
  );
  const rows = (title: string, list: AggregateRow[]) => {
    out.push('', `${title} (${list.length})`);
    for (const v of list)
      out.push(
        `  ${t(v.srcWorkload)} -> ${t(v.dstWorkload)} ${port(v)}: ${v.flows} flow(s), ${v.bytes} bytes, ${isoTime(v.firstSeen)} .. ${isoTime(v.lastSeen)}` +
          (v.directionGuessed > 0 ? ` (direction guessed for ${v.directionGuessed})` : ''),
      );
    if (list.length === 0) out.push('  none');
  };
  rows('VIOLATIONS', r.violations);
  rows('DENIED ATTEMPTS', r.deniedAttempts);
  if (r.unsettled.length > 0) rows('UNSETTLED', r.unsettled);
  out.push('', `RULES: ${r.rules.used} of ${r.rules.total} used`);
  for (const u of r.rules.unused)
    out.push(`  unused: ${t(u.policy)} ${u.direction}[${u.rule}]${u.summary ? `: ${t(u.summary)}` : ''}`);
  if (r.inputProblems.length > 0) {
    out.push('', `INPUT PROBLEMS (${r.inputProblems.length})`);
    for (const i of r.inputProblems.slice(0, 50)) out.push(`  ${t(formatIssue(i))}`);
  }
  return `${out.join('\n')}\n`;
}

import { formatIssue } from '../../lib/errors.js';
import { escapeMarkdown } from '../../lib/escape.js';
import { isoTime } from '../../lib/format.js';
import type { AggregateRow } from '../../processor/store/index.js';
import type { ComplianceReport } from '../model.js';

/** The compliance report as Markdown: what an auditor files. Every name from the cluster is escaped. */
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

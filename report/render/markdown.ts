import { escapeTerminal, escapeMarkdown as md } from '../../lib/escape.js';
import { isoTime } from '../../lib/format.js';
import type { ReportModel } from '../../schema/report.js';
import { type Cell, reportSections, type Section, withoutHeadline } from '../sections.js';

/**
 * The compliance report as Markdown: what an auditor files, and what reads well in a ticket. The
 * same sections as every renderer (sections.ts); every value from the cluster is escaped, so a `|`
 * in a label cannot break a table and HTML shows as text.
 */

const HEADLINE: Record<ReportModel['assessment'], string> = {
  compliant: 'Compliant',
  'not-compliant': 'Not compliant',
  'no-data': 'No data: cannot assess',
  incomplete: 'No data: cannot assess',
  unsettled: 'Cannot fully assess',
};

function cell(v: Cell): string {
  if (v === null) return '';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return md(String(v));
}

function table(s: Section, out: string[], limit = 200): void {
  if (s.rows.length === 0) {
    out.push('None.', '');
    return;
  }
  out.push(`| ${s.columns.map(md).join(' | ')} |`, `|${s.columns.map(() => '---').join('|')}|`);
  for (const r of s.rows.slice(0, limit)) out.push(`| ${r.map(cell).join(' | ')} |`);
  if (s.rows.length > limit)
    out.push('', `... and ${s.rows.length - limit} more rows (see the CSV or JSON output).`);
  out.push('');
}

export function renderMarkdown(r: ReportModel): string {
  const out: string[] = [];
  const sections = new Map(reportSections(r).map((s) => [s.name, s]));
  const s = (name: string) => sections.get(name)!;
  out.push(`# NetworkPolicy compliance report: ${md(r.period.label)}`, '');
  out.push(`Period: ${isoTime(r.period.since)} to ${isoTime(r.period.until)} (data time, UTC).`, '');
  out.push(`**${HEADLINE[r.assessment]}.** ${md(withoutHeadline(r.summary))}`, '');
  if (r.assessment === 'not-compliant' && r.unfinishedRuns > 0)
    out.push(
      `Note: ${r.unfinishedRuns} audit run(s) did not finish; the data may be incomplete, so there may be more.`,
      '',
    );
  out.push('## Key figures', '');
  out.push(
    `Compared with the previous period of the same length (${isoTime(r.previousPeriod.since)} to ${isoTime(r.previousPeriod.until)}).`,
    '',
  );
  table(s('key-figures'), out);
  const b = r.traffic.byResult;
  out.push('## Traffic judged', '');
  out.push('| flows | allowed | denied | ambiguous | packets | bytes |', '|---:|---:|---:|---:|---:|---:|');
  out.push(
    `| ${r.traffic.flows} | ${b.allowed ?? 0} | ${b.denied ?? 0} | ${b.ambiguous ?? 0} | ${r.traffic.packets} | ${r.traffic.bytes} |`,
    '',
  );
  out.push(`## Violations (${r.violations.length})`, '');
  if (r.violations.length > 0)
    out.push('Denied by the policies in force, and observed to flow (established or closed).', '');
  table(s('violations'), out);
  out.push(`## Denied attempts (${r.deniedAttempts.length})`, '');
  if (r.deniedAttempts.length > 0) out.push('Denied, and only attempted or rejected: enforcement held.', '');
  table(s('denied-attempts'), out);
  if (r.unsettled.length > 0) {
    out.push(`## Unsettled verdicts (${r.unsettled.length})`, '');
    out.push(
      'Neither a violation nor compliance can be claimed for these: the verdict depends on what was not observed (a Service whose backends disagree, or a connection that began before the capture, allowed one way and denied the other).',
      '',
    );
    table(s('unsettled'), out);
  }
  if (s('evidence').rows.length > 0) {
    out.push('### Evidence', '', 'The first flows of each finding, in full, and what the policies said.', '');
    table(s('evidence'), out);
  }
  const c = r.coverage;
  out.push('## Isolation coverage', '');
  if (!c.available)
    out.push('Not known: the store holds no coverage for this period (written by an older version).', '');
  else {
    out.push(
      `${c.ingressIsolated} of ${c.workloads} workloads isolated for ingress, ${c.egressIsolated} of ${c.workloads} for egress (${c.podsIngressIsolated} of ${c.pods} pods for ingress), as in force at ${isoTime(c.asOf)}.`,
      '',
    );
    for (const u of c.unisolatedTraffic.slice(0, 20)) out.push(`- ${md(u.sentence)}`);
    if (c.unisolatedTraffic.length > 0) out.push('');
    out.push('### Workloads not isolated', '');
    table(s('coverage'), out);
    out.push('### Namespaces without a default deny', '');
    table(s('namespaces'), out);
  }
  out.push(`## Rules (${r.rules.used} of ${r.rules.total} used)`, '');
  if (r.traffic.flows === 0) out.push('No data: cannot tell which rules were used.', '');
  else if (r.rules.unused.length === 0) out.push('Every rule in force was used.', '');
  else {
    out.push('In force during the period and used by no flow: candidates for review.', '');
    table(s('unused-rules'), out);
  }
  out.push(`## Policy changes (${r.policyChanges.length})`, '');
  if (r.policyChanges.length === 0) out.push('No policy changed in the period.', '');
  for (const p of r.policyChanges) {
    out.push(
      `- ${md(p.kind)} ${md(p.policy)} ${p.change === 'changed' ? 'changed' : 'first seen in force'} at ${isoTime(p.at)} (${p.fromHash ? `${p.fromHash.slice(0, 12)} to ` : ''}${p.toHash.slice(0, 12)}):`,
      '',
    );
    // An indented code block: nothing in it is markup, and no line of it can end it early.
    for (const line of p.diff) out.push(`        ${escapeTerminal(line)}`);
    out.push('');
  }
  out.push(`## Policy versions in force (${r.policyVersions.length})`, '');
  for (const p of r.policyVersions)
    out.push(
      `- ${md(p.kind)} ${md(p.policy)} (${p.hash.slice(0, 12)}): ${isoTime(p.firstSeen)} to ${isoTime(p.lastSeen)}`,
    );
  out.push('');
  const k = r.completeness;
  out.push('## Evidence completeness', '');
  out.push(
    `${k.hoursWithData} of ${k.hours} hours of the period hold flows; ${k.unattributed.flows} flow(s) had an address no pod held (not attributable); dead letters: ${k.deadLetters}; spool drops: ${k.spoolDrops ?? 'not known to the store (see the collectors\u2019 metrics)'}.`,
    '',
  );
  out.push('### Collectors that reported', '');
  if (!k.observersKnown) out.push('Not known for this period (no flow, or written by an older version).', '');
  else table(s('observers'), out);
  if (k.unattributed.addresses.length > 0) {
    out.push('### Addresses not attributable to a pod', '');
    table(s('unattributed'), out);
  }
  out.push('### Input skipped or doubtful', '');
  table(s('skipped'), out);
  out.push('### Runs', '');
  table(s('runs'), out);
  if (r.inputProblems.length > 0) {
    out.push(`## Input problems (${r.inputProblems.length})`, '');
    out.push('Recorded by the audit runs whose data falls in the period.', '');
    for (const row of s('input-problems').rows.slice(0, 100)) out.push(`- ${cell(row[0]!)}`);
    if (r.inputProblems.length > 100) out.push(`- ... and ${r.inputProblems.length - 100} more`);
    out.push('');
  }
  out.push(
    `---`,
    `${md(r.generatedBy)}, report format ${r.reportVersion}, store schema ${r.storeSchemaVersion}.`,
    '',
  );
  return out.join('\n');
}

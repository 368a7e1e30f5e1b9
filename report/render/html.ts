import { createHash } from 'node:crypto';
import { escapeHtml as h } from '../../lib/escape.js';
import { isoTime } from '../../lib/format.js';
import type { ReportModel } from '../../schema/report.js';
import { type Cell, reportSections, type Section, withoutHeadline } from '../sections.js';
import { horizontalBars, stackedBars } from './svg.js';

/**
 * The compliance report as one self-contained HTML file: no script, no font, no request of any
 * kind; every table rendered here, the charts as inline SVG beside the tables they draw. A
 * Content-Security-Policy (meta) allows nothing but the one stylesheet below (by its hash), so
 * even a name that slipped through escaping could not run or load anything. Prints to PDF with a
 * page per part (`report --format pdf`).
 */

const CSS = `
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#bc4c00;--grey:#6e7781;--ink:#1f2328;--line:#d0d7de;--unattr:#8250df}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);margin:0 auto;max-width:1100px;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;border-bottom:1px solid var(--line);padding-bottom:4px;margin-top:32px}h3{font-size:16px}
.period{color:var(--grey);margin:0 0 16px}
.verdict{border-radius:6px;padding:14px 16px;font-size:16px;margin:12px 0 20px;border:1px solid}
.verdict.compliant{background:#dafbe1;border-color:var(--ok)}.verdict.not-compliant{background:#ffebe9;border-color:var(--bad)}
.verdict.no-data,.verdict.incomplete,.verdict.unsettled{background:#fff8c5;border-color:var(--warn)}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px}
.figure{border:1px solid var(--line);border-radius:6px;padding:10px 12px}
.figure .value{font-size:26px;font-weight:600}.figure .label{color:var(--grey)}
.change.worse{color:var(--bad)}.change.better{color:var(--ok)}.change.same{color:var(--grey)}
table{border-collapse:collapse;width:100%;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}td{overflow-wrap:break-word}td.time{white-space:nowrap}
.finding{margin:12px 0 4px;font-weight:600}td.ev{font-size:12px;overflow-wrap:anywhere}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;overflow-wrap:normal}
.chart{width:100%;height:auto;max-width:760px;display:block;margin:8px 0}
.chart .grid{stroke:var(--line);stroke-width:1}.chart .axis{font-size:11px;fill:var(--grey)}
.allowed{fill:var(--ok)}.violation{fill:var(--bad)}.denied{fill:var(--warn)}.unsettled{fill:var(--grey)}.unattributed{fill:var(--unattr)}
.matrix td.cell{text-align:center}.matrix td.violation{background:#ffcecb}.matrix td.denied{background:#ffe2cc}
.matrix td.allowed{background:#d2f4d9}.matrix td.unsettled{background:#eaeef2}
pre.diff{background:#f6f8fa;border:1px solid var(--line);padding:8px;overflow-x:auto;font-size:12px}
pre.diff .add{color:var(--ok)}pre.diff .del{color:var(--bad)}
.note{color:var(--grey)}footer{color:var(--grey);margin-top:32px;font-size:12px}
@media print{body{max-width:none;padding:0}section.part{break-before:page}section.part:first-of-type{break-before:auto}
table{font-size:10px}th,td{padding:2px 4px}.chart{max-width:100%}}
`;

const CSS_HASH = createHash('sha256').update(CSS).digest('base64');

/** The policy the page runs under: its own stylesheet and nothing else (no script at all). */
const REPORT_CSP = `default-src 'none'; style-src 'sha256-${CSS_HASH}'; img-src data:; script-src 'none'; base-uri 'none'; form-action 'none'`;

const VERDICT: Record<ReportModel['assessment'], string> = {
  compliant: 'Compliant',
  'not-compliant': 'Not compliant',
  'no-data': 'No data: cannot assess',
  incomplete: 'No data: cannot assess',
  unsettled: 'Cannot fully assess',
};

function cell(v: Cell): string {
  if (v === null) return '<td></td>';
  if (typeof v === 'number') return `<td class="num">${v}</td>`;
  if (typeof v === 'boolean') return `<td>${v ? 'yes' : 'no'}</td>`;
  return ISO.test(v) ? `<td class="time">${h(readableTime(v))}</td>` : `<td>${h(v)}</td>`;
}

/** An ISO time as a table shows it: `2026-11-23 07:15:59.305` (the page says the times are UTC). */
const readableTime = (iso: string) => iso.replace('T', ' ').replace('Z', '');

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** The first flows of each finding, one compact row per flow (the CSV has every field in a column). */
function evidence(r: ReportModel): string {
  const groups: [string, ReportModel['violations']][] = [
    ['Violation', r.violations],
    ['Denied attempt', r.deniedAttempts],
    ['Unsettled', r.unsettled],
  ];
  const out: string[] = [];
  for (const [kind, list] of groups)
    for (const f of list) {
      if (f.evidence.length === 0) continue;
      out.push(
        `<p class="finding">${kind}: ${h(f.src)} \u2192 ${h(f.dst)} ${h(f.port < 0 ? f.proto : `${f.proto}/${f.port}`)}</p>`,
      );
      const rows = f.evidence.map((e) => {
        const end = (x: typeof e.src) =>
          `${h(x.ip)}${x.port !== undefined ? `:${x.port}` : ''}${x.name ? `<br>${h(x.name)}` : ''}`;
        return `<tr><td class="time">${h(readableTime(isoTime(e.start)))}<br>${h(readableTime(isoTime(e.end)))}</td><td class="ev">${end(e.src)}</td><td class="ev">${end(e.dst)}</td><td class="num">\u2192 ${e.packets.fwd} / ${e.bytes.fwd} B<br>\u2190 ${e.packets.rev} / ${e.bytes.rev} B</td><td>${h(e.state)}</td><td class="ev">${h(e.observer ?? '')}${e.node ? `<br>node ${h(e.node)}` : ''}</td><td class="ev">ingress: ${h(e.reasons.ingress)}${e.isolatedBy.ingress.length ? ` (isolated by ${h(e.isolatedBy.ingress.join(', '))})` : ''}<br>egress: ${h(e.reasons.egress)}${e.isolatedBy.egress.length ? ` (isolated by ${h(e.isolatedBy.egress.join(', '))})` : ''}${e.rules.length ? `<br>allowed a side: ${h(e.rules.join(', '))}` : ''}</td></tr>`;
      });
      out.push(
        `<table data-section="evidence"><thead><tr><th>start / end</th><th>from</th><th>to</th><th>packets / bytes</th><th>state</th><th>observed by</th><th>what the policies said</th></tr></thead><tbody>${rows.join('')}</tbody></table>`,
      );
    }
  return out.length ? out.join('\n') : '<p class="note">None.</p>';
}

function table(s: Section, limit = 500): string {
  if (s.rows.length === 0) return '<p class="note">None.</p>';
  const head = `<tr>${s.columns.map((c) => `<th scope="col">${h(c)}</th>`).join('')}</tr>`;
  const body = s.rows
    .slice(0, limit)
    .map((r) => `<tr>${r.map(cell).join('')}</tr>`)
    .join('\n');
  const more =
    s.rows.length > limit
      ? `<p class="note">... and ${s.rows.length - limit} more rows (the CSV and JSON outputs hold them all).</p>`
      : '';
  return `<table data-section="${h(s.name)}"><thead>${head}</thead><tbody>${body}</tbody></table>${more}`;
}

const clip = (s: string, n = 52) => (s.length > n ? `${s.slice(0, n - 1)}\u2026` : s);

function figures(r: ReportModel): string {
  return `<div class="figures">${r.keyFigures
    .map((k) => {
      let change = '<span class="change same">no previous data</span>';
      if (k.value !== null && k.previous !== null) {
        const d = k.value - k.previous;
        const cls =
          d === 0 || k.better === 'neither' ? 'same' : d > 0 === (k.better === 'more') ? 'better' : 'worse';
        change = `<span class="change ${cls}">${d > 0 ? '+' : ''}${d} vs previous (${k.previous})</span>`;
      }
      return `<div class="figure" data-figure="${h(k.name)}"><div class="value">${k.value ?? 'n/a'}</div><div class="label">${h(k.label)}</div>${change}</div>`;
    })
    .join('')}</div>`;
}

function matrix(r: ReportModel): string {
  if (r.namespaceMatrix.length === 0)
    return '<p class="note">No traffic between namespaces recorded for the period.</p>';
  const srcs = [...new Set(r.namespaceMatrix.map((m) => m.src))].sort();
  const dsts = [...new Set(r.namespaceMatrix.map((m) => m.dst))].sort();
  const at = new Map(r.namespaceMatrix.map((m) => [`${m.src}\u0000${m.dst}`, m]));
  const rows = srcs.map((s) => {
    const cells = dsts.map((d) => {
      const m = at.get(`${s}\u0000${d}`);
      if (!m) return '<td class="cell"></td>';
      const cls =
        m.violations > 0
          ? 'violation'
          : m.deniedAttempts > 0
            ? 'denied'
            : m.unsettled > 0
              ? 'unsettled'
              : 'allowed';
      const parts = [
        m.allowed ? `${m.allowed} allowed` : '',
        m.violations ? `${m.violations} violation` : '',
        m.deniedAttempts ? `${m.deniedAttempts} denied` : '',
        m.unsettled ? `${m.unsettled} unsettled` : '',
        m.unattributed ? `${m.unattributed} not attributable` : '',
      ].filter(Boolean);
      return `<td class="cell ${cls}">${parts.join('<br>')}</td>`;
    });
    return `<tr><th scope="row">${h(s)}</th>${cells.join('')}</tr>`;
  });
  return `<table class="matrix"><thead><tr><th>from \\ to</th>${dsts.map((d) => `<th scope="col">${h(d)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function diff(lines: string[]): string {
  return `<pre class="diff">${lines
    .map((l) =>
      l[0] === '+'
        ? `<span class="add">${h(l)}</span>`
        : l[0] === '-'
          ? `<span class="del">${h(l)}</span>`
          : h(l),
    )
    .join('\n')}</pre>`;
}

export function renderHtml(r: ReportModel): string {
  const sections = new Map(reportSections(r).map((s) => [s.name, s]));
  const s = (name: string) => table(sections.get(name)!);
  const days = r.daily.map((d) => isoTime(d.day).slice(5, 10));
  const c = r.coverage;
  const k = r.completeness;
  const parts: string[] = [];
  parts.push(`<section id="summary" class="part">
<h1>NetworkPolicy compliance report: ${h(r.period.label)}</h1>
<p class="period">${isoTime(r.period.since)} to ${isoTime(r.period.until)} (data time, UTC); compared with ${isoTime(r.previousPeriod.since)} to ${isoTime(r.previousPeriod.until)}</p>
<div class="verdict ${r.assessment}" data-assessment="${r.assessment}"><strong>${VERDICT[r.assessment]}.</strong> ${h(withoutHeadline(r.summary))}</div>
${figures(r)}
<p>${r.traffic.flows} flows judged (${r.traffic.packets} packets, ${r.traffic.bytes} bytes)${c.available ? `; ${c.ingressIsolated} of ${c.workloads} workloads isolated for ingress` : ''}.</p>
</section>`);
  parts.push(`<section id="charts" class="part">
<h2>Traffic over the period</h2>
<h3>Flows per day by classification</h3>
${stackedBars('Flows per day by classification', days, [
  { name: 'allowed', cls: 'allowed', values: r.daily.map((d) => d.allowed) },
  { name: 'violations', cls: 'violation', values: r.daily.map((d) => d.violations) },
  { name: 'denied attempts', cls: 'denied', values: r.daily.map((d) => d.deniedAttempts) },
  { name: 'unsettled', cls: 'unsettled', values: r.daily.map((d) => d.unsettled) },
  { name: 'not attributable', cls: 'unattributed', values: r.daily.map((d) => d.unattributed) },
])}
<h3>Violations per day</h3>
${stackedBars('Violations per day', days, [{ name: 'violations', cls: 'violation', values: r.daily.map((d) => d.violations) }])}
${s('daily')}
<h3>Top violating workload pairs</h3>
${horizontalBars(
  'Top violating workload pairs',
  r.topViolatingPairs.map((p) => ({ label: clip(`${p.src} \u2192 ${p.dst}`), value: p.flows })),
  'violation',
)}
<h3>Traffic between namespaces</h3>
${matrix(r)}
</section>`);
  parts.push(`<section id="violations" class="part">
<h2>Violations (${r.violations.length})</h2>
<p>Denied by the policies in force, and observed to flow (established or closed): enforcement failed or is missing.</p>
${s('violations')}
<h2>Denied attempts (${r.deniedAttempts.length})</h2>
<p>Denied, and only attempted or rejected: enforcement held.</p>
${s('denied-attempts')}
${r.unsettled.length > 0 ? `<h2>Unsettled verdicts (${r.unsettled.length})</h2><p>Neither a violation nor compliance can be claimed for these: the verdict depends on what was not observed.</p>${s('unsettled')}` : ''}
<h3>Evidence</h3>
<p>The first flows of each finding in full, the policies that isolated each end and the rules evaluated.</p>
${evidence(r)}
</section>`);
  parts.push(`<section id="coverage" class="part">
<h2>Isolation coverage</h2>
${
  c.available
    ? `<p><strong>${c.ingressIsolated} of ${c.workloads} workloads isolated for ingress</strong>, ${c.egressIsolated} of ${c.workloads} for egress (${c.podsIngressIsolated} of ${c.pods} pods for ingress), as in force at ${isoTime(c.asOf)}.</p>
<ul>${c.unisolatedTraffic
        .slice(0, 20)
        .map((u) => `<li>${h(u.sentence)}</li>`)
        .join('')}</ul>
<h3>Workloads not isolated</h3>${s('coverage')}
<h3>Namespaces without a default deny</h3>${s('namespaces')}
<h3>Traffic of workloads not isolated</h3>${s('unisolated-traffic')}`
    : '<p class="note">Not known: the store holds no coverage for this period (written by an older version).</p>'
}
</section>`);
  parts.push(`<section id="rules" class="part">
<h2>Rules (${r.rules.used} of ${r.rules.total} used)</h2>
${r.traffic.flows === 0 ? '<p class="note">No data: cannot tell which rules were used.</p>' : `<p>In force during the period and used by no flow: candidates for review.</p>${s('unused-rules')}`}
<h2>Policy changes (${r.policyChanges.length})</h2>
${
  r.policyChanges.length === 0
    ? '<p class="note">No policy changed in the period.</p>'
    : r.policyChanges
        .map(
          (p) =>
            `<h3>${h(p.kind)} ${h(p.policy)}: ${p.change === 'changed' ? 'changed' : 'first seen in force'} at ${isoTime(p.at)}</h3><p class="note">${p.fromHash ? `${h(p.fromHash.slice(0, 12))} \u2192 ` : ''}${h(p.toHash.slice(0, 12))}</p>${diff(p.diff)}`,
        )
        .join('\n')
}
</section>`);
  parts.push(`<section id="completeness" class="part">
<h2>Evidence completeness</h2>
<p>What the evidence covers, and what it does not: ${k.hoursWithData} of ${k.hours} hours of the period hold flows; ${k.unattributed.flows} flow(s) had an address that no pod held at flow time (<strong>not attributable</strong>: never counted as allowed); ${k.deadLetters} dead letter(s); spool drops: ${k.spoolDrops ?? 'not known to the store (the collectors count them in their metrics)'}.</p>
<h3>Collectors that reported</h3>
${k.observersKnown ? s('observers') : '<p class="note">Not known for this period.</p>'}
<h3>Addresses not attributable to a pod</h3>${s('unattributed')}
<h3>Input skipped or doubtful</h3>${s('skipped')}
<h3>Runs</h3>${s('runs')}
</section>`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${REPORT_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="${h(r.generatedBy)}">
<title>NetworkPolicy compliance report: ${h(r.period.label)}</title>
<style>${CSS}</style>
</head>
<body>
${parts.join('\n')}
<footer>${h(r.generatedBy)}, report format ${r.reportVersion}, store schema ${r.storeSchemaVersion}, generated ${h(r.generatedAt)}. The JSON output of this report is its model (schema/report.schema.json).</footer>
</body>
</html>
`;
}

import { escapeCsv } from '../../lib/escape.js';
import type { ReportModel } from '../../schema/report.js';
import { type Cell, portText, reportSections, type Section } from '../sections.js';

/**
 * The report as CSV for a spreadsheet: one section per file (the evidence pack writes them all;
 * `--section NAME` picks one). The default, `findings`, is every violation, denied attempt,
 * unsettled verdict and unused rule in one table, each row with the period's assessment. Cells
 * that a spreadsheet would run as a formula are quoted inert (lib/escape.ts).
 */

function cell(v: Cell): string {
  if (v === null) return '';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return escapeCsv(v);
}

export function sectionCsv(s: Section): string {
  const lines = [s.columns.map(escapeCsv), ...s.rows.map((r) => r.map(cell))];
  return `${lines.map((l) => l.join(',')).join('\r\n')}\r\n`;
}

function findings(r: ReportModel): Section {
  const rows: Cell[][] = [];
  const add = (section: string, list: ReportModel['violations']) => {
    for (const v of list)
      rows.push([
        r.assessment,
        section,
        v.src,
        v.dst,
        portText(v),
        v.flows,
        v.bytes,
        new Date(v.firstSeen).toISOString(),
        new Date(v.lastSeen).toISOString(),
        v.directionGuessed > 0 ? `direction guessed for ${v.directionGuessed}` : '',
      ]);
  };
  add('violation', r.violations);
  add('denied-attempt', r.deniedAttempts);
  add('unsettled', r.unsettled);
  for (const u of r.rules.unused)
    rows.push([
      r.assessment,
      'unused-rule',
      '',
      `${u.policy} ${u.direction}[${u.rule}]`,
      '',
      null,
      null,
      '',
      '',
      u.summary,
    ]);
  return {
    name: 'findings',
    title: 'Findings',
    columns: [
      'assessment',
      'section',
      'source',
      'destination',
      'port',
      'flows',
      'bytes',
      'first_seen',
      'last_seen',
      'note',
    ],
    rows,
  };
}

/** Every CSV section of the report: `findings` first, then each table of sections.ts. */
export function csvSections(r: ReportModel): Section[] {
  return [findings(r), ...reportSections(r)];
}

export function renderCsv(r: ReportModel, section = 'findings'): string {
  const s = csvSections(r).find((x) => x.name === section);
  if (!s)
    throw new Error(
      `--section must be one of ${csvSections(r)
        .map((x) => x.name)
        .join(', ')}, not '${section}'`,
    );
  return sectionCsv(s);
}

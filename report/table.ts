import { escapeCsv, escapeTerminal } from '../lib/escape.js';
import type { Format } from './formats.js';

/** Rows as an aligned text table, JSON (one array) or CSV (RFC 4180 quoting): the listing commands. */

export interface Column<T> {
  header: string;
  value(row: T): string | number | null | undefined;
}

export type TableFormat = Extract<Format, 'text' | 'json' | 'csv'>;

export function renderTable<T>(
  rows: readonly T[],
  columns: readonly Column<T>[],
  format: TableFormat,
  json: (row: T) => unknown,
): string {
  if (format === 'json') return `${JSON.stringify(rows.map(json), null, 2)}\n`;
  const cells = rows.map((r) => columns.map((c) => cellText(c.value(r))));
  if (format === 'csv') {
    const lines = [columns.map((c) => csvQuote(c.header)), ...cells.map((r) => r.map(csvQuote))];
    return `${lines.map((l) => l.join(',')).join('\r\n')}\r\n`;
  }
  const shown = cells.map((r) => r.map(escapeTerminal));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...shown.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return `${[line(columns.map((c) => c.header.toUpperCase())), ...shown.map(line)].join('\n')}\n`;
}

function cellText(v: string | number | null | undefined): string {
  return v === null || v === undefined ? '' : String(v);
}

function csvQuote(v: string): string {
  // Numbers are ours (a negative one is not a formula); text may come from the cluster.
  return /^-\d+(\.\d+)?$/.test(v) ? v : escapeCsv(v);
}

import { escapeCsv, escapeTerminal } from './escape.js';

/** Renders rows as an aligned text table, JSON (one array) or CSV (RFC 4180 quoting). */
export type OutputFormat = 'table' | 'json' | 'csv';

export function parseFormat(value: string | undefined): OutputFormat {
  if (value === undefined) return 'table';
  if (value === 'table' || value === 'json' || value === 'csv') return value;
  throw new Error(`--format must be table, json or csv, not '${value}'`);
}

export interface Column<T> {
  header: string;
  value(row: T): string | number | null | undefined;
}

export function render<T>(
  rows: readonly T[],
  columns: readonly Column<T>[],
  format: OutputFormat,
  json: (row: T) => unknown,
): string {
  if (format === 'json') return `${JSON.stringify(rows.map(json), null, 2)}\n`;
  const cells = rows.map((r) => columns.map((c) => cellText(c.value(r))));
  const shown = format === 'csv' ? cells : cells.map((r) => r.map(escapeTerminal));
  if (format === 'csv') {
    const lines = [columns.map((c) => csvQuote(c.header)), ...cells.map((r) => r.map(csvQuote))];
    return `${lines.map((l) => l.join(',')).join('\r\n')}\r\n`;
  }
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

/** `2026-11-02T10:00:00.000Z` for epoch milliseconds. */
export function isoTime(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '' : new Date(ms).toISOString();
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * A point in time from `7d` (that long before `reference`), an ISO date, or epoch milliseconds.
 * Relative times count back from the newest data, not the wall clock, so an audit of an old
 * capture answers the same way whenever it is run.
 */
export function parseSince(value: string, reference: number): number {
  const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(value);
  if (m) return reference - Number(m[1]) * UNITS[m[2]!]!;
  if (/^\d+$/.test(value)) return Number(value);
  // A date-time without a zone is UTC, as the docs say (Date.parse would read it in local time).
  const zoneless = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value);
  const t = Date.parse(zoneless ? `${value.replace(' ', 'T')}Z` : value);
  if (Number.isNaN(t)) throw new Error(`not a time: '${value}' (use e.g. 7d, 12h, 2026-11-01, or epoch ms)`);
  return t;
}

/** Milliseconds from a duration such as `90s`, `15m`, `1h`, `7d`, `2w`. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(value);
  if (!m || Number(m[1]) <= 0) throw new Error(`not a duration: '${value}' (use e.g. 90s, 15m, 1h, 7d)`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

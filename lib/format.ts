/** Times and durations as the commands read and print them. */

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

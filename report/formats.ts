/**
 * One --format vocabulary for every command: each command accepts the formats it can render, under
 * the same names. `text` is what a terminal shows (an aligned table, a summary); `table` is kept as
 * another name for it.
 */
export type Format = 'text' | 'markdown' | 'json' | 'csv' | 'html' | 'pdf';

export const FORMATS: readonly Format[] = ['text', 'markdown', 'json', 'csv', 'html', 'pdf'];

/** The format named by `value`, if the command offers it; otherwise an Error saying which it offers. */
export function parseFormat(value: string | undefined, offered: readonly Format[], fallback: Format): Format {
  if (value === undefined) return fallback;
  const name = value === 'table' ? 'text' : value;
  if ((offered as readonly string[]).includes(name)) return name as Format;
  throw new Error(`--format must be ${offered.join(', ')}, not '${value}'`);
}

/**
 * The tables of docs/errors.md from the catalogue (lib/error-codes.ts), as scripts/readme-commands.ts
 * does for the README: each `##` section names an area, and the table between its markers is
 * rewritten with the area's codes in catalogue order; the prose around the tables and the order of
 * the sections are the document's. `npx tsx scripts/errors-doc.ts --write` rewrites the file;
 * without --write it prints the result. test/errors-doc.test.ts fails when the file is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_AREAS, ERROR_CODES, type ErrorCodeInfo } from '../lib/error-codes.js';

export const ERRORS_DOC = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'errors.md');
export const BEGIN = '<!-- codes:begin (generated from lib/error-codes.ts by scripts/errors-doc.ts) -->';
export const END = '<!-- codes:end -->';

/** One area's table: `fatal (exit 3)` in place of the severity for fatal codes, *(retriable)* after the meaning. */
export function codeTable(area: string): string[] {
  const rows = ['| code | severity | meaning |', '|---|---|---|'];
  for (const [code, i] of Object.entries(ERROR_CODES) as [string, ErrorCodeInfo][])
    if (i.area === area)
      rows.push(
        `| \`${code}\` | ${i.fatal ? 'fatal (exit 3)' : i.severity} | ${i.meaning}${i.retriable ? ' *(retriable)*' : ''} |`,
      );
  return rows;
}

/** The document with every table regenerated; throws when a section or marker is missing or unknown. */
export function withTables(doc: string): string {
  const out: string[] = [];
  const seen = new Set<string>();
  let heading: string | undefined;
  const lines = doc.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    if (line.startsWith('## ')) heading = line.slice(3).trim();
    if (line === END) throw new Error(`docs/errors.md line ${n + 1}: ${END} without ${BEGIN}`);
    out.push(line);
    if (line !== BEGIN) continue;
    if (heading === undefined || !(ERROR_AREAS as readonly string[]).includes(heading))
      throw new Error(
        `docs/errors.md line ${n + 1}: a table under '${heading}', which is no area of lib/error-codes.ts`,
      );
    if (seen.has(heading)) throw new Error(`docs/errors.md line ${n + 1}: a second table for '${heading}'`);
    seen.add(heading);
    // The table ends at its own END, before the next section or table begins.
    let end = n + 1;
    while (end < lines.length && lines[end] !== END && lines[end] !== BEGIN && !lines[end]!.startsWith('## '))
      end++;
    if (lines[end] !== END) throw new Error(`docs/errors.md line ${n + 1}: ${BEGIN} without ${END}`);
    out.push(...codeTable(heading), END);
    n = end;
  }
  const missing = ERROR_AREAS.filter((a) => !seen.has(a));
  if (missing.length > 0)
    throw new Error(`docs/errors.md lacks a section '## <area>' with the markers for: ${missing.join(', ')}`);
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const current = readFileSync(ERRORS_DOC, 'utf8');
  const next = withTables(current);
  if (process.argv.includes('--write')) {
    if (next !== current) writeFileSync(ERRORS_DOC, next);
  } else process.stdout.write(next);
}

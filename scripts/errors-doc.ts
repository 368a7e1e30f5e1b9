/**
 * docs/errors.md from the catalogue (lib/error-codes.ts): `npx tsx scripts/errors-doc.ts --write`
 * rewrites it; without --write it prints it. test/errors-doc.test.ts checks the two agree.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_AREAS, ERROR_CODES, ERROR_INTRO, type ErrorCodeInfo } from '../lib/error-codes.js';

export const ERRORS_DOC = join(dirname(fileURLToPath(import.meta.url)), '../docs/errors.md');

export function renderErrorsDoc(): string {
  const out: string[] = [ERROR_INTRO, ''];
  const entries = Object.entries(ERROR_CODES) as [string, ErrorCodeInfo][];
  for (const area of ERROR_AREAS) {
    out.push(`## ${area.title}`, '');
    if (area.before) out.push(area.before, '');
    const rows = entries.filter(([, i]) => i.area === area.title);
    if (rows.length > 0) {
      out.push('| code | severity | meaning |', '|---|---|---|');
      for (const [code, i] of rows)
        out.push(
          `| \`${code}\` | ${i.fatal ? 'fatal (exit 3)' : i.severity} | ${i.meaning}${i.retriable ? ' *(retriable)*' : ''} |`,
        );
      out.push('');
    }
    if (area.after) out.push(area.after, '');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = renderErrorsDoc();
  if (process.argv.includes('--write')) {
    if (readFileSync(ERRORS_DOC, 'utf8') !== text) writeFileSync(ERRORS_DOC, text);
  } else process.stdout.write(text);
}

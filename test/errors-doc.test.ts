import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_AREAS, ERROR_CODES } from '../lib/error-codes.js';
import { ERRORS_DOC, renderErrorsDoc } from '../scripts/errors-doc.js';
import { ROOT } from './support/cli.js';

/**
 * The error-code catalogue (lib/error-codes.ts) is the one definition: lib/errors.ts accepts only its
 * codes (the compiler checks every issue() and AuditError), docs/errors.md is generated from it, and
 * no code outside it is written as a literal anywhere in the sources.
 */
const DIRS = [
  'cli',
  'collectors',
  'processor',
  'transport',
  'lib',
  'schema',
  'alerts',
  'report',
  'pipeline',
  'sinks',
  'metrics',
];

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('error-codes.ts')) out.push(p);
  }
  return out;
}

const codes = Object.keys(ERROR_CODES);
const areas = new Set(codes.map((c) => c.split('_')[0]!));
const text = DIRS.flatMap((d) => sources(join(ROOT, d))).map((f) => readFileSync(f, 'utf8'));

describe('the error-code catalogue', () => {
  it('docs/errors.md is generated from it (npx tsx scripts/errors-doc.ts --write)', () => {
    expect(readFileSync(ERRORS_DOC, 'utf8')).toBe(renderErrorsDoc());
  });

  it('holds every code the sources write as a literal', () => {
    const re = /['"`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)['"`]/g;
    const found = new Set<string>();
    for (const t of text)
      for (const m of t.matchAll(re)) if (areas.has(m[1]!.split('_')[0]!)) found.add(m[1]!);
    expect(found.size).toBeGreaterThan(60);
    expect([...found].filter((c) => !codes.includes(c)).sort()).toEqual([]);
  });

  it('has no dead entry: every code is used in the sources', () => {
    const all = text.join('\n');
    expect(codes.filter((c) => !all.includes(c)).sort()).toEqual([]);
  });

  it('places every code in a documented area, and fatal codes are errors', () => {
    const titles = new Set(ERROR_AREAS.map((a) => a.title));
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(titles.has(info.area), code).toBe(true);
      if (info.fatal) expect(info.severity, code).toBe('error');
    }
  });
});

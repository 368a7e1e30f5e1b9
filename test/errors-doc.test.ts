import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/cli.js';

/**
 * Every stable error code the code can emit is documented in docs/errors.md. Codes are the quoted
 * SCREAMING_SNAKE_CASE literals of the source (not tests) with a known area prefix.
 */
const AREAS = [
  'AUDIT',
  'CAPTURE',
  'PCAP',
  'PCAPNG',
  'PACKET',
  'CONNTRACK',
  'FLOW',
  'LIVE',
  'INVENTORY',
  'SNAPSHOT',
  'TIMELINE',
  'POLICY',
  'MESSAGE',
  'STORE',
  'KAFKA',
  'SPOOL',
  'PROCESS',
  'PIPELINE',
  'KUBE',
  'WATCH',
  'RECORDER',
  'OUTPUT',
  'INTERNAL',
  'ALERTS',
];
const DIRS = ['cli', 'collectors', 'processor', 'transport', 'lib', 'schema', 'alerts', 'report'];

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

describe('docs/errors.md', () => {
  it('documents every error code', () => {
    const codes = new Set<string>();
    const re = /['"`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)['"`]/g;
    for (const d of DIRS)
      for (const f of sources(join(ROOT, d))) {
        for (const m of readFileSync(f, 'utf8').matchAll(re)) {
          if (AREAS.includes(m[1]!.split('_')[0]!)) codes.add(m[1]!);
        }
      }
    expect(codes.size).toBeGreaterThan(40);
    const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
    const missing = [...codes].filter((c) => !doc.includes(`\`${c}\``)).sort();
    expect(missing).toEqual([]);
  });
});

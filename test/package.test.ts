import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from './support/cli.js';

/** What ships (dist/, built by the tests' global setup) holds no test code and needs no dev package. */

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
  );
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

describe('the package', () => {
  const js = files(join(ROOT, 'dist')).filter((f) => f.endsWith('.js'));

  it('dist/ has no tests and no test helpers', () => {
    expect(js.length).toBeGreaterThan(50);
    const helpers = js
      .map((f) => relative(ROOT, f))
      .filter((f) => /\.test\.js$|\/(arbitrary|fixtures|craft)\.js$/.test(f));
    expect(helpers).toEqual([]);
  });

  it('dist/ imports no devDependency', () => {
    const dev = Object.keys(pkg.devDependencies);
    const offenders: string[] = [];
    for (const f of js) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/(?:from|import\()\s*['"]([^'".][^'"]*)['"]/g)) {
        const name = m[1]!.startsWith('@') ? m[1]!.split('/').slice(0, 2).join('/') : m[1]!.split('/')[0]!;
        if (dev.includes(name)) offenders.push(`${relative(ROOT, f)}: ${name}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('--version is the version in package.json', async () => {
    const r = await runCli(['--version']);
    expect(r.stdout).toBe(`netpol-audit ${pkg.version}\n`);
  });
});

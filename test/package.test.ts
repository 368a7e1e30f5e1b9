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

describe('the supported Node.js versions, one list', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  const nvmrc = readFileSync(join(ROOT, '.nvmrc'), 'utf8').trim();

  it('engines names Node.js 22, 24 and 26 (as new as @platformatic/kafka asks), and the version bootstrap installs (.nvmrc) is a 24 within them', () => {
    expect(pkg.engines.node).toBe('^22.22.0 || ^24.6.0 || ^26.0.0');
    const kafka = JSON.parse(
      readFileSync(join(ROOT, 'node_modules/@platformatic/kafka/package.json'), 'utf8'),
    ) as { engines: { node: string } };
    expect(kafka.engines.node).toBe('>= 22.22.0 || >= 24.6.0');
    const m = /^24\.(\d+)\.\d+$/.exec(nvmrc);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(6);
  });

  it('the Containerfile and the offline image script build with the same Node.js', () => {
    const containerfile = readFileSync(join(ROOT, 'Containerfile'), 'utf8');
    expect(containerfile).toContain(`ARG NODE_VERSION=${nvmrc}\n`);
    expect(readFileSync(join(ROOT, 'scripts/build-image.sh'), 'utf8')).toContain(
      'NODE_VERSION=$(cat .nvmrc)',
    );
  });

  it('the tests run on a supported Node.js (CI: the one bootstrap installs)', () => {
    const [major, minor] = process.versions.node.split('.').map(Number);
    expect([22, 24, 26]).toContain(major);
    expect(minor).toBeGreaterThanOrEqual(major === 22 ? 22 : 6);
  });
});

/**
 * scripts/programs.tsv is the one list of external programs: scripts/bootstrap.sh installs its
 * packages, tests require programs through it (test/support/programs.ts). These tests keep the list
 * and the sources in step, so a new program a test or benchmark runs fails here, in review, rather
 * than on a fresh machine whose bootstrap did not install it; and they run the bootstrap's own
 * detection under a PATH that lacks every program, as on a machine as bare as CI's.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/cli.js';
import { readPrograms } from './support/programs.js';

/** Where the project's own code and scripts live (examples/ scripts are demos a user runs by hand). */
const SOURCE_DIRS = [
  'cli',
  'collectors',
  'lib',
  'processor',
  'schema',
  'transport',
  'alerts',
  'report',
  'pipeline',
  'sinks',
  'metrics',
  'deploy',
  'bench',
  'scripts',
  'test',
  '.ci',
];

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name === 'node_modules' || name === 'out' || name === 'corpus' || name === 'fixtures') continue;
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(ts|sh)$/.test(name) || (dir.endsWith('.ci') && !name.includes('.'))) out.push(path);
    }
  };
  for (const d of SOURCE_DIRS) walk(join(ROOT, d));
  return out;
}

/**
 * The programs a source file runs, as far as they are written literally: the first argument of
 * spawn/execFile (and this repository's sh/run/inNs wrappers), the command `ip netns exec` runs,
 * an executable's default (`tcpdumpPath ?? 'tcpdump'`), absolute /usr/bin and /usr/sbin paths, and
 * `command -v` / `type -P` probes in shell scripts.
 */
function programsRun(text: string): string[] {
  const found = new Set<string>();
  const patterns = [
    /\b(?:spawn|spawnSync|execFile|execFileSync|sh|run)\(\s*'([\w.+-]+)'/g,
    /\binNs\([^,]+,\s*'([\w.+-]+)'/g,
    /'netns',\s*'exec',\s*[^,]+,\s*'([\w.+-]+)'/g,
    /\w+Path\s*\?\?\s*'([\w.+-]+)'/g,
    /'\/(?:usr\/)?s?bin\/([\w.+-]+)'/g,
    /\b(?:command -v|type -P)\s+"?([\w.+-]+)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) found.add(m[1]);
  return [...found];
}

describe('scripts/programs.tsv', () => {
  const programs = readPrograms();
  const listed = new Set(programs.map((p) => p.program));

  it('the scanner finds the programs written in the usual ways (it can fail)', () => {
    expect(
      programsRun(
        "spawn('nft', ['-f']); execFileSync('editcap', []); inNs(t.node, 'sysctl', []); " +
          "spawn('ip', ['netns', 'exec', t.node, 'nft', '-f']); opts.tcpdumpPath ?? 'tcpdump'; " +
          "spawnSync('/usr/sbin/softflowd', []); command -v java >/dev/null; spawn(process.execPath, [])",
      ).sort(),
    ).toEqual(['editcap', 'ip', 'java', 'nft', 'softflowd', 'sysctl', 'tcpdump']);
  });

  it('lists every program a source file runs', () => {
    // Not external programs: node itself, and variables the patterns can catch in shell scripts.
    const notPrograms = new Set(['node', 'bash', 'sh']);
    const unlisted: string[] = [];
    const files = sourceFiles();
    expect(files.length).toBeGreaterThan(50);
    for (const file of files) {
      if (file.endsWith('test/programs.test.ts')) continue; // its own examples above
      for (const p of programsRun(readFileSync(file, 'utf8')))
        if (!listed.has(p) && !notPrograms.has(p)) unlisted.push(`${relative(ROOT, file)}: ${p}`);
    }
    expect(unlisted, 'add these to scripts/programs.tsv with their Debian package').toEqual([]);
  });

  it('lists no program that nothing runs any more', () => {
    const text = sourceFiles()
      .filter((f) => !f.endsWith('test/programs.test.ts') && !f.endsWith('scripts/bootstrap.sh'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const stale = [...listed].filter(
      (p) => !new RegExp(`['"/ ]${p.replace(/[.+]/g, '\\$&')}['" ]`).test(text),
    );
    expect(stale).toEqual([]);
  });

  it('the bootstrap, on a PATH with none of the programs, names every package (and nothing installed)', () => {
    const emptyPath = mkdtempSync(join(tmpdir(), 'netpol-bare-path-'));
    const bootstrap = (args: string[]) =>
      spawnSync('/bin/bash', [join(ROOT, 'scripts/bootstrap.sh'), '--check', ...args], {
        env: { PATH: emptyPath },
        encoding: 'utf8',
      });
    const all = bootstrap(['--tests']);
    expect(all.stderr).toBe('');
    expect(all.status).toBe(1);
    const lines = all.stdout.trim().split('\n');
    const debian = [...new Set(programs.filter((p) => p.pkg !== '-').map((p) => p.pkg))];
    const elsewhere = programs.filter((p) => p.pkg === '-').map((p) => `${p.program}: not from Debian`);
    expect(lines.filter((l) => !l.includes(':')).sort()).toEqual(debian.sort());
    expect(lines.filter((l) => l.includes(':')).map((l) => l.replace(/ \(.*$/, ''))).toEqual(elsewhere);
    expect(lines).toContain('nftables');

    // Without --tests: only what running netpol-audit needs.
    const run = bootstrap([]);
    const runPkgs = [...new Set(programs.filter((p) => p.need === 'run').map((p) => p.pkg))];
    expect(run.stdout.trim().split('\n').sort()).toEqual(runPkgs.sort());
  });
});

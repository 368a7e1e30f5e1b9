import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT } from './cli.js';

/**
 * The external programs the project runs, from scripts/programs.tsv: the one list that
 * scripts/bootstrap.sh installs from and that tests require programs through, so a test cannot need a
 * program the bootstrap does not install (test/programs.test.ts keeps the sources and the list in step).
 */
export interface Program {
  program: string;
  /** Debian package, or '-' when it does not come from Debian. */
  pkg: string;
  need: 'run' | 'tests';
}

export const PROGRAMS_TSV = resolve(ROOT, 'scripts/programs.tsv');

export function readPrograms(): Program[] {
  const out: Program[] = [];
  for (const [i, line] of readFileSync(PROGRAMS_TSV, 'utf8').split('\n').entries()) {
    if (line === '' || line.startsWith('#')) continue;
    const [program, pkg, need] = line.split('\t');
    if (!program || !pkg || (need !== 'run' && need !== 'tests'))
      throw new Error(
        `scripts/programs.tsv line ${i + 1}: expected program<TAB>package<TAB>run|tests<TAB>who`,
      );
    out.push({ program, pkg, need });
  }
  return out;
}

/** True when `program` is an executable on PATH (a file, not a shell keyword such as `time`). */
export function onPath(program: string): boolean {
  return spawnSync('bash', ['-c', 'type -P "$1"', 'bash', program], { stdio: 'ignore' }).status === 0;
}

/**
 * Throws, naming what to install, unless every program is listed in scripts/programs.tsv and on PATH.
 * A program missing from the list is a bug of the test (the bootstrap would not install it on a fresh
 * machine), not of the machine.
 */
export function requirePrograms(who: string, programs: string[]): void {
  const listed = new Map(readPrograms().map((p) => [p.program, p]));
  const unlisted = programs.filter((p) => !listed.has(p));
  if (unlisted.length > 0)
    throw new Error(
      `${who} runs ${unlisted.join(', ')}: add it to scripts/programs.tsv with its Debian package`,
    );
  const missing = programs
    .filter((p) => !onPath(p))
    .map((p) => `${p} (Debian package ${listed.get(p)?.pkg}; bash scripts/bootstrap.sh --tests installs it)`);
  if (missing.length > 0) throw new Error(`${who} needs: ${missing.join(', ')}`);
}

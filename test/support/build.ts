import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT } from './cli.js';

/**
 * Vitest global setup: some tests run the built CLI (dist/), as an installed netpol-audit runs (for
 * instance as another user, who may not run tsx). Building first means they never test a stale build.
 */
export default function setup(): void {
  // From scratch: a module deleted from the sources must not live on in dist/.
  rmSync(resolve(ROOT, 'dist'), { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [resolve(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
}

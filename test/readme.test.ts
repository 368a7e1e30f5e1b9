import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { README, withReference } from '../scripts/readme-commands.js';

describe('README.md', () => {
  const readme = readFileSync(README, 'utf8');

  it('has the command reference of every command as --help prints it (npx tsx scripts/readme-commands.ts --write)', () => {
    expect(readme).toBe(withReference(readme));
  });

  it('gives the test command that .ci/run calls', () => {
    const ci = readFileSync(new URL('../.ci/run', import.meta.url), 'utf8');
    expect(readme).toContain('bash scripts/bootstrap.sh --tests && npm test');
    expect(ci).toMatch(/^bash scripts\/bootstrap\.sh --tests$/m);
    expect(ci).toMatch(/^npm test$/m);
  });
});

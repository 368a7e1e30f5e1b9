import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli.js';

/**
 * The Containerfile copies the source folders one by one and its build context lets only them in;
 * the build compiles the folders tsconfig.build.json includes. A folder added to one and not the
 * others builds here and fails in the image (it did: whatif/).
 */
describe('the Containerfile builds what the build compiles', () => {
  const include = (
    JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] }
  ).include;

  it('copies every source folder of tsconfig.build.json, and no other', () => {
    const text = readFileSync(join(ROOT, 'Containerfile'), 'utf8');
    const copied = [...text.matchAll(/^COPY (\S+) \1$/gm)].map((m) => m[1]);
    expect([...copied].sort()).toEqual([...include].sort());
  });

  it('lets exactly those folders into the build context (.containerignore and .dockerignore)', () => {
    for (const name of ['.containerignore', '.dockerignore']) {
      const text = readFileSync(join(ROOT, name), 'utf8');
      const dirs = [...text.matchAll(/^!([a-z][\w-]*)\/$/gm)].map((m) => m[1]);
      expect([...dirs].sort(), name).toEqual([...include].sort());
    }
  });

  it('the offline script reads the same list', () => {
    expect(readFileSync(join(ROOT, 'scripts/build-image.sh'), 'utf8')).toContain(
      'tsconfig.build.json").include',
    );
  });
});

import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../schema/flow-record.js';
import {
  type CheckOutput,
  type FlowVerdict,
  pool,
  runCheck,
  runReferenceBatch,
} from './reference/harness.js';
import { ROOT } from './support/cli.js';

/**
 * Published NetworkPolicy examples (Kubernetes docs and the kubernetes-network-policy-recipes
 * walkthroughs) with the outcome their text states, quoted in each case. Both the Python reference and
 * the engine's `check` command must reach that outcome. Fixtures: test/fixtures/recipes/<name>/,
 * written by test/reference/build-recipes.ts.
 */

interface RecipeCase {
  name: string;
  flow: FlowRecord;
  expect: { allowed: boolean; egress?: boolean; ingress?: boolean };
  quote: string;
  quoteSource: string;
}

interface Recipe {
  name: string;
  dir: string;
  title: string;
  cases: RecipeCase[];
}

const RECIPES_DIR = resolve(ROOT, 'test/fixtures/recipes');
const recipes: Recipe[] = readdirSync(RECIPES_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => {
    const dir = join(RECIPES_DIR, d.name);
    const doc = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as {
      title: string;
      cases: RecipeCase[];
    };
    return { name: d.name, dir, title: doc.title, cases: doc.cases };
  })
  .sort((a, b) => a.name.localeCompare(b.name));

let tmp: string;
const reference = new Map<string, FlowVerdict[]>();
const engine = new Map<string, CheckOutput>();

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'netpol-recipes-'));
  const jobs = await Promise.all(
    recipes.map(async (r) => {
      const flows = join(tmp, `${r.name}.jsonl`);
      await writeFile(flows, r.cases.map((c) => `${JSON.stringify(c.flow)}\n`).join(''));
      return { cluster: join(r.dir, 'cluster.json'), flows, out: join(tmp, `${r.name}.out`) };
    }),
  );
  const [refs, checks] = await Promise.all([
    runReferenceBatch(tmp, jobs, true),
    pool(
      2,
      jobs.map((job) => () => runCheck(job.cluster, job.flows, true)),
    ),
  ]);
  recipes.forEach((r, i) => {
    reference.set(r.name, refs[i]!);
    engine.set(r.name, checks[i]!);
  });
  // One CLI process per recipe on a shared machine: allow for a slow start, nothing here measures speed.
}, 300_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

function assertVerdict(who: string, c: RecipeCase, v: FlowVerdict | undefined, extra = ''): void {
  const why = `${who}: ${c.name}\n  expected ${JSON.stringify(c.expect)} because "${c.quote}" (${c.quoteSource})\n  got ${JSON.stringify(v)}${extra}`;
  expect(v, why).toBeDefined();
  expect(v!.allowed, why).toBe(c.expect.allowed);
  if (c.expect.egress !== undefined) expect(v!.egress.allowed, why).toBe(c.expect.egress);
  if (c.expect.ingress !== undefined) expect(v!.ingress.allowed, why).toBe(c.expect.ingress);
}

it('has the published examples', () => {
  expect(recipes.length).toBeGreaterThanOrEqual(12);
  for (const r of recipes) expect(r.cases.length, r.name).toBeGreaterThan(0);
});

describe.each(recipes.map((r) => [r.name, r] as const))('%s', (_name, recipe) => {
  it('the reference reaches the documented outcome', () => {
    const verdicts = reference.get(recipe.name)!;
    expect(verdicts).toHaveLength(recipe.cases.length);
    for (const [i, c] of recipe.cases.entries()) assertVerdict('reference', c, verdicts[i]);
  });

  it('netpol-audit check reaches the documented outcome', () => {
    const out = engine.get(recipe.name)!;
    const stderr = `\n  check exit ${out.code}, stderr: ${out.stderr.slice(0, 1500)}`;
    for (const c of recipe.cases) assertVerdict('check', c, out.byId.get(c.flow.id!), stderr);
  });
});

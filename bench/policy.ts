import { compilePolicyIndex, PolicyCompiler, type PolicyIndex } from '../processor/policy/index.js';
import { DEFAULT_SIZES, generateCluster, generateFlows } from './policy-cluster.js';

/**
 * Policy engine benchmark: cold compile, recompile after one policy edit (fresh and incremental), cached
 * and uncached verdict throughput, heap after compile.
 * `npx tsx bench/policy.ts [seed]`; for steadier heap figures `node --expose-gc --import tsx bench/policy.ts`.
 * Rates are given per CPU second (process.cpuUsage: what one core does, even on a shared machine) and
 * per wall second.
 */

const seed = Number(process.argv[2] ?? 0x5eed1234);
const gc = (globalThis as { gc?: () => void }).gc;

function heapMiB(): number {
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Runs fn, returns [cpu ms, wall ms]. */
function measure(fn: () => void): [number, number] {
  const c = cpuMs();
  const w = performance.now();
  fn();
  return [cpuMs() - c, performance.now() - w];
}

const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));

const cluster = generateCluster(seed, DEFAULT_SIZES);
const flows = generateFlows(cluster, seed, 200_000);
const heapBefore = heapMiB();

let compiled!: ReturnType<typeof compilePolicyIndex>;
const [compileCpu, compileWall] = measure(() => {
  compiled = compilePolicyIndex(cluster);
});
const index = compiled.index as PolicyIndex;
const heapAfter = heapMiB();

let allowed = 0;
const [firstCpu, firstWall] = measure(() => {
  for (const q of flows) if (index.evaluate(q).allowed) allowed++;
});
const afterFirst = index.stats();

const ROUNDS = 20;
let sink = 0;
const [cachedCpu, cachedWall] = measure(() => {
  for (let r = 0; r < ROUNDS; r++) for (const q of flows) if (index.evaluate(q).allowed) sink++;
});

const UNCACHED = 100_000;
const [uncachedCpu, uncachedWall] = measure(() => {
  for (let i = 0; i < UNCACHED; i++)
    if (index.evaluateUncached(flows[i] as (typeof flows)[number]).allowed) sink++;
});

// A watched cluster: one policy edited (a new object), then recompiled, fresh and by a PolicyCompiler
// that compiled the cluster before. Median of EDITS edits, each a different policy.
const EDITS = 21;
const compiler = new PolicyCompiler();
compiler.compile(cluster);
const freshMs: number[] = [];
const incrementalMs: number[] = [];
for (let e = 0; e < EDITS; e++) {
  const policies = [...cluster.networkPolicies];
  const k = (e * 47) % policies.length;
  const p = policies[k] as { metadata: object; spec: Record<string, unknown> };
  policies[k] = { ...p, spec: { ...p.spec, policyTypes: ['Ingress', 'Egress'] } };
  const edited = { ...cluster, networkPolicies: policies };
  freshMs.push(measure(() => compilePolicyIndex(edited))[0]);
  incrementalMs.push(measure(() => compiler.compile(edited))[0]);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;

const s = index.stats();
const cachedRate = rate(ROUNDS * flows.length, cachedCpu);
const uncachedRate = rate(UNCACHED, uncachedCpu);
console.log(
  JSON.stringify(
    {
      seed,
      sizes: DEFAULT_SIZES,
      acceptedPolicies: s.policies,
      issues: compiled.issues.length,
      flows: flows.length,
      allowedShare: +(allowed / flows.length).toFixed(3),
      compileColdMs: { cpu: +compileCpu.toFixed(1), wall: +compileWall.toFixed(1) },
      recompileAfterOneEditCpuMs: {
        fresh: +median(freshMs).toFixed(1),
        incremental: +median(incrementalMs).toFixed(1),
        policiesParsed: compiler.stats.parsed,
        policiesReused: compiler.stats.reused,
      },
      heapAfterCompileMiB: +(heapAfter - heapBefore).toFixed(1),
      heapUsedAfterCompileMiB: +heapAfter.toFixed(1),
      firstPass: {
        cpuMs: +firstCpu.toFixed(1),
        wallMs: +firstWall.toFixed(1),
        verdictsPerCpuSec: rate(flows.length, firstCpu),
      },
      distinctVerdictKeys: afterFirst.verdictsCached,
      identities: s.identities,
      ipClasses: s.ipClasses,
      namedPortProfiles: s.profiles,
      cachedVerdictsPerSec: { cpu: cachedRate, wall: rate(ROUNDS * flows.length, cachedWall) },
      uncachedVerdictsPerSec: { cpu: uncachedRate, wall: rate(UNCACHED, uncachedWall) },
      cachedOverUncached: +(cachedRate / uncachedRate).toFixed(1),
      heapUsedWithCacheMiB: +heapMiB().toFixed(1),
      loadAverage: (await import('node:os')).loadavg().map((x) => +x.toFixed(2)),
      sink,
    },
    null,
    2,
  ),
);

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClusterModel, PodModel } from '../inventory/model.js';
import {
  clusterArb,
  FREE_NAMESPACE,
  flowSpecArb,
  policyArb,
  ruleArb,
  toQuery,
  twinClusterArb,
} from './arbitrary.js';
import { compilePolicyIndex, type PolicyIndex } from './index.js';
import type { PolicyOptions } from './types.js';

/** Properties of NetworkPolicy semantics and of the engine, on random clusters and flows. */

const optionsArb = fc.record({
  ipBlockMatchesPods: fc.boolean(),
  hostNetwork: fc.constantFrom<PolicyOptions['hostNetwork']>('node', 'pod'),
});

const flowsArb = fc.array(flowSpecArb, { minLength: 1, maxLength: 40 });
const manyFlowsArb = fc.array(flowSpecArb, { minLength: 20, maxLength: 120 });
const RUNS = { numRuns: 300 };

function compile(c: ClusterModel, o: PolicyOptions): PolicyIndex {
  return compilePolicyIndex(c, o).index as PolicyIndex;
}

function withPolicies(c: ClusterModel, policies: unknown[]): ClusterModel {
  return { ...c, networkPolicies: policies };
}

type RawPolicy = { metadata: { namespace: string; name: string }; spec: Record<string, unknown> };

describe('engine properties', () => {
  it('the generator produces valid policies (so the properties are not vacuous)', () => {
    fc.assert(
      fc.property(clusterArb, (c) => {
        expect(compilePolicyIndex(c).issues.filter((i) => i.severity === 'error')).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it('cached evaluate equals uncached evaluation of a fresh index, in any order of queries', () => {
    fc.assert(
      fc.property(twinClusterArb, optionsArb, manyFlowsArb, (c, o, flows) => {
        const cached = compile(c, o);
        // Each flow plus its variants with either end swapped for a pod of the same identity: those
        // share the identity part of the cache key, so any other input the key forgets shows up here.
        const sameIdentity = (p: PodModel) =>
          c.pods.filter(
            (x) => x.namespace === p.namespace && JSON.stringify(x.labels) === JSON.stringify(p.labels),
          );
        const queries = flows.flatMap((f) => {
          const q = toQuery(c, f);
          const out = [q];
          if (q.src.pod)
            for (const t of sameIdentity(q.src.pod))
              out.push({ ...q, src: { ip: t.ips[0] as string, pod: t } });
          if (q.dst.pod)
            for (const t of sameIdentity(q.dst.pod))
              out.push({ ...q, dst: { ip: t.ips[0] as string, pod: t } });
          return out;
        });
        // Warm the cache with all queries first (in reverse), so later lookups are hits from other flows.
        for (const q of [...queries].reverse()) cached.evaluate(q);
        const fresh = compile(c, o);
        for (const q of queries) expect(cached.evaluate(q)).toEqual(fresh.evaluateUncached(q));
        // Not vacuous: most lookups were hits on entries made by other flows.
        expect(cached.stats().hits).toBeGreaterThan(0);
        expect(cached.stats().internalErrors).toBe(0);
      }),
      RUNS,
    );
  });

  it('a flow between pods that no policy selects is always allowed', () => {
    fc.assert(
      fc.property(clusterArb, optionsArb, flowsArb, (c, o, flows) => {
        const idx = compile(c, o);
        for (const f of flows) {
          const q = toQuery(c, f);
          const freeSide = (r: typeof q.src) => r.pod === undefined || r.pod.namespace === FREE_NAMESPACE;
          if (!freeSide(q.src) || !freeSide(q.dst)) continue;
          expect(idx.evaluate(q).allowed).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('adding an allow rule to an isolating direction never turns allowed into denied', () => {
    fc.assert(
      fc.property(
        clusterArb,
        optionsArb,
        flowsArb,
        fc.nat(),
        fc.constantFrom<'ingress' | 'egress'>('ingress', 'egress'),
        ruleArb('ingress'),
        ruleArb('egress'),
        (c, o, flows, pick, dir, inRule, egRule) => {
          const policies = c.networkPolicies as RawPolicy[];
          fc.pre(policies.length > 0);
          const target = policies[pick % policies.length] as RawPolicy;
          const spec = target.spec;
          const types = spec.policyTypes as string[] | undefined;
          const list = (spec[dir] as unknown[] | undefined) ?? [];
          // Adding to egress of a policy without policyTypes would change its defaulted policyTypes.
          const isolating = types
            ? types.includes(dir === 'ingress' ? 'Ingress' : 'Egress')
            : dir === 'ingress' || list.length > 0;
          fc.pre(isolating);
          const newSpec = { ...spec, [dir]: [...list, dir === 'ingress' ? inRule : egRule] };
          const after = policies.map((p) => (p === target ? { ...p, spec: newSpec } : p));
          const a = compile(c, o);
          const b = compile(withPolicies(c, after), o);
          for (const f of flows) {
            const q = toQuery(c, f);
            if (a.evaluate(q).allowed) expect(b.evaluate(q).allowed).toBe(true);
          }
        },
      ),
      RUNS,
    );
  });

  it('adding a policy without rules for a direction never turns denied into allowed', () => {
    fc.assert(
      fc.property(clusterArb, optionsArb, flowsArb, policyArb, (c, o, flows, extra) => {
        const spec = { ...extra.spec };
        delete spec.ingress;
        delete spec.egress;
        const policies = [
          ...c.networkPolicies,
          { metadata: { namespace: extra.namespace, name: 'zz-extra' }, spec },
        ];
        const a = compile(c, o);
        const b = compile(withPolicies(c, policies), o);
        for (const f of flows) {
          const q = toQuery(c, f);
          const before = a.evaluate(q);
          const after = b.evaluate(q);
          if (!before.allowed) expect(after.allowed).toBe(false);
          // Per direction too: a policy with no rules can only take away.
          if (!before.ingress.allowed) expect(after.ingress.allowed).toBe(false);
          if (!before.egress.allowed) expect(after.egress.allowed).toBe(false);
        }
      }),
      RUNS,
    );
  });

  it('the order of policies does not matter', () => {
    fc.assert(
      fc.property(clusterArb, optionsArb, flowsArb, fc.nat(), (c, o, flows, seed) => {
        const shuffled = [...c.networkPolicies];
        let s = seed;
        for (let i = shuffled.length - 1; i > 0; i--) {
          s = (s * 1103515245 + 12345) % 2 ** 31;
          const j = s % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
        }
        const a = compile(c, o);
        const b = compile(withPolicies(c, shuffled), o);
        for (const f of flows) {
          const q = toQuery(c, f);
          expect(b.evaluate(q)).toEqual(a.evaluate(q));
        }
        expect(b.rules()).toEqual(a.rules());
      }),
      RUNS,
    );
  });

  it('a verdict is consistent with itself and with explain', () => {
    fc.assert(
      fc.property(clusterArb, optionsArb, flowsArb, (c, o, flows) => {
        const idx = compile(c, o);
        for (const f of flows) {
          const q = toQuery(c, f);
          const v = idx.evaluate(q);
          expect(v.allowed).toBe(v.egress.allowed && v.ingress.allowed);
          expect(v.result).toBe(v.allowed ? 'allowed' : 'denied');
          for (const d of [v.egress, v.ingress]) {
            expect(d.isolated).toBe(d.isolatedBy.length > 0);
            if (d.reason === 'rule-matched') expect(d.rules.length).toBeGreaterThan(0);
            if (d.reason === 'no-rule-matched') expect(d.rules).toEqual([]);
            for (const r of d.rules) expect(d.isolatedBy).toContain(r.policy);
          }
          const e = idx.explain(q);
          expect(e.verdict).toEqual(v);
          for (const [side, d] of [
            [e.egress, v.egress],
            [e.ingress, v.ingress],
          ] as const) {
            const matched = side.rules.filter((r) => r.matched).map((r) => `${r.policy}#${r.rule}`);
            expect(matched).toEqual(d.rules.map((r) => `${r.policy}#${r.rule}`));
            // Every rule row belongs to an isolating policy (a policy without rules has no rows).
            for (const r of side.rules) expect(d.isolatedBy).toContain(r.policy);
            expect(side.isolatedBy).toEqual(d.isolatedBy);
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('an internal engine failure', () => {
  it('is never passed off as a deny: the verdict is ambiguous with reason engine-error, and counted', async () => {
    const { compilePolicyIndex } = await import('./index.js');
    const { emptyCluster } = await import('../inventory/model.js');
    const { index } = compilePolicyIndex(emptyCluster());
    // A query the engine cannot take (no endpoints): evaluate throws inside, and must not say "denied".
    const v = index.evaluate({} as never);
    expect(v.result).toBe('ambiguous');
    expect(v.allowed).toBe(false);
    expect(v.egress.reason).toBe('engine-error');
    expect(v.ingress.reason).toBe('engine-error');
    expect((index as unknown as { stats(): { internalErrors: number } }).stats().internalErrors).toBe(1);
  });
});

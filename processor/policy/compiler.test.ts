import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClusterModel } from '../inventory/model.js';
import { clusterArb, flowSpecArb, nsLabelsArb, policyArb, toQuery } from './arbitrary.js';
import { compilePolicyIndex, PolicyCompiler } from './index.js';
import type { PolicyOptions } from './types.js';

/** PolicyCompiler: compiling a changing cluster incrementally answers exactly as compiling it afresh. */

type Policy = { namespace: string; spec: Record<string, unknown> };

const editArb = fc.oneof(
  fc.record({ op: fc.constant('add' as const), policy: policyArb }),
  fc.record({ op: fc.constant('remove' as const), i: fc.nat() }),
  fc.record({ op: fc.constant('replace' as const), i: fc.nat(), policy: policyArb }),
  fc.record({ op: fc.constant('invalid' as const), i: fc.nat() }),
  fc.record({ op: fc.constant('relabel' as const), ns: fc.nat(), labels: nsLabelsArb }),
);
type Edit =
  | { op: 'add'; policy: Policy }
  | { op: 'remove'; i: number }
  | { op: 'replace'; i: number; policy: Policy }
  | { op: 'invalid'; i: number }
  | { op: 'relabel'; ns: number; labels: Record<string, string> };

const optionsArb = fc.record({
  ipBlockMatchesPods: fc.boolean(),
  hostNetwork: fc.constantFrom<PolicyOptions['hostNetwork']>('node', 'pod'),
});

let named = 0;
const raw = (p: Policy, name = `e${named++}`) => ({
  metadata: { namespace: p.namespace, name },
  spec: p.spec,
});

/** The next cluster: a new array of policies in which every policy not edited is the same object. */
function apply(c: ClusterModel, e: Edit): ClusterModel {
  const policies = [...c.networkPolicies];
  const at = (i: number) => i % Math.max(1, policies.length);
  switch (e.op) {
    case 'add':
      policies.push(raw(e.policy));
      break;
    case 'remove':
      policies.splice(at(e.i), 1);
      break;
    case 'replace':
      if (policies.length > 0) {
        const old = policies[at(e.i)] as { metadata: { name: string } };
        policies[at(e.i)] = raw(e.policy, old.metadata.name);
      }
      break;
    case 'invalid':
      policies.push({
        metadata: { namespace: 'a', name: `bad${named++}` },
        spec: { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/33' } }] }] },
      });
      break;
    case 'relabel': {
      const namespaces = c.namespaces.map((n, i) =>
        i === e.ns % c.namespaces.length
          ? { name: n.name, labels: { ...e.labels, 'kubernetes.io/metadata.name': n.name } }
          : n,
      );
      return { ...c, namespaces, networkPolicies: policies };
    }
  }
  return { ...c, networkPolicies: policies };
}

describe('PolicyCompiler', () => {
  it('after any sequence of edits, answers every flow as a fresh compile does; earlier indexes stay valid', () => {
    fc.assert(
      fc.property(
        clusterArb,
        fc.array(editArb, { maxLength: 8 }),
        fc.array(flowSpecArb, { minLength: 1, maxLength: 25 }),
        optionsArb,
        fc.boolean(),
        (start, edits, flows, options, tightRegistry) => {
          const compiler = new PolicyCompiler(tightRegistry ? 0 : undefined);
          const states = [start];
          for (const e of edits) states.push(apply(states[states.length - 1]!, e));
          const compiled = states.map((c) => {
            const incremental = compiler.compile(c, options);
            const fresh = compilePolicyIndex(c, options);
            expect(incremental.issues).toEqual(fresh.issues);
            for (const f of flows) {
              const q = toQuery(c, f);
              expect(incremental.index.evaluate(q)).toEqual(fresh.index.evaluate(q));
            }
            return incremental.index;
          });
          // The first index, compiled before every edit, still answers for the first cluster.
          const first = compilePolicyIndex(start, options).index;
          for (const f of flows) {
            const q = toQuery(start, f);
            expect(compiled[0]!.evaluate(q)).toEqual(first.evaluate(q));
          }
          expect(compiler.stats.parsed + compiler.stats.reused).toBe(
            states.reduce((n, c) => n + c.networkPolicies.length, 0),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('parses only what is new or edited; a rejected policy is parsed (and reported) every time', () => {
    const c = fc.sample(
      clusterArb.filter((x) => x.networkPolicies.length >= 3),
      { numRuns: 1, seed: 7 },
    )[0]!;
    const n = c.networkPolicies.length;
    const compiler = new PolicyCompiler();
    compiler.compile(c);
    expect(compiler.stats).toEqual({ parsed: n, reused: 0, resets: 0 });

    // One policy edited (a new object under the same name): only it is parsed again.
    const edited = apply(c, {
      op: 'replace',
      i: 1,
      policy: { namespace: 'b', spec: { podSelector: {}, policyTypes: ['Ingress'] } },
    });
    compiler.compile(edited);
    expect(compiler.stats).toEqual({ parsed: n + 1, reused: n - 1, resets: 0 });

    const withBad = apply(edited, { op: 'invalid', i: 0 });
    for (let k = 0; k < 2; k++) {
      const r = compiler.compile(withBad);
      expect(r.issues.filter((i) => i.code === 'POLICY_INVALID_CIDR' || i.severity === 'error')).toHaveLength(
        1,
      );
    }
    expect(compiler.stats).toEqual({ parsed: n + 1 + 2, reused: n - 1 + 2 * n, resets: 0 });
  });

  it('starts afresh once edits have left the registry well beyond what the policies in force use', () => {
    const compiler = new PolicyCompiler(4);
    const policy = (k: number): Policy => ({
      namespace: 'a',
      spec: {
        podSelector: { matchLabels: { app: `v${k}` } },
        ingress: [{ from: [{ podSelector: { matchLabels: { k: `${k}` } } }] }],
      },
    });
    const base = fc.sample(clusterArb, { numRuns: 1, seed: 3 })[0]!;
    // Policy 0 stays the same object throughout; policy 1 is replaced six times, each with a new selector.
    let c = apply(apply({ ...base, networkPolicies: [] }, { op: 'add', policy: policy(0) }), {
      op: 'add',
      policy: policy(1),
    });
    compiler.compile(c);
    for (let k = 2; k <= 7; k++) {
      c = apply(c, { op: 'replace', i: 1, policy: policy(k) });
      compiler.compile(c);
    }
    const { parsed, reused, resets } = compiler.stats;
    expect(resets).toBeGreaterThan(0);
    // Each fresh start forgets the unchanged policy too, so it is parsed once more per reset.
    expect(parsed).toBe(2 + 6 + resets);
    expect(reused).toBe(6 - resets);
  });
});

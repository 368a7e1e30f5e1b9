import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateScenario, type KubeObject, kubeList, type Scenario, toJsonl } from './reference/generate.js';
import { differences, type FlowVerdict, pool, runCheck, runReferenceBatch } from './reference/harness.js';

/**
 * Differential test: the engine (`netpol-audit check`) against the independent Python reference
 * (test/reference/netpol_reference.py) on generated clusters. Each scenario is judged by the reference
 * alone in its own small snapshot; for the CLI, BATCH scenarios share one snapshot (their names and
 * addresses are disjoint by construction), because each CLI run is a whole process.
 *
 * NETPOL_DIFF_SCENARIOS (default 200), NETPOL_DIFF_FLOWS (default 50) and NETPOL_DIFF_FIRST_SEED
 * (default 1) widen or move the search; a failure prints the seed to replay with
 * generateScenario(seed).
 */

const SCENARIOS = Number(process.env.NETPOL_DIFF_SCENARIOS ?? 200);
const FLOWS = Number(process.env.NETPOL_DIFF_FLOWS ?? 50);
const FIRST_SEED = Number(process.env.NETPOL_DIFF_FIRST_SEED ?? 1);
// Addresses derive from seed % 250, so one snapshot must hold fewer than 250 consecutive seeds.
const BATCH = 100;
// Generous: the machine is shared and each CLI run is a whole process; no test here is about speed.
const TIMEOUT_MS = Math.max(180_000, SCENARIOS * FLOWS * 10);

let dir: string;
const scenarios: Scenario[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'netpol-diff-'));
  for (let i = 0; i < SCENARIOS; i++) scenarios.push(generateScenario(FIRST_SEED + i, { flows: FLOWS }));
  await Promise.all(
    scenarios.map(async (s) => {
      await writeFile(join(dir, `s${s.seed}.json`), JSON.stringify(kubeList(s.items)));
      await writeFile(join(dir, `s${s.seed}.jsonl`), toJsonl(s.flows));
    }),
  );
  for (let b = 0; b * BATCH < scenarios.length; b++) {
    const part = scenarios.slice(b * BATCH, (b + 1) * BATCH);
    await writeFile(join(dir, `batch${b}.json`), JSON.stringify(kubeList(part.flatMap((s) => s.items))));
    await writeFile(join(dir, `batch${b}.jsonl`), toJsonl(part.flatMap((s) => s.flows)));
  }
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function describeScenario(s: Scenario, ipBlockMatchesPods: boolean): string {
  const batchFirst = FIRST_SEED + Math.floor((s.seed - FIRST_SEED) / BATCH) * BATCH;
  const batchCount = Math.min(BATCH, FIRST_SEED + SCENARIOS - batchFirst);
  const opt = ipBlockMatchesPods ? '' : ' --ipblock-matches-pods false';
  const brief = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  const pods = s.items
    .filter((o) => o.kind === 'Pod')
    .map(
      (p) =>
        `  ${brief(p)} ${JSON.stringify(p.metadata.labels)} ips=${(p.status.podIPs ?? []).map((x: { ip: string }) => x.ip).join(',')} node=${p.spec.nodeName}${p.spec.hostNetwork ? ' hostNetwork' : ''} phase=${p.status.phase} ports=${JSON.stringify(p.spec.containers.flatMap((c: KubeObject) => c.ports ?? []))}`,
    );
  const namespaces = s.items
    .filter((o) => o.kind === 'Namespace')
    .map((n) => `  ${n.metadata.name} ${JSON.stringify(n.metadata.labels)}`);
  const nodes = s.items
    .filter((o) => o.kind === 'Node')
    .map(
      (n) =>
        `  ${n.metadata.name} ${n.status.addresses.map((a: { address: string }) => a.address).join(',')}`,
    );
  const policies = s.items
    .filter((o) => o.kind === 'NetworkPolicy')
    .map((p) => `  ${brief(p)} ${JSON.stringify(p.spec)}`);
  return [
    `seed ${s.seed}; replay alone: npx tsx test/reference/replay.ts ${s.seed} --flows ${FLOWS}${opt}; as the test ran it (shared snapshot): npx tsx test/reference/replay.ts ${batchFirst} --count ${batchCount} --flows ${FLOWS}${opt}`,
    'namespaces:',
    ...namespaces,
    'nodes:',
    ...nodes,
    'pods:',
    ...pods,
    'policies:',
    ...policies,
  ].join('\n');
}

describe.each([true, false])(
  'engine agrees with the reference (ipblock-matches-pods %s)',
  (ipBlockMatchesPods) => {
    it(
      'on every flow of every generated scenario',
      async () => {
        const jobs = scenarios.map((s) => ({
          cluster: join(dir, `s${s.seed}.json`),
          flows: join(dir, `s${s.seed}.jsonl`),
          out: join(dir, `s${s.seed}.${ipBlockMatchesPods}.out`),
        }));
        const batches = Math.ceil(scenarios.length / BATCH);
        const [reference, checks] = await Promise.all([
          runReferenceBatch(dir, jobs, ipBlockMatchesPods),
          pool(
            2,
            Array.from(
              { length: batches },
              (_, b) => () =>
                runCheck(join(dir, `batch${b}.json`), join(dir, `batch${b}.jsonl`), ipBlockMatchesPods),
            ),
          ),
        ]);
        const engine = new Map<string, FlowVerdict>();
        for (const c of checks) for (const [id, v] of c.byId) engine.set(id, v);

        const failures: string[] = [];
        let compared = 0;
        scenarios.forEach((s, i) => {
          const refVerdicts = reference[i]!;
          expect(refVerdicts.length, `reference verdicts for seed ${s.seed}`).toBe(s.flows.length);
          const bad: string[] = [];
          s.flows.forEach((flow, j) => {
            compared++;
            const diff = differences(refVerdicts[j]!, engine.get(flow.id!));
            if (diff.length)
              bad.push(
                `flow ${flow.id}: ${JSON.stringify({ proto: flow.proto, src: flow.src, dst: flow.dst })}\n    ${diff.join('\n    ')}\n    reference: ${JSON.stringify(refVerdicts[j])}`,
              );
          });
          if (bad.length)
            failures.push(
              `${describeScenario(s, ipBlockMatchesPods)}\nmismatches:\n  ${bad.slice(0, 5).join('\n  ')}`,
            );
        });
        const stderr = checks.map((c) => c.stderr.trim()).filter(Boolean);
        expect(
          failures.length,
          `${failures.length} of ${scenarios.length} scenarios disagree (${compared} flows compared, ipblock-matches-pods ${ipBlockMatchesPods}); first ones:\n\n${failures.slice(0, 3).join('\n\n')}\n\nengine stderr:\n${stderr.join('\n').slice(0, 2000)}`,
        ).toBe(0);
        expect(compared).toBe(scenarios.reduce((n, s) => n + s.flows.length, 0));
      },
      TIMEOUT_MS,
    );
  },
);

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateScenario, kubeList, toJsonl } from './generate.js';
import { differences, type ReferenceJob, runCheck, runReferenceBatch } from './harness.js';

/**
 * Replays generated scenarios of the differential test and prints where the engine and the reference
 * disagree. With --count N, seeds SEED..SEED+N-1 share one snapshot for the engine, as in the test
 * (some engine faults only show when many policies share a snapshot). Leaves the snapshots, flows and
 * reference verdicts in the output directory.
 *
 *   npx tsx test/reference/replay.ts SEED [--count N] [--flows N] [--ipblock-matches-pods true|false] [--out DIR]
 */

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const first = Number(args[0]);
if (!Number.isInteger(first)) {
  process.stderr.write(
    'usage: replay.ts SEED [--count N] [--flows N] [--ipblock-matches-pods true|false] [--out DIR]\n',
  );
  process.exit(2);
}
const count = Number(opt('count', '1'));
const flows = Number(opt('flows', '50'));
const ipBlockMatchesPods = opt('ipblock-matches-pods', 'true') === 'true';
const out = resolve(opt('out', `/tmp/netpol-replay-${first}-${count}`));
mkdirSync(out, { recursive: true });

const scenarios = Array.from({ length: count }, (_, i) => generateScenario(first + i, { flows }));
const jobs: ReferenceJob[] = scenarios.map((s) => {
  const cluster = join(out, `s${s.seed}.json`);
  const flowFile = join(out, `s${s.seed}.jsonl`);
  writeFileSync(cluster, `${JSON.stringify(kubeList(s.items), null, 2)}\n`);
  writeFileSync(flowFile, toJsonl(s.flows));
  return { cluster, flows: flowFile, out: join(out, `s${s.seed}.reference.jsonl`) };
});
const snapshot = join(out, 'snapshot.json');
const flowFile = join(out, 'flows.jsonl');
writeFileSync(snapshot, `${JSON.stringify(kubeList(scenarios.flatMap((s) => s.items)), null, 2)}\n`);
writeFileSync(flowFile, toJsonl(scenarios.flatMap((s) => s.flows)));

const [reference, check] = await Promise.all([
  runReferenceBatch(out, jobs, ipBlockMatchesPods),
  runCheck(snapshot, flowFile, ipBlockMatchesPods),
]);
let bad = 0;
let total = 0;
scenarios.forEach((s, i) => {
  s.flows.forEach((flow, j) => {
    total++;
    const diff = differences(reference[i]![j]!, check.byId.get(flow.id!));
    if (!diff.length) return;
    bad++;
    process.stdout.write(
      `${flow.id} ${flow.proto} ${flow.src.ip} -> ${flow.dst.ip}:${flow.dst.port ?? ''}\n  ${diff.join('\n  ')}\n`,
    );
  });
});
process.stdout.write(
  `seeds ${first}..${first + count - 1}: ${bad} of ${total} flows disagree; files in ${out} (engine input: snapshot.json, flows.jsonl)\n`,
);
process.exitCode = bad ? 1 : 0;

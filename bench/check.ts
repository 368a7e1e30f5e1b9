/**
 * `netpol-audit check` against a peer evaluator on the same input, in the same run: the generated
 * cluster (5,000 pods, 200 namespaces, 1,000 policies, with Services) as `kubectl get -o json` prints
 * it, and the same FlowRecords, through
 *   - netpol-audit check (the CLI, built JS under dist/ when present, else through tsx), and
 *   - the independent reference evaluator (test/reference/netpol_reference.py, Python, written from
 *     the Kubernetes docs; naive by design: every flow loops over every policy).
 * Both are timed end to end as processes (wall and CPU, including loading the snapshot); the verdicts
 * are compared flow by flow so the race is between two tools that agree.
 *
 *   npx tsx bench/check.ts [--flows 20000] [--ref-flows 2000]
 *
 * The reference is slow, so it judges the first --ref-flows flows of the same file; rates are per flow.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type FlowRecord, protocolValue } from '../schema/flow-record.js';
import { addServices, kubectlList } from './cluster-objects.js';
import { DEFAULT_SIZES, generateCluster, generateFlows } from './policy-cluster.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'bench/out');
const { values } = parseArgs({
  options: { flows: { type: 'string', default: '20000' }, 'ref-flows': { type: 'string', default: '2000' } },
});
const nFlows = Number(values.flows);
const nRef = Math.min(Number(values['ref-flows']), nFlows);

mkdirSync(OUT, { recursive: true });
const cluster = addServices(generateCluster(7, DEFAULT_SIZES));
const snapshot = join(OUT, 'check-cluster.json');
writeFileSync(snapshot, JSON.stringify(kubectlList(cluster)));
const flows: FlowRecord[] = generateFlows(cluster, 11, nFlows).map((q, i) => ({
  v: 1,
  start: 1_763_884_800_000 + i,
  end: 1_763_884_800_050 + i,
  proto: protocolValue(q.proto),
  src: { ip: q.src.ip, port: 40000 + (i % 20000) },
  dst: q.port === undefined ? { ip: q.dst.ip } : { ip: q.dst.ip, port: q.port },
  packets: { fwd: 3, rev: 2 },
  bytes: { fwd: 200, rev: 100 },
  state: 'established',
  observer: { source: 'bench' },
}));
const allFile = join(OUT, 'check-flows.jsonl');
const refFile = join(OUT, 'check-flows-ref.jsonl');
writeFileSync(allFile, `${flows.map((f) => JSON.stringify(f)).join('\n')}\n`);
writeFileSync(
  refFile,
  `${flows
    .slice(0, nRef)
    .map((f) => JSON.stringify(f))
    .join('\n')}\n`,
);

interface Timed {
  wall: number;
  cpu: number;
  rssMb: number;
  stdout: string;
}

/** Runs argv under /usr/bin/time -f for CPU and peak RSS; wall from our clock. */
function timed(argv: string[], input: string): Timed {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', ...argv], {
    input: readFileSync(input),
    maxBuffer: 1 << 30,
    cwd: ROOT,
  });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0 && r.status !== 1)
    throw new Error(`${argv.join(' ')} failed: ${r.stderr.toString().slice(-2000)}`);
  const last = r.stderr.toString().trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wall, cpu: last[0]! + last[1]!, rssMb: last[2]! / 1024, stdout: r.stdout.toString() };
}

const built = join(ROOT, 'dist/cli/index.js');
const cli = existsSync(built) ? ['node', built] : ['node', '--import', 'tsx', join(ROOT, 'cli/index.ts')];
const ours = timed([...cli, 'check', '--cluster', snapshot], allFile);
const oursRef = timed([...cli, 'check', '--cluster', snapshot], refFile);
const ref = timed(
  ['python3', join(ROOT, 'test/reference/netpol_reference.py'), '--cluster', snapshot],
  refFile,
);

const ourVerdicts = oursRef.stdout
  .trim()
  .split('\n')
  .map((l) => (JSON.parse(l) as { verdict: { allowed: boolean } }).verdict.allowed);
const refVerdicts = ref.stdout
  .trim()
  .split('\n')
  .map((l) => (JSON.parse(l) as { allowed: boolean }).allowed);
let disagree = 0;
for (let i = 0; i < nRef; i++) if (ourVerdicts[i] !== refVerdicts[i]) disagree++;

const rate = (n: number, s: number) => Math.round(n / s).toLocaleString('en-US');
console.log(
  `cluster: ${cluster.pods.length} pods, ${cluster.namespaces.length} namespaces, ${cluster.networkPolicies.length} policies, ${cluster.services.length} services`,
);
console.log('tool                       flows    wall s   cpu s  flows/s (wall)  flows/cpu-s  peak RSS');
const row = (name: string, n: number, t: Timed) =>
  console.log(
    `${name.padEnd(26)} ${String(n).padStart(6)} ${t.wall.toFixed(2).padStart(8)} ${t.cpu.toFixed(2).padStart(7)} ${rate(n, t.wall).padStart(15)} ${rate(n, t.cpu).padStart(12)} ${t.rssMb.toFixed(0).padStart(6)} MB`,
  );
row('netpol-audit check', nFlows, ours);
row('netpol-audit check (small)', nRef, oursRef);
row('reference (python)', nRef, ref);
console.log(
  `ratio, same ${nRef} flows end to end: ${(ref.wall / oursRef.wall).toFixed(1)}x wall, ${(ref.cpu / oursRef.cpu).toFixed(1)}x CPU; per flow at full size: ${(nFlows / ours.cpu / (nRef / ref.cpu)).toFixed(0)}x`,
);
console.log(`verdicts compared: ${nRef}, disagreements: ${disagree}`);
if (disagree > 0) process.exitCode = 1;

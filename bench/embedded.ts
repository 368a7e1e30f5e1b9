// Throughput of the embedded wiring (`netpol-audit audit`: judge + SQLite store in one process, no
// Kafka) on shop-shaped flows, against a baseline checkout of the code in the same run:
//   npx tsx bench/embedded.ts [--flows 300000] [--runs 3] [--mix shop|mixed] [--baseline DIR | --base-ref REF]
//                             [--baseline-node PATH]
// Without --baseline, REF (default 09cb41e: the code before issue #15's embedded work, with the store
// counting a long flow once, as now, so both write the same store; the numbers in docs/pipeline.md of
// 5 Dec were taken against d83082b, before that change) is checked out with `git worktree add
// --detach` into a temporary directory, and removed afterwards.
// Each measurement is a child process (`--child ROOT`) that imports the stages from ROOT and wires them
// as pipeline/embedded.ts does: ClusterView (openCluster, as audit) → FlowProcessor → TapSink →
// StoreRecorder → AuditStore. Baseline and current alternate, runs times each; the best run of each
// counts. Each child prints flows/s (judge + store up to the last commit, flow generation excluded),
// flows per CPU-second of the process (steadier than wall time on a shared machine), its peak RSS
// (VmHWM, flows array included) and a digest of the store it wrote; the parent checks the digests
// are equal (same results) and prints both ratios. --baseline-node runs the baseline's children with
// another Node.js binary (give a --baseline checkout whose node_modules were built for it: SQLite is
// a native module), so two runtimes are compared on the same code. Nothing here asserts a speed.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { FlowRecord } from '../schema/flow-record.js';
import { SHOP_CLUSTER, shopFlow, storeDigest } from '../test/pipeline/support.js';

const { values: args } = parseArgs({
  options: {
    flows: { type: 'string', default: '300000' },
    runs: { type: 'string', default: '3' },
    mix: { type: 'string', default: 'shop' },
    baseline: { type: 'string' },
    'base-ref': { type: 'string', default: '09cb41e' },
    child: { type: 'string' },
    'no-baseline': { type: 'boolean', default: false },
    /** The Node.js binary that runs the baseline's children (default: this one). */
    'baseline-node': { type: 'string' },
    /** With --child: load the compiled dist/ (npm run build) instead of the sources: for --cpu-prof line numbers. */
    dist: { type: 'boolean', default: false },
    /** With --child: write the store there and leave it, for the parent to digest (with its own SQLite). */
    store: { type: 'string' },
    /** With --child: the recorder's batch size (default: the recorder's own). */
    batch: { type: 'string' },
  },
});
const HERE = resolve(import.meta.dirname, '..');
const total = Number(args.flows);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/**
 * Flow i of the "mixed" stream: shop pairs (70%), a Service ClusterIP without NAT (10%, judged
 * against its backends) and with conntrack's DNAT (10%), and egress to 5000 distinct outside
 * addresses (10%), so the judge's per-conversation cache sees misses as real traffic brings them.
 */
function mixedFlow(i: number): FlowRecord {
  const f = shopFlow(i);
  const roll = i % 10;
  if (roll === 7)
    return { ...f, src: { ip: '10.244.1.10', port: f.src.port }, dst: { ip: '10.96.12.34', port: 8080 } };
  if (roll === 8)
    return {
      ...f,
      src: { ip: '10.244.1.10', port: f.src.port },
      dst: { ip: '10.96.40.1', port: 9000 },
      nat: { dst: { ip: '10.244.2.20', port: 9000 } },
    };
  if (roll === 9) {
    const n = (i * 7919) % 5000;
    return { ...f, proto: 'TCP', dst: { ip: `203.0.${n >> 8}.${n & 255}`, port: 443 } };
  }
  return f;
}

function vmHwmMb(): number {
  const m = readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+) kB/);
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

/** One measurement, in this process, of the code under `root`. Prints one JSON line. */
async function child(root: string) {
  const load = (p: string) =>
    import(pathToFileURL(args.dist ? join(root, 'dist', p.replace(/\.ts$/, '.js')) : join(root, p)).href);
  const { openCluster } = await load('pipeline/cluster.ts');
  const { DEFAULT_POLICY_OPTIONS } = await load('processor/policy/types.ts');
  const { FlowProcessor } = await load('processor/processor.ts');
  const { AuditStore } = await load('processor/store/index.ts');
  const { StoreRecorder } = await load('sinks/store.ts');
  const { TapSink } = await load('sinks/tee.ts');
  const gen = args.mix === 'mixed' ? mixedFlow : shopFlow;
  const flows: FlowRecord[] = Array.from({ length: total }, (_, i) => gen(i));
  const dir = args.store ? undefined : mkdtempSync(join(tmpdir(), 'npa-bench-embedded-'));
  try {
    const db = args.store ?? join(dir!, 'audit.db');
    const cluster = await openCluster({ snapshots: [SHOP_CLUSTER], policy: { ...DEFAULT_POLICY_OPTIONS } });
    const store = AuditStore.open(db);
    const runId = store.beginRun('embedded', ['bench'], Date.now());
    // As pipeline/embedded.ts wires them.
    let placed = 0;
    const recorder = new StoreRecorder(store, args.batch ? Number(args.batch) : undefined, undefined);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const processor = new FlowProcessor(
      cluster.view,
      new TapSink(recorder, (judged: { record: { src: { kind: string }; dst: { kind: string } } }) => {
        if (judged.record.src.kind !== 'external' || judged.record.dst.kind !== 'external') placed++;
      }),
    );
    for (const f of flows) {
      const wait = processor.write(f);
      if (wait) await wait;
    }
    await processor.close();
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const { rules, policies } = cluster.policiesAt(processor.stats.firstFlow);
    store.recordPolicies(policies, rules, processor.stats.firstFlow);
    store.recordPolicies(policies, rules, processor.stats.lastFlow);
    store.finishRun(runId, {}, Date.now());
    const t1 = performance.now();
    store.close();
    const closeMs = performance.now() - t1;
    const digest = args.store ? '' : digestOf(db);
    console.log(
      JSON.stringify({
        flowsPerSec: (total * 1000) / ms,
        ms,
        flowsPerCpuSec: (total * 1000) / cpuMs,
        cpuMs,
        closeMs,
        peakRssMb: vmHwmMb(),
        stored: recorder.written,
        placed,
        digest,
      }),
    );
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** What the store counted, hashed: equal digests, same results. */
function digestOf(db: string): string {
  return createHash('sha256')
    .update(JSON.stringify(storeDigest(db)))
    .digest('hex')
    .slice(0, 16);
}

interface Measured {
  flowsPerSec: number;
  ms: number;
  flowsPerCpuSec: number;
  cpuMs: number;
  closeMs: number;
  peakRssMb: number;
  stored: number;
  placed: number;
  digest: string;
}

/**
 * One child run of the code under `root`. The parent digests the store the child wrote: a child run
 * by another Node.js (--baseline-node) loads the baseline's SQLite module, built for that Node, and
 * this script's helpers load this checkout's.
 */
function measure(root: string, node = process.execPath): Measured {
  const dir = mkdtempSync(join(tmpdir(), 'npa-bench-embedded-'));
  const db = join(dir, 'audit.db');
  try {
    const r = spawnSync(
      node,
      [
        '--import',
        'tsx',
        join(HERE, 'bench/embedded.ts'),
        '--child',
        root,
        '--flows',
        String(total),
        '--mix',
        args.mix!,
        '--store',
        db,
      ],
      { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 },
    );
    if (r.status !== 0) throw new Error(`measurement of ${root} failed (exit ${r.status})`);
    const m = JSON.parse(r.stdout.trim().split('\n').pop()!) as Measured;
    return { ...m, digest: digestOf(db) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  if (args.child) return child(args.child);
  const runs = Number(args.runs);
  let base = args.baseline;
  let made: string | undefined;
  if (!base && !args['no-baseline']) {
    made = mkdtempSync(join(tmpdir(), 'npa-baseline-'));
    base = join(made, 'tree');
    execFileSync('git', ['worktree', 'add', '--detach', base, args['base-ref']!], {
      cwd: HERE,
      stdio: 'ignore',
    });
    symlinkSync(join(HERE, 'node_modules'), join(base, 'node_modules'));
  }
  const baseNode = args['baseline-node'];
  const label = base
    ? `baseline ${args.baseline ?? args['base-ref']}${baseNode ? ` on node ${execFileSync(baseNode, ['--version'], { encoding: 'utf8' }).trim()}` : ''}`
    : '';
  console.log(`embedded audit, ${fmt(total)} ${args.mix} flows, shop cluster, best of ${runs}`);
  try {
    const results: { base: Measured[]; current: Measured[] } = { base: [], current: [] };
    for (let i = 0; i < runs; i++) {
      if (base) {
        const b = measure(base, args['baseline-node']);
        results.base.push(b);
        console.log(
          `  ${label}: ${fmt(b.flowsPerSec)} flows/s (${fmt(b.flowsPerCpuSec)} per CPU-second), peak RSS ${b.peakRssMb} MB, digest ${b.digest}`,
        );
      }
      const c = measure(HERE);
      results.current.push(c);
      console.log(
        `  current${baseNode ? ` on node ${process.version}` : ''}: ${fmt(c.flowsPerSec)} flows/s (${fmt(c.flowsPerCpuSec)} per CPU-second), peak RSS ${c.peakRssMb} MB, digest ${c.digest}`,
      );
    }
    const best = (xs: Measured[]) => xs.reduce((a, b) => (b.flowsPerSec > a.flowsPerSec ? b : a));
    const c = best(results.current);
    const summary: Record<string, unknown> = {
      flows: total,
      mix: args.mix,
      currentFlowsPerSec: Math.round(c.flowsPerSec),
      currentFlowsPerCpuSec: Math.round(Math.max(...results.current.map((r) => r.flowsPerCpuSec))),
      currentPeakRssMb: Math.max(...results.current.map((r) => r.peakRssMb)),
    };
    if (base) {
      const b = best(results.base);
      const digests = new Set([...results.base, ...results.current].map((r) => r.digest));
      summary.baselineFlowsPerSec = Math.round(b.flowsPerSec);
      summary.baselineFlowsPerCpuSec = Math.round(Math.max(...results.base.map((r) => r.flowsPerCpuSec)));
      summary.cpuRatio = Number(
        ((summary.currentFlowsPerCpuSec as number) / (summary.baselineFlowsPerCpuSec as number)).toFixed(2),
      );
      summary.baselinePeakRssMb = Math.max(...results.base.map((r) => r.peakRssMb));
      summary.ratio = Number((c.flowsPerSec / b.flowsPerSec).toFixed(2));
      summary.sameStore = digests.size === 1;
      console.log(
        `current ${fmt(c.flowsPerSec)} flows/s vs ${label} ${fmt(b.flowsPerSec)} flows/s: ×${summary.ratio} ` +
          `(per CPU-second ×${summary.cpuRatio}); ` +
          `stores ${summary.sameStore ? 'identical' : 'DIFFER'}`,
      );
    }
    console.log(JSON.stringify(summary));
    if (summary.sameStore === false) process.exitCode = 1;
  } finally {
    if (made) {
      execFileSync('git', ['worktree', 'remove', '--force', base!], { cwd: HERE, stdio: 'ignore' });
      rmSync(made, { recursive: true, force: true });
    }
  }
}

await main();

// Profiles `netpol-audit process` (role all) consuming a topic filled beforehand:
//   npx tsx bench/prof-process.ts [--flows 200000] [--out DIR] [--no-prof] [--baseline DIR --runs N]
// Fills a v2 topic with shop flows (KafkaFlowSink, gzip), then runs the processor from
// dist/ under --cpu-prof until it is idle; prints its CPU per flow and the top self-time functions.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startBroker } from '../test/kafka/broker.js';
import { processArgs, shopFlow, storedPackets, storedRecords } from '../test/pipeline/support.js';
import {
  createKafka,
  ensureTopics,
  KafkaFlowSink,
  kafkaSettings,
  topicNames,
} from '../transport/kafka/index.js';

const { values: args } = parseArgs({
  options: {
    flows: { type: 'string', default: '200000' },
    out: { type: 'string' },
    /** Run the processor from the sources through tsx, as bench/pipeline.ts does (default: dist/). */
    tsx: { type: 'boolean', default: false },
    'no-prof': { type: 'boolean', default: false },
    /** Another checkout (its dist/ built) to run alternately with this one on the same topic. */
    baseline: { type: 'string' },
    runs: { type: 'string', default: '1' },
  },
});
const total = Number(args.flows);
const ROOT = resolve(import.meta.dirname, '..');

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

function topSelf(file: string, n = 30): string[] {
  const p = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: Node[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  let all = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]!)!;
    const f = node.callFrame;
    const name = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${f.lineNumber + 1}`;
    const dt = p.timeDeltas[i] ?? 0;
    self.set(name, (self.get(name) ?? 0) + dt);
    all += dt;
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${((100 * v) / all).toFixed(1).padStart(5)}%  ${k}`);
}

const dir = args.out ?? mkdtempSync(join(tmpdir(), 'npa-prof-process-'));
const broker = await startBroker({ heap: '1g' });
try {
  const prefix = `prof-${process.pid}.`;
  const settings = kafkaSettings({
    brokers: broker.brokers,
    topics: topicNames(prefix),
    partitions: { flows: 6, verdicts: 6, violations: 1, deadLetter: 1 },
  });
  const kafka = createKafka(settings, '-prof');
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, settings);
  await admin.disconnect();
  const sink = new KafkaFlowSink({
    settings,
    spoolDir: join(dir, 'spool'),
    wire: 2,
    packSize: 1000,
    // The packs as earlier runs of this file had them (docs/kafka.md compares them).
    compression: 'gzip',
    createTopics: false,
  });
  let totalPackets = 0;
  for (let i = 0; i < total; i++) {
    const f = shopFlow(i);
    totalPackets += f.packets.fwd + f.packets.rev;
    await sink.write(f);
  }
  await sink.close();
  // One processor run of the build under `root`: its own group and store, the topic from the start.
  const runOnce = async (root: string, label: string, n: number) => {
    const db = join(dir, `prof-${n}.db`);
    const profDir = join(dir, `cpuprof-${n}`);
    const group = `${prefix}run-${n}.`;
    const t0 = performance.now();
    const cli = args.tsx
      ? ['--import', 'tsx', join(root, 'cli/index.ts')]
      : [join(root, 'dist/cli/index.js')];
    const prof = args['no-prof'] ? [] : ['--cpu-prof', '--cpu-prof-dir', profDir];
    const pargs = processArgs(broker.brokers.join(','), prefix, db, ['--exit-when-idle', '3000']);
    pargs[pargs.indexOf('--group') + 1] = group;
    const child = spawn(process.execPath, [...prof, ...cli, ...pargs], {
      cwd: root,
      env: { ...process.env, NETPOL_AUDIT_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    let firstAt = 0;
    // When the store held every flow: the processor's exit comes later, after an idle time that
    // starts at its last fetch, not at its last commit, so the exit time does not say when it was done.
    let doneAt = 0;
    // Its CPU from /proc while it runs (the last reading, at most 50 ms before it exits).
    let cpuMs = 0;
    // Its CPU when the first flow was in the store and when all were.
    let cpuFirst = 0;
    let cpuDone = 0;
    // Flows in the store at that first reading: the CPU between the readings is the work of the flows
    // committed after it (those committed by the first reading were judged before it began).
    let flowsAtFirst = 0;
    const poll = setInterval(() => {
      try {
        const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        cpuMs = ((Number(f[11]) + Number(f[12])) * 1000) / 100;
      } catch {}
      if (!doneAt) {
        const packets = storedPackets(db);
        if (!firstAt && packets > 0) {
          firstAt = performance.now();
          cpuFirst = cpuMs;
          flowsAtFirst = Math.round((packets * total) / totalPackets);
        }
        if (packets >= totalPackets) {
          doneAt = performance.now();
          cpuDone = cpuMs;
        }
      }
    }, 50);
    await new Promise<void>((r) => child.on('close', () => r()));
    clearInterval(poll);
    const stats = JSON.parse(out);
    const stored = storedRecords(db);
    const wall = performance.now() - t0;
    // The first flow in the store comes later the more batches a build judges before its first
    // commit: the rate from the start of the process to the last flow is the fair comparison.
    console.log(
      `${label}: ${stats.recorded} recorded, ${stored} stored, ${(wall / 1000).toFixed(1)} s wall incl. start and 3 s idle; ` +
        `first stored after ${Math.round(firstAt - t0)} ms, all after ${Math.round(doneAt - t0)} ms ` +
        `(${Math.round((stored * 1000) / (doneAt - t0))} flows/s from the start, ${Math.round((stored * 1000) / (doneAt - firstAt))} between)`,
    );
    console.log(
      `${label} CPU: ${(cpuMs / 1000).toFixed(2)} s = ${((cpuMs * 1000) / stored).toFixed(1)} µs/flow (start and exit included); ` +
        `${(((cpuDone - cpuFirst) * 1000) / (stored - flowsAtFirst)).toFixed(1)} µs/flow from the first flow stored to the last ` +
        `(${stored - flowsAtFirst} flows committed in between) ` +
        `(${Math.round((100 * (cpuDone - cpuFirst)) / (doneAt - firstAt))}% of a core)`,
    );
    if (!args['no-prof']) {
      const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))!;
      console.log(topSelf(join(profDir, file)).join('\n'));
    }
    return { label, flowsPerSec: (stored * 1000) / (doneAt - t0), cpuUsPerFlow: (cpuMs * 1000) / stored };
  };
  const runs = Number(args.runs);
  const results: { label: string; flowsPerSec: number; cpuUsPerFlow: number }[] = [];
  let n = 0;
  for (let r = 0; r < runs; r++) {
    if (args.baseline) results.push(await runOnce(resolve(args.baseline), 'baseline', n++));
    results.push(await runOnce(ROOT, 'current', n++));
  }
  if (args.baseline) {
    const best = (label: string) =>
      results.filter((x) => x.label === label).reduce((a, b) => (b.flowsPerSec > a.flowsPerSec ? b : a));
    const [b, c] = [best('baseline'), best('current')];
    console.log(
      `best of ${runs}: current ${Math.round(c.flowsPerSec)} flows/s, ${c.cpuUsPerFlow.toFixed(1)} µs/flow; ` +
        `baseline ${Math.round(b.flowsPerSec)} flows/s, ${b.cpuUsPerFlow.toFixed(1)} µs/flow: ` +
        `x${(c.flowsPerSec / b.flowsPerSec).toFixed(2)} flows/s, x${(b.cpuUsPerFlow / c.cpuUsPerFlow).toFixed(2)} fewer CPU s/flow`,
    );
  }
} finally {
  await broker.stop();
}

// Throughput of the Kafka pipeline on this machine, against a real single-node broker:
//   npx tsx bench/pipeline.ts [--flows 300000] [--partitions 6] [--brokers host:port]
// Phases: producer alone (KafkaFlowSink), end to end (KafkaFlowSink → broker → `netpol-audit process`
// child → SQLite, measured until the store holds every flow, with the processor's lag and peak RSS),
// then the stages alone: consumer (kafkajs eachBatch + decodeFlow), judge (FlowProcessor), SQLite
// (StoreRecorder.applyBatch), and the embedded wiring (judge + SQLite in one process, no Kafka).
// Prints one line per phase and a JSON summary; nothing here asserts a speed (docs/kafka.md).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Inventory, loadSnapshotFiles } from '../processor/inventory/index.js';
import { compilePolicyIndex } from '../processor/policy/index.js';
import { FlowProcessor, type JudgedFlow, StaticClusterView } from '../processor/processor.js';
import { AuditStore, type StoredFlow } from '../processor/store/index.js';
import type { FlowRecord } from '../schema/flow-record.js';
import { StoreRecorder } from '../sinks/store.js';
import { type RunningBroker, startBroker } from '../test/kafka/broker.js';
import { SHOP_CLUSTER, shopFlow, storedFlows } from '../test/pipeline/support.js';
import { decodeFlow, type WireMessage } from '../transport/codec.js';
import {
  createKafka,
  ensureTopics,
  KafkaFlowSink,
  kafkaSettings,
  topicNames,
} from '../transport/kafka/index.js';

const { values: args } = parseArgs({
  options: {
    flows: { type: 'string', default: '300000' },
    partitions: { type: 'string', default: '6' },
    brokers: { type: 'string' },
  },
});
const total = Number(args.flows);
const partitions = Number(args.partitions);
const ROOT = resolve(import.meta.dirname, '..');

const rate = (n: number, ms: number) => Math.round((n * 1000) / ms);
const fmt = (n: number) => n.toLocaleString('en-US');

function vmHwmKb(pid: number): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'npa-bench-pipeline-'));
  let broker: RunningBroker | undefined;
  let brokers: string[];
  if (args.brokers) brokers = args.brokers.split(',');
  else {
    broker = await startBroker({ heap: '1g' });
    brokers = broker.brokers;
    console.log(`broker: Kafka ${broker.version} started in ${Math.round(broker.startupMs)} ms`);
  }
  const flows: FlowRecord[] = Array.from({ length: total }, (_, i) => shopFlow(i));
  const out: Record<string, number> = { flows: total, partitions };
  try {
    // 1. Producer alone.
    const pre = `bench-${process.pid}-p.`;
    const psettings = kafkaSettings({
      brokers,
      topics: topicNames(pre),
      partitions: { flows: partitions, verdicts: partitions, violations: 1, deadLetter: 1 },
    });
    const kafka = createKafka(psettings, '-bench');
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, psettings);
    let t0 = performance.now();
    const sink = new KafkaFlowSink({ settings: psettings, spoolDir: join(dir, 'spool-p') });
    for (const f of flows) await sink.write(f);
    await sink.close();
    out.producerFlowsPerSec = rate(total, performance.now() - t0);
    console.log(
      `producer alone: ${fmt(total)} flows in ${Math.round(performance.now() - t0)} ms = ${fmt(out.producerFlowsPerSec)} flows/s`,
    );

    // 2. Consumer alone (kafkajs eachBatch + decodeFlow) on the topic just written.
    const consumer = kafka.consumer({
      groupId: `${pre}reader`,
      maxBytesPerPartition: 4 << 20,
      maxBytes: 16 << 20,
      maxWaitTimeInMs: 200,
    });
    await consumer.connect();
    await consumer.subscribe({ topic: psettings.topics.flows, fromBeginning: true });
    let consumed = 0;
    let firstAt = 0;
    t0 = performance.now();
    await new Promise<void>((done) => {
      void consumer.run({
        eachBatch: async ({ batch }) => {
          if (firstAt === 0) firstAt = performance.now();
          for (const m of batch.messages) if (decodeFlow(m as WireMessage).ok) consumed++;
          if (consumed >= total) done();
        },
      });
    });
    const consumeMs = performance.now() - firstAt;
    out.consumerFlowsPerSec = rate(total, consumeMs);
    console.log(
      `consumer alone (after group join ${Math.round(firstAt - t0)} ms): ${fmt(out.consumerFlowsPerSec)} flows/s (decodeFlow incl.)`,
    );
    await consumer.disconnect();

    // 3. End to end: a processor child consumes while the producer publishes.
    const pre2 = `bench-${process.pid}-e.`;
    const esettings = kafkaSettings({
      brokers,
      topics: topicNames(pre2),
      partitions: { flows: partitions, verdicts: partitions, violations: 1, deadLetter: 1 },
    });
    await ensureTopics(admin, esettings);
    const db = join(dir, 'e2e.db');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'cli/index.ts'),
        'process',
        '--cluster',
        SHOP_CLUSTER,
        '--db',
        db,
        '--brokers',
        brokers.join(','),
        '--topic-prefix',
        pre2,
        '--group',
        pre2,
        '--exit-when-idle',
        '15000',
        '--format',
        'json',
      ],
      {
        cwd: ROOT,
        env: { ...process.env, NETPOL_AUDIT_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let childOut = '';
    child.stdout.on('data', (d: Buffer) => {
      childOut += d.toString();
    });
    let childExited = false;
    const exited = new Promise<void>((r) =>
      child.on('close', () => {
        childExited = true;
        r();
      }),
    );
    // Let it join the group first: the measurement is the pipeline, not the group setup.
    await new Promise((r) => setTimeout(r, 5000));
    let produced = 0;
    let maxLag = 0;
    let peakKb = 0;
    let stored = 0;
    const sampler = setInterval(() => {
      stored = storedFlows(db);
      maxLag = Math.max(maxLag, produced - stored);
      peakKb = Math.max(peakKb, vmHwmKb(child.pid!));
    }, 250);
    t0 = performance.now();
    const esink = new KafkaFlowSink({ settings: esettings, spoolDir: join(dir, 'spool-e') });
    for (const f of flows) {
      await esink.write(f);
      produced++;
    }
    await esink.close();
    const producedMs = performance.now() - t0;
    while (storedFlows(db) < total) {
      if (childExited) throw new Error(`processor exited with ${storedFlows(db)} of ${total} flows stored`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const e2eMs = performance.now() - t0;
    peakKb = Math.max(peakKb, vmHwmKb(child.pid!));
    clearInterval(sampler);
    await exited;
    out.endToEndFlowsPerSec = rate(total, e2eMs);
    out.endToEndProducerFlowsPerSec = rate(total, producedMs);
    out.processorMaxLagFlows = maxLag;
    out.processorTailMs = Math.round(e2eMs - producedMs);
    out.processorPeakRssMb = Math.round(peakKb / 1024);
    const stats = JSON.parse(childOut);
    if (stats.recorded !== total) throw new Error(`processor recorded ${stats.recorded}, expected ${total}`);
    console.log(
      `end to end: ${fmt(total)} flows produced in ${Math.round(producedMs)} ms, all in SQLite after ${Math.round(e2eMs)} ms = ` +
        `${fmt(out.endToEndFlowsPerSec)} flows/s; processor max lag ${fmt(maxLag)} flows, ` +
        `${out.processorTailMs} ms behind the producer at the end, peak RSS ${out.processorPeakRssMb} MB`,
    );
    await admin.disconnect();

    // 4. The stages alone, in this process.
    const snapshot = await loadSnapshotFiles([SHOP_CLUSTER]);
    const view = new StaticClusterView(
      new Inventory(snapshot.cluster),
      compilePolicyIndex(snapshot.cluster).index,
    );
    const judgedAll: StoredFlow[] = [];
    const keep = { write: (j: JudgedFlow) => void judgedAll.push(j.stored), flush: async () => {} };
    t0 = performance.now();
    const judge = new FlowProcessor(view, keep);
    for (const f of flows) judge.write(f);
    out.judgeFlowsPerSec = rate(total, performance.now() - t0);
    console.log(`judge alone: ${fmt(out.judgeFlowsPerSec)} flows/s`);

    const store = AuditStore.open(join(dir, 'sqlite-alone.db'));
    t0 = performance.now();
    for (let i = 0; i < judgedAll.length; i += 4000) store.applyBatch(judgedAll.slice(i, i + 4000));
    out.sqliteFlowsPerSec = rate(total, performance.now() - t0);
    store.close();
    console.log(`SQLite alone (applyBatch, 4000 per transaction): ${fmt(out.sqliteFlowsPerSec)} flows/s`);

    const estore = AuditStore.open(join(dir, 'embedded.db'));
    t0 = performance.now();
    const embedded = new FlowProcessor(view, new StoreRecorder(estore));
    for (const f of flows) embedded.write(f);
    await embedded.close();
    out.embeddedFlowsPerSec = rate(total, performance.now() - t0);
    estore.close();
    console.log(`embedded (judge + SQLite, no Kafka): ${fmt(out.embeddedFlowsPerSec)} flows/s`);
    console.log(JSON.stringify(out));
  } finally {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

// Throughput of the Kafka pipeline on this machine, against a real single-node broker:
//   npx tsx bench/pipeline.ts [--flows 300000] [--partitions 6] [--pack-size 1000] [--brokers host:port]
//                             [--producer-rounds 5] [--producer-node PATH]
//                             [--no-platformatic] [--no-stages] [--e2e LABEL,...] [--processor-tsx]
// The processor child runs from dist/ (`npm run build` first), as the image runs it; --processor-tsx
// runs it from the sources through tsx (the figures in docs/kafka.md before 6 Dec 2026, 10:00 UTC).
// --e2e runs only those end-to-end variants (e.g. --e2e v1-kafkajs-gzip,v2-platformatic-zstd), no
// producer, consumer or stage phase.
// Phases, all in one run so the ratios compare like with like:
//   encodings   (no Kafka) a pack of FlowRecords as JSON lines vs a binary schema (Avro), with
//               gzip/zstd/lz4: CPU to encode and decode, bytes per record
//   producer    KafkaFlowSink alone: v1 (one message per record, kafkajs: the producer before
//               issue #15, the baseline), v2 packs on kafkajs (gzip, zstd), v2 packs on
//               @platformatic/kafka (gzip, zstd, none: zstd is the sink's default for v2),
//               v1 on @platformatic/kafka: flows/s, CPU of the
//               producing process per flow and of the broker, ratios against the baseline; each
//               variant once per round (--producer-rounds, default 5), medians reported; each
//               run in a child process of its own that publishes --producer-warmup (150,000) flows
//               to other topics first, so a run's heap holds its flows only and its code is warm,
//               and starts measuring once the broker is quiet; --producer-node PATH adds, in each
//               round, the baseline and the product run by another Node.js binary (their ratio is
//               printed beside the goal's, which stays this Node's)
//   consumer    kafkajs eachBatch + decode, on the v1 and the v2 topics
//   end to end  KafkaFlowSink → broker → `netpol-audit process` child → SQLite: v1, v2 kafkajs gzip
//               and zstd, v2 @platformatic/kafka zstd; measured
//               until the store holds every flow, with the processor's lag, CPU and peak RSS
//   stages      judge (FlowProcessor), SQLite (applyBatch), embedded (judge + SQLite, no Kafka)
// Prints one line per phase, then one line per goal of issue #15 (met or not, on this run's numbers;
// the collector's goal is bench/collect.ts's), and a JSON summary; nothing here asserts a speed
// (docs/kafka.md).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';
import { lz4Compress, lz4Decompress } from '@platformatic/wasm-utils';
import avro from 'avsc';
import { Inventory, loadSnapshotFiles } from '../processor/inventory/index.js';
import { compilePolicyIndex } from '../processor/policy/index.js';
import { FlowProcessor, type JudgedFlow, StaticClusterView } from '../processor/processor.js';
import { AuditStore, type StoredFlow } from '../processor/store/index.js';
import { type FlowRecord, validateFlowRecord } from '../schema/flow-record.js';
import { StoreRecorder } from '../sinks/store.js';
import { type RunningBroker, startBroker } from '../test/kafka/broker.js';
import {
  processArgs,
  SHOP_CLUSTER,
  shopFlow,
  storedPackets,
  storedRecords,
} from '../test/pipeline/support.js';
import { decodeMessage, type WireFormat, type WireMessage } from '../transport/codec.js';
import {
  createKafka,
  ensureTopics,
  KafkaFlowSink,
  type KafkaSettings,
  kafkaSettings,
  type ProduceCompression,
  type ProducerLibrary,
  topicNames,
} from '../transport/kafka/index.js';

const { values: args } = parseArgs({
  options: {
    flows: { type: 'string', default: '300000' },
    partitions: { type: 'string', default: '6' },
    'pack-size': { type: 'string', default: '1000' },
    /** Rounds of the producer phase (each variant once per round); each variant's median is reported. */
    'producer-rounds': { type: 'string', default: '5' },
    /** Flows each producer child publishes first, unmeasured, to a topic of its own (JIT warm-up). */
    'producer-warmup': { type: 'string', default: '150000' },
    /** Internal: run one producer measurement (JSON spec) in this process and print its figures. */
    'producer-child': { type: 'string' },
    /**
     * Another Node.js binary (e.g. a newer release) that also runs the baseline and the product in
     * each round, so the two runtimes are compared on the same broker, alternating. Producer children
     * load no native module, so this checkout's node_modules serve both.
     */
    'producer-node': { type: 'string' },
    /** Internal, with --producer-child: the broker's pid, for its CPU over the measured window. */
    'broker-pid': { type: 'string' },
    brokers: { type: 'string' },
    'no-platformatic': { type: 'boolean', default: false },
    'no-stages': { type: 'boolean', default: false },
    /** JSONL FlowRecords (e.g. `collect pcap CAPTURE --output F`) to compare the encodings on as well. */
    sample: { type: 'string' },
    'encodings-only': { type: 'boolean', default: false },
    e2e: { type: 'string' },
    'processor-tsx': { type: 'boolean', default: false },
    /** A directory for the end-to-end processors' CPU profiles (node --cpu-prof). */
    'processor-prof': { type: 'string' },
  },
});
const e2eOnly = args.e2e?.split(',');
/** Who processes end to end: one `process` (role all), or a judge and a recorder. */
type Topology = 'all' | 'judge+record' | 'judge+record, verdict packs';
const total = Number(args.flows);
const partitions = Number(args.partitions);
const packSize = Number(args['pack-size']);
const producerRounds = Math.max(1, Number(args['producer-rounds']));
const ROOT = resolve(import.meta.dirname, '..');
const DIST_CLI = join(ROOT, 'dist/cli/index.js');
if (!args['processor-tsx'] && !existsSync(DIST_CLI)) {
  console.error(`${DIST_CLI} is missing: run npm run build first, or pass --processor-tsx`);
  process.exit(2);
}

const rate = (n: number, ms: number) => Math.round((n * 1000) / ms);
const fmt = (n: number) => n.toLocaleString('en-US');
const round2 = (n: number) => Math.round(n * 100) / 100;

function vmHwmKb(pid: number): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** CPU time (user + system) a process has used, ms; 0 when it is gone. */
function procCpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

const selfCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** One producer run. */
interface ProducerSample {
  ms: number;
  cpuUsPerFlow: number;
  brokerCpuUsPerFlow: number;
  messages: number;
}

/** A producer variant over the rounds: medians, and each run's CPU. */
interface ProducerRun {
  label: string;
  flowsPerSec: number;
  /** CPU of the producing process per flow, microseconds (median of the rounds). */
  cpuUsPerFlow: number;
  cpuUsPerFlowRuns: number[];
  brokerCpuUsPerFlow: number;
  messages: number;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// Node.js 22.15+/24 has zstd in zlib (@types/node 20 does not know it yet); lz4 comes from the wasm
// codec @platformatic/kafka uses (its dependency).
const zstd = zlib as unknown as {
  zstdCompressSync(b: Buffer): Buffer;
  zstdDecompressSync(b: Buffer): Buffer;
};

interface AvroTypeLike {
  typeName: string;
  types?: AvroTypeLike[];
  fields?: { name: string; type: AvroTypeLike }[];
}

/** Avro has no "absent": an optional field the record lacks is written as null... */
function withNulls(value: unknown, t: AvroTypeLike): unknown {
  if (t.types) {
    if (value === undefined) return null;
    const rec = t.types.find((x) => x.typeName === 'record');
    return rec && typeof value === 'object' && value !== null ? withNulls(value, rec) : value;
  }
  if (t.typeName === 'record' && typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const f of t.fields ?? [])
      out[f.name] = withNulls((value as Record<string, unknown>)[f.name], f.type);
    return out;
  }
  return value;
}

/** ...and read back, a null is an absent field again (the FlowRecord schema has no nulls). */
function withoutNulls(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v);
  return out;
}

/** Encodings of one pack, measured without Kafka. */
function compareEncodings(flows: FlowRecord[], what: string) {
  const packs: FlowRecord[][] = [];
  for (let i = 0; i < flows.length; i += packSize) packs.push(flows.slice(i, i + packSize));
  // Avro schema inferred from the flows themselves (the union of the fields they use; the first
  // 5000 of them).
  const type = avro.Type.forTypes(flows.slice(0, 5000).map((f) => avro.Type.forValue(f)));
  const arrayType = avro.Type.forSchema({ type: 'array', items: type.schema() as never });
  const items = (arrayType as unknown as { itemsType: AvroTypeLike }).itemsType;
  const out: Record<string, number> = {};
  // Each timing is the best of 5 passes: the machine is shared, and the first pass warms the JIT.
  const best = (f: () => void) => {
    let ms = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      f();
      ms = Math.min(ms, performance.now() - t);
    }
    return ms;
  };
  const measure = (name: string, encode: (p: FlowRecord[]) => Buffer, decode: (b: Buffer) => unknown[]) => {
    let encoded: Buffer[] = [];
    const encMs = best(() => {
      encoded = packs.map(encode);
    });
    const raw = encoded.reduce((n, b) => n + b.length, 0);
    let n = 0;
    const decMs = best(() => {
      n = 0;
      for (const b of encoded) for (const r of decode(b)) if (validateFlowRecord(r).ok) n++;
    });
    if (n !== flows.length) throw new Error(`${name}: decoded ${n} of ${flows.length}`);
    out[`${name}EncodeUsPerFlow`] = round2((encMs * 1000) / flows.length);
    out[`${name}DecodeValidateUsPerFlow`] = round2((decMs * 1000) / flows.length);
    out[`${name}BytesPerFlow`] = round2(raw / flows.length);
    for (const [codec, c, d] of [
      ['gzip', (b: Buffer) => zlib.gzipSync(b), (b: Buffer) => zlib.gunzipSync(b)],
      ['zstd', (b: Buffer) => zstd.zstdCompressSync(b), (b: Buffer) => zstd.zstdDecompressSync(b)],
      ['lz4', (b: Buffer) => lz4Compress(b), (b: Buffer) => lz4Decompress(b)],
    ] as const) {
      let z: Buffer[] = [];
      const cMs = best(() => {
        z = encoded.map((b) => c(b));
      });
      const dMs = best(() => {
        for (const b of z) d(b);
      });
      const bytes = z.reduce((n, b) => n + b.length, 0);
      out[`${name}+${codec}BytesPerFlow`] = round2(bytes / flows.length);
      out[`${name}+${codec}CompressUsPerFlow`] = round2((cMs * 1000) / flows.length);
      out[`${name}+${codec}DecompressUsPerFlow`] = round2((dMs * 1000) / flows.length);
    }
    console.log(
      `encoding ${name} (${what}): encode ${out[`${name}EncodeUsPerFlow`]} µs/flow, decode+validate ${out[`${name}DecodeValidateUsPerFlow`]} µs/flow, ` +
        `${out[`${name}BytesPerFlow`]} B/flow; gzip ${out[`${name}+gzipBytesPerFlow`]} B (${out[`${name}+gzipCompressUsPerFlow`]} µs), ` +
        `zstd ${out[`${name}+zstdBytesPerFlow`]} B (${out[`${name}+zstdCompressUsPerFlow`]} µs), lz4 ${out[`${name}+lz4BytesPerFlow`]} B (${out[`${name}+lz4CompressUsPerFlow`]} µs)`,
    );
  };
  measure(
    'jsonl',
    (p) => Buffer.from(p.map((r) => JSON.stringify(r)).join('\n')),
    (b) =>
      b
        .toString()
        .split('\n')
        .map((l) => JSON.parse(l)),
  );
  measure(
    'avro',
    (p) => arrayType.toBuffer(p.map((f) => withNulls(f, items))),
    (b) => (arrayType.fromBuffer(b) as unknown[]).map(withoutNulls),
  );
  return out;
}

function settingsFor(brokers: string[], prefix: string): KafkaSettings {
  return kafkaSettings({
    brokers,
    topics: topicNames(prefix),
    partitions: { flows: partitions, verdicts: partitions, violations: 1, deadLetter: 1 },
  });
}

/** What a producer child measures: one variant, its topics' prefixes, the spool directory. */
interface ProducerSpec {
  label: string;
  wire: WireFormat;
  producer: ProducerLibrary;
  compression: ProduceCompression;
  prefix: string;
  warmPrefix: string;
  spoolDir: string;
}

/**
 * One producer run, in a process of its own: its heap holds its flows and the sink, not what the
 * variants before it left; the sink's code is warmed up on other topics first, then measured.
 */
async function producerChild(spec: ProducerSpec, brokers: string[]): Promise<void> {
  const flows: FlowRecord[] = Array.from({ length: total }, (_, i) => shopFlow(i));
  const run = async (prefix: string, records: readonly FlowRecord[], spool: string) => {
    const sink = new KafkaFlowSink({
      settings: settingsFor(brokers, prefix),
      spoolDir: spool,
      wire: spec.wire,
      packSize,
      producer: spec.producer,
      compression: spec.compression,
      createTopics: false,
    });
    for (const f of records) await sink.write(f);
    await sink.close();
    if (sink.stats.sent !== records.length)
      throw new Error(`${spec.label}: sent ${sink.stats.sent} of ${records.length}`);
  };
  await run(spec.warmPrefix, flows.slice(0, Number(args['producer-warmup'])), `${spec.spoolDir}-warm`);
  const brokerPid = args['broker-pid'] ? Number(args['broker-pid']) : undefined;
  // The measured run starts once the broker is quiet (under 5% of a core over 300 ms, 10 s at most):
  // the two vCPUs may share a core, and a broker still busy with the run before stretched this
  // run's CPU time by up to half (docs/kafka.md, "Publishing").
  for (const until = Date.now() + 10_000; brokerPid && Date.now() < until; ) {
    const c0 = procCpuMs(brokerPid);
    await new Promise((r) => setTimeout(r, 300));
    if (procCpuMs(brokerPid) - c0 < 15) break;
  }
  const cpu0 = selfCpuMs();
  const b0 = procCpuMs(brokerPid);
  const t0 = performance.now();
  await run(spec.prefix, flows, spec.spoolDir);
  const sample: Omit<ProducerSample, 'messages'> = {
    ms: performance.now() - t0,
    cpuUsPerFlow: ((selfCpuMs() - cpu0) * 1000) / total,
    brokerCpuUsPerFlow: ((procCpuMs(brokerPid) - b0) * 1000) / total,
  };
  console.log(`${PRODUCER_SAMPLE}${JSON.stringify(sample)}`);
}

const PRODUCER_SAMPLE = 'producer-sample ';

async function main() {
  if (args['producer-child']) {
    await producerChild(JSON.parse(args['producer-child']) as ProducerSpec, args.brokers!.split(','));
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'npa-bench-pipeline-'));
  const flows: FlowRecord[] = Array.from({ length: total }, (_, i) => shopFlow(i));
  const totalPackets = flows.reduce((n, f) => n + f.packets.fwd + f.packets.rev, 0);
  const packetsPerFlow = totalPackets / total;
  const out: Record<string, unknown> = { flows: total, partitions, packSize };
  out.encodings = compareEncodings(flows, `${fmt(total)} shop-shaped flows`);
  if (args.sample) {
    const sample = readFileSync(args.sample, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as FlowRecord);
    out.sampleEncodings = compareEncodings(sample, `${fmt(sample.length)} records of ${args.sample}`);
  }
  if (args['encodings-only']) {
    console.log(JSON.stringify(out));
    return;
  }
  let broker: RunningBroker | undefined;
  let brokers: string[];
  let brokerPid: number | undefined;
  if (args.brokers) brokers = args.brokers.split(',');
  else {
    broker = await startBroker({ heap: '1g' });
    brokers = broker.brokers;
    brokerPid = Number(readFileSync(join(broker.dataDir, 'broker.pid'), 'utf8'));
    console.log(`broker: Kafka ${broker.version} started in ${Math.round(broker.startupMs)} ms`);
  }
  const kafka = createKafka(settingsFor(brokers, 'bench.'), '-bench');
  const admin = kafka.admin();
  await admin.connect();
  try {
    // 1. Producer alone: the same flows through KafkaFlowSink, one topic per variant and round.
    // Rounds (every variant once per round, the baseline first) and the median of each variant: a
    // single run of the product's producer ranged 2.3-3.4 µs/flow on this machine, enough to move
    // its ratio by a third.
    const producerRuns: ProducerRun[] = [];
    const topicOf: Record<string, string> = {};
    const produce = async (
      label: string,
      round: number,
      wire: WireFormat,
      producer: ProducerLibrary,
      compression: ProduceCompression,
      node?: string,
    ): Promise<ProducerSample> => {
      const name = label.replace(/[^A-Za-z0-9._-]/g, '_');
      const prefix = `bench-${process.pid}-${name}-${round}.`;
      const warmPrefix = `bench-${process.pid}-${name}-${round}-warm.`;
      const settings = settingsFor(brokers, prefix);
      await ensureTopics(admin, settings);
      await ensureTopics(admin, settingsFor(brokers, warmPrefix));
      topicOf[label] ??= settings.topics.flows;
      const spec: ProducerSpec = {
        label,
        wire,
        producer,
        compression,
        prefix,
        warmPrefix,
        spoolDir: join(dir, `spool-${name}-${round}`),
      };
      const out = await new Promise<string>((done, fail) => {
        const child = spawn(
          node ?? process.execPath,
          [
            '--import',
            'tsx',
            import.meta.filename,
            '--producer-child',
            JSON.stringify(spec),
            '--brokers',
            brokers.join(','),
            '--flows',
            String(total),
            '--partitions',
            String(partitions),
            '--pack-size',
            String(packSize),
            '--producer-warmup',
            String(args['producer-warmup']),
            ...(brokerPid ? ['--broker-pid', String(brokerPid)] : []),
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let text = '';
        child.stdout.on('data', (d: Buffer) => {
          text += d.toString();
        });
        child.on('error', fail);
        child.on('exit', (code) =>
          code === 0 ? done(text) : fail(new Error(`producer child ${label}: exit ${code}`)),
        );
      });
      const line = out.split('\n').find((l) => l.startsWith(PRODUCER_SAMPLE));
      if (!line) throw new Error(`producer child ${label}: no figures`);
      const offsets = await admin.fetchTopicOffsets(settings.topics.flows);
      // The broker's work grew with the topics the rounds left (its CPU during the product's runs:
      // 0.5-0.9 µs/flow with few topics, a median of 1.6 over five rounds that kept theirs): only
      // the first round's flows topic stays, for phase 2.
      const names = (prefixOf: string) => Object.values(settingsFor(brokers, prefixOf).topics);
      await admin.deleteTopics({
        topics: [...names(warmPrefix), ...names(prefix).filter((t) => t !== topicOf[label])],
      });
      return {
        ...(JSON.parse(line.slice(PRODUCER_SAMPLE.length)) as Omit<ProducerSample, 'messages'>),
        messages: offsets.reduce((n, o) => n + Number(o.high), 0),
      };
    };
    if (!e2eOnly) {
      // The baseline first: the producer before issue #15 (v1 messages, kafkajs, gzip).
      type Variant = readonly [string, WireFormat, ProducerLibrary, ProduceCompression, string?];
      const variants: Variant[] = [
        ['v1-kafkajs-gzip', 1, 'kafkajs', 'gzip'],
        ['v2-kafkajs-gzip', 2, 'kafkajs', 'gzip'],
        ['v2-kafkajs-zstd', 2, 'kafkajs', 'zstd'],
        ...(args['no-platformatic']
          ? []
          : ([
              ['v2-platformatic-gzip', 2, 'platformatic', 'gzip'],
              ['v2-platformatic-zstd', 2, 'platformatic', 'zstd'],
              ['v2-platformatic-none', 2, 'platformatic', 'none'],
              ['v1-platformatic-gzip', 1, 'platformatic', 'gzip'],
            ] as const)),
      ];
      // The other Node.js runs the baseline and the product right after this one's, in each round.
      const otherNode = args['producer-node'];
      const otherVersion = otherNode && execFileSync(otherNode, ['--version'], { encoding: 'utf8' }).trim();
      const onOther = (label: string) => `${label} on node ${otherVersion}`;
      if (otherNode)
        for (const v of variants.filter((x) => x[0] === 'v1-kafkajs-gzip' || x[0] === PRODUCT))
          variants.push([onOther(v[0]), v[1], v[2], v[3], otherNode]);
      const samples = new Map<string, ProducerSample[]>();
      for (let round = 0; round < producerRounds; round++)
        for (const [label, wire, producer, compression, node] of variants) {
          const sample = await produce(label, round, wire, producer, compression, node);
          samples.set(label, [...(samples.get(label) ?? []), sample]);
        }
      for (const [label] of variants) {
        const runs = samples.get(label)!;
        const run: ProducerRun = {
          label,
          flowsPerSec: rate(total, median(runs.map((r) => r.ms))),
          cpuUsPerFlow: round2(median(runs.map((r) => r.cpuUsPerFlow))),
          cpuUsPerFlowRuns: runs.map((r) => round2(r.cpuUsPerFlow)),
          brokerCpuUsPerFlow: round2(median(runs.map((r) => r.brokerCpuUsPerFlow))),
          messages: runs[0]!.messages,
        };
        producerRuns.push(run);
        const base = producerRuns[0]!;
        console.log(
          `producer ${label}: ${fmt(total)} flows, median of ${runs.length}: ${fmt(run.flowsPerSec)} flows/s ` +
            `(${round2(run.flowsPerSec / base.flowsPerSec)}x v1), producer CPU ${run.cpuUsPerFlow} µs/flow ` +
            `(runs ${run.cpuUsPerFlowRuns.join(' / ')}; ${round2(base.cpuUsPerFlow / run.cpuUsPerFlow)}x fewer than v1), ` +
            `broker CPU ${run.brokerCpuUsPerFlow} µs/flow, ${fmt(run.messages)} messages`,
        );
      }
      out.producer = producerRuns;
      if (otherNode) {
        const base = producerRuns.find((r) => r.label === onOther('v1-kafkajs-gzip'));
        const ours = producerRuns.find((r) => r.label === onOther(PRODUCT));
        if (base && ours) {
          const ratio = round2(base.cpuUsPerFlow / ours.cpuUsPerFlow);
          out.producerOtherNode = {
            node: otherVersion,
            baseline: base.cpuUsPerFlow,
            product: ours.cpuUsPerFlow,
            ratio,
          };
          console.log(
            `producer on node ${otherVersion}: ${PRODUCT} ${ours.cpuUsPerFlow} against v1-kafkajs-gzip ${base.cpuUsPerFlow} µs/flow: ` +
              `${ratio}x fewer CPU seconds per flow (per round ${ours.cpuUsPerFlowRuns.map((c, i) => `${round2(base.cpuUsPerFlowRuns[i]! / c)}x`).join(' / ')}); ` +
              `this node (${process.version}) in the same rounds: the goal line below`,
          );
        }
      }
    }

    // 2. Consumer alone (kafkajs eachBatch + decodeMessage) on the v1 and v2 topics just written.
    const consumerRates: Record<string, number> = {};
    for (const label of e2eOnly ? [] : ['v1-kafkajs-gzip', 'v2-kafkajs-gzip']) {
      const consumer = kafka.consumer({
        groupId: `bench-${process.pid}-reader-${label}`,
        maxBytesPerPartition: 4 << 20,
        maxBytes: 16 << 20,
        maxWaitTimeInMs: 200,
      });
      await consumer.connect();
      await consumer.subscribe({ topic: topicOf[label]!, fromBeginning: true });
      let consumed = 0;
      let firstAt = 0;
      const t0 = performance.now();
      await new Promise<void>((done) => {
        void consumer.run({
          eachBatch: async ({ batch }) => {
            if (firstAt === 0) firstAt = performance.now();
            for (const m of batch.messages) {
              const d = decodeMessage(m as WireMessage);
              if (!d.ok) continue;
              if (!d.packed) consumed++;
              else for (const item of d.items) if (item.ok) consumed++;
            }
            if (consumed >= total) done();
          },
        });
      });
      const consumeMs = performance.now() - firstAt;
      consumerRates[label] = rate(total, consumeMs);
      console.log(
        `consumer ${label} (after group join ${Math.round(firstAt - t0)} ms): ${fmt(consumerRates[label])} flows/s (decode incl.)`,
      );
      await consumer.disconnect();
    }
    out.consumerFlowsPerSec = consumerRates;

    // 3. End to end: a processor child consumes while the producer publishes.
    const e2eRuns: Record<string, number | string>[] = [];
    const endToEnd = async (
      label: string,
      wire: WireFormat,
      producer: ProducerLibrary,
      compression: ProduceCompression,
      topology: Topology = 'all',
    ) => {
      const prefix = `bench-${process.pid}-e2e-${label}.`;
      const settings = settingsFor(brokers, prefix);
      await ensureTopics(admin, settings);
      const db = join(dir, `e2e-${label}.db`);
      const start = (role: 'all' | 'judge' | 'record') => {
        const child = spawn(
          process.execPath,
          [
            ...(args['processor-prof'] ? ['--cpu-prof', '--cpu-prof-dir', args['processor-prof']] : []),
            ...(args['processor-tsx'] ? ['--import', 'tsx', join(ROOT, 'cli/index.ts')] : [DIST_CLI]),
            ...processArgs(brokers.join(','), prefix, role === 'judge' ? undefined : db, [
              '--role',
              role,
              ...(role === 'judge' && topology === 'judge+record, verdict packs' ? ['--wire', '2'] : []),
            ]),
          ],
          {
            cwd: ROOT,
            env: { ...process.env, NETPOL_AUDIT_LOG_LEVEL: 'warn' },
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        const state = { child, exited: false, stats: () => JSON.parse(out), done: Promise.resolve() };
        state.done = new Promise<void>((r) =>
          child.on('close', () => {
            state.exited = true;
            r();
          }),
        );
        return state;
      };
      // The process that writes the store (role all, or the recorder), and the judge of a scale-out.
      const writer = start(topology === 'all' ? 'all' : 'record');
      const judge = topology === 'all' ? undefined : start('judge');
      const children = judge ? [writer, judge] : [writer];
      const cpuOf = () => children.reduce((n, c) => n + procCpuMs(c.child.pid), 0);
      const rssOf = () => children.reduce((n, c) => n + vmHwmKb(c.child.pid!), 0);
      // Let them join their groups first: the measurement is the pipeline, not the group setup.
      await new Promise((r) => setTimeout(r, 6000));
      let produced = 0;
      let maxLag = 0;
      let peakKb = 0;
      const sampler = setInterval(() => {
        // Lag in flows, from the packets stored (cheap to read; see storedPackets).
        const stored = Math.round(storedPackets(db) / packetsPerFlow);
        maxLag = Math.max(maxLag, produced - stored);
        peakKb = Math.max(peakKb, rssOf());
      }, 250);
      const cpu0 = selfCpuMs();
      const b0 = procCpuMs(brokerPid);
      const c0 = cpuOf();
      const t0 = performance.now();
      const sink = new KafkaFlowSink({
        settings,
        spoolDir: join(dir, `spool-e2e-${label}`),
        wire,
        packSize,
        producer,
        compression,
        createTopics: false,
      });
      for (const f of flows) {
        await sink.write(f);
        produced++;
      }
      await sink.close();
      const producedMs = performance.now() - t0;
      const producerCpu = selfCpuMs() - cpu0;
      // The cheap count while waiting; the exact one (every identity) once, at the end.
      while (storedPackets(db) < totalPackets) {
        if (children.some((c) => c.exited))
          throw new Error(`a processor exited with ${storedRecords(db)} of ${total} flows stored`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const e2eMs = performance.now() - t0;
      const processorCpu = cpuOf() - c0;
      const brokerCpu = procCpuMs(brokerPid) - b0;
      peakKb = Math.max(peakKb, rssOf());
      clearInterval(sampler);
      // It runs until told to stop, then commits, leaves the group and prints its summary.
      for (const c of children) c.child.kill('SIGTERM');
      await Promise.all(children.map((c) => c.done));
      const stats = writer.stats();
      if (stats.recorded !== total)
        throw new Error(`processor recorded ${stats.recorded}, expected ${total}`);
      if (storedRecords(db) !== total)
        throw new Error(`the store holds ${storedRecords(db)} flow identities, expected ${total}`);
      const run = {
        label,
        flowsPerSec: rate(total, e2eMs),
        producerFlowsPerSec: rate(total, producedMs),
        processorMaxLagFlows: maxLag,
        processorTailMs: Math.round(e2eMs - producedMs),
        processorPeakRssMb: Math.round(peakKb / 1024),
        producerCpuUsPerFlow: round2((producerCpu * 1000) / total),
        processorCpuUsPerFlow: round2((processorCpu * 1000) / total),
        brokerCpuUsPerFlow: round2((brokerCpu * 1000) / total),
        // Where the store's writer spent its time (RunnerStats.seconds): the stage near the wall
        // time bounds it.
        processorBatches: stats.batches,
        processorJudgeS: round2(stats.seconds.judge),
        processorPublishS: round2(stats.seconds.publish),
        processorCommitS: round2(stats.seconds.commit),
      };
      e2eRuns.push(run);
      const base = e2eRuns[0]!;
      console.log(
        `end to end ${label}: ${fmt(total)} flows produced in ${Math.round(producedMs)} ms, all in SQLite after ${Math.round(e2eMs)} ms = ` +
          `${fmt(run.flowsPerSec)} flows/s (${round2(run.flowsPerSec / (base.flowsPerSec as number))}x v1); processor max lag ${fmt(maxLag)} flows, ` +
          `${run.processorTailMs} ms behind the producer at the end, peak RSS ${run.processorPeakRssMb} MB; CPU µs/flow: ` +
          `producer ${run.producerCpuUsPerFlow}, processor ${run.processorCpuUsPerFlow}, broker ${run.brokerCpuUsPerFlow}; ` +
          `${run.processorBatches} batches, seconds judging ${run.processorJudgeS}, publishing ${run.processorPublishS}, committing ${run.processorCommitS}`,
      );
    };
    const variants: (readonly [string, WireFormat, ProducerLibrary, ProduceCompression, Topology?])[] = [
      ['v1-kafkajs-gzip', 1, 'kafkajs', 'gzip'],
      ['v2-kafkajs-gzip', 2, 'kafkajs', 'gzip'],
      ['v2-kafkajs-zstd', 2, 'kafkajs', 'zstd'],
      // The processor consumes with kafkajs, which reads gzip and (registered) zstd, not lz4.
      ...(args['no-platformatic']
        ? []
        : ([
            ['v2-platformatic-zstd', 2, 'platformatic', 'zstd'],
            // Scale-out on the same 2 cores: a judge and the recorder, each a process, the verdicts
            // one message each (--wire 1, the default) or in packs (--wire 2).
            ['v2-platformatic-zstd-scaleout', 2, 'platformatic', 'zstd', 'judge+record'],
            ['v2-platformatic-zstd-scaleout-packs', 2, 'platformatic', 'zstd', 'judge+record, verdict packs'],
          ] as const)),
    ];
    const unknown = e2eOnly?.filter((l) => !variants.some((v) => v[0] === l));
    if (unknown?.length) throw new Error(`--e2e: no variant ${unknown.join(', ')}`);
    for (const v of variants) if (!e2eOnly || e2eOnly.includes(v[0])) await endToEnd(...v);
    out.endToEnd = e2eRuns;

    // 4. The stages alone, in this process.
    if (!args['no-stages'] && !e2eOnly) {
      const snapshot = await loadSnapshotFiles([SHOP_CLUSTER]);
      const view = new StaticClusterView(
        new Inventory(snapshot.cluster),
        compilePolicyIndex(snapshot.cluster).index,
      );
      const judgedAll: StoredFlow[] = [];
      const keep = { write: (j: JudgedFlow) => void judgedAll.push(j.stored), flush: async () => {} };
      let t0 = performance.now();
      const judge = new FlowProcessor(view, keep);
      for (const f of flows) judge.write(f);
      out.judgeFlowsPerSec = rate(total, performance.now() - t0);
      console.log(`judge alone: ${fmt(out.judgeFlowsPerSec as number)} flows/s`);

      const store = AuditStore.open(join(dir, 'sqlite-alone.db'));
      t0 = performance.now();
      for (let i = 0; i < judgedAll.length; i += 4000) store.applyBatch(judgedAll.slice(i, i + 4000));
      out.sqliteFlowsPerSec = rate(total, performance.now() - t0);
      store.close();
      console.log(
        `SQLite alone (applyBatch, 4000 per transaction): ${fmt(out.sqliteFlowsPerSec as number)} flows/s`,
      );

      const estore = AuditStore.open(join(dir, 'embedded.db'));
      t0 = performance.now();
      const embedded = new FlowProcessor(view, new StoreRecorder(estore));
      for (const f of flows) embedded.write(f);
      await embedded.close();
      out.embeddedFlowsPerSec = rate(total, performance.now() - t0);
      estore.close();
      console.log(`embedded (judge + SQLite, no Kafka): ${fmt(out.embeddedFlowsPerSec as number)} flows/s`);
    }
    out.goals = goals(producerRuns, e2eRuns, out.embeddedFlowsPerSec as number | undefined);
    for (const g of out.goals as Goal[])
      console.log(
        `goal: ${g.goal}: ${g.met === undefined ? 'not measured in this run' : g.met ? 'MET' : 'NOT MET'}${g.measured ? `: ${g.measured}` : ''}`,
      );
    console.log(JSON.stringify(out));
  } finally {
    await admin.disconnect().catch(() => undefined);
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Goal {
  goal: string;
  /** Undefined when this run did not measure it (--e2e, --no-stages, --no-platformatic). */
  met?: boolean;
  measured?: string;
}

/** The product's variant: v2 packs, @platformatic/kafka, zstd (the default with `--wire 2`). */
const PRODUCT = 'v2-platformatic-zstd';

/** Issue #15's goals, judged on this run's numbers (the ratios against the baseline of the same run). */
function goals(
  producers: ProducerRun[],
  e2e: Record<string, number | string>[],
  embedded: number | undefined,
): Goal[] {
  const out: Goal[] = [];
  const run = e2e.find((r) => r.label === PRODUCT);
  out.push({
    goal: 'end to end (collector, broker and `process` on this machine) at least 100,000 flows/s',
    ...(run && {
      met: (run.flowsPerSec as number) >= 100_000,
      measured:
        `${fmt(run.flowsPerSec as number)} flows/s (${PRODUCT}), processor max lag ` +
        `${fmt(run.processorMaxLagFlows as number)} flows, peak RSS ${run.processorPeakRssMb} MB`,
    }),
  });
  const base = producers.find((r) => r.label === 'v1-kafkajs-gzip');
  const ours = producers.find((r) => r.label === PRODUCT);
  const ratio = base && ours ? base.cpuUsPerFlow / ours.cpuUsPerFlow : undefined;
  out.push({
    goal: 'publishing at least 10x fewer CPU seconds per flow than the producer before #15 (v1, kafkajs, gzip)',
    ...(ratio !== undefined && {
      met: ratio >= 10,
      measured: `${round2(ratio)}x (${ours!.cpuUsPerFlow} against ${base!.cpuUsPerFlow} µs/flow, medians of ${ours!.cpuUsPerFlowRuns.length} rounds; per round ${ours!.cpuUsPerFlowRuns.map((c, i) => `${round2(base!.cpuUsPerFlowRuns[i]! / c)}x`).join(' / ')})`,
    }),
  });
  out.push({
    goal: 'embedded (judge and store, no Kafka) at least 300,000 flows/s',
    ...(embedded !== undefined && {
      met: embedded >= 300_000,
      measured: `${fmt(embedded)} flows/s (bench/embedded.ts measures it against a baseline)`,
    }),
  });
  return out;
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

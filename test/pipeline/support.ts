// Helpers for the pipeline tests: CLI children that can be signalled, deterministic shop-shaped flows,
// the embedded (no Kafka) expectation for a set of flows, and a digest of a store to compare two stores.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Kafka } from 'kafkajs';
import { Inventory, loadSnapshotFiles } from '../../processor/inventory/index.js';
import { compilePolicyIndex } from '../../processor/policy/index.js';
import { policyVersions } from '../../processor/policy/versions.js';
import { FlowProcessor, type ProcessorStats, StaticClusterView } from '../../processor/processor.js';
import { AuditStore } from '../../processor/store/index.js';
import type { FlowRecord } from '../../schema/flow-record.js';
import { StoreRecorder } from '../../sinks/store.js';
import { type CliResult, ROOT, runCli } from '../support/cli.js';

export const SHOP_CLUSTER = resolve(ROOT, 'examples/shop/cluster.yaml');
export const SHOP_CAPTURE = resolve(ROOT, 'examples/shop/capture.pcap');

/**
 * `netpol-audit process` on the shop cluster, reading the pipeline under `prefix` (also its group);
 * no store without `db` (a judge).
 */
export function processArgs(
  brokers: string,
  prefix: string,
  db: string | undefined,
  extra: string[] = [],
): string[] {
  return [
    'process',
    '--cluster',
    SHOP_CLUSTER,
    ...(db === undefined ? [] : ['--db', db]),
    '--brokers',
    brokers,
    '--topic-prefix',
    prefix,
    '--group',
    prefix,
    '--format',
    'json',
    ...extra,
  ];
}

/** Runs `process` (role all) until it has been idle 1.5 s; its JSON stats. Exit 1 (dead letters) is not a failure here. */
export async function processUntilIdle(brokers: string, prefix: string, db: string, extra: string[] = []) {
  const r = await runCli(processArgs(brokers, prefix, db, ['--exit-when-idle', '1500', ...extra]));
  if (r.code !== 0 && r.code !== 1) throw new Error(`process exited ${r.code}: ${r.stderr.slice(-3000)}`);
  return { code: r.code, stats: JSON.parse(r.stdout), stderr: r.stderr };
}

export interface Child {
  proc: ChildProcess;
  done: Promise<CliResult>;
  stderr(): string;
}

const children = new Set<ChildProcess>();

/** Starts the real CLI as a child; `done` resolves with its exit code and output. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', resolve(ROOT, 'cli/index.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, NETPOL_AUDIT_LOG_PRETTY: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  proc.stdout?.on('data', (d: Buffer) => out.push(d));
  proc.stderr?.on('data', (d: Buffer) => err.push(d));
  const done = new Promise<CliResult>((res, rej) => {
    proc.on('error', rej);
    proc.on('close', (code, signal) => {
      children.delete(proc);
      res({
        code: code ?? (signal ? -1 : null),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
  return { proc, done, stderr: () => Buffer.concat(err).toString('utf8') };
}

/** Kills every child a test left running (afterAll / afterEach). */
export function killChildren(): void {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
}

/** `what` may be a function, to describe the state at the time of failure (children's logs, say). */
export async function waitUntil(
  what: string | (() => string),
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 120_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The children's exits, or an error naming `what` and the tail of each child's log after `timeoutMs`. */
export async function exits(children: Child[], what: string, timeoutMs = 150_000): Promise<CliResult[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `timed out waiting for ${what}; logs:\n${children.map((c) => c.stderr().slice(-1500)).join('\n---\n')}`,
          ),
        ),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([Promise.all(children.map((c) => c.done)), late]);
  } finally {
    clearTimeout(timer);
  }
}

const POD = {
  frontend: '10.244.1.10',
  cart: '10.244.1.11',
  payments: '10.244.2.20',
  prometheus: '10.244.2.30',
  debug: '10.244.2.40',
  coredns: '10.244.1.2',
};

const SHAPES: { src: string; dst: string; proto: 'TCP' | 'UDP'; port: number }[] = [
  { src: POD.frontend, dst: POD.cart, proto: 'TCP', port: 8080 }, // allowed
  { src: POD.cart, dst: POD.payments, proto: 'TCP', port: 9000 }, // allowed
  { src: POD.prometheus, dst: POD.cart, proto: 'TCP', port: 9102 }, // allowed
  { src: POD.frontend, dst: POD.coredns, proto: 'UDP', port: 53 }, // allowed
  { src: POD.debug, dst: POD.payments, proto: 'TCP', port: 9000 }, // denied
  { src: POD.debug, dst: POD.cart, proto: 'TCP', port: 5432 }, // denied
  { src: POD.frontend, dst: POD.payments, proto: 'TCP', port: 9000 }, // denied
];
const STATES = ['closed', 'established', 'attempted', 'rejected'] as const;

/**
 * Flow record i of a deterministic stream between the shop pods: allowed and denied pairs, every
 * state, spread over several hours and 2000 flow ids (Kafka keys), so every store table gets rows.
 */
export function shopFlow(i: number): FlowRecord {
  const shape = SHAPES[i % SHAPES.length];
  const flow = i % 2000;
  const start = 1_767_225_600_000 + i * 1_373;
  return {
    v: 1,
    start,
    end: start + 800 + (i % 900),
    proto: shape.proto,
    src: { ip: shape.src, port: 30000 + flow },
    dst: { ip: shape.dst, port: shape.port },
    packets: { fwd: 1 + (i % 11), rev: i % 7 },
    bytes: { fwd: 60 + (i % 1500), rev: 40 * (i % 9) },
    state: STATES[Math.floor(i / 7) % STATES.length],
    observer: { node: `node-${1 + (i % 2)}`, source: 'conntrack' },
    id: `flow-${flow}`,
    seq: Math.floor(i / 2000),
    reason: 'conntrack-update',
  };
}

/** What the embedded wiring (no Kafka) stores for these flows: the expectation of every pipeline test. */
export async function embeddedStore(flows: Iterable<FlowRecord>, dbPath: string): Promise<ProcessorStats> {
  const snapshot = await loadSnapshotFiles([SHOP_CLUSTER]);
  const inventory = new Inventory(snapshot.cluster);
  const compiled = compilePolicyIndex(snapshot.cluster);
  const store = AuditStore.open(dbPath);
  const processor = new FlowProcessor(
    new StaticClusterView(inventory, compiled.index),
    new StoreRecorder(store),
  );
  for (const f of flows) processor.write(f);
  await processor.close();
  // As `audit` and `process` do: every rule in force is defined over the span of the data.
  const rules = compiled.index.rules().map((r) => ({
    kind: r.kind,
    policy: r.policy,
    direction: r.direction,
    rule: r.rule,
    summary: r.summary,
  }));
  const policies = policyVersions(snapshot.cluster.networkPolicies);
  store.recordPolicies(policies, rules, processor.stats.firstFlow ?? 0);
  store.recordPolicies(policies, rules, processor.stats.lastFlow ?? 0);
  store.close();
  return processor.stats;
}

/**
 * Everything the store counted, in a canonical order. Evidence and name samples are left out: which
 * five flows a row keeps as evidence depends on the order the partitions were consumed in.
 */
export function storeDigest(dbPath: string) {
  const db = new Database(dbPath, { readonly: true });
  try {
    const all = (sql: string) => db.prepare(sql).all();
    return {
      edges: all(
        'SELECT hour, src_workload, dst_workload, proto, port, result, flows, packets, bytes FROM edges_hourly ORDER BY 1,2,3,4,5,6',
      ),
      violations: all(
        'SELECT window_start, src_workload, dst_workload, proto, port, flows, packets, bytes, first_seen, last_seen FROM violations ORDER BY 1,2,3,4,5',
      ),
      deniedAttempts: all(
        'SELECT window_start, src_workload, dst_workload, proto, port, flows, packets, bytes, first_seen, last_seen FROM denied_attempts ORDER BY 1,2,3,4,5',
      ),
      ambiguous: all(
        'SELECT window_start, src_workload, dst_workload, proto, port, flows, bytes FROM ambiguous_flows ORDER BY 1,2,3,4,5',
      ),
      ruleHits: all(
        'SELECT kind, policy, direction, rule_index, hits, bytes, first_hit, last_hit FROM rules ORDER BY 1,2,3,4',
      ),
      ruleDaily: all(
        'SELECT r.policy, r.direction, r.rule_index, d.day, d.hits, d.bytes FROM rule_usage_daily d JOIN rules r ON r.id = d.rule_id ORDER BY 1,2,3,4',
      ),
      // The report's facts (migration 5) travel in the verdicts: the same whichever wiring wrote them.
      namespaceTraffic: all('SELECT * FROM namespace_traffic_daily ORDER BY 1,2,3,4'),
      unisolated: all('SELECT * FROM unisolated_traffic_daily ORDER BY 1,2,3,4'),
      unattributed: all('SELECT * FROM unattributed_daily ORDER BY 1,2,3'),
      observers: all('SELECT hour, node, flows FROM observer_hours ORDER BY 1,2'),
      // What-if replay's edges (migration 6), with identities by content (ids follow insertion order).
      replayEdges: all(
        `SELECT e.day, e.src_ip, sp.key AS src_pod, sn.key AS src_node, e.dst_ip, dp.key AS dst_pod,
         dn.key AS dst_node, e.proto, e.port, e.answered, e.classification, e.flows, e.bytes, e.first_seen, e.last_seen
         FROM replay_edges_daily e
         LEFT JOIN replay_identities sp ON sp.id = e.src_pod LEFT JOIN replay_identities sn ON sn.id = e.src_node
         LEFT JOIN replay_identities dp ON dp.id = e.dst_pod LEFT JOIN replay_identities dn ON dn.id = e.dst_node
         ORDER BY 1,2,3,4,5,6,7,8,9,10,11`,
      ),
      replaySkipped: all('SELECT * FROM replay_skipped_daily ORDER BY 1,2'),
      // The snapshot of the day, not the moment it was taken (the first flow judged differs by wiring).
      coverage: (
        all('SELECT day, snapshot FROM coverage_daily ORDER BY 1') as { day: number; snapshot: string }[]
      ).map((r) => {
        const { asOf: _asOf, ...rest } = JSON.parse(r.snapshot) as { asOf: number };
        return { day: r.day, ...rest };
      }),
    };
  } finally {
    db.close();
  }
}

/**
 * The records the store counted, each once (one ingestion identity each). shopFlow's records are
 * slices of 2,000 long flows, and the store counts a flow once however many records report it, so
 * the exactly-once checks count records, not flows. 0 while the file does not exist yet.
 */
export function storedRecords(dbPath: string): number {
  return storedNumber(dbPath, 'SELECT count(*) AS n FROM flow_identities');
}

/**
 * Packets counted in the store, cheaply: the sum over edges_hourly (a row per edge, hour and result),
 * where storedRecords counts flow_identities row by row (12.5 ms at 200,000 flows: polled every 20 ms
 * by a benchmark, that took half a core from the processor it measured on this 2-core machine). Every
 * record adds its packets, also a later slice of a flow, so a known input is all in once this
 * reaches the sum of its records' packets.
 */
export function storedPackets(dbPath: string): number {
  return storedNumber(dbPath, 'SELECT coalesce(sum(packets), 0) AS n FROM edges_hourly');
}

/** One number (`n`) read from the store while a processor may write it; 0 while the file does not exist yet. */
function storedNumber(dbPath: string, sql: string): number {
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 2000');
      return (db.prepare(sql).get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}

export function storedOffsets(dbPath: string, consumer: string): Map<number, bigint> {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare('SELECT partition, next_offset FROM offsets WHERE consumer = ?')
      .all(consumer) as { partition: number; next_offset: string }[];
    return new Map(rows.map((r) => [r.partition, BigInt(r.next_offset)]));
  } finally {
    db.close();
  }
}

/** Every message of a topic, in partition order, with its offset. */
export async function readTopic(kafka: Kafka, topic: string, expected: number) {
  const consumer = kafka.consumer({ groupId: `reader-${topic}-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got: {
    partition: number;
    offset: string;
    key: string | null;
    value: Buffer | null;
    headers: Record<string, string>;
  }[] = [];
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      got.push({
        partition,
        offset: message.offset,
        key: message.key?.toString() ?? null,
        value: message.value,
        headers: Object.fromEntries(
          Object.entries(message.headers ?? {}).map(([k, v]) => [k, v?.toString() ?? '']),
        ),
      });
    },
  });
  await waitUntil(`${expected} messages on ${topic}`, () => got.length >= expected, 60_000);
  await consumer.disconnect();
  return got;
}

/**
 * The compression codec of every record batch the broker holds for a topic, read from its log
 * segments: what the producer really sent (a consumer decompresses without saying). Record batch
 * header: baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8, crc int32,
 * attributes int16 (codec in bits 0-2).
 */
export function codecsOf(dataDir: string, topic: string): Set<string> {
  const names = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
  const out = new Set<string>();
  const logDirs = readdirSync(dataDir, { recursive: true, withFileTypes: true }).filter(
    (d) => d.isDirectory() && /^(.*)-\d+$/.exec(d.name)?.[1] === topic,
  );
  if (logDirs.length === 0) throw new Error(`no log directory of ${topic} under ${dataDir}`);
  for (const d of logDirs)
    for (const f of readdirSync(join(d.parentPath, d.name)).filter((n) => n.endsWith('.log'))) {
      const b = readFileSync(join(d.parentPath, d.name, f));
      for (let at = 0; at + 23 <= b.length; at += 12 + b.readInt32BE(at + 8))
        out.add(names[b.readInt16BE(at + 21) & 7] ?? 'unknown');
    }
  return out;
}

import {
  CompressionTypes,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  type Kafka,
  type KafkaMessage,
  type Producer,
} from 'kafkajs';
import type { ErrorCode } from '../lib/errors.js';
import { type Logger, log } from '../lib/log.js';
import type { Classification } from '../processor/classify.js';
import { type ClusterView, FlowProcessor, type JudgedFlow, type JudgedSink } from '../processor/processor.js';
import type { AuditStore, StoredFlow } from '../processor/store/index.js';
import type { FlowRecord } from '../schema/flow-record.js';
import { StoreRecorder } from '../sinks/store.js';
import {
  type DecodedItem,
  deadLetter,
  deadLetterItem,
  decodeMessage,
  flowKey,
  HEADER_SCHEMA,
  HEADER_VERSION,
  type WireFormat,
  type WireMessage,
} from '../transport/codec.js';
import {
  disconnectWithin,
  type OutgoingMessage,
  type ProduceClient,
  platformaticProducer,
} from '../transport/kafka/produce-client.js';
import { createKafka, type KafkaSettings } from '../transport/kafka/settings.js';
import { HEADER_ORIGIN, HEADER_SEQ, REQUEST_PARTITION_BYTES } from '../transport/kafka/sink.js';
import { ensureTopics, sleep } from '../transport/kafka/topics.js';
import {
  decodeVerdicts,
  encodeVerdict,
  packVerdicts,
  type VerdictMessage,
} from '../transport/kafka/verdict.js';
import { stringifySharingReplay } from '../transport/stored-json.js';

/**
 * The consuming side of the pipeline, in three roles (docs/pipeline.md):
 *   all     flows topic → judge → store, in one process (the store is the one SQLite writer)
 *   judge   flows topic → judge → verdicts topic; any number of them share the flows partitions
 *   record  verdicts topic → store; exactly one, the SQLite writer
 * Exactly once into the store: the store keeps, in the same transaction as the data, the next
 * offset of every partition it consumed, the highest source offset recorded per flows partition,
 * and the highest collector sequence number per (collector origin, flows partition). Whatever Kafka
 * delivers again (a restart after SIGKILL, a rebalance, a judge re-judging, a collector resending a
 * batch whose acknowledgement it lost) is at or below those marks and is skipped.
 */

export type Role = 'all' | 'judge' | 'record';

export interface RunnerOptions {
  role: Role;
  settings: KafkaSettings;
  /** Required for `all` and `judge`. */
  cluster?: ClusterView;
  /** Required for `all` and `record`. */
  store?: AuditStore;
  /** Called in each store transaction with the flows counted for the first time (the alert stage). */
  onCounted?: (fresh: readonly StoredFlow[]) => void;
  /** Stop once caught up with the topic and nothing arrived for this long (tests, benchmarks). */
  exitWhenIdleMs?: number;
  signal?: AbortSignal;
  kafka?: Kafka;
  logger?: Logger;
  /** Called after each store commit (tests and benchmarks watch progress through it). */
  onCommit?: (stats: RunnerStats) => void;
  /**
   * How a judge publishes its verdicts: 1, one message each (what every recorder reads); 2, packs
   * (transport/kafka/verdict.ts), which a recorder of this version reads. Default 1.
   */
  verdictWire?: WireFormat;
}

export interface RunnerStats {
  role: Role;
  /** Messages taken from the consumed topic, including skipped ones. */
  consumed: number;
  /** Messages below the stored position of their partition: already in the store. */
  redelivered: number;
  /** Flows (or verdicts) dropped because the store already has them (judge re-judging, collector resend). */
  duplicates: number;
  deadLetters: number;
  deadLetterCodes: Record<string, number>;
  /** Flows judged by this process. */
  judged: number;
  /** Flows written to the store by this process. */
  recorded: number;
  allowed: number;
  deniedButObserved: number;
  deniedAttempts: number;
  ambiguous: number;
  violationsPublished: number;
  verdictsPublished: number;
  /** Per partition of the consumed topic: messages behind its high watermark at the last batch. */
  lag: Record<number, number>;
  /** Kafka batches handled (with at least one message). */
  batches: number;
  /**
   * Seconds spent per stage (`netpol_audit_processor_stage_seconds_total`, docs/metrics.md): judge,
   * decoding and judging (or, for a recorder, reading verdicts); publish, until the broker took the
   * side outputs; commit, the store's transactions. Publishing overlaps the next batch's judging,
   * so they do not add up to the wall time: a stage close to it is the one that bounds the rate.
   */
  seconds: { judge: number; publish: number; commit: number };
  firstFlow?: number;
  lastFlow?: number;
  assigned: number[];
}

const SOURCE_SUFFIX = '#source';
const ORIGINS_SUFFIX = '#origins';
/**
 * Records of v2 packs are marked as (offset or sequence, index in the pack), one number:
 * n * 2^32 + index, under their own names (`TOPIC#pack`, `TOPIC|ORIGIN#pack`) so that v1 and v2
 * messages mixed in one partition, or from one collector, each keep a monotonic mark.
 */
const ITEM_BITS = 32n;
const PACK_SUFFIX = '#pack';
function itemMark(n: bigint, index: number): bigint {
  return (n << ITEM_BITS) + BigInt(index);
}

function header(headers: IHeaders | undefined, name: string): string | undefined {
  const h = headers?.[name];
  if (h === undefined) return undefined;
  const v = Array.isArray(h) ? h[0] : h;
  return v === undefined ? undefined : v.toString();
}

function toWire(m: KafkaMessage): WireMessage {
  return { key: m.key, value: m.value, headers: m.headers as WireMessage['headers'] };
}

/** High-water marks kept in the store's offsets table, committed with the data. */
class Marks {
  private readonly next = new Map<string, bigint>();
  constructor(
    readonly consumer: string,
    store: AuditStore | undefined,
  ) {
    if (store)
      for (const o of store.offsets(consumer))
        this.next.set(`${o.topic}\u0000${o.partition}`, BigInt(o.nextOffset));
  }
  get(topic: string, partition: number): bigint | undefined {
    return this.next.get(`${topic}\u0000${partition}`);
  }
  /** True when `value` is new (at or above the mark); then the mark moves past it. */
  accept(topic: string, partition: number, value: bigint, recorder: StoreRecorder | undefined): boolean {
    const k = `${topic}\u0000${partition}`;
    const mark = this.next.get(k);
    if (mark !== undefined && value < mark) return false;
    this.next.set(k, value + 1n);
    recorder?.advance({ consumer: this.consumer, topic, partition, nextOffset: String(value + 1n) });
    return true;
  }
  /**
   * A pack's `count` records at once, numbered itemMark(n, 0..count-1): returns the index of the
   * first one that is new (count when none is), and moves the mark past the last one.
   */
  acceptItems(
    topic: string,
    partition: number,
    n: bigint,
    count: number,
    recorder: StoreRecorder | undefined,
  ): number {
    const k = `${topic}\u0000${partition}`;
    const mark = this.next.get(k);
    const first = itemMark(n, 0);
    const end = itemMark(n, count);
    let fresh = 0;
    if (mark !== undefined && mark > first) fresh = mark >= end ? count : Number(mark - first);
    if (fresh < count) {
      this.next.set(k, end);
      recorder?.advance({ consumer: this.consumer, topic, partition, nextOffset: String(end) });
    }
    return fresh;
  }
}

class Tally implements JudgedSink {
  current: JudgedFlow | undefined;
  write(judged: JudgedFlow): void {
    this.current = judged;
  }
  async flush(): Promise<void> {}
}

export class PipelineRunner {
  readonly stats: RunnerStats;
  private readonly kafka: Kafka;
  private readonly logger: Logger;
  private readonly group: string;
  private readonly topic: string;
  private readonly recorder: StoreRecorder | undefined;
  private readonly processor: FlowProcessor | undefined;
  private readonly tally = new Tally();
  private readonly positions: Marks;
  private readonly sources: Marks;
  private readonly origins: Marks;
  /** Dead letters (rare; their headers are the consumed message's, as kafkajs gives them). */
  private producer: Producer | undefined;
  /** Violations and verdicts, per topic: @platformatic/kafka, a fresh one after a failure. */
  private readonly outputs = new Map<string, ProduceClient>();
  private lastActivity = Date.now();
  /** Consumer restarts since the group was last joined (the backoff grows with them). */
  private restarts = 0;
  private unpublished = false;
  /** The batches taken from the recorder, committed in order once their outputs are published. */
  private committed: Promise<void> = Promise.resolve();
  private inFlight = 0;
  /** A store commit that failed: nothing after it is committed, and the runner stops with it. */
  private commitFailure: Error | undefined;
  /** The runner is ending: a side output that cannot be published now is given up. */
  private stopping = false;

  constructor(private readonly opts: RunnerOptions) {
    const { role, settings } = opts;
    if (role !== 'record' && !opts.cluster) throw new Error(`--role ${role} needs the cluster`);
    if (role !== 'judge' && !opts.store) throw new Error(`--role ${role} needs the store`);
    this.kafka = opts.kafka ?? createKafka(settings, `-${role}`);
    this.logger = (opts.logger ?? log()).child({ component: 'pipeline', role });
    this.group = role === 'all' ? settings.group : `${settings.group}-${role}`;
    this.topic = role === 'record' ? settings.topics.verdicts : settings.topics.flows;
    // The batch is committed explicitly per Kafka batch, after its side outputs are published.
    this.recorder = opts.store
      ? new StoreRecorder(opts.store, Number.MAX_SAFE_INTEGER, opts.onCounted)
      : undefined;
    if (opts.cluster) this.processor = new FlowProcessor(opts.cluster, this.tally);
    const store = role === 'judge' ? undefined : opts.store;
    this.positions = new Marks(this.group, store);
    this.sources = new Marks(`${settings.group}${SOURCE_SUFFIX}`, store);
    this.origins = new Marks(`${settings.group}${ORIGINS_SUFFIX}`, store);
    this.stats = {
      role,
      consumed: 0,
      redelivered: 0,
      duplicates: 0,
      deadLetters: 0,
      deadLetterCodes: {},
      judged: 0,
      recorded: 0,
      allowed: 0,
      deniedButObserved: 0,
      deniedAttempts: 0,
      ambiguous: 0,
      violationsPublished: 0,
      lag: {},
      batches: 0,
      seconds: { judge: 0, publish: 0, commit: 0 },
      verdictsPublished: 0,
      assigned: [],
    };
  }

  async run(): Promise<RunnerStats> {
    const { settings } = this.opts;
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await ensureTopics(admin, settings);
      this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await this.producer.connect();
      let running = await this.startConsumer();
      const signal = this.opts.signal;
      for (;;) {
        if (this.commitFailure) throw this.commitFailure;
        const crashed = running.crashed();
        if (crashed) {
          if (!isTransient(crashed)) throw crashed;
          // kafkajs gives up for good on these (a group coordinator not found yet, say, while a busy
          // broker creates __consumer_offsets); a processor is a daemon, so it starts the consumer again.
          this.restarts++;
          const waitMs = Math.min(30_000, 500 * 2 ** Math.min(this.restarts, 6));
          this.logger.warn(
            { err: `${crashed.name}: ${crashed.message}`, restarts: this.restarts, waitMs },
            'consumer stopped on a transient error; starting it again',
          );
          await running.consumer.disconnect().catch(() => undefined);
          await sleep(waitMs);
          running = await this.startConsumer();
          continue;
        }
        if (signal?.aborted) break;
        if (
          this.opts.exitWhenIdleMs !== undefined &&
          Date.now() - this.lastActivity >= this.opts.exitWhenIdleMs
        ) {
          if (await this.caughtUp(admin)) break;
          this.lastActivity = Date.now() - this.opts.exitWhenIdleMs / 2;
        }
        await sleep(100);
      }
      const consumer = running.consumer;
      this.stopping = true;
      await consumer.stop();
      await this.committed;
      if (this.commitFailure) throw this.commitFailure;
      if (!this.unpublished) this.recorder?.commit();
      await consumer.disconnect();
      await this.producer.disconnect();
      this.logger.info({ stats: this.stats }, 'stopped');
      return this.stats;
    } finally {
      this.stopping = true;
      await this.dropOutputs();
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** A consumer in the group, running; `crashed()` is the error it stopped on for good, if any. */
  private async startConsumer(): Promise<{ consumer: Consumer; crashed: () => Error | undefined }> {
    const { settings } = this.opts;
    const consumer = this.kafka.consumer({
      groupId: this.group,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      maxBytesPerPartition: 4 << 20,
      maxBytes: 16 << 20,
      maxWaitTimeInMs: 200,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 5_000 },
    });
    let crashed: Error | undefined;
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) crashed = e.payload.error;
      else this.logger.warn({ err: e.payload.error.message }, 'consumer restarting after an error');
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const assigned = (e.payload.memberAssignment[this.topic] ?? []).slice().sort((a, b) => a - b);
      this.stats.assigned = assigned;
      this.restarts = 0;
      this.lastActivity = Date.now();
      this.logger.info({ topic: this.topic, partitions: assigned }, 'assigned partitions');
      // Resume where the store says, not where Kafka's group offsets say: the store's positions
      // are committed with the data. (Kafka's committed offsets only trail them.)
      for (const p of assigned) {
        const at = this.positions.get(this.topic, p);
        if (at !== undefined) consumer.seek({ topic: this.topic, partition: p, offset: String(at) });
      }
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: this.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: true,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => this.eachBatch(payload),
      });
    } catch (err) {
      crashed = err as Error;
    }
    return { consumer, crashed: () => crashed };
  }

  private async caughtUp(admin: ReturnType<Kafka['admin']>): Promise<boolean> {
    if (this.stats.assigned.length === 0) return false;
    const offsets = await admin.fetchTopicOffsets(this.topic).catch(() => undefined);
    if (!offsets) return false;
    for (const p of this.stats.assigned) {
      const high = BigInt(offsets.find((o) => o.partition === p)?.high ?? '0');
      const at = this.positions.get(this.topic, p) ?? 0n;
      if (at < high) return false;
    }
    return true;
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, isRunning }: EachBatchPayload): Promise<void> {
    if (this.commitFailure) throw this.commitFailure;
    if (batch.messages.length === 0) return;
    const judging = performance.now();
    this.stats.batches++;
    this.lastActivity = Date.now();
    const { topic, partition } = batch;
    // What this batch leaves behind the partition's end (kafkajs: highWatermark - last offset - 1).
    this.stats.lag[partition] = Number(batch.offsetLag());
    const out: { topic: string; messages: WireMessage[] }[] = [];
    const deadLetters: WireMessage[] = [];
    const violations: WireMessage[] = [];
    const verdicts: WireMessage[] = [];
    let last: string | undefined;
    for (const message of batch.messages) {
      if (!isRunning()) break;
      this.stats.consumed++;
      last = message.offset;
      const offset = BigInt(message.offset);
      // Positions: in the store for `all` and `record` (committed with the data); in memory for judges.
      if (
        !this.positions.accept(
          topic,
          partition,
          offset,
          this.opts.role === 'judge' ? undefined : this.recorder,
        )
      ) {
        this.stats.redelivered++;
        continue;
      }
      if (this.opts.role === 'record') this.recordVerdict(message, { topic, partition }, deadLetters);
      else this.judgeFlow(message, { topic, partition }, deadLetters, violations, verdicts);
    }
    if (deadLetters.length) out.push({ topic: this.opts.settings.topics.deadLetter, messages: deadLetters });
    if (violations.length) out.push({ topic: this.opts.settings.topics.violations, messages: violations });
    if (verdicts.length)
      out.push({
        topic: this.opts.settings.topics.verdicts,
        messages: this.opts.verdictWire === 2 ? packVerdicts(verdicts) : verdicts,
      });
    this.stats.seconds.judge += (performance.now() - judging) / 1000;
    // Side outputs first, then the store: a crash between them publishes again (at-least-once
    // topics) but never loses an output of a flow the store counted.
    if (this.recorder && this.opts.role !== 'judge') {
      // The store's positions are the consumer's (Kafka's offsets only trail them), so the next
      // batch can be judged while this one's outputs are on their way; the batches are committed
      // in order, each once its outputs are published. A batch whose outputs could not be
      // published (stopping) is not committed, nor is any after it.
      const unit = this.recorder.take();
      const recorder = this.recorder;
      this.inFlight++;
      this.committed = this.committed
        .then(async () => {
          if (this.unpublished || this.commitFailure) return;
          try {
            // Given up only when the runner stops: a consumer that crashed and was started again
            // (isTransient) leaves this batch's outputs to be published all the same.
            await this.publish(out, () => this.stopping, heartbeat, violations.length, verdicts.length);
          } catch {
            return; // stopping (publish set `unpublished`)
          }
          const committing = performance.now();
          try {
            recorder.commitTaken(unit);
          } catch (err) {
            // The store failed (locked, full, damaged): the consumer stops on it, as it would have
            // had the commit been made in the batch.
            this.commitFailure = err as Error;
            return;
          }
          this.stats.seconds.commit += (performance.now() - committing) / 1000;
          this.opts.onCommit?.(this.stats);
        })
        .finally(() => this.inFlight--);
      if (last !== undefined) resolveOffset(last);
      await heartbeat();
      if (this.inFlight >= MAX_BATCHES_IN_FLIGHT) await this.committed;
      if (this.commitFailure) throw this.commitFailure;
      return;
    }
    // A judge's position is Kafka's committed offset: resolved only once its outputs are published.
    await this.publish(out, () => !isRunning(), heartbeat, violations.length, verdicts.length);
    if (last !== undefined) resolveOffset(last);
    await heartbeat();
  }

  /** Publishes side outputs until the broker takes them; throws only once `stopping()` says so. */
  private async publish(
    out: { topic: string; messages: WireMessage[] }[],
    stopping: () => boolean,
    heartbeat: () => Promise<void>,
    violations: number,
    verdicts: number,
  ): Promise<void> {
    if (out.length === 0) return;
    const publishing = performance.now();
    // Until the broker takes them: the positions of these messages have moved on, so a batch
    // Kafka delivered again would not publish them a second time. A part the broker took is not
    // sent again when a later part has to be retried.
    for (const part of sideOutputParts(out))
      for (const t of part)
        for (let attempt = 1; ; attempt++) {
          try {
            await this.send(t.topic, t.messages);
            break;
          } catch (err) {
            if (stopping() || this.opts.signal?.aborted) {
              // Stopping with outputs unpublished: the store must not count these flows either.
              this.unpublished = true;
              throw err;
            }
            if (attempt === 1) this.logger.warn({ err: (err as Error).message }, 'cannot publish: retrying');
            await this.dropOutputs();
            await sleep(Math.min(5000, 250 * attempt));
            await heartbeat().catch(() => undefined);
          }
        }
    this.stats.violationsPublished += violations;
    this.stats.verdictsPublished += verdicts;
    this.stats.seconds.publish += (performance.now() - publishing) / 1000;
  }

  /**
   * Violations and verdicts go through @platformatic/kafka: it encodes a keyed message for about
   * half of kafkajs' CPU, and these are one message per violation, and per flow for a judge
   * (docs/kafka.md). Violations are gzip, which every consumer reads; verdicts zstd, which the
   * recorder reads. Dead letters stay on kafkajs: they copy the consumed message's headers, and
   * kafkajs gives a repeated header as an array, which the other client cannot send.
   */
  private async send(topic: string, messages: WireMessage[]): Promise<void> {
    const { topics } = this.opts.settings;
    if (topic === topics.deadLetter) {
      await this.producer!.sendBatch({
        acks: -1,
        compression: CompressionTypes.GZIP,
        topicMessages: [
          {
            topic,
            messages: messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers as IHeaders })),
          },
        ],
      });
      return;
    }
    let client = this.outputs.get(topic);
    if (!client) {
      const settings = {
        ...this.opts.settings,
        clientId: `${this.opts.settings.clientId}-${this.opts.role}-outputs`,
      };
      client = await platformaticProducer(settings, topic === topics.verdicts ? 'zstd' : 'gzip')();
      this.outputs.set(topic, client);
    }
    // Violations and verdicts carry string headers, never kafkajs' arrays (those are dead letters').
    await client.send(topic, messages as OutgoingMessage[]);
  }

  /** After a failed send the next attempt starts from fresh producers (and producer ids). */
  private async dropOutputs(): Promise<void> {
    const clients = [...this.outputs.values()];
    this.outputs.clear();
    await Promise.all(clients.map((c) => disconnectWithin(c)));
  }

  private deadLetter(
    message: KafkaMessage,
    from: { topic: string; partition: number },
    failure: { code: ErrorCode; reason: string },
    into: WireMessage[],
    item?: { index: number; raw: string },
  ): void {
    this.stats.deadLetters++;
    this.stats.deadLetterCodes[failure.code] = (this.stats.deadLetterCodes[failure.code] ?? 0) + 1;
    const where = { ...from, offset: message.offset };
    if (item) {
      this.logger.warn(
        { ...where, index: item.index, code: failure.code },
        `unreadable record of a pack sent to the dead-letter topic: ${failure.reason}`,
      );
      into.push(deadLetterItem(toWire(message), where, { ...item, ...failure }));
      return;
    }
    this.logger.warn(
      { ...where, code: failure.code },
      `unreadable message sent to the dead-letter topic: ${failure.reason}`,
    );
    into.push(deadLetter(toWire(message), where, failure));
  }

  /** Collector resends: the same origin and sequence number seen again in the same flows partition. */
  private isResent(headers: IHeaders | undefined, partition: number): boolean {
    const origin = header(headers, HEADER_ORIGIN);
    const seq = header(headers, HEADER_SEQ);
    if (origin === undefined || seq === undefined || !/^\d+$/.test(seq)) return false;
    const fresh = this.origins.accept(
      `${this.opts.settings.topics.flows}|${origin}`,
      partition,
      BigInt(seq),
      this.recorder,
    );
    return !fresh;
  }

  private count(classification: Classification, start: number, end: number): void {
    const s = this.stats;
    if (classification === 'allowed') s.allowed++;
    else if (classification === 'denied-but-observed') s.deniedButObserved++;
    else if (classification === 'denied-attempt') s.deniedAttempts++;
    else s.ambiguous++;
    s.firstFlow = s.firstFlow === undefined ? start : Math.min(s.firstFlow, start);
    s.lastFlow = s.lastFlow === undefined ? end : Math.max(s.lastFlow, end);
  }

  private judgeFlow(
    message: KafkaMessage,
    from: { topic: string; partition: number },
    deadLetters: WireMessage[],
    violations: WireMessage[],
    verdicts: WireMessage[],
  ): void {
    const d = decodeMessage(toWire(message));
    if (!d.ok) {
      this.deadLetter(message, from, d, deadLetters);
      return;
    }
    if (d.packed) {
      this.judgePack(message, from, d.items, deadLetters, violations, verdicts);
      return;
    }
    // Judges cannot know what the store has; the recorder applies the same check to their verdicts.
    if (this.opts.role === 'all') {
      if (this.isResent(message.headers, from.partition)) {
        this.stats.duplicates++;
        return;
      }
      this.sources.accept(from.topic, from.partition, BigInt(message.offset), this.recorder);
    }
    this.judgeRecord(message, from, d.record, undefined, deadLetters, violations, verdicts);
  }

  /**
   * A v2 pack: the records a collector resent (same origin, sequence and index) or that the store
   * already has are skipped, each bad record goes to the dead-letter topic alone with its index, the
   * rest is judged in order. In role all the pack is one unit of the store transaction.
   */
  private judgePack(
    message: KafkaMessage,
    from: { topic: string; partition: number },
    items: DecodedItem[],
    deadLetters: WireMessage[],
    violations: WireMessage[],
    verdicts: WireMessage[],
  ): void {
    let first = 0;
    if (this.opts.role === 'all') {
      const origin = header(message.headers, HEADER_ORIGIN);
      const seq = header(message.headers, HEADER_SEQ);
      if (origin !== undefined && seq !== undefined && /^\d+$/.test(seq))
        first = this.origins.acceptItems(
          `${this.opts.settings.topics.flows}|${origin}${PACK_SUFFIX}`,
          from.partition,
          BigInt(seq),
          items.length,
          this.recorder,
        );
      const stored = this.sources.acceptItems(
        `${from.topic}${PACK_SUFFIX}`,
        from.partition,
        BigInt(message.offset),
        items.length,
        this.recorder,
      );
      first = Math.max(first, stored);
      this.stats.duplicates += first;
    }
    for (let i = first; i < items.length; i++) {
      const item = items[i]!;
      if (!item.ok) this.deadLetter(message, from, item, deadLetters, item);
      else this.judgeRecord(message, from, item.record, i, deadLetters, violations, verdicts);
    }
  }

  private judgeRecord(
    message: KafkaMessage,
    from: { topic: string; partition: number },
    record: FlowRecord,
    index: number | undefined,
    deadLetters: WireMessage[],
    violations: WireMessage[],
    verdicts: WireMessage[],
  ): void {
    try {
      this.processor!.write(record);
    } catch (err) {
      // Its position has moved on: dead-lettering it is the one way it is not silently lost.
      const failure = { code: 'JUDGE_FAILED' as const, reason: (err as Error).message };
      if (index === undefined) this.deadLetter(message, from, failure, deadLetters);
      else this.deadLetter(message, from, failure, deadLetters, { index, raw: JSON.stringify(record) });
      return;
    }
    const judged = this.tally.current!;
    this.stats.judged++;
    const source: VerdictMessage['source'] =
      index === undefined ? { ...from, offset: message.offset } : { ...from, offset: message.offset, index };
    if (judged.classification === 'denied-but-observed')
      violations.push({
        key: flowKey(record),
        value: stringifySharingReplay({ source, ...judged.stored }, judged.stored.facts),
        headers: { [HEADER_SCHEMA]: 'violation', [HEADER_VERSION]: '1' },
      });
    if (this.opts.role === 'all') {
      this.recorder!.write(judged);
      this.stats.recorded++;
      this.count(judged.classification, judged.stored.start, judged.stored.end);
    } else {
      const origin = header(message.headers, HEADER_ORIGIN);
      const seq = header(message.headers, HEADER_SEQ);
      const v: VerdictMessage = { v: 1, source, flow: judged.stored };
      if (origin !== undefined && seq !== undefined && /^\d+$/.test(seq)) {
        v.origin = origin;
        v.seq = Number(seq);
      }
      verdicts.push(encodeVerdict(v));
      this.count(judged.classification, judged.stored.start, judged.stored.end);
    }
  }

  private recordVerdict(
    message: KafkaMessage,
    from: { topic: string; partition: number },
    deadLetters: WireMessage[],
  ): void {
    const d = decodeVerdicts(toWire(message));
    if (!d.ok) this.deadLetter(message, from, d, deadLetters);
    else if (!d.packed) this.recordOne(d.verdict);
    else
      for (const item of d.items) {
        if (item.ok) this.recordOne(item.verdict);
        else this.deadLetter(message, from, item, deadLetters, item);
      }
  }

  private recordOne(verdict: VerdictMessage): void {
    const { source, flow, origin, seq } = verdict;
    // A record of a v2 pack is (offset, index) and (sequence, index): see itemMark.
    const packed = source.index !== undefined;
    const suffix = packed ? PACK_SUFFIX : '';
    const at = (n: bigint) => (packed ? itemMark(n, source.index!) : n);
    if (
      !this.sources.accept(
        `${source.topic}${suffix}`,
        source.partition,
        at(BigInt(source.offset)),
        this.recorder,
      )
    ) {
      this.stats.duplicates++;
      return;
    }
    if (origin !== undefined && seq !== undefined) {
      const fresh = this.origins.accept(
        `${source.topic}|${origin}${suffix}`,
        source.partition,
        at(BigInt(seq)),
        this.recorder,
      );
      if (!fresh) {
        this.stats.duplicates++;
        return;
      }
    }
    this.recorder!.write({ stored: flow } as JudgedFlow);
    this.stats.recorded++;
    this.count(flow.classification, flow.start, flow.end);
  }
}

/**
 * Messages per produce request of side outputs. kafkajs groups a request's messages by partition
 * by copying the partition's list for every message it adds (quadratic): with the violations of a
 * large Kafka batch in one request that copying took 5.6% of the processor's CPU samples, 0.6% with
 * requests of this size (docs/kafka.md), for one round trip each.
 */
export const SIDE_OUTPUT_PART = 500;

/**
 * Bytes of message values per produce request of side outputs, before compression: under a broker's
 * default `message.max.bytes` however the values compress (transport/kafka/sink.ts). Verdict packs
 * of a large Kafka batch once made requests of tens of MB that the broker refused, again and again.
 */
export const SIDE_OUTPUT_PART_BYTES = REQUEST_PARTITION_BYTES;

/** Kafka batches judged while earlier ones wait for their side outputs to be published. */
const MAX_BATCHES_IN_FLIGHT = 2;

function valueBytes(m: WireMessage): number {
  const v = m.value;
  return v === null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}

/**
 * The side outputs as produce requests of at most `size` messages and `bytes` bytes of values
 * (a message larger than that alone in its request), in order.
 */
export function sideOutputParts(
  out: readonly { topic: string; messages: WireMessage[] }[],
  size = SIDE_OUTPUT_PART,
  bytes = SIDE_OUTPUT_PART_BYTES,
): { topic: string; messages: WireMessage[] }[][] {
  const parts: { topic: string; messages: WireMessage[] }[][] = [];
  let part: { topic: string; messages: WireMessage[] }[] = [];
  let n = 0;
  let used = 0;
  for (const t of out) {
    let current: WireMessage[] | undefined;
    for (const m of t.messages) {
      const b = valueBytes(m);
      if (n > 0 && (n === size || used + b > bytes)) {
        parts.push(part);
        part = [];
        n = 0;
        used = 0;
        current = undefined;
      }
      if (!current) {
        current = [];
        part.push({ topic: t.topic, messages: current });
      }
      current.push(m);
      n++;
      used += b;
    }
  }
  if (n > 0) parts.push(part);
  return parts;
}

export function runPipeline(opts: RunnerOptions): Promise<RunnerStats> {
  return new PipelineRunner(opts).run();
}

/** Errors kafkajs does not retry by itself but that a broker that is busy, restarting or moving recovers from. */
const TRANSIENT_ERRORS = new Set([
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNumberOfRetriesExceeded',
]);

export function isTransient(err: Error): boolean {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause)
    if (TRANSIENT_ERRORS.has(e.name)) return true;
  return false;
}

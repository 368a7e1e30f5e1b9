import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { FlowSink } from '../../collectors/sink.js';
import { type Logger, log } from '../../lib/log.js';
import type { FlowRecord } from '../../schema/flow-record.js';
import { encodePack, flowHeaders, flowKey, type WireFormat } from '../codec.js';
import { DiskSpool, type SpooledMessage } from '../spool.js';
import { partitionOf } from './partition.js';
import {
  disconnectWithin,
  kafkajsProducer,
  type ProduceClient,
  type ProduceClientFactory,
  type ProduceCompression,
  type ProducerLibrary,
  platformaticProducer,
} from './produce-client.js';
import { createKafka, type KafkaSettings } from './settings.js';
import { ensureTopics, sleep } from './topics.js';

/**
 * The wire format collectors write unless told otherwise. Still 1 in this release so that an upgrade
 * rolls: processors (and the recorder) that read both formats go first, then collectors switch to
 * packs (`wire: 2`, `collect --wire 2`); docs/pipeline.md "Upgrading to wire format v2".
 */
export const DEFAULT_WIRE_FORMAT: WireFormat = 1;

/**
 * Headers that name the sink instance and number its messages (v1: one number per record; v2: one
 * per pack, and a record is (sequence, index in the pack)). A batch whose send failed may still
 * have reached the broker (the reply was lost); the sink then resends it from the spool, and the
 * processor drops the copy because its sequence number is not above the highest one it stored for
 * that origin and partition (docs/pipeline.md).
 */
export const HEADER_ORIGIN = 'netpol-audit-origin';
export const HEADER_SEQ = 'netpol-audit-seq';

export interface KafkaFlowSinkOptions {
  settings: KafkaSettings;
  /** Directory of the on-disk spool used while the broker is unreachable; one sink per directory. */
  spoolDir: string;
  /** Spool bound; beyond it new records are dropped, counted and logged. Default 256 MiB. */
  spoolMaxBytes?: number;
  /** Wire format: 1, one message per record; 2, packs of records per partition. Default DEFAULT_WIRE_FORMAT. */
  wire?: WireFormat;
  /** v2: most records in one pack. Default 1000. */
  packSize?: number;
  /** Records per produce request. Default 2000 (v1), 12000 (v2). */
  batchSize?: number;
  /** How long a partial batch waits for more records. Default 20 ms. */
  lingerMs?: number;
  /** Records buffered in memory before write() makes the collector wait. Default 4 batches. */
  maxBuffered?: number;
  /** Pause between attempts to resend the spool while the broker is away. Default 1 s. */
  retryMs?: number;
  /** close(): how long to keep trying to resend the spool before leaving it for the next run. Default 30 s. */
  drainTimeoutMs?: number;
  /**
   * gzip, zstd or none. Default: zstd for v2 packs (a processor that reads packs reads zstd: Node.js'
   * zstd registered with kafkajs, transport/kafka/codecs.ts), gzip for v1 messages (any processor).
   */
  compression?: ProduceCompression;
  /** The producing library: @platformatic/kafka (default) or kafkajs. */
  producer?: ProducerLibrary;
  /** Another client altogether (tests, benchmarks); `compression` and `producer` are then its business. */
  client?: ProduceClientFactory;
  /** Create the pipeline's topics when they are missing. Default true. */
  createTopics?: boolean;
  kafka?: Kafka;
  logger?: Logger;
}

export interface KafkaSinkStats {
  /** Records written to the sink. */
  written: number;
  /** Records the broker acknowledged on the direct path. */
  sent: number;
  /** Records put in the spool because the broker was away (or records were already spooled). */
  spooled: number;
  /** Spooled records the broker acknowledged later. */
  resent: number;
  /** Records refused because the spool was full: lost, and reported. */
  dropped: number;
  droppedBytes: number;
  /** Produce attempts that failed (each one sends a batch to the spool or keeps it there). */
  sendFailures: number;
  /** Bytes still in the spool. */
  spoolBytes: number;
}

type Link = 'up' | 'away';

/** A record waiting in memory: its key (the partition) and its JSON. */
interface Entry {
  key: string;
  json: string;
  /** FlowRecord version (the v1 header). */
  v: number;
}

/**
 * Bytes of message values per partition and produce request, before compression. A broker refuses
 * a partition's batch larger than its `message.max.bytes` (1,048,588 by default), compressed, and
 * the refusal is permanent: with `--compression none` and a topic of one partition, requests of
 * 12 packs (4 MB) were refused for ever and every record went to the spool as if the broker were
 * away. Under this bound uncompressed, a request is under the broker's default however its values
 * compress (the margin is for the batch's and the records' headers).
 */
export const REQUEST_PARTITION_BYTES = 1_000_000;

/** Characters of JSON per pack at most: under REQUEST_PARTITION_BYTES even at 3 UTF-8 bytes each. */
export const PACK_CHARS = 333_000;

/** Bytes of one pack buffer: a pack's characters at most, its newlines and jsonLines' spare bytes. */
const PACK_BYTES = PACK_CHARS + 8;

/**
 * Pack buffers, used again once the broker has acknowledged the packs written into them. A buffer
 * allocated per pack was ~330 bytes of memory outside the JS heap per record; V8 counts such memory,
 * and every ~64 MB of it started a full collection that marked the collector's whole heap (in
 * bench/pipeline.ts, with 300,000 records in memory, a run with one cost ~1.5 µs per record more
 * than a run without). A buffer goes back only after a successful send: after a failed one the
 * client may still hold it (a request timed out while queued), so it is left to the collector.
 */
export class PackBuffers {
  private readonly free: Buffer[] = [];

  /** `keep`: buffers kept for reuse at most (each PACK_BYTES, ~333 KB). */
  constructor(private readonly keep = 16) {}

  readonly take = (bytes: number): Buffer =>
    bytes > PACK_BYTES ? Buffer.allocUnsafe(bytes) : (this.free.pop() ?? Buffer.allocUnsafeSlow(PACK_BYTES));

  /** The buffers of these acknowledged messages, for the next packs. */
  give(messages: readonly SpooledMessage[]): void {
    for (const m of messages) {
      const v = m.value;
      if (this.free.length >= this.keep) return;
      if (Buffer.isBuffer(v) && v.byteOffset === 0 && v.buffer.byteLength === PACK_BYTES)
        this.free.push(Buffer.from(v.buffer, 0, PACK_BYTES));
    }
  }

  get kept(): number {
    return this.free.length;
  }
}

/**
 * The messages as produce requests, in order, each holding at most `limit` bytes of values per
 * partition (a message larger than that alone). v1 messages, whose partition the client chooses,
 * count together.
 */
export function requestParts(
  batch: readonly SpooledMessage[],
  limit = REQUEST_PARTITION_BYTES,
): SpooledMessage[][] {
  const parts: SpooledMessage[][] = [];
  let part: SpooledMessage[] = [];
  const used = new Map<number, number>();
  for (const m of batch) {
    const p = m.partition ?? -1;
    const b = m.value === null ? 0 : Buffer.byteLength(m.value);
    const u = used.get(p) ?? 0;
    if (u > 0 && u + b > limit) {
      parts.push(part);
      part = [];
      used.clear();
    }
    part.push(m);
    used.set(p, (used.get(p) ?? 0) + b);
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

function isPacked(batch: Entry[] | SpooledMessage[]): batch is SpooledMessage[] {
  return batch.length > 0 && 'topic' in batch[0]!;
}

export class KafkaFlowSink implements FlowSink {
  readonly origin = randomUUID();
  private readonly spool: DiskSpool;
  private readonly kafka: Kafka;
  private readonly logger: Logger;
  private readonly batchSize: number;
  private readonly lingerMs: number;
  private readonly maxBuffered: number;
  private readonly retryMs: number;
  private producer: ProduceClient | undefined;
  private buffer: Entry[] = [];
  private readonly wire: WireFormat;
  private readonly packSize: number;
  /** Partitions of the flows topic (v2 packs per partition); unknown until the first connection. */
  private partitions: number | undefined;
  private partitionsAt = 0;
  private seq = 0;
  private link: Link = 'up';
  /** Every delivery and resend runs on this chain, one at a time, so records leave in write order. */
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private readonly packBuffers = new PackBuffers();
  /** Batches on the chain still as records (dispatched before the partition count was known). */
  private unpacked = 0;
  private linger: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private topicsReady: Promise<void> | undefined;
  private closed = false;
  private waiters: (() => void)[] = [];
  private lastDropLog = 0;
  private readonly counts = { written: 0, sent: 0, spooled: 0, sendFailures: 0 };

  constructor(private readonly opts: KafkaFlowSinkOptions) {
    this.kafka = opts.kafka ?? createKafka(opts.settings, '-collector');
    this.logger = (opts.logger ?? log()).child({ component: 'kafka-sink' });
    this.wire = opts.wire ?? DEFAULT_WIRE_FORMAT;
    this.packSize = opts.packSize ?? 1000;
    this.batchSize = opts.batchSize ?? (this.wire === 2 ? 12_000 : 2000);
    this.lingerMs = opts.lingerMs ?? 20;
    this.maxBuffered = opts.maxBuffered ?? this.batchSize * 4;
    this.retryMs = opts.retryMs ?? 1000;
    this.spool = new DiskSpool(opts.spoolDir, opts.spoolMaxBytes ?? 256 * 1024 * 1024);
    if (!this.spool.empty) {
      // An earlier run left records behind: they go first, and new ones queue behind them.
      this.link = 'away';
      this.logger.info(
        { spool: opts.spoolDir, bytes: this.spool.stats.bytes },
        'resending records spooled by an earlier run',
      );
      this.scheduleRetry(0);
    }
  }

  get stats(): KafkaSinkStats {
    const s = this.spool.stats;
    return {
      ...this.counts,
      resent: s.resent,
      dropped: s.dropped,
      droppedBytes: s.droppedBytes,
      spoolBytes: s.bytes,
    };
  }

  write(record: FlowRecord): void | Promise<void> {
    if (this.closed) throw new Error('KafkaFlowSink: write after close');
    this.buffer.push({ key: flowKey(record), json: JSON.stringify(record), v: record.v });
    this.counts.written++;
    if (this.buffer.length >= this.batchSize) this.dispatch();
    else this.linger ??= setTimeout(() => this.dispatch(), this.lingerMs);
    if (this.buffer.length + this.queued >= this.maxBuffered)
      return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Moves the buffered records onto the delivery chain. Once the partition count is known, v2
   * records become packs here rather than when their turn to be sent comes: a batch's JSON strings
   * then die young, while up to maxBuffered records wait as bytes outside the JS heap. Held as
   * strings until their turn, they were promoted to the old generation, whose growth set off
   * full garbage collections of the collector's whole heap. Batches are numbered in chain order,
   * so a batch is packed here only when none before it waits unpacked.
   */
  private dispatch(): Promise<void> {
    if (this.linger) clearTimeout(this.linger);
    this.linger = undefined;
    while (this.buffer.length > 0) {
      const batch = this.buffer.splice(0, this.batchSize);
      const records = batch.length;
      // Only `work` is held by the chain: the records' strings are let go once packed.
      const work =
        this.wire === 2 && this.partitions !== undefined && this.unpacked === 0
          ? this.toMessages(batch)
          : batch;
      if (work === batch) this.unpacked++;
      this.queued += records;
      this.chain = this.chain.then(async () => {
        await this.deliver(work, records);
        this.queued -= records;
        this.release();
      });
    }
    return this.chain;
  }

  private release(): void {
    if (this.buffer.length + this.queued >= this.maxBuffered) return;
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }

  /**
   * The messages of a batch of records, numbered now (once: a resend from the spool keeps them, so
   * the processor recognises a copy). v2 packs need the partition count; before the first
   * connection it is unknown and the records are spooled as v1 messages, which every processor
   * that reads v2 also reads.
   */
  private toMessages(batch: Entry[]): SpooledMessage[] {
    const topic = this.opts.settings.topics.flows;
    const n = this.partitions;
    if (this.wire === 1 || n === undefined)
      return batch.map((e) => ({
        topic,
        key: e.key,
        value: e.json,
        headers: { ...flowHeaders(e.v), [HEADER_ORIGIN]: this.origin, [HEADER_SEQ]: String(++this.seq) },
      }));
    const byPartition = new Map<number, string[]>();
    for (const e of batch) {
      const p = partitionOf(e.key, n);
      const lines = byPartition.get(p);
      if (lines) lines.push(e.json);
      else byPartition.set(p, [e.json]);
    }
    const out: SpooledMessage[] = [];
    for (const [partition, lines] of byPartition)
      for (let i = 0; i < lines.length; ) {
        // At most packSize records and PACK_CHARS characters (a record is ~300-400).
        let j = i;
        let chars = 0;
        while (
          j < lines.length &&
          j - i < this.packSize &&
          (j === i || chars + lines[j]!.length < PACK_CHARS)
        )
          chars += lines[j++]!.length + 1;
        const slice = lines.slice(i, j);
        i = j;
        const m = encodePack(slice, this.packBuffers.take);
        out.push({
          topic,
          key: null,
          value: m.value,
          partition,
          count: slice.length,
          headers: {
            ...(m.headers as Record<string, string>),
            [HEADER_ORIGIN]: this.origin,
            [HEADER_SEQ]: String(++this.seq),
          },
        });
      }
    return out;
  }

  /** Sends a batch (records, or the packs they already became), or spools it. */
  private async deliver(batch: Entry[] | SpooledMessage[], records: number): Promise<void> {
    let messages = isPacked(batch) ? batch : undefined;
    // Numbered now: until then no later batch may be packed (and numbered) ahead of this one.
    const pack = (entries: Entry[]) => {
      const m = this.toMessages(entries);
      this.unpacked--;
      return m;
    };
    if (this.link === 'up') {
      try {
        await this.connected();
        messages ??= pack(batch as Entry[]);
        await this.send(messages);
        this.counts.sent += records;
        this.packBuffers.give(messages);
        return;
      } catch (err) {
        this.counts.sendFailures++;
        this.link = 'away';
        await this.dropProducer();
        this.logger.warn(
          { err: (err as Error).message, spool: this.opts.spoolDir },
          'broker unreachable: spooling records to disk until it returns',
        );
        this.scheduleRetry(this.retryMs);
      }
    }
    this.toSpool(messages ?? pack(batch as Entry[]));
  }

  private toSpool(batch: SpooledMessage[]): void {
    let dropped = 0;
    for (const m of batch) {
      if (this.spool.append(m)) this.counts.spooled += m.count ?? 1;
      else dropped += m.count ?? 1;
    }
    if (dropped > 0) {
      const now = Date.now();
      // One line per second at most: a long outage must not flood the log, but every drop is counted.
      if (now - this.lastDropLog >= 1000) {
        this.lastDropLog = now;
        this.logger.error(
          { dropped: this.spool.stats.dropped, spool: this.opts.spoolDir, maxBytes: this.spool.maxBytes },
          'spool full: flow records dropped',
        );
      }
    }
  }

  private scheduleRetry(ms: number): void {
    if (this.retry || this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.chain = this.chain.then(async () => {
        await this.resend();
      });
    }, ms);
  }

  /** One attempt to resend the spool; on success the sink sends directly again. */
  private async resend(): Promise<boolean> {
    if (this.link === 'up' && this.spool.empty) return true;
    try {
      const n = await this.spool.drain((batch) => this.sendChunked(batch));
      await this.connected();
      // Nothing was appended while draining (the chain runs one task at a time): the spool is empty.
      this.link = 'up';
      if (n > 0) this.logger.info({ resent: n }, 'broker back: spooled records resent');
      return true;
    } catch (err) {
      this.counts.sendFailures++;
      await this.dropProducer();
      this.logger.debug({ err: (err as Error).message }, 'broker still unreachable');
      this.scheduleRetry(this.retryMs);
      return false;
    }
  }

  private async sendChunked(batch: SpooledMessage[]): Promise<void> {
    let chunk: SpooledMessage[] = [];
    let records = 0;
    for (const m of batch) {
      chunk.push(m);
      records += m.count ?? 1;
      if (records >= this.batchSize) {
        await this.send(chunk);
        chunk = [];
        records = 0;
      }
    }
    if (chunk.length > 0) await this.send(chunk);
  }

  private async send(batch: SpooledMessage[]): Promise<void> {
    const producer = await this.connected();
    for (const part of requestParts(batch)) await producer.send(this.opts.settings.topics.flows, part);
  }

  private async connected(): Promise<ProduceClient> {
    if (this.opts.createTopics !== false) {
      this.topicsReady ??= (async () => {
        const admin = this.kafka.admin();
        await admin.connect();
        try {
          await ensureTopics(admin, this.opts.settings, ['flows'], 15_000);
        } finally {
          await admin.disconnect();
        }
      })();
      try {
        await this.topicsReady;
      } catch (err) {
        this.topicsReady = undefined;
        throw err;
      }
    }
    this.producer ??= await this.client();
    // v2 packs per partition: the count is read at each new producer and every 5 minutes.
    if (this.wire === 2 && (this.partitions === undefined || Date.now() - this.partitionsAt > 300_000)) {
      const topic = this.opts.settings.topics.flows;
      const n = await this.producer.partitions(topic);
      if (n < 1) throw new Error(`topic ${topic} has no partitions`);
      if (this.partitions !== undefined && n !== this.partitions)
        this.logger.info({ topic, from: this.partitions, to: n }, 'flows topic partition count changed');
      this.partitions = n;
      this.partitionsAt = Date.now();
    }
    return this.producer;
  }

  private readonly client: ProduceClientFactory = () => {
    if (this.opts.client) return this.opts.client();
    const compression = this.opts.compression ?? (this.wire === 2 ? 'zstd' : 'gzip');
    return this.opts.producer === 'kafkajs'
      ? kafkajsProducer(this.kafka, compression)()
      : platformaticProducer(this.opts.settings, compression)();
  };

  /** After a failure the next attempt uses a fresh producer (and producer id): no stale sequence state. */
  private async dropProducer(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    if (p) await disconnectWithin(p);
  }

  /** Resolves when every record written so far is acknowledged by the broker or in the spool. */
  async flush(): Promise<void> {
    await this.dispatch();
  }

  /**
   * Flushes, then keeps trying to resend the spool for up to drainTimeoutMs; what is still spooled
   * then stays on disk for the next run with the same spool directory.
   */
  async close(): Promise<void> {
    await this.flush();
    const deadline = Date.now() + (this.opts.drainTimeoutMs ?? 30_000);
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    while (!this.spool.empty || this.link === 'away') {
      const ok = await this.resend();
      if (this.retry) clearTimeout(this.retry);
      this.retry = undefined;
      if (ok || Date.now() >= deadline) break;
      await sleep(Math.min(this.retryMs, Math.max(0, deadline - Date.now())));
    }
    this.closed = true;
    const s = this.stats;
    if (s.spoolBytes > 0)
      this.logger.warn(
        { spool: this.opts.spoolDir, bytes: s.spoolBytes },
        'broker still unreachable: records left in the spool, resent by the next run with this spool directory',
      );
    if (s.dropped > 0)
      this.logger.error(
        { dropped: s.dropped, droppedBytes: s.droppedBytes },
        'flow records dropped: spool was full',
      );
    this.spool.close();
    await this.dropProducer();
  }
}

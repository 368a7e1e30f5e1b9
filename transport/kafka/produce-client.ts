import { compatibilityPartitioner, Producer } from '@platformatic/kafka';
import { CompressionTypes, type Kafka } from 'kafkajs';
import type { KafkaSettings } from './settings.js';

/** A message to produce: the sink's (spooled) messages and the processor's side outputs. */
export interface OutgoingMessage {
  key: string | Buffer | null;
  value: string | Buffer | null;
  headers?: Record<string, string | Buffer>;
  /** Set for v2 packs; otherwise the key decides (the Java client's partitioner). */
  partition?: number;
}

/**
 * The Kafka client under KafkaFlowSink: an idempotent producer (acks=-1) that sends a batch of
 * messages (v2 packs carry their partition) and tells a topic's partition count. The sink owns
 * batching, ordering, the spool and resends; a client only sends what it is given, or fails.
 */
export interface ProduceClient {
  send(topic: string, messages: readonly OutgoingMessage[]): Promise<void>;
  partitions(topic: string): Promise<number>;
  disconnect(): Promise<void>;
}

export type ProduceClientFactory = () => Promise<ProduceClient>;

/**
 * Disconnects a client that is being replaced or left, waiting at most `ms` (a client that lost
 * its broker may never answer); the timer is cleared, so it does not hold a stopping process open.
 */
export async function disconnectWithin(client: ProduceClient, ms = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.disconnect().catch(() => undefined),
    new Promise((r) => {
      timer = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(timer);
}

/**
 * Which library produces. @platformatic/kafka by default: on the same packs it needs a third of
 * kafkajs' CPU with zstd and half with gzip (docs/kafka.md). kafkajs stays selectable (the baseline
 * of bench/pipeline.ts, and a way back); the processors consume with kafkajs either way.
 */
export type ProducerLibrary = 'platformatic' | 'kafkajs';

/**
 * The codecs a collector may produce: those the processors' kafkajs consumer reads (gzip, and zstd
 * through Node.js' zlib, transport/kafka/codecs.ts). Not lz4 or snappy: kafkajs cannot read them
 * and a processor would stop on the first such batch.
 */
export type ProduceCompression = 'gzip' | 'zstd' | 'none';

/** Strings as UTF-8, buffers as they are (a dead letter's value is the bytes it came with). */
const bytes = (d: unknown): Buffer | undefined =>
  d === undefined || d === null ? undefined : typeof d === 'string' ? Buffer.from(d, 'utf8') : (d as Buffer);
const serializers = { key: bytes, value: bytes, headerKey: bytes, headerValue: bytes };

export function platformaticProducer(
  settings: KafkaSettings,
  compression: ProduceCompression,
): ProduceClientFactory {
  return async () => {
    const producer = new Producer({
      clientId: settings.clientId,
      bootstrapBrokers: settings.brokers,
      serializers,
      idempotent: true,
      acks: -1,
      compression,
      // The Java client's (and kafkajs') placement of keyed v1 messages, so a flow's records stay in
      // one partition across a collector upgrade; its default partitioner differs (murmur2 >>> 0).
      partitioner: compatibilityPartitioner,
      // Few, short retries, as the kafkajs client had: after them the spool takes over.
      retries: 3,
      retryDelay: 250,
      connectTimeout: 3_000,
      timeout: 30_000,
      autocreateTopics: false,
    });
    return {
      send: async (topic, batch) => {
        await producer.send({
          messages: batch.map((m) => ({
            topic,
            key: m.key ?? undefined,
            value: m.value ?? undefined,
            headers: m.headers,
            partition: m.partition,
          })),
        });
      },
      partitions: async (topic) => {
        const md = await producer.metadata({ topics: [topic], forceUpdate: true });
        return md.topics.get(topic)?.partitionsCount ?? 0;
      },
      disconnect: () => producer.close(),
    };
  };
}

export function kafkajsProducer(kafka: Kafka, compression: ProduceCompression): ProduceClientFactory {
  return async () => {
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      // Few retries: after them the spool takes over (see HEADER_ORIGIN for duplicates).
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    await producer.connect();
    const codec =
      compression === 'none'
        ? CompressionTypes.None
        : compression === 'zstd'
          ? CompressionTypes.ZSTD
          : CompressionTypes.GZIP;
    return {
      send: async (topic, batch) => {
        await producer.send({
          topic,
          acks: -1,
          compression: codec,
          messages: batch.map((m) =>
            m.partition === undefined
              ? { key: m.key, value: m.value, headers: m.headers }
              : { key: m.key, value: m.value, headers: m.headers, partition: m.partition },
          ),
        });
      },
      partitions: async (topic) => {
        const admin = kafka.admin();
        await admin.connect();
        try {
          const meta = await admin.fetchTopicMetadata({ topics: [topic] });
          return meta.topics.find((t) => t.name === topic)?.partitions.length ?? 0;
        } finally {
          await admin.disconnect();
        }
      },
      disconnect: () => producer.disconnect(),
    };
  };
}

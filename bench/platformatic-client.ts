// A bench-only ProduceClient on @platformatic/kafka (pure JavaScript, maintained, Node.js >= 22.22 /
// 24.6), so bench/pipeline.ts measures it beside kafkajs behind the same KafkaFlowSink, on the same
// batches: idempotent, acks=-1, the codec given (gzip, zstd, lz4, snappy or none).
// Its default partitioner is not the Java client's (murmur2 >>> 0 instead of & 0x7fffffff); keyed v1
// messages use `compatibilityPartitioner`, which is, so they land where kafkajs puts them.
import { compatibilityPartitioner, Producer, stringSerializers } from '@platformatic/kafka';
import type { ProduceClient, ProduceClientFactory } from '../transport/kafka/index.js';

export type PlatformaticCodec = 'gzip' | 'zstd' | 'lz4' | 'snappy' | 'none';

export function platformaticClient(brokers: string[], compression: PlatformaticCodec): ProduceClientFactory {
  return async (): Promise<ProduceClient> => {
    const producer = new Producer({
      clientId: 'netpol-audit-bench',
      bootstrapBrokers: brokers,
      serializers: stringSerializers,
      idempotent: true,
      acks: -1,
      compression,
      partitioner: compatibilityPartitioner,
      retries: 3,
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

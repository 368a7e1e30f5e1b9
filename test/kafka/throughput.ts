// Throughput of kafkajs 2.2.4 against a real single-node Kafka broker, with FlowRecord-shaped JSON messages.
//   npx tsx test/kafka/throughput.ts [--messages 500000] [--batch 1000] [--partitions 6] [--inflight 4]
//                                    [--compression gzip|none] [--no-idempotent] [--version 4.4.0]
// Starts its own broker (fresh data dir, free ports) unless --brokers host:port is given. Prints one line per
// phase and a final JSON summary. Numbers are for docs/kafka.md; nothing here asserts a speed.
import { parseArgs } from 'node:util';
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { type RunningBroker, startBroker } from './broker.js';
import { syntheticFlowRecord } from './flows.js';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '500000' },
    batch: { type: 'string', default: '1000' },
    partitions: { type: 'string', default: '6' },
    inflight: { type: 'string', default: '4' },
    compression: { type: 'string', default: 'gzip' },
    'no-idempotent': { type: 'boolean', default: false },
    version: { type: 'string' },
    brokers: { type: 'string' },
  },
});

const total = Number(args.messages);
const batchSize = Number(args.batch);
const partitions = Number(args.partitions);
const inflight = Number(args.inflight);
const idempotent = !args['no-idempotent'];
const compression = args.compression === 'none' ? CompressionTypes.None : CompressionTypes.GZIP;

function rate(count: number, ms: number): string {
  return `${Math.round((count * 1000) / ms).toLocaleString('en-US')} msg/s`;
}

async function main() {
  let broker: RunningBroker | undefined;
  let brokers: string[];
  let startupMs: number | undefined;
  if (args.brokers) {
    brokers = args.brokers.split(',');
  } else {
    broker = await startBroker({ version: args.version });
    brokers = broker.brokers;
    startupMs = Math.round(broker.startupMs);
    console.log(
      `broker: Kafka ${broker.version} started in ${startupMs} ms (JVM launch until Metadata answers)`,
    );
  }

  try {
    const kafka = new Kafka({ clientId: 'netpol-audit-throughput', brokers, logLevel: logLevel.ERROR });
    const admin = kafka.admin();
    await admin.connect();
    const topic = `throughput-${process.pid}-${Date.now()}`;
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }] }).catch(() => undefined);
    // See kafkajs-compat.test.ts: waitForLeaders can bail on a KRaft broker, so poll instead.
    for (;;) {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => undefined);
      if (meta && meta.topics[0].partitions.filter((p) => p.leader >= 0).length === partitions) break;
      await new Promise((r) => setTimeout(r, 100));
    }

    const producer = kafka.producer({ idempotent, maxInFlightRequests: idempotent ? 1 : inflight });
    await producer.connect();
    const sample = JSON.stringify(syntheticFlowRecord(total - 1));
    let payloadBytes = 0;
    const produceStart = performance.now();
    let next = 0;
    // `inflight` sends run concurrently; with idempotence kafkajs still keeps one request per broker in flight.
    const sender = async () => {
      while (next < total) {
        const from = next;
        next = Math.min(total, next + batchSize);
        const messages = [];
        for (let i = from; i < next; i++) {
          const record = syntheticFlowRecord(i);
          const value = JSON.stringify(record);
          payloadBytes += value.length;
          messages.push({ key: record.id ?? null, value });
        }
        await producer.send({ topic, acks: -1, compression, messages });
      }
    };
    await Promise.all(Array.from({ length: inflight }, sender));
    const produceMs = performance.now() - produceStart;
    console.log(
      `produce: ${total} messages (avg ${Math.round(payloadBytes / total)} B JSON, ${(payloadBytes / 1e6).toFixed(1)} MB) ` +
        `in ${Math.round(produceMs)} ms = ${rate(total, produceMs)} ` +
        `[batch ${batchSize}, ${args.compression}, idempotent ${idempotent}, acks -1, ${inflight} concurrent sends]`,
    );
    await producer.disconnect();

    const offsets = await admin.fetchTopicOffsets(topic);
    const stored = offsets.reduce((sum, p) => sum + Number(p.high), 0);
    if (stored !== total) throw new Error(`broker holds ${stored} messages, expected ${total}`);

    const consumer = kafka.consumer({
      groupId: `${topic}-reader`,
      maxBytesPerPartition: 4 << 20,
      maxBytes: 32 << 20,
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let consumed = 0;
    let parsedSeqSum = 0;
    let firstFetchAt = 0;
    const consumeStart = performance.now();
    const done = new Promise<void>((resolve, reject) => {
      // kafkajs restarts the consumer after a retriable crash (e.g. GROUP_LOAD_IN_PROGRESS on a fresh broker).
      consumer.on(consumer.events.CRASH, (e) => {
        if (!e.payload.restart) reject(e.payload.error);
      });
      void consumer.run({
        eachBatchAutoResolve: true,
        eachBatch: async ({ batch }) => {
          if (firstFetchAt === 0) firstFetchAt = performance.now();
          for (const message of batch.messages) {
            // Parse, as the processor will: JSON decoding is part of the consume cost.
            parsedSeqSum += (JSON.parse(message.value?.toString() ?? '{}') as { seq?: number }).seq ?? 0;
          }
          consumed += batch.messages.length;
          if (consumed >= total) resolve();
        },
      });
    });
    await done;
    const consumeMs = performance.now() - consumeStart;
    const joinMs = firstFetchAt - consumeStart;
    await consumer.disconnect();
    console.log(
      `consume: ${consumed} messages in ${Math.round(consumeMs)} ms = ${rate(consumed, consumeMs)} ` +
        `(group join + first fetch ${Math.round(joinMs)} ms; after that ${rate(consumed, consumeMs - joinMs)}; JSON.parse included)`,
    );
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();

    console.log(
      JSON.stringify({
        kafka: broker?.version ?? 'external',
        kafkajs: '2.2.4',
        messages: total,
        avgBytes: Math.round(payloadBytes / total),
        sampleBytes: sample.length,
        batch: batchSize,
        partitions,
        compression: args.compression,
        idempotent,
        brokerStartupMs: startupMs,
        produceMsgPerSec: Math.round((total * 1000) / produceMs),
        consumeMsgPerSec: Math.round((consumed * 1000) / consumeMs),
        consumeSteadyMsgPerSec: Math.round((consumed * 1000) / (consumeMs - joinMs)),
        checksum: parsedSeqSum,
      }),
    );
  } finally {
    await broker?.stop();
  }
}

// Exit explicitly: a kafkajs consumer that is still retrying would otherwise keep the process alive.
main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

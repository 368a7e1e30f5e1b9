// KafkaFlowSink's ordering with a client that only records what it is given (the real broker's
// tests are test/pipeline/wire-v2.test.ts and faults.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { shopFlow } from '../../test/pipeline/support.js';
import { decodeMessage, flowKey } from '../codec.js';
import { partitionOf } from './partition.js';
import type { OutgoingMessage } from './produce-client.js';
import { kafkaSettings, topicNames } from './settings.js';
import { HEADER_SEQ, KafkaFlowSink } from './sink.js';

describe('KafkaFlowSink (v2 packs)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'npa-sink-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('numbers packs in the order it sends them, also when a batch waits for the partition count', async () => {
    const sent: OutgoingMessage[] = [];
    const flows = Array.from({ length: 95 }, (_, i) => shopFlow(i));
    let written = 0;
    const write = (n: number) => {
      for (const end = written + n; written < end; ) void sink.write(flows[written++]!);
    };
    const sink: KafkaFlowSink = new KafkaFlowSink({
      settings: kafkaSettings({ brokers: ['127.0.0.1:1'], topics: topicNames('order.') }),
      spoolDir: dir,
      wire: 2,
      batchSize: 10,
      createTopics: false,
      client: async () => ({
        send: async (_topic, messages) => void sent.push(...messages),
        partitions: () => {
          const count = Promise.resolve(3);
          // A batch written after the sink learns the count but before the batch that waited for
          // it is numbered (a microtask later): it must not be numbered first.
          queueMicrotask(() => void count.then(() => write(10)));
          return count;
        },
        disconnect: async () => {},
      }),
    });
    write(25); // two batches dispatched before the first connection, five records buffered
    await sink.flush();
    write(95 - written);
    await sink.close();

    const seqs = sent.map((m) => Number(m.headers![HEADER_SEQ]));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    // Every record once, each partition's in write order, in the partition its key hashes to.
    const byPartition = new Map<number, string[]>();
    for (const m of sent) {
      const d = decodeMessage({ key: null, value: m.value, headers: m.headers });
      if (!d.ok || !d.packed) throw new Error('not a pack');
      for (const item of d.items) {
        if (!item.ok) throw new Error(item.reason);
        expect(partitionOf(flowKey(item.record), 3)).toBe(m.partition);
        byPartition.set(m.partition!, [...(byPartition.get(m.partition!) ?? []), flowKey(item.record)]);
      }
    }
    for (const [p, keys] of byPartition)
      expect(keys).toEqual(flows.map(flowKey).filter((k) => partitionOf(k, 3) === p));
    expect([...byPartition.values()].flat()).toHaveLength(95);
    expect(sink.stats).toMatchObject({ written: 95, sent: 95, spooled: 0 });
  });
});

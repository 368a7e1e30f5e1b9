// KafkaFlowSink's ordering with a client that only records what it is given (the real broker's
// tests are test/pipeline/wire-v2.test.ts and faults.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { shopFlow } from '../../test/pipeline/support.js';
import { decodeMessage, flowKey } from '../codec.js';
import { DiskSpool } from '../spool.js';
import { partitionOf } from './partition.js';
import type { OutgoingMessage } from './produce-client.js';
import { kafkaSettings, topicNames } from './settings.js';
import { HEADER_SEQ, KafkaFlowSink, PackBuffers } from './sink.js';

const copy = (m: OutgoingMessage): OutgoingMessage => ({
  ...m,
  value: Buffer.isBuffer(m.value) ? Buffer.from(m.value) : m.value,
});

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
        // As a real client, the bytes are taken during send (the sink reuses pack buffers after).
        send: async (_topic, messages) => void sent.push(...messages.map(copy)),
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

  it('writes packs into buffers it takes back only after the broker acknowledged them', async () => {
    const flows = Array.from({ length: 80 }, (_, i) => shopFlow(i));
    const seen: { buffer: ArrayBufferLike; text: string }[] = [];
    // What a client may still hold after a failed send (a request queued when it timed out).
    const held: Buffer[] = [];
    let fail = false;
    const sink = new KafkaFlowSink({
      settings: kafkaSettings({ brokers: ['127.0.0.1:1'], topics: topicNames('reuse.') }),
      spoolDir: dir,
      wire: 2,
      batchSize: 20,
      retryMs: 60_000,
      createTopics: false,
      client: async () => ({
        send: async (_topic, messages) => {
          for (const m of messages) seen.push({ buffer: (m.value as Buffer).buffer, text: String(m.value) });
          if (fail) {
            held.push(...messages.map((m) => m.value as Buffer));
            throw new Error('broker away');
          }
        },
        partitions: async () => 1,
        disconnect: async () => {},
      }),
    });
    for (const f of flows.slice(0, 20)) await sink.write(f);
    await sink.flush();
    for (const f of flows.slice(20, 40)) await sink.write(f);
    await sink.flush();
    // The second pack went into the first one's buffer, and says what it should.
    expect(seen).toHaveLength(2);
    expect(seen[1]!.buffer).toBe(seen[0]!.buffer);
    expect(seen[1]!.text).toBe(
      flows
        .slice(20, 40)
        .map((f) => JSON.stringify(f))
        .join('\n'),
    );
    // A failed send keeps its buffer out of reuse: what the client holds stays intact while more
    // packs are written (spooled, the broker being away), and so does the spool.
    fail = true;
    for (const f of flows.slice(40, 60)) await sink.write(f);
    await sink.flush();
    expect(seen[2]!.buffer).toBe(seen[0]!.buffer);
    for (const f of flows.slice(60, 80)) await sink.write(f);
    await sink.flush();
    expect(sink.stats.spooled).toBe(40);
    const text = (from: number) =>
      flows
        .slice(from, from + 20)
        .map((f) => JSON.stringify(f))
        .join('\n');
    expect(held.map(String)).toEqual([text(40)]);
    const spooled: string[] = [];
    await new DiskSpool(dir, 1 << 20).drain(async (b) => void spooled.push(...b.map((m) => String(m.value))));
    expect(spooled).toEqual([text(40), text(60)]);
  });

  it('keeps at most its bound of buffers, and only its own size', () => {
    const pool = new PackBuffers(2);
    const own = [pool.take(100), pool.take(200), pool.take(300)];
    const msg = (value: Buffer) => ({ topic: 't', key: null, value });
    pool.give([msg(own[0]!.subarray(0, 10)), msg(Buffer.alloc(10)), msg(own[1]!.subarray(5, 9))]);
    expect(pool.kept).toBe(1);
    pool.give([msg(own[1]!), msg(own[2]!)]);
    expect(pool.kept).toBe(2);
    expect(pool.take(10).buffer).toBe(own[1]!.buffer);
    expect(pool.take(10).buffer).toBe(own[0]!.buffer);
    const fresh = pool.take(10).buffer;
    expect(own.some((b) => b.buffer === fresh)).toBe(false);
    // Larger than a pack buffer: a buffer of its own size, never kept.
    const large = pool.take(1_000_000);
    expect(large.length).toBe(1_000_000);
    pool.give([msg(large)]);
    expect(pool.kept).toBe(0);
  });
});

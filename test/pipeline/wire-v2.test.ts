// Wire format v2 (packs of FlowRecords per partition, transport/codec.ts) against a real broker: a
// topic mixing v1 messages and v2 packs, a bad record inside a pack dead-lettered alone with its
// index, per-key order and placement, resend copies of packs counted once (role all and the
// judge/record split), a broker outage with packs spooled and resent, and a collector restarted
// over a spool it could not pack. In every case the store must equal what the embedded wiring
// stores for the same flows: nothing lost, nothing counted twice.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Admin, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../schema/flow-record.js';
import { decodeMessage, encodePack, flowKey, type WireFormat } from '../../transport/codec.js';
import {
  ensureTopics,
  HEADER_ORIGIN,
  HEADER_SEQ,
  KafkaFlowSink,
  kafkaSettings,
  topicNames,
} from '../../transport/kafka/index.js';
import { partitionOf } from '../../transport/kafka/partition.js';
import { type RunningBroker, startBroker } from '../kafka/broker.js';
import { runCli } from '../support/cli.js';
import { freePort } from '../support/net.js';
import {
  codecsOf,
  embeddedStore,
  killChildren,
  processArgs,
  processUntilIdle,
  readTopic,
  SHOP_CAPTURE,
  SHOP_CLUSTER,
  shopFlow,
  startCli,
  storeDigest,
  storedRecords,
  waitUntil,
} from './support.js';

let broker: RunningBroker;
let brokers: string;
let dir: string;
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'npa-wire-v2-'));
  broker = await startBroker({ keepData: true });
  brokers = broker.brokers.join(',');
  kafka = new Kafka({ clientId: 'wire-v2-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
}, 600_000);

afterAll(async () => {
  killChildren();
  await admin?.disconnect().catch(() => undefined);
  await broker?.stop();
  if (broker) rmSync(broker.dataDir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

const settingsFor = (prefix: string) =>
  kafkaSettings({ brokers: broker.brokers, topics: topicNames(prefix) });

async function publish(prefix: string, wire: WireFormat, flows: FlowRecord[], spool: string): Promise<void> {
  const sink = new KafkaFlowSink({ settings: settingsFor(prefix), spoolDir: spool, wire, packSize: 250 });
  for (const f of flows) await sink.write(f);
  await sink.close();
  expect(sink.stats.sent).toBe(flows.length);
}

describe('wire format v2 (real broker)', () => {
  it('a topic mixing v1 messages and v2 packs (a rolling upgrade) is stored exactly once', async () => {
    const prefix = 'mixed.';
    const flows = Array.from({ length: 12_000 }, (_, i) => shopFlow(i));
    await publish(prefix, 1, flows.slice(0, 4000), join(dir, 'spool-mixed-1'));
    await publish(prefix, 2, flows.slice(4000, 9000), join(dir, 'spool-mixed-2'));
    await publish(prefix, 1, flows.slice(9000), join(dir, 'spool-mixed-3'));
    const offsets = await admin.fetchTopicOffsets(`${prefix}flows`);
    const messages = offsets.reduce((s, p) => s + Number(p.high), 0);
    // 7000 v1 messages and a few dozen packs (at most 250 records each).
    expect(messages).toBeGreaterThan(7000 + 5000 / 250 - 1);
    expect(messages).toBeLessThan(7000 + 200);

    const db = join(dir, 'mixed.db');
    const { code, stats } = await processUntilIdle(brokers, prefix, db);
    expect(code).toBe(0);
    expect(stats.recorded).toBe(12_000);
    expect(stats.deadLetters).toBe(0);
    expect(stats.consumed).toBe(messages);
    await embeddedStore(flows, join(dir, 'mixed-embedded.db'));
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'mixed-embedded.db')));

    const again = await processUntilIdle(brokers, prefix, db);
    expect(again.stats.recorded).toBe(0);
  });

  it('packs compressed with zstd (registered with kafkajs from Node.js zlib) are read by the processor, from either producing library', async () => {
    for (const producer of ['platformatic', 'kafkajs'] as const) {
      const prefix = `zstd-${producer}.`;
      const flows = Array.from({ length: 3000 }, (_, i) => shopFlow(i));
      const sink = new KafkaFlowSink({
        settings: settingsFor(prefix),
        spoolDir: join(dir, `spool-zstd-${producer}`),
        wire: 2,
        compression: 'zstd',
        producer,
      });
      for (const f of flows) await sink.write(f);
      await sink.close();
      expect(sink.stats.sent).toBe(3000);
      expect(codecsOf(broker.dataDir, `${prefix}flows`)).toEqual(new Set(['zstd']));
      const db = join(dir, `zstd-${producer}.db`);
      const { stats } = await processUntilIdle(brokers, prefix, db);
      expect(stats.recorded).toBe(3000);
      await embeddedStore(flows, join(dir, `zstd-${producer}-embedded.db`));
      expect(storeDigest(db)).toEqual(storeDigest(join(dir, `zstd-${producer}-embedded.db`)));
    }
  });

  it("uncompressed packs on a topic of one partition stay under the broker's message.max.bytes: all sent, none spooled", async () => {
    // Requests of 12 packs (4 MB) for one partition were refused for ever (MESSAGE_TOO_LARGE) and
    // every record went to the spool as if the broker were away.
    for (const producer of ['platformatic', 'kafkajs'] as const) {
      const prefix = `none-${producer}.`;
      const settings = kafkaSettings({
        brokers: broker.brokers,
        topics: topicNames(prefix),
        partitions: { flows: 1, verdicts: 1, violations: 1, deadLetter: 1 },
      });
      const flows = Array.from({ length: 30_000 }, (_, i) => shopFlow(i));
      const sink = new KafkaFlowSink({
        settings,
        spoolDir: join(dir, `spool-none-${producer}`),
        wire: 2,
        compression: 'none',
        producer,
      });
      for (const f of flows) await sink.write(f);
      await sink.close();
      expect(sink.stats).toMatchObject({ sent: 30_000, spooled: 0, sendFailures: 0, spoolBytes: 0 });
      expect(codecsOf(broker.dataDir, `${prefix}flows`)).toEqual(new Set(['none']));
      const db = join(dir, `none-${producer}.db`);
      const { stats } = await processUntilIdle(brokers, prefix, db);
      expect(stats.recorded).toBe(30_000);
      expect(stats.deadLetters).toBe(0);
    }
  });

  it('v1 messages from @platformatic/kafka land where kafkajs and the Java client put their keys', async () => {
    const prefix = 'v1place.';
    const flows: FlowRecord[] = Array.from({ length: 600 }, (_, i) => ({
      ...shopFlow(i),
      id: `k-${i % 97}`,
    }));
    await publish(prefix, 1, flows, join(dir, 'spool-v1place'));
    expect(codecsOf(broker.dataDir, `${prefix}flows`)).toEqual(new Set(['gzip']));
    const messages = await readTopic(kafka, `${prefix}flows`, flows.length);
    const partitions = (await admin.fetchTopicOffsets(`${prefix}flows`)).length;
    expect(new Set(messages.map((m) => m.partition)).size).toBeGreaterThan(1);
    for (const m of messages) expect(m.partition).toBe(partitionOf(m.key!, partitions));
  });

  it('collect pcap --kafka --wire 2: the shop capture in packs, stored as the embedded audit stores it', async () => {
    const collect = (prefix: string, ...more: string[]) =>
      runCli([
        'collect',
        'pcap',
        SHOP_CAPTURE,
        '--kafka',
        brokers,
        '--topic-prefix',
        prefix,
        '--spool',
        join(dir, `spool-${prefix}`),
        '--wire',
        '2',
        ...more,
      ]);
    const c = await collect('cliv2.');
    expect(c.code, c.stderr.slice(-2000)).toBe(0);
    expect(c.stderr).toContain('23 records, 23 sent, 0 spooled');
    const offsets = await admin.fetchTopicOffsets('cliv2.flows');
    expect(offsets.reduce((n, p) => n + Number(p.high), 0)).toBeLessThanOrEqual(offsets.length);
    const db = join(dir, 'cliv2.db');
    const { stats } = await processUntilIdle(brokers, 'cliv2.', db);
    expect(stats.recorded).toBe(23);
    const a = await runCli([
      'audit',
      SHOP_CAPTURE,
      '--cluster',
      SHOP_CLUSTER,
      '--db',
      join(dir, 'cliv2-audit.db'),
    ]);
    expect(a.code).toBe(0);
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'cliv2-audit.db')));
    // Packs go out zstd-compressed unless told otherwise.
    expect(codecsOf(broker.dataDir, 'cliv2.flows')).toEqual(new Set(['zstd']));
    const bad = await runCli(['collect', 'pcap', SHOP_CAPTURE, '--kafka', brokers, '--wire', '3']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--wire 3: give 1 or 2');
    const lz4 = await runCli(['collect', 'pcap', SHOP_CAPTURE, '--kafka', brokers, '--compression', 'lz4']);
    expect(lz4.code).toBe(2);
    expect(lz4.stderr).toContain('--compression lz4: give gzip, zstd or none');
    const noKafka = await runCli(['collect', 'pcap', SHOP_CAPTURE, '--compression', 'gzip']);
    expect(noKafka.code).toBe(2);
    expect(noKafka.stderr).toContain('--compression applies to --kafka only');
    const gz = await collect('cligz.', '--compression', 'gzip');
    expect(gz.code, gz.stderr.slice(-2000)).toBe(0);
    expect(codecsOf(broker.dataDir, 'cligz.flows')).toEqual(new Set(['gzip']));
  });

  it('a processor SIGKILLed mid-stream of packs and restarted ends with exactly the expected store', async () => {
    const prefix = 'v2kill.';
    const db = join(dir, 'v2kill.db');
    const flows = Array.from({ length: 60_000 }, (_, i) => shopFlow(i));
    const spool = join(dir, 'spool-v2kill');
    // Small packs: the kill lands between many store commits.
    const send = async (from: number, to: number) => {
      const sink = new KafkaFlowSink({
        settings: settingsFor(prefix),
        spoolDir: spool,
        wire: 2,
        packSize: 100,
      });
      for (const f of flows.slice(from, to)) await sink.write(f);
      await sink.close();
      expect(sink.stats.sent).toBe(to - from);
    };
    await send(0, 20_000);
    const first = startCli(processArgs(brokers, prefix, db));
    await waitUntil('first commits', () => storedRecords(db) > 0);
    await send(20_000, 50_000);
    await waitUntil('past the first part', () => storedRecords(db) > 20_000);
    first.proc.kill('SIGKILL');
    expect((await first.done).code).toBe(-1);
    const atKill = storedRecords(db);
    expect(atKill).toBeLessThanOrEqual(50_000);
    await send(50_000, 60_000);
    const { stats } = await processUntilIdle(brokers, prefix, db);
    expect(stats.recorded).toBe(60_000 - atKill);
    expect(storedRecords(db)).toBe(60_000);
    await embeddedStore(flows, join(dir, 'v2kill-embedded.db'));
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'v2kill-embedded.db')));
  }, 300_000);

  it('a bad record inside a pack goes to the dead-letter topic alone, with its index; the rest of the pack is stored', async () => {
    const prefix = 'packdlq.';
    const settings = settingsFor(prefix);
    await ensureTopics(admin, settings);
    const good = Array.from({ length: 40 }, (_, i) => shopFlow(i));
    const lines = good.map((f) => JSON.stringify(f));
    const invalid = JSON.stringify({ ...shopFlow(99), proto: 'SCTP?' });
    lines.splice(3, 0, '{"v":1,"start":');
    lines.splice(17, 0, invalid);
    lines.splice(30, 0, JSON.stringify({ ...shopFlow(98), v: 7 }));
    const pack = encodePack(lines);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({
      topic: settings.topics.flows,
      acks: -1,
      messages: [
        {
          key: null,
          value: pack.value,
          partition: 2,
          headers: {
            ...(pack.headers as Record<string, string>),
            [HEADER_ORIGIN]: 'o-dlq',
            [HEADER_SEQ]: '1',
          },
        },
        // A pack version this processor does not know goes to the dead-letter topic as a whole.
        {
          key: null,
          value: pack.value,
          partition: 2,
          headers: {
            ...(pack.headers as Record<string, string>),
            'netpol-audit-schema-version': '3',
            [HEADER_ORIGIN]: 'o-dlq',
            [HEADER_SEQ]: '2',
          },
        },
      ],
    });
    await producer.disconnect();

    const db = join(dir, 'packdlq.db');
    const { code, stats } = await processUntilIdle(brokers, prefix, db);
    expect(code).toBe(1);
    expect(stats.recorded).toBe(40);
    expect(stats.deadLetters).toBe(4);
    expect(stats.deadLetterCodes).toEqual({
      MESSAGE_BAD_JSON: 1,
      MESSAGE_INVALID_RECORD: 1,
      MESSAGE_UNKNOWN_VERSION: 2,
    });
    await embeddedStore(good, join(dir, 'packdlq-embedded.db'));
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'packdlq-embedded.db')));

    const got = await readTopic(kafka, settings.topics.deadLetter, 4);
    const byIndex = new Map(got.map((g) => [g.headers['netpol-audit-dlq-index'], g]));
    expect(got.map((g) => g.headers['netpol-audit-dlq-index'] ?? '-').sort()).toEqual(['-', '17', '3', '30']);
    expect(byIndex.get('3')!.value!.toString()).toBe('{"v":1,"start":');
    expect(byIndex.get('3')!.headers['netpol-audit-dlq-code']).toBe('MESSAGE_BAD_JSON');
    expect(byIndex.get('3')!.headers['netpol-audit-dlq-origin']).toMatch(/^packdlq\.flows\/2\/0$/);
    expect(byIndex.get('3')!.headers[HEADER_SEQ]).toBe('1');
    expect(byIndex.get('17')!.value!.toString()).toBe(invalid);
    expect(byIndex.get('17')!.headers['netpol-audit-dlq-code']).toBe('MESSAGE_INVALID_RECORD');
    expect(byIndex.get('30')!.headers['netpol-audit-dlq-code']).toBe('MESSAGE_UNKNOWN_VERSION');
    const whole = got.find((g) => g.headers['netpol-audit-dlq-index'] === undefined)!;
    expect(whole.headers['netpol-audit-dlq-reason']).toContain('flow-record-pack version 3 is not supported');
    expect(whole.headers['netpol-audit-dlq-origin']).toBe('packdlq.flows/2/1');
    expect(whole.value!.toString()).toBe(pack.value.toString());
  });

  it('per key: one partition, the one a v1 collector would choose, records in write order', async () => {
    const prefix = 'order.';
    // 60 keys, 50 records each, interleaved; each record's `seq` is its rank within its key.
    const flows: FlowRecord[] = [];
    for (let n = 0; n < 50; n++)
      for (let k = 0; k < 60; k++) flows.push({ ...shopFlow(n * 60 + k), id: `key-${k}`, seq: n });
    await publish(prefix, 2, flows, join(dir, 'spool-order'));
    const offsets = await admin.fetchTopicOffsets(`${prefix}flows`);
    const messages = await readTopic(
      kafka,
      `${prefix}flows`,
      offsets.reduce((s, p) => s + Number(p.high), 0),
    );
    const partitions = offsets.length;
    const seen = new Map<string, { partition: number; seqs: number[] }>();
    messages.sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset));
    for (const m of messages) {
      const d = decodeMessage({ key: m.key, value: m.value, headers: m.headers });
      expect(d.ok && d.packed).toBe(true);
      if (!d.ok || !d.packed) continue;
      for (const item of d.items) {
        expect(item.ok).toBe(true);
        if (!item.ok) continue;
        const key = flowKey(item.record);
        const s = seen.get(key) ?? { partition: m.partition, seqs: [] };
        expect(s.partition).toBe(m.partition);
        s.seqs.push(item.record.seq!);
        seen.set(key, s);
      }
    }
    expect(seen.size).toBe(60);
    for (const [key, s] of seen) {
      expect(s.partition).toBe(partitionOf(key, partitions));
      expect(s.seqs).toEqual(Array.from({ length: 50 }, (_, i) => i));
    }
  });

  it('resend copies of packs are counted once, in role all and through judge + record', async () => {
    const prefix = 'copies.';
    const settings = settingsFor(prefix);
    await ensureTopics(admin, settings);
    const flows = Array.from({ length: 900 }, (_, i) => shopFlow(i));
    const lines = flows.map((f) => JSON.stringify(f));
    const packOf = (from: number, to: number, seq: number, origin = 'collector-a') => {
      const p = encodePack(lines.slice(from, to));
      return {
        key: null,
        value: p.value,
        partition: 1,
        headers: {
          ...(p.headers as Record<string, string>),
          [HEADER_ORIGIN]: origin,
          [HEADER_SEQ]: String(seq),
        },
      };
    };
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (const messages of [
      [packOf(0, 300, 1), packOf(300, 500, 2)],
      // The acknowledgement was lost: the sink resent both packs from its spool.
      [packOf(0, 300, 1), packOf(300, 500, 2)],
      [packOf(500, 800, 3)],
      // Another collector's packs; then the first one's again, after the second's.
      [packOf(800, 900, 1, 'collector-b'), packOf(500, 800, 3)],
    ])
      await producer.send({ topic: settings.topics.flows, acks: -1, messages });
    await producer.disconnect();

    const db = join(dir, 'copies.db');
    const { stats } = await processUntilIdle(brokers, prefix, db);
    expect(stats.recorded).toBe(900);
    expect(stats.duplicates).toBe(800);
    await embeddedStore(flows, join(dir, 'copies-embedded.db'));
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'copies-embedded.db')));

    // The same topic through the split roles: the judge judges every copy, the recorder counts once.
    const common = ['--cluster', SHOP_CLUSTER, '--brokers', brokers, '--topic-prefix', prefix];
    const judge = await runCli([
      'process',
      '--role',
      'judge',
      ...common,
      '--group',
      'copies-split',
      '--exit-when-idle',
      '1500',
      '--format',
      'json',
    ]);
    expect(judge.code, judge.stderr.slice(-2000)).toBe(0);
    expect(JSON.parse(judge.stdout).judged).toBe(1700);
    const splitDb = join(dir, 'copies-split.db');
    const rec = await runCli([
      'process',
      '--role',
      'record',
      ...common,
      '--group',
      'copies-split',
      '--db',
      splitDb,
      '--exit-when-idle',
      '1500',
      '--format',
      'json',
    ]);
    expect(rec.code, rec.stderr.slice(-2000)).toBe(0);
    const recStats = JSON.parse(rec.stdout);
    expect(recStats.recorded).toBe(900);
    expect(recStats.duplicates).toBe(800);
    expect(storeDigest(splitDb)).toEqual(storeDigest(join(dir, 'copies-embedded.db')));
  });

  it('the broker stops while a v2 collector publishes: packs are spooled and resent; exact counts', async () => {
    const prefix = 'v2outage.';
    const spool = join(dir, 'spool-v2outage');
    const sink = new KafkaFlowSink({ settings: settingsFor(prefix), spoolDir: spool, wire: 2, retryMs: 500 });
    const flows = Array.from({ length: 15_000 }, (_, i) => shopFlow(i));
    for (const f of flows.slice(0, 5000)) await sink.write(f);
    await sink.flush();
    expect(sink.stats.sent).toBe(5000);
    await broker.stop();
    for (const f of flows.slice(5000, 10_000)) await sink.write(f);
    await sink.flush();
    expect(sink.stats.spooled).toBe(5000);
    await broker.start();
    for (const f of flows.slice(10_000)) await sink.write(f);
    await sink.close();
    const s = sink.stats;
    expect(s.dropped).toBe(0);
    expect(s.spoolBytes).toBe(0);
    expect(s.sent + s.spooled).toBe(15_000);

    const db = join(dir, 'v2outage.db');
    const { stats } = await processUntilIdle(brokers, prefix, db);
    expect(stats.recorded).toBe(15_000);
    expect(storedRecords(db)).toBe(15_000);
    await embeddedStore(flows, join(dir, 'v2outage-embedded.db'));
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'v2outage-embedded.db')));
  });

  it('a collector that never reached the broker spools v1 messages; the next run resends them first; exact counts', async () => {
    const prefix = 'restart.';
    const spool = join(dir, 'spool-restart');
    const flows = Array.from({ length: 6000 }, (_, i) => shopFlow(i));
    const dead = kafkaSettings({
      brokers: [`127.0.0.1:${await freePort()}`],
      topics: topicNames(prefix),
    });
    const first = new KafkaFlowSink({ settings: dead, spoolDir: spool, wire: 2, drainTimeoutMs: 0 });
    for (const f of flows.slice(0, 3000)) await first.write(f);
    await first.close();
    expect(first.stats.spooled).toBe(3000);
    expect(first.stats.spoolBytes).toBeGreaterThan(0);

    const second = new KafkaFlowSink({ settings: settingsFor(prefix), spoolDir: spool, wire: 2 });
    for (const f of flows.slice(3000)) await second.write(f);
    await second.close();
    // Records written while the old spool is still there queue behind it (through the spool).
    expect(second.stats.sent + second.stats.spooled).toBe(3000);
    expect(second.stats.resent).toBeGreaterThanOrEqual(3000);
    expect(second.stats.spoolBytes).toBe(0);

    const db = join(dir, 'restart.db');
    const { stats } = await processUntilIdle(brokers, prefix, db);
    expect(stats.recorded).toBe(6000);
    await embeddedStore(flows, join(dir, 'restart-embedded.db'));
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'restart-embedded.db')));
  });
});

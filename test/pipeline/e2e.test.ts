// The Kafka pipeline end to end against a real broker: collectors publish with `collect ... --kafka`
// (or KafkaFlowSink), `netpol-audit process` consumes, and the SQLite store must hold exactly what the
// embedded wiring (`audit`, no Kafka) stores for the same flows.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Admin, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFlow, flowKey, HEADER_VERSION } from '../../transport/codec.js';
import { ensureTopics, KafkaFlowSink, kafkaSettings, topicNames } from '../../transport/kafka/index.js';
import { partitionOf } from '../../transport/kafka/partition.js';
import { type RunningBroker, startBroker } from '../kafka/broker.js';
import { CORPUS, runCli } from '../support/cli.js';
import {
  codecsOf,
  embeddedStore,
  exits,
  killChildren,
  processUntilIdle,
  readTopic,
  SHOP_CAPTURE,
  SHOP_CLUSTER,
  shopFlow,
  startCli,
  storeDigest,
  storedOffsets,
  storedRecords,
  waitUntil,
} from './support.js';

let broker: RunningBroker;
let brokers: string;
let dir: string;
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'npa-pipeline-'));
  broker = await startBroker();
  brokers = broker.brokers.join(',');
  kafka = new Kafka({ clientId: 'pipeline-e2e-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
}, 600_000);

afterAll(async () => {
  killChildren();
  await admin?.disconnect().catch(() => undefined);
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

async function audit(capture: string, db: string) {
  const r = await runCli(['audit', capture, '--cluster', SHOP_CLUSTER, '--db', db, '--format', 'json']);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

describe('Kafka pipeline end to end (real broker)', () => {
  it('shop capture: collect pcap --kafka → broker → process → SQLite equals the embedded audit', async () => {
    const c = await runCli([
      'collect',
      'pcap',
      SHOP_CAPTURE,
      '--kafka',
      brokers,
      '--topic-prefix',
      'shop.',
      '--spool',
      join(dir, 'spool-shop'),
    ]);
    expect(c.code).toBe(0);
    expect(c.stderr).toContain('collect pcap: 23 flows in 23 records');
    expect(c.stderr).toContain('23 records, 23 sent, 0 spooled');

    const db = join(dir, 'shop-pipeline.db');
    const { code, stats } = await processUntilIdle(brokers, 'shop.', db);
    expect(code).toBe(0);
    const embedded = await audit(SHOP_CAPTURE, join(dir, 'shop-audit.db'));
    expect(embedded.flows).toEqual({
      total: 23,
      allowed: 19,
      deniedButObserved: 2,
      deniedAttempts: 2,
      ambiguous: 0,
      // The DNS query to coredns began within UDP's idle timeout of the capture's start: its
      // direction is confirmed by the port coredns declares (docs/check.md, "Direction").
      directionFromCluster: 1,
      directionGuessed: 0,
    });
    const { directionFromCluster: _c, directionGuessed: _g, ...counted } = embedded.flows;
    expect({
      total: stats.recorded,
      allowed: stats.allowed,
      deniedButObserved: stats.deniedButObserved,
      deniedAttempts: stats.deniedAttempts,
      ambiguous: stats.ambiguous,
    }).toEqual(counted);
    expect(stats.deadLetters).toBe(0);
    expect(stats.violationsPublished).toBe(2);
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'shop-audit.db')));

    // The same topics again into a fresh store, with alerts to a real HTTP receiver: the Kafka
    // wiring raises the same two violation alerts as the embedded one.
    const got: { kind: string; src: string; dst: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const p = JSON.parse(body);
        got.push({ kind: `${p.kind} ${p.status}`, src: p.key.src, dst: p.key.dst });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const alerts = join(dir, 'alerts.yaml');
    writeFileSync(
      alerts,
      `receivers:\n  - name: hook\n    type: webhook\n    url: ${url}\n    secret: s3cret\n`,
    );
    const withAlerts = await processUntilIdle(brokers, 'shopalerts.', join(dir, 'shop-alerts.db'), [
      '--topic',
      topicNames('shop.').flows,
      '--alerts',
      alerts,
    ]);
    server.close();
    // A live pipeline resolves on wall time: this capture is days old, so at exit both alerts have
    // been quiet for longer than the resolve timeout and resolve (docs/alerts.md, "Time").
    expect(withAlerts.stats.alerts).toMatchObject({
      raised: 2,
      resolved: 2,
      firing: 0,
      sent: 4,
      failed: 0,
      pending: 0,
    });
    expect(got.map((x) => `${x.kind} ${x.src} -> ${x.dst}`).sort()).toEqual([
      'violation firing dev/debug-shell -> shop/cart',
      'violation firing dev/debug-shell -> shop/payments',
      'violation resolved dev/debug-shell -> shop/cart',
      'violation resolved dev/debug-shell -> shop/payments',
    ]);

    // The query commands read the pipeline's store as they read the embedded one.
    const pairs = (rows: { srcWorkload: string; dstWorkload: string; proto: string; port: number }[]) =>
      rows.map((v) => `${v.srcWorkload} -> ${v.dstWorkload} ${v.proto}/${v.port}`).sort();
    const v = await runCli(['violations', '--db', db, '--format', 'json']);
    expect(pairs(JSON.parse(v.stdout))).toEqual([
      'dev/debug-shell -> shop/cart TCP/8080',
      'dev/debug-shell -> shop/payments TCP/9000',
    ]);
    const rules = JSON.parse((await runCli(['rules', '--db', db, '--format', 'json'])).stdout);
    expect(
      Object.fromEntries(
        rules.map((x: { policy: string; rule: number; hits: number }) => [`${x.policy}#${x.rule}`, x.hits]),
      ),
    ).toEqual({
      'shop/allow-frontend-to-cart#0': 2,
      'shop/allow-cart-to-payments#0': 1,
      'shop/allow-monitoring-scrape#0': 1,
      'shop/allow-batch-to-cart#0': 0,
    });

    // The violations topic got the two denied-but-observed flows: keyed by flow, in the partition
    // the Java client's partitioner gives that key, gzip (which every consumer reads), with the
    // schema headers and the flow's source position.
    const high = await admin.fetchTopicOffsets('shop.violations');
    expect(high.reduce((s, p) => s + Number(p.high), 0)).toBe(2);
    const published = await readTopic(kafka, 'shop.violations', 2);
    expect(codecsOf(broker.dataDir, 'shop.violations')).toEqual(new Set(['gzip']));
    for (const m of published) {
      const body = JSON.parse(m.value!.toString());
      expect(m.headers).toMatchObject({ 'netpol-audit-schema': 'violation', [HEADER_VERSION]: '1' });
      expect(body.classification).toBe('denied-but-observed');
      expect(body.source.topic).toBe('shop.flows');
      expect(m.key).toBe(flowKey(body.evidence));
      expect(m.partition).toBe(partitionOf(m.key!, high.length));
    }
    expect(pairs(published.map((m) => JSON.parse(m.value!.toString())))).toEqual([
      'dev/debug-shell -> shop/cart TCP/8080',
      'dev/debug-shell -> shop/payments TCP/9000',
    ]);

    // Run again: nothing new on the topic, nothing counted twice.
    const again = await processUntilIdle(brokers, 'shop.', db);
    expect(again.stats.recorded).toBe(0);
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'shop-audit.db')));
  });

  it('the same capture published twice (a collector rerun) is counted once: the store equals one embedded audit', async () => {
    for (let i = 0; i < 2; i++) {
      const c = await runCli([
        'collect',
        'pcap',
        SHOP_CAPTURE,
        '--kafka',
        brokers,
        '--topic-prefix',
        'twice.',
        '--spool',
        join(dir, `spool-twice-${i}`),
      ]);
      expect(c.code).toBe(0);
      expect(c.stderr).toContain('23 records, 23 sent, 0 spooled');
    }
    const db = join(dir, 'twice-pipeline.db');
    const { stats } = await processUntilIdle(brokers, 'twice.', db);
    // 46 messages consumed and judged; each flow's identity is stored once (docs/store.md).
    expect(stats.allowed + stats.deniedButObserved + stats.deniedAttempts + stats.ambiguous).toBe(46);
    const embedded = join(dir, 'twice-audit.db');
    await audit(SHOP_CAPTURE, embedded);
    expect(storedRecords(db)).toBe(23);
    expect(storeDigest(db)).toEqual(storeDigest(embedded));
  });

  it('a larger real capture (gopacket cip.pcap, 26068 packets): every flow arrives once', async () => {
    const capture = resolve(CORPUS, 'gopacket__cip.pcap');
    const c = await runCli([
      'collect',
      'pcap',
      capture,
      '--kafka',
      brokers,
      '--topic-prefix',
      'cip.',
      '--spool',
      join(dir, 'spool-cip'),
    ]);
    expect(c.code).toBe(0);
    expect(c.stderr).toContain('collect pcap: 3023 flows in 3023 records');
    expect(c.stderr).toContain('3023 records, 3023 sent, 0 spooled');
    const offsets = await admin.fetchTopicOffsets('cip.flows');
    expect(offsets.reduce((s, p) => s + Number(p.high), 0)).toBe(3023);

    const db = join(dir, 'cip-pipeline.db');
    const { stats } = await processUntilIdle(brokers, 'cip.', db);
    const embedded = await audit(capture, join(dir, 'cip-audit.db'));
    expect(embedded.flows.total).toBe(3023);
    expect(stats.recorded).toBe(3023);
    expect(stats.allowed).toBe(embedded.flows.allowed);
    expect(stats.ambiguous).toBe(embedded.flows.ambiguous);
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'cip-audit.db')));
  });

  it('dead letters: bad JSON and an unknown schema version go to the dead-letter topic with the reason; the rest is counted exactly', async () => {
    const prefix = 'dlq.';
    const settings = kafkaSettings({ brokers: broker.brokers, topics: topicNames(prefix) });
    await ensureTopics(admin, settings);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const good = Array.from({ length: 700 }, (_, i) => shopFlow(i));
    const wire = (m: ReturnType<typeof encodeFlow>) => ({
      key: m.key,
      value: m.value,
      headers: m.headers as Record<string, string>,
    });
    const v2 = encodeFlow(shopFlow(10_000));
    await producer.send({
      topic: settings.topics.flows,
      acks: -1,
      messages: [
        ...good.slice(0, 300).map((f) => wire(encodeFlow(f))),
        { key: 'flow-bad', value: '{"v":1,"start":', headers: { 'netpol-audit-schema': 'flow-record' } },
        ...good.slice(300, 500).map((f) => wire(encodeFlow(f))),
        {
          ...wire(v2),
          key: 'flow-v2',
          headers: { ...(v2.headers as Record<string, string>), [HEADER_VERSION]: '2' },
        },
        ...good.slice(500).map((f) => wire(encodeFlow(f))),
      ],
    });
    await producer.disconnect();

    const db = join(dir, 'dlq-pipeline.db');
    const { code, stats } = await processUntilIdle(brokers, prefix, db);
    expect(code).toBe(1);
    expect(stats.deadLetters).toBe(2);
    expect(stats.deadLetterCodes).toEqual({ MESSAGE_BAD_JSON: 1, MESSAGE_UNKNOWN_VERSION: 1 });
    expect(stats.recorded).toBe(700);
    await embeddedStore(good, join(dir, 'dlq-embedded.db'));
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'dlq-embedded.db')));

    const consumer = kafka.consumer({ groupId: 'dlq-reader' });
    await consumer.connect();
    await consumer.subscribe({ topic: settings.topics.deadLetter, fromBeginning: true });
    const got: { key: string; value: string; headers: Record<string, string> }[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        got.push({
          key: message.key?.toString() ?? '',
          value: message.value?.toString() ?? '',
          headers: Object.fromEntries(
            Object.entries(message.headers ?? {}).map(([k, v]) => [k, v?.toString() ?? '']),
          ),
        });
      },
    });
    await waitUntil('2 dead letters', () => got.length >= 2, 60_000);
    await consumer.disconnect();
    got.sort((a, b) => a.key.localeCompare(b.key));
    expect(got.map((g) => g.key)).toEqual(['flow-bad', 'flow-v2']);
    expect(got[0].value).toBe('{"v":1,"start":');
    expect(got[0].headers['netpol-audit-dlq-code']).toBe('MESSAGE_BAD_JSON');
    expect(got[0].headers['netpol-audit-dlq-reason']).toMatch(/^value is not JSON/);
    expect(got[0].headers['netpol-audit-dlq-origin']).toMatch(/^dlq\.flows\/\d+\/\d+$/);
    expect(got[1].headers['netpol-audit-dlq-code']).toBe('MESSAGE_UNKNOWN_VERSION');
    expect(got[1].headers['netpol-audit-dlq-reason']).toContain('schema version 2 is not supported');
    expect(got[1].value).toBe(v2.value);
  });

  it('scale-out: two --role judge processes share the partitions (one publishing verdict packs), one --role record writes the store; exact counts', async () => {
    const prefix = 'scale.';
    const group = 'scale';
    const total = 20_000;
    const settings = kafkaSettings({
      brokers: broker.brokers,
      topics: topicNames(prefix),
      partitions: { flows: 4, verdicts: 4, violations: 1, deadLetter: 1 },
    });
    await ensureTopics(admin, settings);
    const db = join(dir, 'scale-pipeline.db');
    const common = [
      '--cluster',
      SHOP_CLUSTER,
      '--brokers',
      brokers,
      '--topic-prefix',
      prefix,
      '--group',
      group,
    ];
    // The judges run until told to stop: an idle timeout would let one leave while a busy broker
    // still holds the flows back, and the other would then judge them all.
    const judgeArgs = ['process', '--role', 'judge', ...common, '--format', 'json'];
    // One judge publishes verdict packs (--wire 2), the other one message per verdict: the recorder
    // reads both from one topic (a rolling upgrade of the judges).
    const judges = [startCli([...judgeArgs, '--wire', '2']), startCli(judgeArgs)];
    const recorder = startCli(['process', '--role', 'record', ...common, '--db', db, '--format', 'json']);

    // Both judges in the group, two partitions each, before any flow is published.
    const lastAssignment = (text: string): number[] | undefined => {
      const lines = text.split('\n').filter((l) => l.includes('"assigned partitions"'));
      const last = lines.at(-1);
      return last ? (JSON.parse(last).partitions as number[]) : undefined;
    };
    await waitUntil(
      () =>
        `both judges assigned two partitions; logs:\n${judges.map((j) => j.stderr().slice(-1500)).join('\n---\n')}`,
      () => judges.every((j) => lastAssignment(j.stderr())?.length === 2),
      // A starved broker can answer NOT_COORDINATOR for a minute or more while it loads its offsets topic.
      300_000,
    );
    expect(
      judges
        .flatMap((j) => lastAssignment(j.stderr()) ?? [])
        .sort()
        .join(','),
    ).toBe('0,1,2,3');

    const sink = new KafkaFlowSink({ settings, spoolDir: join(dir, 'spool-scale') });
    const flows = Array.from({ length: total }, (_, i) => shopFlow(i));
    for (const f of flows) await sink.write(f);
    await sink.close();
    expect(sink.stats.sent).toBe(total);

    // Every flow judged, published and recorded: then the judges are stopped.
    await waitUntil(
      () =>
        `the recorder to store ${total} flows (has ${storedRecords(db)}); log:\n${recorder.stderr().slice(-1500)}`,
      () => storedRecords(db) === total,
    );
    for (const j of judges) j.proc.kill('SIGTERM');
    const judged = await exits(judges, 'both judges to stop on SIGTERM');
    for (const j of judged) expect(j.code, j.stderr.slice(-2000)).toBe(0);
    const judgeStats = judged.map((j) => JSON.parse(j.stdout));
    for (const s of judgeStats) expect(s.judged).toBeGreaterThan(0);
    expect(judgeStats[0].judged + judgeStats[1].judged).toBeGreaterThanOrEqual(total);

    // The judges' verdicts went out zstd-compressed (the recorder's consumer reads it).
    expect(codecsOf(broker.dataDir, settings.topics.verdicts)).toEqual(new Set(['zstd']));
    // The recorder has everything once it is at the end of the verdicts topic.
    const verdictEnds = await admin.fetchTopicOffsets(settings.topics.verdicts);
    // One message per verdict of the second judge, a few packs for all the first one's.
    const verdictMessages = verdictEnds.reduce((n, p) => n + Number(p.high), 0);
    expect(judgeStats[0].verdictsPublished).toBeGreaterThan(1000);
    expect(verdictMessages).toBeGreaterThan(judgeStats[1].verdictsPublished);
    expect(verdictMessages).toBeLessThan(
      judgeStats[1].verdictsPublished + judgeStats[0].verdictsPublished / 100,
    );
    await waitUntil(
      () => `recorder at the end of the verdicts topic; log:\n${recorder.stderr().slice(-1500)}`,
      () => {
        let at: Map<number, bigint>;
        try {
          at = storedOffsets(db, `${group}-record`);
        } catch {
          return false;
        }
        return verdictEnds.every((p) => (at.get(p.partition) ?? 0n) >= BigInt(p.high));
      },
    );
    recorder.proc.kill('SIGTERM');
    const rec = await recorder.done;
    expect(rec.code, rec.stderr.slice(-2000)).toBe(0);
    const recStats = JSON.parse(rec.stdout);
    expect(recStats.recorded).toBe(total);
    expect(recStats.deadLetters).toBe(0);

    const expected = await embeddedStore(flows, join(dir, 'scale-embedded.db'));
    expect(expected.flows).toBe(total);
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'scale-embedded.db')));
    // A hang guard above the inner waits, so that a stall fails with what it waited for (on a loaded
    // machine a consumer-group rebalance can take the judges well past the usual 22 s).
  }, 600_000);
});

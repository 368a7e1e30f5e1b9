// Fault tests of the Kafka pipeline against a real broker: a processor SIGKILLed mid-stream, the broker
// stopped while a collector publishes, and a spool that fills up. In every case the store must end
// with exactly what the embedded wiring stores for the same flows: nothing lost, nothing doubled,
// or (spool full) the loss counted and reported.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaFlowSink, kafkaSettings, topicNames } from '../../transport/kafka/index.js';
import { type RunningBroker, startBroker } from '../kafka/broker.js';
import { CORPUS, runCli } from '../support/cli.js';
import { freePort } from '../support/net.js';
import {
  embeddedStore,
  killChildren,
  processArgs,
  shopFlow,
  startCli,
  storeDigest,
  storedRecords,
  waitUntil,
} from './support.js';

let broker: RunningBroker;
let brokers: string;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'npa-pipeline-faults-'));
  // The data must survive stop/start in the broker-outage test; afterAll deletes it.
  broker = await startBroker({ keepData: true });
  brokers = broker.brokers.join(',');
}, 600_000);

afterAll(async () => {
  killChildren();
  await broker?.stop();
  if (broker) rmSync(broker.dataDir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

async function publish(prefix: string, spool: string, from: number, to: number): Promise<void> {
  const sink = new KafkaFlowSink({
    settings: kafkaSettings({ brokers: broker.brokers, topics: topicNames(prefix) }),
    spoolDir: spool,
  });
  for (let i = from; i < to; i++) await sink.write(shopFlow(i));
  await sink.close();
  expect(sink.stats.sent).toBe(to - from);
}

describe('Kafka pipeline faults (real broker)', () => {
  it('a processor SIGKILLed mid-stream and restarted ends with exactly the expected store', async () => {
    const prefix = 'kill.';
    const db = join(dir, 'kill.db');
    const spool = join(dir, 'spool-kill');
    await publish(prefix, spool, 0, 20_000);
    const first = startCli(processArgs(brokers, prefix, db));
    await waitUntil('first commits', () => storedRecords(db) > 0);
    // More flows while it works; the last part is published only after the kill, so the kill is
    // always before the end of the stream.
    await publish(prefix, spool, 20_000, 50_000);
    await waitUntil('past the first part', () => storedRecords(db) > 20_000);
    first.proc.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.code).toBe(-1);
    const atKill = storedRecords(db);
    expect(atKill).toBeGreaterThan(20_000);
    expect(atKill).toBeLessThanOrEqual(50_000);
    await publish(prefix, spool, 50_000, 60_000);

    const second = await runCli(processArgs(brokers, prefix, db, ['--exit-when-idle', '2000']));
    expect(second.code, second.stderr.slice(-2000)).toBe(0);
    const stats = JSON.parse(second.stdout);
    // Exactly the flows the killed run had not committed: no loss, no double counting.
    expect(stats.recorded).toBe(60_000 - atKill);
    expect(storedRecords(db)).toBe(60_000);
    await embeddedStore(
      Array.from({ length: 60_000 }, (_, i) => shopFlow(i)),
      join(dir, 'kill-embedded.db'),
    );
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'kill-embedded.db')));
  });

  it('the broker stops while a collector publishes: the collector spools, resends in order when it is back; exact counts', async () => {
    const prefix = 'outage.';
    const spool = join(dir, 'spool-outage');
    const sink = new KafkaFlowSink({
      settings: kafkaSettings({ brokers: broker.brokers, topics: topicNames(prefix) }),
      spoolDir: spool,
      retryMs: 500,
    });
    for (let i = 0; i < 5000; i++) await sink.write(shopFlow(i));
    await sink.flush();
    expect(sink.stats.sent).toBe(5000);

    await broker.stop();
    for (let i = 5000; i < 10_000; i++) await sink.write(shopFlow(i));
    await sink.flush();
    expect(sink.stats.sent).toBe(5000);
    expect(sink.stats.spooled).toBe(5000);
    expect(sink.stats.sendFailures).toBeGreaterThan(0);
    const spooledLines = readdirSync(spool)
      .filter((f) => f.includes('.spool'))
      .reduce((n, f) => n + readFileSync(join(spool, f), 'utf8').split('\n').filter(Boolean).length, 0);
    expect(spooledLines).toBe(5000);

    await broker.start();
    for (let i = 10_000; i < 15_000; i++) await sink.write(shopFlow(i));
    await sink.close();
    const s = sink.stats;
    expect(s.dropped).toBe(0);
    expect(s.spoolBytes).toBe(0);
    expect(s.sent + s.resent).toBeGreaterThanOrEqual(15_000);
    expect(s.sent + s.spooled).toBe(15_000);

    const db = join(dir, 'outage.db');
    const r = await runCli(processArgs(brokers, prefix, db, ['--exit-when-idle', '2000']));
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const stats = JSON.parse(r.stdout);
    expect(stats.recorded).toBe(15_000);
    expect(storedRecords(db)).toBe(15_000);
    await embeddedStore(
      Array.from({ length: 15_000 }, (_, i) => shopFlow(i)),
      join(dir, 'outage-embedded.db'),
    );
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'outage-embedded.db')));
  });

  it('the broker crashes and comes back while a processor judges and publishes violations: the store is exact, every violation is published, the processor carries on', async () => {
    const prefix = 'crash.';
    const db = join(dir, 'crash.db');
    const spool = join(dir, 'spool-crash');
    await publish(prefix, spool, 0, 100_000);
    const running = startCli(processArgs(brokers, prefix, db));
    await waitUntil('first commits', () => storedRecords(db) > 0);
    // Mid-stream: SIGKILL, so its sends and fetches fail wherever they are.
    await broker.kill();
    const atCrash = storedRecords(db);
    await new Promise((r) => setTimeout(r, 2000));
    await broker.start();
    await publish(prefix, spool, 100_000, 110_000);
    await waitUntil(
      () => `all 110,000 flows stored (${storedRecords(db)}); log:\n${running.stderr().slice(-1500)}`,
      () => storedRecords(db) >= 110_000,
      240_000,
    );
    running.proc.kill('SIGTERM');
    const r = await running.done;
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const stats = JSON.parse(r.stdout);
    const embedded = await embeddedStore(
      Array.from({ length: 110_000 }, (_, i) => shopFlow(i)),
      join(dir, 'crash-embedded.db'),
    );
    expect(storeDigest(db)).toEqual(storeDigest(join(dir, 'crash-embedded.db')));
    // At least once: a batch judged again after the crash publishes its violations again.
    expect(stats.violationsPublished).toBeGreaterThanOrEqual(embedded.deniedButObserved);
    const kafka = new Kafka({ clientId: 'faults-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const high = await admin.fetchTopicOffsets(`${prefix}violations`);
    await admin.disconnect();
    expect(high.reduce((n, p) => n + Number(p.high), 0)).toBeGreaterThanOrEqual(embedded.deniedButObserved);
    console.info(
      `broker crash: ${atCrash} of 100,000 stored at the crash; ${stats.violationsPublished} violations published for ${embedded.deniedButObserved}; side outputs retried: ${r.stderr.includes('cannot publish: retrying')}`,
    );
  });

  it('spool full: the records that do not fit are dropped, counted and reported (exit 1), the rest stay spooled', async () => {
    const deadPort = await freePort();
    const spool = join(dir, 'spool-full');
    const r = await runCli([
      'collect',
      'pcap',
      resolve(CORPUS, 'gopacket__cip.pcap'),
      '--kafka',
      `127.0.0.1:${deadPort}`,
      '--spool',
      spool,
      '--spool-max-bytes',
      '200000',
      '--drain-timeout',
      '0',
    ]);
    expect(r.code).toBe(1);
    const m = r.stderr.match(
      /3023 records, 0 sent, (\d+) spooled while the broker was away .* (\d+) dropped/,
    );
    expect(m, r.stderr.slice(-2000)).not.toBeNull();
    const spooled = Number(m![1]);
    const dropped = Number(m![2]);
    expect(spooled).toBeGreaterThan(0);
    expect(dropped).toBeGreaterThan(0);
    expect(spooled + dropped).toBe(3023);
    expect(r.stderr).toContain(`${dropped} records`);
    expect(r.stderr).toContain('DROPPED: the spool');
    expect(r.stderr).toContain('spool full: flow records dropped');
    const onDisk = readdirSync(spool)
      .filter((f) => f.includes('.spool'))
      .reduce((n, f) => n + readFileSync(join(spool, f), 'utf8').split('\n').filter(Boolean).length, 0);
    expect(onDisk).toBe(spooled);
  });
});

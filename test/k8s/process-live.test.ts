// `netpol-audit process --kubeconfig`: the Kafka processor follows a real kube-apiserver, and judges each
// flow against the cluster of the flow's own time, also when the flow arrives late (consumer lag).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flowAt } from '../../processor/judge/fixtures.js';
import { AuditStore } from '../../processor/store/index.js';
import { ensureTopics, KafkaFlowSink, kafkaSettings, topicNames } from '../../transport/kafka/index.js';
import { type RunningBroker, startBroker } from '../kafka/broker.js';
import { killChildren, startCli, storedRecords, waitUntil } from '../pipeline/support.js';
import { type RunningApiServer, startApiServer } from './apiserver.js';
import { ClusterWriter } from './objects.js';

let srv: RunningApiServer;
let broker: RunningBroker;
let w: ClusterWriter;
const dir = mkdtempSync(join(tmpdir(), 'npa-process-live-'));

const flow = (at: number, port: number) =>
  flowAt(at, '10.244.1.7', '10.244.1.5', port, {
    src: { ip: '10.244.1.7', port: 40000 + (at % 1000) },
    state: 'closed',
  });

beforeAll(async () => {
  [srv, broker] = await Promise.all([startApiServer(), startBroker()]);
  w = new ClusterWriter(srv);
  await w.namespace('shop', { team: 'shop' });
  await w.node('node-1', '172.18.0.2', '10.244.1.0/24');
  await w.runningPod('shop', 'web-1', { app: 'web' }, '10.244.1.5');
  await w.runningPod('shop', 'client', { role: 'client' }, '10.244.1.7');
  await w.networkPolicy('shop', 'web-from-clients', { app: 'web' }, { role: 'client' });
}, 3_600_000);

afterAll(async () => {
  killChildren();
  await Promise.all([srv?.stop(), broker?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('process --kubeconfig against a real kube-apiserver and Kafka broker', () => {
  it('judges each flow against the cluster of its own time, late flows included', async () => {
    const prefix = 'live.';
    const settings = kafkaSettings({ brokers: broker.brokers, topics: topicNames(prefix) });
    const kafka = new Kafka({
      clientId: 'process-live-test',
      brokers: broker.brokers,
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, settings);
    await admin.disconnect();

    const db = join(dir, 'live.db');
    const proc = startCli([
      'process',
      '--kubeconfig',
      srv.kubeconfigPath,
      '--brokers',
      broker.brokers.join(','),
      '--topic-prefix',
      prefix,
      '--db',
      db,
      '--format',
      'json',
    ]);
    await waitUntil('the processor is assigned its partitions', () =>
      proc.stderr().includes('"assigned partitions"'),
    );

    // Before the relabel the client may reach web on 8080; afterwards it may not.
    const before = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    await w.labelPod('shop', 'client', { role: 'visitor' });
    // The watch delivers the change within milliseconds; give it ample time on a loaded machine.
    await new Promise((r) => setTimeout(r, 3000));
    const after = Date.now();

    const sink = new KafkaFlowSink({ settings, spoolDir: join(dir, 'spool') });
    // Published after the relabel, so all of them arrive late for `before`: judged as of their time.
    await sink.write(flow(before, 8080)); // allowed then
    await sink.write(flow(after, 8080)); // denied now, observed to flow: a violation
    await sink.write(flow(before, 9090)); // never allowed: a violation too, at the old time
    await sink.close();
    expect(sink.stats.sent).toBe(3);

    // Runs until told to stop (an idle timeout could end it before a slow machine publishes).
    await waitUntil(
      () => `the store to hold the 3 flows (has ${storedRecords(db)}); log:\n${proc.stderr().slice(-3000)}`,
      () => storedRecords(db) === 3,
    );
    proc.proc.kill('SIGTERM');
    const r = await proc.done;
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const stats = JSON.parse(r.stdout);
    expect(stats.recorded).toBe(3);
    expect(stats.allowed).toBe(1);
    expect(stats.deniedButObserved).toBe(2);

    const store = AuditStore.open(db, { readonly: true });
    try {
      const v = store.violations();
      expect(v.map((x) => `${x.srcWorkload}>${x.dstWorkload}:${x.port}`).sort()).toEqual([
        'shop/client>shop/web-1:8080',
        'shop/client>shop/web-1:9090',
      ]);
      const at8080 = v.find((x) => x.port === 8080)!;
      expect(at8080.firstSeen).toBe(after);
      const rules = store.rules();
      expect(rules.map((x) => `${x.policy}#${x.rule}:${x.hits}`)).toEqual(['shop/web-from-clients#0:1']);
    } finally {
      store.close();
    }
  });
});

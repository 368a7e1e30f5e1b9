// What alerting costs, and how fast an alert arrives:
//   npx tsx bench/alerts.ts [--flows 200000] [--latency-runs 5]
// 1. The embedded wiring (judge + SQLite store, as `audit` runs it) on the same synthetic shop flows
//    with alerting off and on (the alert stage in the store's transaction; the outbox filled, no
//    delivery), best of 3 each: flows/s and the ratio on/off.
// 2. Latency through the Kafka pipeline to Alertmanager: a real broker, a running
//    `netpol-audit process --alerts` whose receivers are a real Alertmanager (built from its Go
//    module, test/alerting/tools.sh) and an HTTP server here; one violation flow produced at a time
//    (each a new alert key); the time from producing it to Alertmanager listing the alert (its API
//    polled every 5 ms), and to the webhook receiving it. Median and max.
// Prints numbers; asserts nothing (docs/alerts.md).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AlertStage, parseAlertsConfig } from '../alerts/index.js';
import { Inventory, loadSnapshotFiles } from '../processor/inventory/index.js';
import { compilePolicyIndex } from '../processor/policy/index.js';
import { FlowProcessor, StaticClusterView } from '../processor/processor.js';
import { AuditStore } from '../processor/store/index.js';
import type { FlowRecord } from '../schema/flow-record.js';
import { StoreRecorder } from '../sinks/store.js';
import { Alertmanager, alertmanagerBinary } from '../test/alerting/alertmanager.js';
import { startBroker } from '../test/kafka/broker.js';
import { SHOP_CLUSTER, shopFlow } from '../test/pipeline/support.js';
import { freePort } from '../test/support/net.js';
import { KafkaFlowSink, kafkaSettings, topicNames } from '../transport/kafka/index.js';

const { values: args } = parseArgs({
  options: { flows: { type: 'string', default: '200000' }, 'latency-runs': { type: 'string', default: '5' } },
});
const total = Number(args.flows);
const runs = Number(args['latency-runs']);
const ROOT = resolve(import.meta.dirname, '..');
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function embedded(
  flows: FlowRecord[],
  alerts: boolean,
  dir: string,
  i: number,
): Promise<{ ms: number; raised: number }> {
  const snap = await loadSnapshotFiles([SHOP_CLUSTER]);
  const inventory = new Inventory(snap.cluster);
  const { index } = compilePolicyIndex(snap.cluster);
  const store = AuditStore.open(join(dir, `e-${alerts}-${i}.db`));
  const config = parseAlertsConfig(
    'receivers: [{name: hook, type: webhook, url: "http://127.0.0.1:9/x", secret: s}]\ndefaults: {deniedAttempts: true}\n',
    'bench',
  );
  const stage = alerts ? new AlertStage(config, store.outbox) : undefined;
  const recorder = new StoreRecorder(store, undefined, stage ? (fresh) => stage.counted(fresh) : undefined);
  const processor = new FlowProcessor(new StaticClusterView(inventory, index), recorder);
  const t0 = performance.now();
  for (const f of flows) processor.write(f);
  await processor.close();
  const ms = performance.now() - t0;
  const raised = stage ? stage.counts.firing + stage.counts.repeat + stage.counts.resolved : 0;
  store.close();
  return { ms, raised };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'npa-bench-alerts-'));
  const flows = Array.from({ length: total }, (_, i) => shopFlow(i));
  const best = { off: Number.POSITIVE_INFINITY, on: Number.POSITIVE_INFINITY };
  let raised = 0;
  for (let i = 0; i < 3; i++) {
    best.off = Math.min(best.off, (await embedded(flows, false, dir, i)).ms);
    const on = await embedded(flows, true, dir, i);
    best.on = Math.min(best.on, on.ms);
    raised = on.raised;
  }
  const rate = (ms: number) => (total * 1000) / ms;
  console.log(`embedded, alerting off: ${fmt(rate(best.off))} flows/s`);
  console.log(`embedded, alerting on:  ${fmt(rate(best.on))} flows/s (${raised} notifications raised)`);
  console.log(`ratio on/off: ${(best.off / best.on).toFixed(3)} (1.000 = free)`);

  // Latency through Kafka.
  const broker = await startBroker();
  const brokers = broker.brokers.join(',');
  const got = new Map<string, number>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const p = JSON.parse(body) as { key: { port: number }; status: string };
      if (p.status === 'firing') got.set(String(p.key.port), performance.now());
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const am = new Alertmanager(alertmanagerBinary(), await freePort());
  await am.start();
  const alertsFile = join(dir, 'alerts.yaml');
  writeFileSync(
    alertsFile,
    `receivers:\n  - {name: hook, type: webhook, url: "${url}", secret: s}\n  - {name: am, type: alertmanager, url: "${am.url}"}\n`,
  );
  const topics = topicNames('lat.');
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'cli/index.ts'),
      'process',
      '--cluster',
      SHOP_CLUSTER,
      '--brokers',
      brokers,
      '--topic-prefix',
      'lat.',
      '--group',
      'lat',
      '--db',
      join(dir, 'lat.db'),
      '--alerts',
      alertsFile,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  proc.stderr!.on('data', (d) => (log += d));
  const sink = new KafkaFlowSink({
    settings: kafkaSettings({ brokers: broker.brokers, topics }),
    spoolDir: join(dir, 'spool'),
    lingerMs: 0,
  });
  const latencies: number[] = [];
  const amLatencies: number[] = [];
  const acked: number[] = [];
  const inAlertmanager = async (port: number) =>
    (await am.alerts()).some((a) => a.labels.port === String(port));
  // The processor joins its group first: wait for the first flow's alert before measuring.
  for (let i = 0; i <= runs; i++) {
    const port = 20000 + i;
    const now = Date.now();
    const flow: FlowRecord = {
      v: 1,
      start: now,
      end: now + 5,
      proto: 'TCP',
      src: { ip: '10.244.2.40', port: 40000 + i },
      dst: { ip: '10.244.1.11', port },
      packets: { fwd: 3, rev: 3 },
      bytes: { fwd: 300, rev: 300 },
      state: 'closed',
      observer: { node: 'node-1', source: 'conntrack' },
    };
    const t0 = performance.now();
    await sink.write(flow);
    await sink.flush();
    if (i > 0) acked.push(performance.now() - t0);
    const deadline = Date.now() + 120_000;
    let amAt: number | undefined;
    while ((!got.has(String(port)) || amAt === undefined) && Date.now() < deadline) {
      if (amAt === undefined && (await inAlertmanager(port))) amAt = performance.now();
      await new Promise((r) => setTimeout(r, 5));
    }
    if (!got.has(String(port)) || amAt === undefined)
      throw new Error(`no alert for flow ${i}; process log:\n${log.slice(-2000)}`);
    if (i > 0) {
      latencies.push(got.get(String(port))! - t0);
      amLatencies.push(amAt - t0);
    }
  }
  latencies.sort((a, b) => a - b);
  amLatencies.sort((a, b) => a - b);
  acked.sort((a, b) => a - b);
  console.log(
    `of which the broker's ack of the produce: median ${fmt(acked[Math.floor(acked.length / 2)]!)} ms`,
  );
  console.log(
    `pipeline flow → alert in Alertmanager: median ${fmt(amLatencies[Math.floor(amLatencies.length / 2)]!)} ms, max ${fmt(amLatencies.at(-1)!)} ms over ${amLatencies.length} alerts`,
  );
  console.log(
    `pipeline flow → alert at the receiver: median ${fmt(latencies[Math.floor(latencies.length / 2)]!)} ms, max ${fmt(latencies.at(-1)!)} ms over ${latencies.length} alerts`,
  );
  await sink.close();
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  server.close();
  await am.stop();
  am.cleanup();
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

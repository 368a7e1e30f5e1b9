// The sink's fault behaviour on @platformatic/kafka beside kafkajs (docs/kafka.md): a real broker is
// stopped while a v2 KafkaFlowSink publishes, then started again; the sink must spool, resend, and
// the topic must then hold every record exactly once after the processor's dedupe.
//   npx tsx bench/platformatic-faults.ts [--client platformatic|kafkajs] [--codec lz4]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startBroker } from '../test/kafka/broker.js';
import { processArgs, shopFlow, storedRecords } from '../test/pipeline/support.js';
import { runCli } from '../test/support/cli.js';
import { KafkaFlowSink, kafkaSettings, topicNames } from '../transport/kafka/index.js';
import { type PlatformaticCodec, platformaticClient } from './platformatic-client.js';

const { values: args } = parseArgs({
  options: { client: { type: 'string', default: 'platformatic' }, codec: { type: 'string', default: 'lz4' } },
});
const dir = mkdtempSync(join(tmpdir(), 'npa-pfaults-'));
const broker = await startBroker({ keepData: true });
try {
  const settings = kafkaSettings({ brokers: broker.brokers, topics: topicNames('pf.') });
  const client =
    args.client === 'platformatic'
      ? platformaticClient(broker.brokers, args.codec as PlatformaticCodec)
      : undefined;
  const sink = new KafkaFlowSink({ settings, spoolDir: join(dir, 'spool'), wire: 2, retryMs: 500, client });
  const t = performance.now();
  const step = (s: string) => console.log(`${Math.round(performance.now() - t)} ms: ${s}`, sink.stats);
  for (let i = 0; i < 5000; i++) await sink.write(shopFlow(i));
  await sink.flush();
  step('5000 written, flushed');
  await broker.stop();
  step('broker stopped');
  for (let i = 5000; i < 10_000; i++) await sink.write(shopFlow(i));
  await sink.flush();
  step('5000 more written while stopped, flushed');
  await broker.start();
  step('broker started');
  for (let i = 10_000; i < 15_000; i++) await sink.write(shopFlow(i));
  await sink.close();
  step('closed');
  const db = join(dir, 'pf.db');
  const r = await runCli(processArgs(broker.brokers.join(','), 'pf.', db, ['--exit-when-idle', '2000']));
  const stats = JSON.parse(r.stdout);
  console.log(
    `processor: recorded ${stats.recorded}, duplicates ${stats.duplicates}, dead letters ${stats.deadLetters}; store ${storedRecords(db)} of 15000`,
  );
} finally {
  await broker.stop();
  rmSync(broker.dataDir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);

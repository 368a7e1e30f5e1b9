import {
  closeSync,
  createWriteStream,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FlowSink, JsonlSink } from '../collectors/sink.js';
import {
  KafkaFlowSink,
  type KafkaSinkStats,
  kafkaSettings,
  parseBrokers,
  topicNames,
} from '../transport/kafka/index.js';
import { asUsage, nonNegativeNumber, secondsAsMs } from './args.js';
import { EXIT_FATAL, EXIT_OK, UsageError } from './command.js';

/**
 * The options every collector shares for where its FlowRecords go: JSONL (the default) or Kafka.
 * Spread KAFKA_SINK_OPTIONS into the command's parseArgs options and call openFlowSink.
 */
export const KAFKA_SINK_OPTIONS = {
  kafka: { type: 'string' },
  topic: { type: 'string' },
  'topic-prefix': { type: 'string' },
  spool: { type: 'string' },
  'spool-max-bytes': { type: 'string' },
  'drain-timeout': { type: 'string' },
  wire: { type: 'string' },
  compression: { type: 'string' },
} as const;

export const KAFKA_SINK_USAGE = `      --kafka BROKERS      publish the records to Kafka (host:port[,host:port]) instead of JSONL
      --topic NAME         flows topic (default netpol-audit.flows, or PREFIX.flows)
      --topic-prefix P     prefix of the pipeline's topic names (default 'netpol-audit.')
      --spool DIR          where records wait while the broker is unreachable; one collector per
                           directory; what is left there is resent first by the next run
                           (default $TMPDIR/netpol-audit-spool/COMMAND-TOPIC)
      --spool-max-bytes N  spool bound (default 268435456); beyond it records are dropped and counted
      --drain-timeout S    at exit, how long to keep resending the spool to an absent broker (default 30)
      --wire 1|2           Kafka wire format: 1, one message per record (default); 2, packs of
                           records per partition (faster; needs processors that read v2)
      --compression C      gzip, zstd or none (default: zstd with --wire 2, gzip with --wire 1)`;

export interface OpenedSink {
  sink: FlowSink;
  /** Lines for the command's summary on standard error. */
  report(): string[];
  /** Records were lost (spool full): the command exits 1. */
  lost(): boolean;
  /** With --kafka: the producer's counts as they are now (metrics). */
  kafkaStats?: () => KafkaSinkStats;
}

interface SinkValues {
  kafka?: string;
  topic?: string;
  'topic-prefix'?: string;
  spool?: string;
  'spool-max-bytes'?: string;
  'drain-timeout'?: string;
  wire?: string;
  compression?: string;
  output?: string;
}

/** Claims the spool directory for this process: two collectors appending to one spool would interleave. */
function lockSpool(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(lock, 'utf8'));
      let alive = false;
      try {
        alive = Number.isInteger(pid) && pid > 0 && pid !== process.pid && process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (alive)
        throw new UsageError(`spool directory ${dir} is in use by process ${pid}: give another --spool`);
      rmSync(lock, { force: true });
    }
  }
  throw new UsageError(`cannot lock spool directory ${dir}`);
}

export function openFlowSink(command: string, values: SinkValues, jsonl: () => FlowSink): OpenedSink {
  if (values.kafka === undefined) {
    for (const o of [
      'topic',
      'topic-prefix',
      'spool',
      'spool-max-bytes',
      'drain-timeout',
      'wire',
      'compression',
    ] as const)
      if (values[o] !== undefined) throw new UsageError(`--${o} applies to --kafka only`);
    const sink = jsonl();
    return { sink, report: () => [], lost: () => false };
  }
  if (values.output !== undefined) throw new UsageError('give either --kafka or --output, not both');
  const brokers = asUsage(() => parseBrokers(values.kafka!));
  const topics = topicNames(values['topic-prefix']);
  if (values.topic !== undefined) topics.flows = values.topic;
  const settings = kafkaSettings({
    brokers,
    topics,
    clientId: `netpol-audit-${command.replace(/\s+/g, '-')}`,
  });
  const spoolDir =
    values.spool ??
    join(tmpdir(), 'netpol-audit-spool', `${command}-${topics.flows}`.replace(/[^A-Za-z0-9._-]/g, '_'));
  const unlock = lockSpool(spoolDir);
  const drain = nonNegativeNumber('drain-timeout', values['drain-timeout']);
  if (values.wire !== undefined && values.wire !== '1' && values.wire !== '2')
    throw new UsageError(`--wire ${values.wire}: give 1 or 2`);
  const compression = values.compression;
  if (compression !== undefined && compression !== 'gzip' && compression !== 'zstd' && compression !== 'none')
    throw new UsageError(
      `--compression ${compression}: give gzip, zstd or none (the processors' Kafka consumer reads no other)`,
    );
  const kafka = new KafkaFlowSink({
    settings,
    spoolDir,
    spoolMaxBytes: nonNegativeNumber('spool-max-bytes', values['spool-max-bytes']),
    drainTimeoutMs: secondsAsMs(drain),
    wire: values.wire === undefined ? undefined : values.wire === '2' ? 2 : 1,
    compression,
  });
  const kafkaStats = () => kafka.stats;
  const sink: FlowSink = {
    write: (r) => kafka.write(r),
    flush: () => kafka.flush(),
    close: async () => {
      try {
        await kafka.close();
      } finally {
        unlock();
      }
    },
  };
  return {
    kafkaStats,
    sink,
    report() {
      const s = kafka.stats;
      const lines = [
        `${command}: kafka ${brokers.join(',')} topic ${topics.flows}: ${s.written} records, ${s.sent} sent, ` +
          `${s.spooled} spooled while the broker was away (${s.resent} of all spooled resent), ${s.dropped} dropped`,
      ];
      if (s.spoolBytes > 0)
        lines.push(
          `${command}: ${s.spoolBytes} bytes of records still in the spool ${spoolDir}: the next run with this --spool resends them`,
        );
      if (s.dropped > 0)
        lines.push(
          `${command}: ${s.dropped} records (${s.droppedBytes} bytes) DROPPED: the spool ${spoolDir} was full (--spool-max-bytes)`,
        );
      return lines;
    },
    lost: () => kafka.stats.dropped > 0,
  };
}

/**
 * The JSONL sink on standard output or `--output FILE`. A reader that goes away (`| head`) ends the
 * run quietly; any other write error is fatal, naming the command.
 */
export function jsonlOutput(command: string, output: string | undefined, inputs: string[] = []): FlowSink {
  refuseOutputOverInput(output, inputs);
  const out = output === undefined || output === '-' ? process.stdout : createWriteStream(output);
  out.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT_OK);
    process.stderr.write(`netpol-audit ${command}: cannot write output: ${err.message}\n`);
    process.exit(EXIT_FATAL);
  });
  return new JsonlSink(out);
}

/**
 * `-o X` where X is also an input would truncate the input before it is read (and then report
 * success on nothing): refused before anything is opened. Same file means same device and inode,
 * so a second name (a hard link, a symlink, `./X`) is caught too.
 */
export function refuseOutputOverInput(output: string | undefined, inputs: string[]): void {
  if (output === undefined || output === '-') return;
  let out: { dev: number; ino: number };
  try {
    out = statSync(output);
  } catch {
    return; // the output does not exist yet: it cannot be an input
  }
  for (const input of inputs) {
    if (input === '-') continue;
    try {
      const st = statSync(input);
      if (st.dev === out.dev && st.ino === out.ino)
        throw new UsageError(
          `--output ${output} is the input ${input}: writing it would destroy it before it is read`,
        );
    } catch (err) {
      if (err instanceof UsageError) throw err;
    }
  }
}

import { Kafka, type LogEntry, logLevel } from 'kafkajs';
import { log } from '../../lib/log.js';
import { registerCodecs } from './codecs.js';

/**
 * Where the pipeline's Kafka traffic goes. Every name has a default so a collector and a processor
 * started with only `--brokers` agree; `topicPrefix` lets several pipelines (or tests) share a broker.
 */
export interface TopicNames {
  /** FlowRecords from the collectors, keyed by flow. */
  flows: string;
  /** Denied-but-observed flows, for alerting consumers (at-least-once). */
  violations: string;
  /** Messages a processor could not read, with the reason in headers. */
  deadLetter: string;
  /** Compact judged records from `--role judge` processors to the one `--role record` recorder. */
  verdicts: string;
}

export interface KafkaSettings {
  brokers: string[];
  clientId: string;
  topics: TopicNames;
  /** Partitions created for each topic when the pipeline creates it (existing topics are kept). */
  partitions: { flows: number; violations: number; deadLetter: number; verdicts: number };
  replicationFactor: number;
  /** Consumer group; the judges use `${group}-judge`, the recorder `${group}-record`. */
  group: string;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
}

export const DEFAULT_TOPIC_PREFIX = 'netpol-audit.';

export function topicNames(prefix = DEFAULT_TOPIC_PREFIX): TopicNames {
  return {
    flows: `${prefix}flows`,
    violations: `${prefix}violations`,
    deadLetter: `${prefix}dead-letter`,
    verdicts: `${prefix}verdicts`,
  };
}

export function kafkaSettings(over: Partial<KafkaSettings> & { brokers: string[] }): KafkaSettings {
  return {
    clientId: 'netpol-audit',
    topics: topicNames(),
    partitions: { flows: 6, violations: 3, deadLetter: 1, verdicts: 6 },
    replicationFactor: 1,
    group: 'netpol-audit',
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1_000,
    ...over,
  };
}

/** `host:port,host:port` as given on a command line. */
export function parseBrokers(text: string): string[] {
  const brokers = text
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  for (const b of brokers)
    if (!/^[^\s:]+:\d{1,5}$/.test(b) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(b))
      throw new Error(`broker '${b}' is not host:port`);
  if (brokers.length === 0) throw new Error('no broker given (expected host:port[,host:port...])');
  return brokers;
}

const levels: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/**
 * Conditions of a healthy start or a rebalance that kafkajs logs as errors although it retries them
 * and the pipeline carries on (a broker still loading its group coordinator, a partition leader
 * being elected, a group rebalancing): logged at info, so an error in the log means something is wrong.
 */
const RETRIED_CONDITIONS =
  /coordinator is loading|coordinator is not available|not the correct coordinator|not the coordinator|no leader for this topic-partition|leader not available|group is rebalancing|rebalance in progress|COORDINATOR_LOAD_IN_PROGRESS|COORDINATOR_NOT_AVAILABLE|NOT_COORDINATOR|LEADER_NOT_AVAILABLE|REBALANCE_IN_PROGRESS/i;

/** The level a kafkajs log entry is written at (lib/log.ts), or undefined to keep it at debug. */
export function kafkajsLevel(
  level: number,
  message: string,
  error?: unknown,
): 'error' | 'warn' | 'info' | 'debug' {
  // A stopped broker makes kafkajs log each reconnect attempt; the sink and runner report the
  // outage once, in their own words. Bounded producer retries are deliberate (the spool takes over
  // and the processor dedupes by origin and sequence headers), so kafkajs' warning about them is noise.
  if (
    (level === logLevel.ERROR && /Connection error|ECONNREFUSED|Failed to connect/.test(message)) ||
    /Limiting retries for the idempotent producer/.test(message)
  )
    return 'debug';
  const shown = levels[level] ?? 'info';
  if ((shown === 'error' || shown === 'warn') && RETRIED_CONDITIONS.test(`${message} ${String(error ?? '')}`))
    return 'info';
  return shown;
}

let quieted = false;

/**
 * kafkajs (unmaintained since 2023) arms its throttle check with `throttledUntil - Date.now()` while
 * `throttledUntil` is still -1, a negative delay Node.js has always run as 1 ms; Node.js 24 also
 * prints a TimeoutNegativeWarning for it on standard error, on every healthy start. That warning says
 * nothing a person can act on, so it is dropped; every other warning is printed as before.
 */
function quietNegativeTimeouts(): void {
  if (quieted) return;
  quieted = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    if (type === 'TimeoutNegativeWarning') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

/**
 * A kafkajs client whose own log goes through lib/log.ts. Its retry settings are short: a broker
 * that does not answer within a few seconds is treated as away (the sink spools, the consumer
 * keeps retrying) rather than blocking a collector for minutes.
 */
export function createKafka(settings: KafkaSettings, clientSuffix = ''): Kafka {
  process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
  quietNegativeTimeouts();
  registerCodecs();
  const logger = log().child({ component: 'kafkajs' });
  return new Kafka({
    clientId: `${settings.clientId}${clientSuffix}`,
    brokers: settings.brokers,
    connectionTimeout: 3_000,
    requestTimeout: 30_000,
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        logger[kafkajsLevel(level, message, (rest as { error?: unknown }).error)](rest, message);
      },
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2_000 },
  });
}

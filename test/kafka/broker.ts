// Test helper: a real single-node Apache Kafka (KRaft) broker per test file, driven through broker.sh so
// the shell script and the tests start it the same way. Each broker gets its own free ports and a fresh
// data dir, and a watchdog stops it if the test process dies without calling stop().
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/net.js';

const brokerScript = join(dirname(fileURLToPath(import.meta.url)), 'broker.sh');

/** The Kafka release the project runs against (the newest on Maven Central when this was written). */
export const DEFAULT_KAFKA_VERSION = '4.4.0';

export interface BrokerOptions {
  /** Kafka release, e.g. '4.4.0' or '3.9.2'; default DEFAULT_KAFKA_VERSION or $KAFKA_VERSION. */
  version?: string;
  /** Client port on 127.0.0.1; default: a free port chosen by the OS. */
  port?: number;
  /** KRaft controller port on 127.0.0.1; default: a free port chosen by the OS. */
  controllerPort?: number;
  /** Data dir; default: a fresh mkdtemp dir, deleted by stop() unless keepData. */
  dataDir?: string;
  keepData?: boolean;
  /** JVM max heap, e.g. '512m'. */
  heap?: string;
  /** Extra server.properties entries; they override broker.sh's defaults. */
  props?: Record<string, string | number | boolean>;
  startTimeoutMs?: number;
}

export interface RunningBroker {
  /** Bootstrap addresses for a Kafka client, e.g. ['127.0.0.1:41234']. */
  brokers: string[];
  version: string;
  dataDir: string;
  /** Wall time of the last start (JVM launch until a Metadata request succeeds), ms. */
  startupMs: number;
  /** Graceful stop (SIGTERM, SIGKILL after 30 s); deletes the data dir unless keepData. Idempotent. */
  stop(): Promise<void>;
  /** Graceful stop, then start again on the same ports with the same data. */
  restart(): Promise<void>;
  /** SIGKILL: an unclean broker crash, data kept. Call start() to bring it back. */
  kill(): Promise<void>;
  /** Start again after kill() or stop({keepData}) on the same ports and data. */
  start(): Promise<void>;
  /** Last lines of the broker's log, for failure messages. */
  logs(lines?: number): Promise<string>;
}

function run(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [brokerScript, ...args],
      { env, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`broker.sh ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}

/** Fetches the jars if needed (first time only: needs Maven Central), then starts and waits for readiness. */
export async function startBroker(opts: BrokerOptions = {}): Promise<RunningBroker> {
  const version = opts.version ?? process.env.KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION;
  const ownDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'netpol-audit-kafka-'));
  const startTimeoutMs = opts.startTimeoutMs ?? 180_000;
  const props = Object.entries(opts.props ?? {})
    .map(([k, v]) => `${k}=${String(v)}`)
    .join('\n');

  let env: NodeJS.ProcessEnv = {};
  const configure = async () => {
    const port = opts.port ?? (await freePort());
    let controllerPort = opts.controllerPort ?? (await freePort());
    while (controllerPort === port) controllerPort = await freePort();
    env = {
      ...process.env,
      KAFKA_VERSION: version,
      KAFKA_PORT: String(port),
      KAFKA_CONTROLLER_PORT: String(controllerPort),
      KAFKA_DATA_DIR: dataDir,
      KAFKA_OWNER_PID: String(process.pid),
      KAFKA_START_TIMEOUT: String(Math.ceil(startTimeoutMs / 1000)),
      KAFKA_BROKER_PROPS: props,
      ...(opts.heap ? { KAFKA_HEAP: opts.heap } : {}),
    };
  };

  // The first fetch may take a minute; it is outside the start timeout and done once per machine.
  await run(['fetch'], { ...process.env, KAFKA_VERSION: version }, 15 * 60_000);

  let startupMs = 0;
  const start = async () => {
    const t0 = performance.now();
    await run(['start'], env, startTimeoutMs + 30_000);
    startupMs = performance.now() - t0;
  };

  // Another process may grab a port between freePort() and the JVM binding it; choose new ports then.
  for (let attempt = 1; ; attempt++) {
    await configure();
    try {
      await start();
      break;
    } catch (err) {
      const portClash = /already in use|Address already in use|BindException/.test(String(err));
      if (!portClash || attempt >= 3 || opts.port !== undefined) {
        await run(['stop'], env, 60_000).catch(() => undefined);
        if (ownDataDir && !opts.keepData) rmSync(dataDir, { recursive: true, force: true });
        throw err;
      }
      await run(['stop'], env, 60_000).catch(() => undefined);
    }
  }

  let stopped = false;
  const broker: RunningBroker = {
    brokers: [`127.0.0.1:${env.KAFKA_PORT}`],
    version,
    dataDir,
    get startupMs() {
      return startupMs;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await run(['stop'], env, 60_000);
      if (ownDataDir && !opts.keepData) rmSync(dataDir, { recursive: true, force: true });
    },
    async restart() {
      await run(['stop'], env, 60_000);
      await start();
    },
    async kill() {
      await run(['kill'], env, 30_000);
    },
    async start() {
      stopped = false;
      await start();
    },
    async logs(lines = 200) {
      return (await run(['logs', String(lines)], env, 10_000)).stdout;
    },
  };
  return broker;
}

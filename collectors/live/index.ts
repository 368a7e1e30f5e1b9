import { spawn } from 'node:child_process';
import { exited, spawned } from '../../lib/child.js';
import { AuditError } from '../../lib/errors.js';
import { type CollectOptions, type CollectSummary, collectCaptureStream } from '../flow/collect.js';
import type { FlowSink } from '../sink.js';

/**
 * Live capture: `tcpdump -w -` streams pcap into the same reader, decoder and flow table as
 * `collect pcap`, so a live flow and a captured one become the same FlowRecord (observer.source
 * 'live'). Stopping sends tcpdump SIGINT: it writes out what it buffered, prints its counts and
 * closes the stream, and the flow table then flushes every open flow as 'end-of-input'. While it
 * runs, tcpdump is asked for its counts every `statsIntervalMs` (SIGUSR1, which tcpdump answers on
 * Linux with one line of counts): packets the kernel dropped are evidence the audit does not have,
 * and a collector that runs for weeks must say so while it runs, not only when it stops.
 */

/** Default interval between two requests for tcpdump's counts. */
export const TCPDUMP_STATS_INTERVAL_MS = 10_000;

export interface LiveCaptureOptions extends Omit<CollectOptions, 'iface'> {
  iface: string;
  /** A BPF expression, as one string or as words (tcpdump joins its trailing arguments). */
  filter?: string | string[];
  /** Capture inside this network namespace (`ip netns exec NAME tcpdump ...`). */
  netns?: string;
  /** Bytes captured per packet (tcpdump -s); default tcpdump's own (262144). */
  snaplen?: number;
  /** Stops the capture. */
  signal?: AbortSignal;
  /** Called once tcpdump says it is listening. */
  onReady?(): void;
  tcpdumpPath?: string;
  /** Ask tcpdump for its counts this often while it runs (default 10 s; 0: only at the end). */
  statsIntervalMs?: number;
  /** Updated with tcpdump's counts as it reports them, while it runs and at its end (metrics). */
  counts?: TcpdumpCounts;
}

/** tcpdump's own counts, cumulative since it started. */
export interface TcpdumpCounts {
  captured?: number;
  receivedByFilter?: number;
  droppedByKernel?: number;
  droppedByInterface?: number;
}

export interface TcpdumpReport extends TcpdumpCounts {
  /** "N packets captured" and friends, from tcpdump's closing words on standard error. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** tcpdump's standard error, line by line. */
  messages: string[];
}

export interface LiveSummary extends CollectSummary {
  tcpdump: TcpdumpReport;
}

/** tcpdump's arguments: never through a shell, the filter as trailing words after `--`. */
export function tcpdumpArgs(opts: Pick<LiveCaptureOptions, 'iface' | 'filter' | 'snaplen'>): string[] {
  const args = ['-i', opts.iface, '-w', '-', '-U', '-n'];
  if (opts.snaplen !== undefined) args.push('-s', String(opts.snaplen));
  const words =
    typeof opts.filter === 'string' ? opts.filter.split(/\s+/).filter((w) => w !== '') : (opts.filter ?? []);
  if (words.length > 0) args.push('--', ...words);
  return args;
}

/**
 * The line tcpdump prints when asked for its counts while it runs (SIGUSR1 on Linux): "tcpdump: 150
 * packets captured, 306 packets received by filter, 0 packets dropped by kernel" (", N packets
 * dropped by interface" where the platform counts them); undefined for any other line.
 */
export function parseTcpdumpRunningStats(line: string): TcpdumpCounts | undefined {
  const m =
    /^tcpdump: (\d+) packets? captured, (\d+) packets? received by filter, (\d+) packets? dropped by kernel(?:, (\d+) packets? dropped by interface)?\s*$/.exec(
      line,
    );
  if (!m) return undefined;
  const out: TcpdumpCounts = {
    captured: Number(m[1]),
    receivedByFilter: Number(m[2]),
    droppedByKernel: Number(m[3]),
  };
  if (m[4] !== undefined) out.droppedByInterface = Number(m[4]);
  return out;
}

/** Reads tcpdump's closing counts ("12 packets captured", "0 packets dropped by kernel"). */
export function parseTcpdumpStats(stderr: string): TcpdumpCounts {
  const out: TcpdumpCounts = {};
  const num = (re: RegExp) => {
    const m = re.exec(stderr);
    return m ? Number(m[1]) : undefined;
  };
  const captured = num(/^(\d+) packets? captured$/m);
  const received = num(/^(\d+) packets? received by filter$/m);
  const kernel = num(/^(\d+) packets? dropped by kernel$/m);
  const ifdrop = num(/^(\d+) packets? dropped by interface$/m);
  if (captured !== undefined) out.captured = captured;
  if (received !== undefined) out.receivedByFilter = received;
  if (kernel !== undefined) out.droppedByKernel = kernel;
  if (ifdrop !== undefined) out.droppedByInterface = ifdrop;
  return out;
}

/** Captures until `signal` aborts (or tcpdump ends), writing the flows to `sink`. */
export async function collectLive(sink: FlowSink, opts: LiveCaptureOptions): Promise<LiveSummary> {
  const tcpdump = opts.tcpdumpPath ?? 'tcpdump';
  const args = tcpdumpArgs(opts);
  const file = opts.netns ? 'ip' : tcpdump;
  const argv = opts.netns ? ['netns', 'exec', opts.netns, tcpdump, ...args] : args;
  const what = `${file} ${argv.join(' ')}`;
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });

  // tcpdump's standard error, but for the counts it prints when asked (they go to `counts`).
  let stderr = '';
  let partial = '';
  let listening = false;
  const counts = opts.counts ?? {};
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    const lines = (partial + d).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const running = parseTcpdumpRunningStats(line);
      if (running) Object.assign(counts, running);
      else stderr += `${line}\n`;
    }
    if (!listening && /listening on /.test(stderr + partial)) {
      listening = true;
      opts.onReady?.();
    }
  });
  const exit = exited(child);

  await spawned(child, 'LIVE_CAPTURE_FAILED', what);

  // Asked only once tcpdump listens: it has set its handler by then (SIGUSR1 would end it before).
  const interval = opts.statsIntervalMs ?? TCPDUMP_STATS_INTERVAL_MS;
  const poll =
    interval > 0
      ? setInterval(() => {
          if (listening && child.exitCode === null && child.signalCode === null) child.kill('SIGUSR1');
        }, interval)
      : undefined;
  poll?.unref();
  // A signal that cannot be delivered is an 'error' event on the child: stop asking, do not crash.
  child.on('error', () => {
    if (poll) clearInterval(poll);
  });

  // SIGINT is tcpdump's own "finish": it flushes the capture and prints its counts.
  const stop = () => {
    if (poll) clearInterval(poll);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  };
  if (opts.signal?.aborted) stop();
  opts.signal?.addEventListener('abort', stop, { once: true });

  const {
    iface,
    filter: _f,
    netns: _n,
    snaplen: _s,
    signal: _sig,
    onReady: _r,
    tcpdumpPath: _t,
    statsIntervalMs: _i,
    counts: _c,
    ...collect
  } = opts;
  let summary: CollectSummary;
  try {
    summary = await collectCaptureStream(child.stdout!, `tcpdump:${iface}`, sink, {
      ...collect,
      iface,
      observerSource: 'live',
      live: true,
    });
  } finally {
    opts.signal?.removeEventListener('abort', stop);
    if (poll) clearInterval(poll);
  }
  const r = await exit;
  stderr += partial;
  const messages = stderr.split('\n').filter((l) => l.trim() !== '');
  const closing = parseTcpdumpStats(stderr);
  Object.assign(counts, closing);
  const report: TcpdumpReport = {
    ...closing,
    exitCode: r.code,
    signal: r.signal,
    messages,
  };
  // A tcpdump that never listened failed to start (no such interface, no permission, bad filter).
  if (!listening && r.code !== 0 && summary.packets === 0) {
    throw new AuditError(
      'LIVE_CAPTURE_FAILED',
      `${what} exited with ${r.code ?? r.signal}: ${messages.join('; ')}`,
    );
  }
  return { ...summary, tcpdump: report };
}

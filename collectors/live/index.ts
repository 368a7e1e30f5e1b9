import { spawn } from 'node:child_process';
import { exited, spawned } from '../../lib/child.js';
import { AuditError } from '../../lib/errors.js';
import { type CollectOptions, type CollectSummary, collectCaptureStream } from '../flow/collect.js';
import type { FlowSink } from '../sink.js';

/**
 * Live capture: `tcpdump -w -` streams pcap into the same reader, decoder and flow table as
 * `collect pcap`, so a live flow and a captured one become the same FlowRecord (observer.source
 * 'live'). Stopping sends tcpdump SIGINT: it writes out what it buffered, prints its counts and
 * closes the stream, and the flow table then flushes every open flow as 'end-of-input'.
 */

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
}

export interface TcpdumpReport {
  /** "N packets captured" and friends, from tcpdump's closing words on standard error. */
  captured?: number;
  receivedByFilter?: number;
  droppedByKernel?: number;
  droppedByInterface?: number;
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

/** Reads tcpdump's closing counts ("12 packets captured", "0 packets dropped by kernel"). */
export function parseTcpdumpStats(stderr: string): Omit<TcpdumpReport, 'exitCode' | 'signal' | 'messages'> {
  const out: Omit<TcpdumpReport, 'exitCode' | 'signal' | 'messages'> = {};
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

  let stderr = '';
  let listening = false;
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (!listening && /listening on /.test(stderr)) {
      listening = true;
      opts.onReady?.();
    }
  });
  const exit = exited(child);

  await spawned(child, 'LIVE_CAPTURE_FAILED', what);

  // SIGINT is tcpdump's own "finish": it flushes the capture and prints its counts.
  const stop = () => {
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
  }
  const r = await exit;
  const messages = stderr.split('\n').filter((l) => l.trim() !== '');
  const report: TcpdumpReport = {
    ...parseTcpdumpStats(stderr),
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

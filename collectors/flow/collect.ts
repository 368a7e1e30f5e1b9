import { createReadStream, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { type ErrorCode, type InputIssue, issue } from '../../lib/errors.js';
import type { FlowRecord } from '../../schema/flow-record.js';
import { CaptureParser, READ_CHUNK } from '../capture/index.js';
import type { CaptureRecord } from '../capture/record.js';
import { DecodeStatus, decodePacket } from '../decode/index.js';
import { newDecodedPacket } from '../decode/packet.js';
import type { FlowSink } from '../sink.js';
import { MAX_JUMP_MS, PlausibleTime, TimeOutliers } from './plausible-time.js';
import { FlowTable, type FlowTableOptions } from './table.js';

/**
 * Capture → decoder → flow table → sink. One flow table per input: every file is a separate
 * observation (its own `observer.file`) and its flows end with it ('end-of-input').
 */

export interface CollectOptions {
  node?: string;
  /** observer.iface for every record. */
  iface?: string;
  idleTimeoutMs?: FlowTableOptions['idleTimeoutMs'];
  activeTimeoutMs?: number;
  tcpClosedLingerMs?: number;
  maxFlows?: number;
  bytes?: FlowTableOptions['bytes'];
  /** Every input problem, as it is found. */
  onIssue?(issue: InputIssue): void;
  /** Per-packet issues (truncated/malformed packets) reported per input before only counting them. */
  maxPacketIssues?: number;
  /** Wall clock (ms) for the plausible-time check; undefined: Date.now() as each packet is read. */
  now?: number;
  /**
   * The capture is happening now (tcpdump): a packet far in the past of the wall clock is out of
   * line, and packets are never held back to compare with the ones after them.
   */
  live?: boolean;
  /**
   * Stops reading (SIGINT/SIGTERM): what was read is finished as if the input had ended there, the
   * inputs not started are not read, and a record cut by the stop is a warning, not damage.
   */
  signal?: AbortSignal;
  /** Counts into this summary (a caller that reports them while collecting: metrics). */
  summary?: CollectSummary;
}

export interface CollectSummary {
  inputs: number;
  /** Inputs that could not be read at all (missing file, not a capture). */
  failedInputs: number;
  packets: number;
  /** Packets decoded down to their transport header. */
  decoded: number;
  /** Packets counted in flows: decoded ones and truncated ones whose IP header was captured. */
  flowPackets: number;
  notIp: number;
  unsupportedLinktype: number;
  /** Cut by the snapshot length (those with an IP header are still in flows). */
  truncated: number;
  malformed: number;
  /** Packets whose timestamp is implausible (future, or far from the rest): kept out of flows. */
  implausibleTime: number;
  records: number;
  flows: number;
  issues: number;
  /** Issues of severity error (the CLI exits 1 when this is not 0). */
  errors: number;
  /** Reading was stopped by `signal` before the inputs ended. */
  stopped?: boolean;
  /** Inputs not read to their end because of `signal` (cut, or not started). */
  cutInputs?: string[];
}

export function emptySummary(): CollectSummary {
  return {
    inputs: 0,
    failedInputs: 0,
    packets: 0,
    decoded: 0,
    flowPackets: 0,
    notIp: 0,
    unsupportedLinktype: 0,
    truncated: 0,
    malformed: 0,
    implausibleTime: 0,
    records: 0,
    flows: 0,
    issues: 0,
    errors: 0,
  };
}

const DEFAULT_MAX_PACKET_ISSUES = 20;

/** One input being collected: owns the parser, the table and the queue of records for the sink. */
class Collection {
  private table: FlowTable | undefined;
  private started = false;
  readonly parser: CaptureParser;
  private readonly queue: FlowRecord[] = [];
  private readonly pkt = newDecodedPacket();
  private packetIssues = 0;
  private readonly maxPacketIssues: number;
  private readonly linktypesWarned = new Set<number>();
  private readonly time: PlausibleTime;
  /** Files only: packets far from the data around them (see TimeOutliers). */
  private readonly outliers: TimeOutliers<CaptureRecord> | undefined;

  constructor(
    private readonly source: string,
    /** observer.source; undefined: 'pcap' or 'pcapng' from the input's first bytes. */
    private readonly observerSource: string | undefined,
    private readonly file: string | undefined,
    private readonly sink: FlowSink,
    private readonly opts: CollectOptions,
    private readonly summary: CollectSummary,
  ) {
    this.maxPacketIssues = opts.maxPacketIssues ?? DEFAULT_MAX_PACKET_ISSUES;
    this.time = new PlausibleTime(opts.now ?? Date.now, opts.live === true);
    if (!opts.live)
      this.outliers = new TimeOutliers<CaptureRecord>(
        (rec) => this.decode(rec),
        (rec) => {
          this.summary.implausibleTime++;
          this.packetIssue(
            rec,
            'PACKET_IMPLAUSIBLE_TIME',
            `its timestamp ${timeText(rec.ts)} is more than ${MAX_JUMP_MS / 86_400_000} days from the packets around it, which agree with each other`,
          );
        },
        (rec) => ({ ...rec, data: rec.data.slice() }),
      );
    this.parser = new CaptureParser(source, {
      onRecord: (rec) => this.onRecord(rec),
      onIssue: (i) => this.report(i),
    });
  }

  /** The table is made on the first bytes, which tell pcap from pcapng for observer.source. */
  private makeTable(first: Uint8Array | undefined): FlowTable {
    const opts = this.opts;
    const pcapng =
      first !== undefined &&
      first.length >= 4 &&
      first[0] === 0x0a &&
      first[1] === 0x0d &&
      first[2] === 0x0d &&
      first[3] === 0x0a;
    const observer: FlowTableOptions['observer'] = {
      source: this.observerSource ?? (pcapng ? 'pcapng' : 'pcap'),
    };
    if (opts.node !== undefined) observer.node = opts.node;
    if (opts.iface !== undefined) observer.iface = opts.iface;
    if (this.file !== undefined) observer.file = this.file;
    this.table = new FlowTable({
      observer,
      idleTimeoutMs: opts.idleTimeoutMs,
      activeTimeoutMs: opts.activeTimeoutMs,
      tcpClosedLingerMs: opts.tcpClosedLingerMs,
      maxFlows: opts.maxFlows,
      bytes: opts.bytes,
      onExport: (r) => {
        this.queue.push(r);
      },
    });
    return this.table;
  }

  /** Set when reading was stopped by a signal: the end of what was read is not the input's end. */
  stopped = false;

  report(i: InputIssue): void {
    if (this.stopped && i.severity === 'error' && CUT_BY_STOP.has(i.code))
      i = { ...i, severity: 'warning', message: `${i.message} (reading was stopped by a signal here)` };
    this.summary.issues++;
    if (i.severity === 'error') this.summary.errors++;
    this.opts.onIssue?.(i);
  }

  private onRecord(rec: CaptureRecord): void {
    const s = this.summary;
    s.packets++;
    const when = this.time.check(rec.ts);
    if (when !== 'ok') {
      s.implausibleTime++;
      this.packetIssue(
        rec,
        'PACKET_IMPLAUSIBLE_TIME',
        when === 'future'
          ? `its timestamp ${timeText(rec.ts)} lies in the future of the wall clock`
          : when === 'past'
            ? `its timestamp ${timeText(rec.ts)} lies more than a day in the past of the wall clock, in a live capture`
            : `its timestamp ${timeText(rec.ts)} is not a valid time`,
      );
      return;
    }
    if (this.outliers) this.outliers.push(rec.ts, rec);
    else this.decode(rec);
  }

  private decode(rec: CaptureRecord): void {
    const s = this.summary;
    const status = decodePacket(rec, this.pkt);
    switch (status) {
      case DecodeStatus.OK:
        s.decoded++;
        s.flowPackets++;
        this.table!.add(this.pkt);
        return;
      case DecodeStatus.NOT_IP:
        s.notIp++;
        return;
      case DecodeStatus.UNSUPPORTED_LINKTYPE:
        s.unsupportedLinktype++;
        if (!this.linktypesWarned.has(rec.linkType)) {
          this.linktypesWarned.add(rec.linkType);
          this.report(
            issue(
              'PACKET_UNSUPPORTED_LINKTYPE',
              `link type ${rec.linkType} is not decoded; its packets are counted but make no flows`,
              { source: this.source, offset: rec.offset, record: rec.record },
              'warning',
            ),
          );
        }
        return;
      case DecodeStatus.TRUNCATED:
        s.truncated++;
        if (this.pkt.src !== '') {
          // The snapshot length cut the packet after its IP header: the addresses (and ports,
          // when they were captured) still place it in a flow.
          s.flowPackets++;
          this.table!.add(this.pkt);
          return;
        }
        this.packetIssue(rec, 'PACKET_TRUNCATED', 'the capture cut the packet inside its IP header');
        return;
      default:
        s.malformed++;
        this.packetIssue(
          rec,
          'PACKET_MALFORMED',
          this.pkt.anomaly === 'ipv6-option-overrun'
            ? 'an option of its IPv6 Hop-by-Hop or Destination Options header runs past the header (a receiving kernel drops it)'
            : 'its IP or transport header is invalid',
        );
    }
  }

  private packetIssue(rec: CaptureRecord, code: ErrorCode, message: string): void {
    this.packetIssues++;
    if (this.packetIssues <= this.maxPacketIssues) {
      this.report(
        issue(
          code,
          `${message}; packet skipped`,
          { source: this.source, offset: rec.offset, record: rec.record },
          'warning',
        ),
      );
    }
  }

  private draining: Promise<void> | undefined;

  /**
   * Hands queued records to the sink, honouring its back-pressure; one drain at a time (a live
   * capture's wall-clock expiry may queue records while a drain waits on the sink).
   */
  async drain(): Promise<void> {
    while (this.draining) await this.draining;
    if (this.queue.length === 0) return;
    this.draining = this.drainQueue();
    try {
      await this.draining;
    } finally {
      this.draining = undefined;
    }
  }

  private async drainQueue(): Promise<void> {
    const q = this.queue;
    for (let i = 0; i < q.length; i++) {
      const r = q[i]!;
      this.summary.records++;
      if (r.seq === 0) this.summary.flows++;
      const wait = this.sink.write(r);
      if (wait !== undefined) await wait;
    }
    q.length = 0;
  }

  /**
   * A live capture: exports the flows idle past their timeout by the wall clock. Packets drive the
   * expiry otherwise, and on a quiet link no later packet comes: the last flows would wait for the
   * next traffic or the end of the capture.
   */
  async expireIdle(nowMs: number): Promise<void> {
    if (this.table === undefined) return;
    this.table.expire(nowMs);
    if (this.queue.length > 0) await this.drain();
  }

  async push(chunk: Uint8Array): Promise<void> {
    if (this.table === undefined) this.makeTable(chunk);
    this.started = true;
    this.parser.push(chunk);
    if (this.queue.length > 0) await this.drain();
  }

  /** Ends the input (also after a read error: what was read still becomes flows). */
  async end(failed = false): Promise<void> {
    const table = this.table ?? this.makeTable(undefined);
    // An input that failed before its first byte has nothing for the parser to judge. An input
    // that ended cleanly without a byte (a 0-byte file, empty standard input) is still judged: the
    // parser reports it as CAPTURE_UNKNOWN_FORMAT rather than letting "no packets" pass as "no traffic".
    if (this.started || !failed) this.parser.end();
    this.outliers?.end();
    if (this.packetIssues > this.maxPacketIssues) {
      this.report(
        issue(
          'PACKET_ISSUES_SUPPRESSED',
          `${this.packetIssues - this.maxPacketIssues} more truncated or malformed packets not listed`,
          { source: this.source },
          'warning',
        ),
      );
    }
    table.flushAll('end-of-input');
    await this.drain();
  }
}

/** How often a live capture expires idle flows by the wall clock. */
const LIVE_EXPIRE_EVERY_MS = 1000;

/** How long a stopped standard input is read on, for its writer's last flush. */
const STDIN_GRACE_MS = 2000;

/** What a stop in the middle of a record looks like to the parser. */
const CUT_BY_STOP = new Set([
  'PCAP_TRUNCATED_RECORD',
  'PCAPNG_TRUNCATED_BLOCK',
  'CAPTURE_TRUNCATED_FILE_HEADER',
]);

function timeText(ts: number): string {
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toISOString();
}

/**
 * Collects flows from capture files (pcap or pcapng; `-` is standard input), one after the other.
 * A file that cannot be read is reported (CAPTURE_UNREADABLE) and the next one is collected.
 */
export async function collectCaptureFiles(
  files: string[],
  sink: FlowSink,
  opts: CollectOptions = {},
): Promise<CollectSummary> {
  const summary = opts.summary ?? emptySummary();
  for (const file of files) {
    if (opts.signal?.aborted) {
      summary.stopped = true;
      summary.cutInputs = [...(summary.cutInputs ?? []), file];
      continue;
    }
    const input =
      file === '-'
        ? streamInput(process.stdin)
        : isRegularFile(file)
          ? fileInput(file)
          : streamInput(createReadStream(file, { highWaterMark: READ_CHUNK }));
    await collectInto(
      input,
      file === '-' ? '<stdin>' : file,
      undefined,
      file === '-' ? undefined : file,
      sink,
      opts,
      summary,
    );
  }
  return summary;
}

/** Bytes to collect from, and how to stop reading them early (a signal, a failed sink). */
interface Input {
  chunks: AsyncIterable<Uint8Array | string>;
  stop(): void;
}

function streamInput(stream: NodeJS.ReadableStream): Input {
  return {
    chunks: stream as AsyncIterable<Uint8Array | string>,
    stop: () => (stream as Readable).destroy(),
  };
}

/** False also when it cannot be looked at: the stream then reports the error as it always did. */
function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * A regular file read into one reused buffer. A read stream allocated a fresh 2 MiB buffer per
 * chunk: page faults and garbage (reading the bench capture alone: 0.42-0.52 against 0.31-0.36 CPU s,
 * 135 against 65 MB peak; in the whole collector other memory sets the peak). Reusing the buffer
 * is safe because the parser delivers records synchronously during push() and copies any bytes it
 * keeps (a record split across chunks), and whoever holds a record longer copies its data.
 */
function fileInput(path: string): Input {
  let stopped = false;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    const fh = await open(path, 'r');
    try {
      const buf = new Uint8Array(READ_CHUNK);
      while (!stopped) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        yield buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }
  return {
    chunks: chunks(),
    stop: () => {
      stopped = true;
    },
  };
}

function failed(file: string, err: unknown, opts: CollectOptions, summary: CollectSummary): void {
  summary.failedInputs++;
  summary.issues++;
  summary.errors++;
  const e = err as NodeJS.ErrnoException;
  opts.onIssue?.(
    issue('CAPTURE_UNREADABLE', `cannot read capture: ${e?.code ?? ''} ${e?.message ?? String(err)}`.trim(), {
      source: file,
    }),
  );
}

async function collectInto(
  input: Input,
  source: string,
  observerSource: string | undefined,
  file: string | undefined,
  sink: FlowSink,
  opts: CollectOptions,
  summary: CollectSummary,
): Promise<void> {
  summary.inputs++;
  const c = new Collection(source, observerSource, file, sink, opts, summary);
  let error: unknown;
  const signal = opts.signal;
  let cut = false;
  let grace: NodeJS.Timeout | undefined;
  const onAbort = () => {
    const stop = () => {
      cut = true;
      input.stop();
    };
    // A pipe's writer (tcpdump -w -, in the same process group) got the same Ctrl-C and is flushing
    // its last packets: read on until it closes the pipe, STDIN_GRACE_MS at most. A file stops now.
    if (file === undefined) grace = setTimeout(stop, STDIN_GRACE_MS);
    else stop();
  };
  if (signal) {
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  // A failure of the sink (a full disk under the store) is not a problem of this input: it stops
  // the command, with its own code, instead of passing for an unreadable capture.
  let sinkError: unknown;
  const ticker = opts.live
    ? setInterval(() => {
        c.expireIdle(Date.now()).catch((err) => {
          sinkError ??= err;
          input.stop();
        });
      }, LIVE_EXPIRE_EVERY_MS)
    : undefined;
  try {
    for await (const chunk of input.chunks) {
      try {
        await c.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
      } catch (err) {
        sinkError = err;
        break;
      }
    }
  } catch (err) {
    error = err;
  } finally {
    clearInterval(ticker);
    clearTimeout(grace);
    signal?.removeEventListener('abort', onAbort);
  }
  if (sinkError !== undefined) {
    input.stop();
    throw sinkError;
  }
  if (cut) {
    // Not a read failure: the user stopped it. What was read is finished like a whole input.
    summary.stopped = true;
    summary.cutInputs = [...(summary.cutInputs ?? []), source];
    c.stopped = true;
    error = undefined;
  }
  if (error !== undefined) failed(source, error, opts, summary);
  await c.end(error !== undefined);
}

/**
 * Collects flows from a capture byte stream (e.g. `tcpdump -w -` output). `source` names the
 * input in issues; `observerSource` goes to observer.source ('live' for a live capture).
 */
export async function collectCaptureStream(
  stream: NodeJS.ReadableStream,
  source: string,
  sink: FlowSink,
  opts: CollectOptions & { observerSource?: string } = {},
): Promise<CollectSummary> {
  const summary = opts.summary ?? emptySummary();
  await collectInto(streamInput(stream), source, opts.observerSource, undefined, sink, opts, summary);
  return summary;
}

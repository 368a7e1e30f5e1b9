import { type ErrorCode, type InputIssue, issue } from '../../lib/errors.js';
import type { CaptureRecord } from './record.js';

/**
 * What the capture reader knows while it reads: the limits, the state machine's states and the state
 * shared by the format detection (parser.ts), pcap (pcap.ts), pcapng (pcapng.ts) and resynchronisation
 * (resync.ts) steps. One ReaderState per input; the steps are plain functions taking it as their first
 * argument, so a record costs no more calls or allocations than a method of one class would.
 */

/**
 * A record's bytes: `len` bytes of `buf` from `at`, always a plain Uint8Array (never a Buffer, whose
 * slice() would not copy). The constructor costs about half of subarray(), which looks up the
 * species constructor first; it runs for every packet.
 */
export function view(buf: Uint8Array, at: number, len: number): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset + at, len);
}

export interface CaptureHandlers {
  onRecord(rec: CaptureRecord): void;
  onIssue(issue: InputIssue): void;
}

export interface CaptureInterface {
  linkType: number;
  /** Timestamp ticks per second (1e6 for microsecond pcap, 1e9 for nanosecond, if_tsresol for pcapng). */
  tsResolution: number;
  /** 0-based pcapng section the interface belongs to (0 for pcap). */
  section: number;
  /** Index of the interface within its section (what tshark 4.0 shows as frame.interface_id). */
  sectionIndex: number;
  /** Snapshot length declared for the interface (0 = unknown / unlimited). */
  snaplen: number;
}

export interface CaptureSummary {
  format: 'pcap' | 'pcapng' | 'unknown';
  /** Packet records delivered to onRecord. */
  records: number;
  /** Bytes of input consumed (the whole input). */
  bytes: number;
  /** Records (or runs of garbage found by resynchronisation, counted as one each) that were dropped. */
  skippedRecords: number;
  skippedBytes: number;
  issues: number;
  /** The input ended inside a header, record or block. */
  truncated: boolean;
  interfaces: CaptureInterface[];
}

/** No real link layer needs more; larger caplens mean a corrupt header (libpcap's MAXIMUM_SNAPLEN). */
export const MAX_CAPLEN = 262144;
/** Largest plausible original length when judging whether a header is real (TSO/GRO super-packets fit). */
export const MAX_ORIGLEN = 0x100000;
/** Largest pcapng block accepted as genuine; a length beyond that is treated as corruption. */
export const MAX_BLOCK_LEN = 16 * 1024 * 1024;
/** Largest block a resynchronisation candidate may claim (to bound the look-ahead we buffer). */
export const MAX_RESYNC_BLOCK_LEN = MAX_CAPLEN + 4096;
/** A resync candidate's timestamp must be this close to the last good record's (seconds). */
export const RESYNC_TS_WINDOW_S = 86400;

export enum State {
  Start = 0,
  PcapHeader = 1,
  PcapRecord = 2,
  PcapResync = 3,
  PcapngBlock = 4,
  PcapngResync = 5,
  /** Nothing more can be read (bad magic or version): the rest of the input is counted as skipped. */
  Dead = 6,
}

export interface PcapngIface {
  global: number;
  linkType: number;
  snaplen: number;
  /** Milliseconds per timestamp tick. */
  msPerTick: number;
  /** if_tsoffset in milliseconds. */
  offsetMs: number;
  /** Ticks per millisecond when that is an integer (exact division keeps more precision). */
  ticksPerMs: number;
}

/** What a step returns when it needs bytes not received yet. */
export const NEED_MORE = -1;
/** Warnings of one code reported individually per input; the rest are summed up at the end. */
export const WARNINGS_PER_CODE = 20;

export class ReaderState {
  readonly source: string;
  readonly handlers: CaptureHandlers;
  state: State = State.Start;
  /** Input offset of the first byte not yet consumed. */
  consumed = 0;

  format: CaptureSummary['format'] = 'unknown';
  records = 0;
  skippedRecords = 0;
  skippedBytes = 0;
  issueCount = 0;
  truncated = false;
  readonly interfaces: CaptureInterface[] = [];
  readonly warningCounts = new Map<ErrorCode, number>();

  // pcap
  le = true;
  nano = false;
  recordHeaderLen = 16;
  snaplen = 0;
  linkType = 0;
  /** Seconds of the last good record (resync plausibility); NaN before the first. */
  lastSec = Number.NaN;
  /** Kept records showed these header quirks: resync candidates may show them too. */
  quirkCaplenGtOriglen = false;
  quirkCaplenGtSnaplen = false;
  resyncStart = 0;

  // pcapng
  section = -1;
  sectionValid = false;
  sectionIfaces: PcapngIface[] = [];
  lastTs = 0;

  constructor(source: string, handlers: CaptureHandlers) {
    this.source = source;
    this.handlers = handlers;
  }

  /**
   * The input ends inside a header, block or record: reports it at the current offset (and record, when
   * it was one) and skips the `avail` bytes left. Returns what the step consumed.
   */
  endsInside(code: ErrorCode, message: string, avail: number, record?: number): number {
    this.report(code, message, this.consumed, record);
    this.truncated = true;
    if (record !== undefined) this.skippedRecords++;
    this.skippedBytes += avail;
    return avail;
  }

  report(
    code: ErrorCode,
    message: string,
    offset: number,
    record?: number,
    severity: InputIssue['severity'] = 'error',
  ): void {
    if (severity === 'warning') {
      // A writer quirk repeats on every record; after a few, count instead of flooding the log.
      const n = (this.warningCounts.get(code) ?? 0) + 1;
      this.warningCounts.set(code, n);
      if (n > WARNINGS_PER_CODE) return;
    }
    this.issueCount++;
    const loc =
      record === undefined ? { source: this.source, offset } : { source: this.source, offset, record };
    this.handlers.onIssue(issue(code, message, loc, severity));
  }

  /** A corrupt pcap record header: the resynchronisation (resync.ts) searches for the next record. */
  beginPcapResync(): number {
    this.resyncStart = this.consumed;
    this.skippedRecords++;
    this.state = State.PcapResync;
    // The bad header's first byte is never a candidate: start the scan one byte on.
    this.skippedBytes += 1;
    return 1;
  }

  /** A corrupt pcapng block: the resynchronisation (resync.ts) searches for the next block. */
  beginPcapngResync(): number {
    this.resyncStart = this.consumed;
    this.state = State.PcapngResync;
    this.skippedRecords++;
    this.skippedBytes += 1;
    return 1;
  }
}

import { issue } from '../../lib/errors.js';
import { CaptureIssueCode as C } from './issues.js';
import { stepPcapHeader, stepPcapRecord } from './pcap.js';
import { PCAPNG_SHB, stepPcapngBlock } from './pcapng.js';
import { stepPcapngResync, stepPcapResync } from './resync.js';
import {
  type CaptureHandlers,
  type CaptureSummary,
  NEED_MORE,
  ReaderState,
  State,
  WARNINGS_PER_CODE,
} from './state.js';

export type { CaptureHandlers, CaptureInterface, CaptureSummary } from './state.js';
export { MAX_BLOCK_LEN, MAX_CAPLEN, WARNINGS_PER_CODE } from './state.js';

/**
 * Push-based reader for pcap (all magic variants) and pcapng. Feed it chunks of any size; records are
 * delivered synchronously from push()/end(). Decisions never depend on where chunks were split: a
 * step that needs bytes not yet received waits for them (or, at end(), treats the input as cut).
 *
 * This file holds the entry point, the chunk buffering and the format detection; the steps of the
 * state machine are pcap.ts, pcapng.ts and resync.ts, over the shared ReaderState (state.ts).
 */
export class CaptureParser {
  private readonly s: ReaderState;
  /** Bytes received but not yet consumed (a record or block split across chunks, or resync look-ahead). */
  private pending: Uint8Array = new Uint8Array(0);
  private pendingLen = 0;
  private total = 0;
  private ended = false;

  constructor(source: string, handlers: CaptureHandlers) {
    this.s = new ReaderState(source, handlers);
  }

  push(chunk: Uint8Array): void {
    if (this.ended || chunk.length === 0) return;
    this.total += chunk.length;
    if (this.pendingLen === 0) {
      const used = this.run(chunk, false);
      if (used < chunk.length) this.keep(chunk, used);
      return;
    }
    this.append(chunk);
    const used = this.run(this.pending.subarray(0, this.pendingLen), false);
    this.drop(used);
  }

  end(): CaptureSummary {
    const s = this.s;
    if (!this.ended) {
      this.ended = true;
      const used = this.run(this.pending.subarray(0, this.pendingLen), true);
      this.drop(used);
      if (this.pendingLen > 0) {
        // run() with final=true consumes everything; this is a guard against an internal slip.
        s.skippedBytes += this.pendingLen;
        s.consumed += this.pendingLen;
        this.pendingLen = 0;
      }
      for (const [code, n] of s.warningCounts) {
        if (n <= WARNINGS_PER_CODE) continue;
        s.issueCount++;
        s.handlers.onIssue(
          issue(
            code,
            `${n - WARNINGS_PER_CODE} more ${code} warnings not reported individually (${n} in total)`,
            { source: s.source, offset: this.total },
            'warning',
          ),
        );
      }
    }
    return {
      format: s.format,
      records: s.records,
      bytes: this.total,
      skippedRecords: s.skippedRecords,
      skippedBytes: s.skippedBytes,
      issues: s.issueCount,
      truncated: s.truncated,
      interfaces: s.interfaces.map((i) => ({ ...i })),
    };
  }

  private keep(chunk: Uint8Array, from: number): void {
    const rest = chunk.length - from;
    if (this.pending.length < rest) this.pending = new Uint8Array(Math.max(rest, 65536));
    this.pending.set(chunk.subarray(from), 0);
    this.pendingLen = rest;
  }

  private append(chunk: Uint8Array): void {
    const need = this.pendingLen + chunk.length;
    if (this.pending.length < need) {
      const grown = new Uint8Array(Math.max(need, this.pending.length * 2));
      grown.set(this.pending.subarray(0, this.pendingLen), 0);
      this.pending = grown;
    }
    this.pending.set(chunk, this.pendingLen);
    this.pendingLen = need;
  }

  private drop(used: number): void {
    if (used === 0) return;
    if (used < this.pendingLen) this.pending.copyWithin(0, used, this.pendingLen);
    this.pendingLen -= used;
  }

  /** Runs the state machine over buf (which starts at input offset s.consumed); returns bytes consumed. */
  private run(buf: Uint8Array, final: boolean): number {
    const s = this.s;
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const base = s.consumed;
    let p = 0;
    for (;;) {
      const n = step(s, buf, dv, p, final);
      if (n === NEED_MORE) break;
      p += n;
      s.consumed = base + p;
      if (p >= buf.length && !(final && s.state === State.Start)) break;
    }
    return p;
  }
}

function step(s: ReaderState, buf: Uint8Array, dv: DataView, p: number, final: boolean): number {
  switch (s.state) {
    case State.Start:
      return stepStart(s, buf, dv, p, final);
    case State.PcapHeader:
      return stepPcapHeader(s, buf, dv, p, final);
    case State.PcapRecord:
      return stepPcapRecord(s, buf, dv, p, final);
    case State.PcapResync:
      return stepPcapResync(s, buf, dv, p, final);
    case State.PcapngBlock:
      return stepPcapngBlock(s, buf, dv, p, final);
    case State.PcapngResync:
      return stepPcapngResync(s, buf, dv, p, final);
    default: {
      const rest = buf.length - p;
      s.skippedBytes += rest;
      return rest > 0 ? rest : NEED_MORE;
    }
  }
}

// ---------------------------------------------------------------- format detection

function stepStart(s: ReaderState, buf: Uint8Array, dv: DataView, p: number, final: boolean): number {
  const avail = buf.length - p;
  if (avail < 4) {
    if (!final) return NEED_MORE;
    s.report(
      C.UNKNOWN_FORMAT,
      avail === 0
        ? 'empty input: expected a pcap or pcapng file header'
        : `only ${avail} bytes: expected a file header`,
      s.consumed,
    );
    s.truncated = avail > 0;
    s.skippedBytes += avail;
    s.state = State.Dead;
    return avail > 0 ? avail : NEED_MORE;
  }
  const magicBE = dv.getUint32(p, false);
  if (magicBE === PCAPNG_SHB) {
    s.format = 'pcapng';
    s.state = State.PcapngBlock;
    return 0;
  }
  const magicLE = dv.getUint32(p, true);
  for (const [magic, le] of [
    [magicBE, false],
    [magicLE, true],
  ] as const) {
    if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d || magic === 0xa1b2cd34) {
      s.format = 'pcap';
      s.le = le;
      s.nano = magic === 0xa1b23c4d;
      s.recordHeaderLen = magic === 0xa1b2cd34 ? 24 : 16;
      s.state = State.PcapHeader;
      return 0;
    }
  }
  s.report(
    C.UNKNOWN_FORMAT,
    `unknown magic number 0x${magicBE.toString(16).padStart(8, '0')}: expected a1b2c3d4, a1b23c4d, a1b2cd34 (either byte order) or pcapng 0a0d0d0a`,
    s.consumed,
  );
  s.state = State.Dead;
  return 0;
}

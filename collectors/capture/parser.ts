import { type ErrorCode, type InputIssue, issue } from '../../lib/errors.js';
import { CaptureIssueCode as C } from './issues.js';
import type { CaptureRecord } from './record.js';

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
const MAX_ORIGLEN = 0x100000;
/** Largest pcapng block accepted as genuine; a length beyond that is treated as corruption. */
export const MAX_BLOCK_LEN = 16 * 1024 * 1024;
/** Largest block a resynchronisation candidate may claim (to bound the look-ahead we buffer). */
const MAX_RESYNC_BLOCK_LEN = MAX_CAPLEN + 4096;
/** A resync candidate's timestamp must be this close to the last good record's (seconds). */
const RESYNC_TS_WINDOW_S = 86400;

const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BOM = 0x1a2b3c4d;
const PCAPNG_IDB = 1;
const PCAPNG_PB = 2;
const PCAPNG_SPB = 3;
const PCAPNG_NRB = 4;
const PCAPNG_ISB = 5;
const PCAPNG_EPB = 6;
const PCAPNG_DSB = 10;
const PCAPNG_CB_COPY = 0x00000bad;
const PCAPNG_CB_NOCOPY = 0x40000bad;

enum State {
  Start = 0,
  PcapHeader = 1,
  PcapRecord = 2,
  PcapResync = 3,
  PcapngBlock = 4,
  PcapngResync = 5,
  /** Nothing more can be read (bad magic or version): the rest of the input is counted as skipped. */
  Dead = 6,
}

interface PcapngIface {
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

const NEED_MORE = -1;
/** Warnings of one code reported individually per input; the rest are summed up at the end. */
export const WARNINGS_PER_CODE = 20;

/**
 * Push-based reader for pcap (all magic variants) and pcapng. Feed it chunks of any size; records are
 * delivered synchronously from push()/end(). Decisions never depend on where chunks were split: a
 * step that needs bytes not yet received waits for them (or, at end(), treats the input as cut).
 */
export class CaptureParser {
  private readonly source: string;
  private readonly handlers: CaptureHandlers;
  private state: State = State.Start;
  /** Bytes received but not yet consumed (a record or block split across chunks, or resync look-ahead). */
  private pending: Uint8Array = new Uint8Array(0);
  private pendingLen = 0;
  /** Input offset of the first byte not yet consumed. */
  private consumed = 0;
  private total = 0;
  private ended = false;

  private format: CaptureSummary['format'] = 'unknown';
  private records = 0;
  private skippedRecords = 0;
  private skippedBytes = 0;
  private issueCount = 0;
  private truncated = false;
  private readonly interfaces: CaptureInterface[] = [];
  private readonly warningCounts = new Map<ErrorCode, number>();

  // pcap
  private le = true;
  private nano = false;
  private recordHeaderLen = 16;
  private snaplen = 0;
  private linkType = 0;
  /** Seconds of the last good record (resync plausibility); NaN before the first. */
  private lastSec = Number.NaN;
  /** Kept records showed these header quirks: resync candidates may show them too. */
  private quirkCaplenGtOriglen = false;
  private quirkCaplenGtSnaplen = false;
  private resyncStart = 0;

  // pcapng
  private section = -1;
  private sectionValid = false;
  private sectionIfaces: PcapngIface[] = [];
  private lastTs = 0;

  constructor(source: string, handlers: CaptureHandlers) {
    this.source = source;
    this.handlers = handlers;
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
    if (!this.ended) {
      this.ended = true;
      const used = this.run(this.pending.subarray(0, this.pendingLen), true);
      this.drop(used);
      if (this.pendingLen > 0) {
        // run() with final=true consumes everything; this is a guard against an internal slip.
        this.skippedBytes += this.pendingLen;
        this.consumed += this.pendingLen;
        this.pendingLen = 0;
      }
      for (const [code, n] of this.warningCounts) {
        if (n <= WARNINGS_PER_CODE) continue;
        this.issueCount++;
        this.handlers.onIssue(
          issue(
            code,
            `${n - WARNINGS_PER_CODE} more ${code} warnings not reported individually (${n} in total)`,
            { source: this.source, offset: this.total },
            'warning',
          ),
        );
      }
    }
    return {
      format: this.format,
      records: this.records,
      bytes: this.total,
      skippedRecords: this.skippedRecords,
      skippedBytes: this.skippedBytes,
      issues: this.issueCount,
      truncated: this.truncated,
      interfaces: this.interfaces.map((i) => ({ ...i })),
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

  /**
   * The input ends inside a header, block or record: reports it at the current offset (and record, when
   * it was one) and skips the `avail` bytes left. Returns what the step consumed.
   */
  private endsInside(code: ErrorCode, message: string, avail: number, record?: number): number {
    this.report(code, message, this.consumed, record);
    this.truncated = true;
    if (record !== undefined) this.skippedRecords++;
    this.skippedBytes += avail;
    return avail;
  }

  private report(
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

  /** Runs the state machine over buf (which starts at input offset this.consumed); returns bytes consumed. */
  private run(buf: Uint8Array, final: boolean): number {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const base = this.consumed;
    let p = 0;
    for (;;) {
      const n = this.step(buf, dv, p, final);
      if (n === NEED_MORE) break;
      p += n;
      this.consumed = base + p;
      if (p >= buf.length && !(final && this.state === State.Start)) break;
    }
    return p;
  }

  private step(buf: Uint8Array, dv: DataView, p: number, final: boolean): number {
    switch (this.state) {
      case State.Start:
        return this.stepStart(buf, dv, p, final);
      case State.PcapHeader:
        return this.stepPcapHeader(buf, dv, p, final);
      case State.PcapRecord:
        return this.stepPcapRecord(buf, dv, p, final);
      case State.PcapResync:
        return this.stepPcapResync(buf, dv, p, final);
      case State.PcapngBlock:
        return this.stepPcapngBlock(buf, dv, p, final);
      case State.PcapngResync:
        return this.stepPcapngResync(buf, dv, p, final);
      default: {
        const rest = buf.length - p;
        this.skippedBytes += rest;
        return rest > 0 ? rest : NEED_MORE;
      }
    }
  }

  // ---------------------------------------------------------------- format detection

  private stepStart(buf: Uint8Array, dv: DataView, p: number, final: boolean): number {
    const avail = buf.length - p;
    if (avail < 4) {
      if (!final) return NEED_MORE;
      this.report(
        C.UNKNOWN_FORMAT,
        avail === 0
          ? 'empty input: expected a pcap or pcapng file header'
          : `only ${avail} bytes: expected a file header`,
        this.consumed,
      );
      this.truncated = avail > 0;
      this.skippedBytes += avail;
      this.state = State.Dead;
      return avail > 0 ? avail : NEED_MORE;
    }
    const magicBE = dv.getUint32(p, false);
    if (magicBE === PCAPNG_SHB) {
      this.format = 'pcapng';
      this.state = State.PcapngBlock;
      return 0;
    }
    const magicLE = dv.getUint32(p, true);
    for (const [magic, le] of [
      [magicBE, false],
      [magicLE, true],
    ] as const) {
      if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d || magic === 0xa1b2cd34) {
        this.format = 'pcap';
        this.le = le;
        this.nano = magic === 0xa1b23c4d;
        this.recordHeaderLen = magic === 0xa1b2cd34 ? 24 : 16;
        this.state = State.PcapHeader;
        return 0;
      }
    }
    this.report(
      C.UNKNOWN_FORMAT,
      `unknown magic number 0x${magicBE.toString(16).padStart(8, '0')}: expected a1b2c3d4, a1b23c4d, a1b2cd34 (either byte order) or pcapng 0a0d0d0a`,
      this.consumed,
    );
    this.state = State.Dead;
    return 0;
  }

  // ---------------------------------------------------------------- pcap

  private stepPcapHeader(buf: Uint8Array, dv: DataView, p: number, final: boolean): number {
    const avail = buf.length - p;
    if (avail < 24) {
      if (!final) return NEED_MORE;
      this.state = State.Dead;
      return this.endsInside(
        C.TRUNCATED_FILE_HEADER,
        `pcap file header cut short: ${avail} of 24 bytes`,
        avail,
      );
    }
    const le = this.le;
    const major = dv.getUint16(p + 4, le);
    const minor = dv.getUint16(p + 6, le);
    if (major !== 2 || minor > 4) {
      this.report(
        C.PCAP_BAD_VERSION,
        `unsupported pcap version ${major}.${minor}: expected 2.4 (major 2, minor <= 4); file rejected`,
        this.consumed + 4,
      );
      this.state = State.Dead;
      this.skippedBytes += 24;
      return 24;
    }
    this.snaplen = dv.getUint32(p + 16, le);
    // Upper bits carry FCS information (LT_FCS_*), not the link type.
    this.linkType = dv.getUint32(p + 20, le) & 0x03ffffff;
    this.interfaces.push({
      linkType: this.linkType,
      tsResolution: this.nano ? 1e9 : 1e6,
      section: 0,
      sectionIndex: 0,
      snaplen: this.snaplen,
    });
    this.state = State.PcapRecord;
    return 24;
  }

  /**
   * Judges a pcap record header. 2 = plausible, 1 = readable but suspicious (caplen > snaplen or > origlen,
   * bad sub-second field), 0 = impossible (caplen beyond the hard limit).
   */
  private pcapHeaderQuality(dv: DataView, p: number): 0 | 1 | 2 {
    const le = this.le;
    const frac = dv.getUint32(p + 4, le);
    const caplen = dv.getUint32(p + 8, le);
    const origlen = dv.getUint32(p + 12, le);
    if (caplen > MAX_CAPLEN) return 0;
    if (frac >= (this.nano ? 1e9 : 1e6)) return 1;
    if (origlen > MAX_ORIGLEN) return 1;
    // Once a kept record showed the writer has this quirk, it is normal for the file.
    if (caplen > origlen && !this.quirkCaplenGtOriglen) return 1;
    if (this.snaplen > 0 && caplen > this.snaplen && !this.quirkCaplenGtSnaplen) return 1;
    return 2;
  }

  /**
   * Could a real writer have produced this header? Used to confirm a suspicious record by the header
   * after it: sizes within limits and a valid sub-second field (random bytes pass with p ~ 1e-8).
   */
  private pcapHeaderReadable(dv: DataView, p: number): boolean {
    const le = this.le;
    return (
      dv.getUint32(p + 8, le) <= MAX_CAPLEN &&
      dv.getUint32(p + 12, le) <= MAX_ORIGLEN &&
      dv.getUint32(p + 4, le) < (this.nano ? 1e9 : 1e6)
    );
  }

  /**
   * A resynchronisation candidate: readable, within a day of refSec, and caplen <= origlen and <= snaplen
   * unless this file already showed (in records we kept) that its writer breaks that rule.
   */
  private pcapResyncCandidate(dv: DataView, p: number, refSec: number): boolean {
    if (!this.pcapHeaderReadable(dv, p)) return false;
    const le = this.le;
    const caplen = dv.getUint32(p + 8, le);
    if (caplen > dv.getUint32(p + 12, le) && !this.quirkCaplenGtOriglen) return false;
    if (this.snaplen > 0 && caplen > this.snaplen && !this.quirkCaplenGtSnaplen) return false;
    return Number.isNaN(refSec) || Math.abs(dv.getUint32(p, le) - refSec) <= RESYNC_TS_WINDOW_S;
  }

  private stepPcapRecord(buf: Uint8Array, dv: DataView, p: number, final: boolean): number {
    const h = this.recordHeaderLen;
    const avail = buf.length - p;
    if (avail === 0) return NEED_MORE;
    if (avail < h) {
      if (!final) return NEED_MORE;
      return this.endsInside(
        C.PCAP_TRUNCATED_RECORD,
        `input ends inside a record header: ${avail} of ${h} bytes`,
        avail,
        this.records,
      );
    }
    const le = this.le;
    const caplen = dv.getUint32(p + 8, le);
    const origlen = dv.getUint32(p + 12, le);
    const quality = this.pcapHeaderQuality(dv, p);
    if (quality === 0) {
      this.report(
        C.PCAP_BAD_CAPLEN,
        `record caplen ${caplen} exceeds the ${MAX_CAPLEN}-byte limit: corrupt record header, searching for the next record`,
        this.consumed,
        this.records,
      );
      return this.beginPcapResync();
    }
    const recEnd = p + h + caplen;
    if (recEnd > buf.length) {
      if (!final) return NEED_MORE;
      return this.endsInside(
        C.PCAP_TRUNCATED_RECORD,
        `input ends inside a record: header announces ${caplen} captured bytes, ${avail - h} present`,
        avail,
        this.records,
      );
    }
    if (quality === 1) {
      // A suspicious header is believed only when a plausible record header (or the end of input)
      // follows the record it describes; otherwise it is garbage and we resynchronise.
      if (recEnd + h > buf.length && !(final && recEnd === buf.length)) {
        if (!final) return NEED_MORE;
      }
      const nextOk =
        recEnd === buf.length ? final : recEnd + h <= buf.length && this.pcapHeaderReadable(dv, recEnd);
      if (!nextOk) {
        this.report(
          C.PCAP_BAD_CAPLEN,
          `implausible record header (caplen ${caplen}, origlen ${origlen}, snaplen ${this.snaplen}) not followed by a valid record: searching for the next record`,
          this.consumed,
          this.records,
        );
        return this.beginPcapResync();
      }
    }
    if (caplen > origlen) {
      this.quirkCaplenGtOriglen = true;
      this.report(
        C.PCAP_CAPLEN_GT_ORIGLEN,
        `caplen ${caplen} > origlen ${origlen}: record kept, wire length taken as ${caplen}`,
        this.consumed,
        this.records,
        'warning',
      );
    }
    if (this.snaplen > 0 && caplen > this.snaplen) {
      this.quirkCaplenGtSnaplen = true;
      this.report(
        C.PCAP_CAPLEN_GT_SNAPLEN,
        `caplen ${caplen} > file snaplen ${this.snaplen}: record kept`,
        this.consumed,
        this.records,
        'warning',
      );
    }
    this.emitPcap(buf, dv, p, caplen, origlen);
    return h + caplen;
  }

  private emitPcap(buf: Uint8Array, dv: DataView, p: number, caplen: number, origlen: number): void {
    const le = this.le;
    const sec = dv.getUint32(p, le);
    const frac = dv.getUint32(p + 4, le);
    this.lastSec = sec;
    const h = this.recordHeaderLen;
    const rec: CaptureRecord = {
      ts: sec * 1000 + (this.nano ? frac / 1e6 : frac / 1e3),
      linkType: this.linkType,
      iface: 0,
      wireLen: Math.max(origlen, caplen),
      data: buf.subarray(p + h, p + h + caplen),
      record: this.records,
      offset: this.consumed,
    };
    this.records++;
    this.handlers.onRecord(rec);
  }

  private beginPcapResync(): number {
    this.resyncStart = this.consumed;
    this.skippedRecords++;
    this.state = State.PcapResync;
    // The bad header's first byte is never a candidate: start the scan one byte on.
    this.skippedBytes += 1;
    return 1;
  }

  private stepPcapResync(buf: Uint8Array, dv: DataView, p: number, final: boolean): number {
    const h = this.recordHeaderLen;
    let c = p;
    for (; c + h <= buf.length; c++) {
      if (!this.pcapResyncCandidate(dv, c, this.lastSec)) continue;
      const caplen = dv.getUint32(c + 8, this.le);
      const recEnd = c + h + caplen;
      if (recEnd + h > buf.length) {
        if (recEnd === buf.length && final) return this.endPcapResync(c, p);
        if (final) continue;
        // Cannot judge this candidate yet: skip what is certainly garbage and wait.
        this.skippedBytes += c - p;
        return c > p ? c - p : NEED_MORE;
      }
      if (this.pcapResyncCandidate(dv, recEnd, dv.getUint32(c, this.le))) return this.endPcapResync(c, p);
    }
    if (!final) {
      const skip = Math.max(0, c - p);
      this.skippedBytes += skip;
      return skip > 0 ? skip : NEED_MORE;
    }
    const rest = buf.length - p;
    this.skippedBytes += rest;
    const skippedTotal = this.consumed + rest - this.resyncStart;
    this.report(
      C.CAPTURE_RESYNC,
      `no plausible record header in the remaining ${skippedTotal} bytes: skipped to the end of input`,
      this.resyncStart,
      this.records,
    );
    this.state = State.PcapRecord;
    return rest > 0 ? rest : NEED_MORE;
  }

  private endPcapResync(c: number, p: number): number {
    const skip = c - p;
    this.skippedBytes += skip;
    const at = this.consumed + skip;
    this.report(
      C.CAPTURE_RESYNC,
      `skipped ${at - this.resyncStart} bytes of corrupt data; next plausible record header at offset ${at}`,
      this.resyncStart,
      this.records,
      'warning',
    );
    this.state = State.PcapRecord;
    return Math.max(skip, 0);
  }

  // ---------------------------------------------------------------- pcapng

  /** Reads the block type and total length at p; le comes from the section (or the SHB's own BOM). */
  private stepPcapngBlock(buf: Uint8Array, dv: DataView, p: number, final: boolean): number {
    const avail = buf.length - p;
    if (avail === 0) return NEED_MORE;
    if (avail < 12) {
      if (!final) return NEED_MORE;
      return this.endsInside(
        C.PCAPNG_TRUNCATED_BLOCK,
        `input ends inside a block header: ${avail} of at least 12 bytes`,
        avail,
      );
    }
    let le = this.le;
    const typeBE = dv.getUint32(p, false);
    if (typeBE === PCAPNG_SHB) {
      const bomLE = dv.getUint32(p + 8, true);
      if (bomLE === PCAPNG_BOM) le = true;
      else if (dv.getUint32(p + 8, false) === PCAPNG_BOM) le = false;
      else {
        this.report(
          C.PCAPNG_BAD_SECTION_HEADER,
          `section header byte-order magic 0x${bomLE.toString(16)} is neither 1a2b3c4d nor 4d3c2b1a: searching for the next block`,
          this.consumed + 8,
        );
        this.sectionValid = false;
        return this.beginPcapngResync();
      }
    }
    const type = typeBE === PCAPNG_SHB ? PCAPNG_SHB : dv.getUint32(p, le);
    const len = dv.getUint32(p + 4, le);
    if (len < 12 || len % 4 !== 0 || len > MAX_BLOCK_LEN || (type === PCAPNG_SHB && len < 28)) {
      this.report(
        C.PCAPNG_BAD_BLOCK_LENGTH,
        `block type 0x${type.toString(16)} has total length ${len}: expected a multiple of 4 between ${type === PCAPNG_SHB ? 28 : 12} and ${MAX_BLOCK_LEN}`,
        this.consumed,
      );
      if (type === PCAPNG_SHB) {
        this.le = le;
        this.sectionValid = false;
      }
      return this.beginPcapngResync();
    }
    if (avail < len) {
      if (!final) return NEED_MORE;
      return this.endsInside(
        C.PCAPNG_TRUNCATED_BLOCK,
        `input ends inside block type 0x${type.toString(16)}: ${avail} of ${len} bytes`,
        avail,
        isPacketBlock(type) ? this.records : undefined,
      );
    }
    const trailer = dv.getUint32(p + len - 4, le);
    if (trailer !== len) {
      this.report(
        C.PCAPNG_BAD_BLOCK_LENGTH,
        `block type 0x${type.toString(16)}: trailing total length ${trailer} differs from leading ${len}: searching for the next block`,
        this.consumed,
        isPacketBlock(type) ? this.records : undefined,
      );
      if (type === PCAPNG_SHB) {
        this.le = le;
        this.sectionValid = false;
        this.sectionIfaces = [];
      }
      return this.beginPcapngResync();
    }
    this.handleBlock(buf, dv, p, type, len, le);
    return len;
  }

  private handleBlock(
    buf: Uint8Array,
    dv: DataView,
    p: number,
    type: number,
    len: number,
    le: boolean,
  ): void {
    if (type === PCAPNG_SHB) {
      this.le = le;
      const major = dv.getUint16(p + 12, le);
      this.section++;
      this.sectionIfaces = [];
      if (major !== 1) {
        this.sectionValid = false;
        this.report(
          C.PCAPNG_BAD_SECTION_HEADER,
          `section header version ${major}.${dv.getUint16(p + 14, le)}: expected major version 1; blocks of this section are skipped`,
          this.consumed + 12,
        );
        return;
      }
      this.sectionValid = true;
      this.checkOptions(dv, p, p + 24, p + len - 4, type, le, null);
      return;
    }
    if (!this.sectionValid) {
      this.report(
        C.PCAPNG_BLOCK_OUTSIDE_SECTION,
        `block type 0x${type.toString(16)} outside a valid section header block: skipped`,
        this.consumed,
        isPacketBlock(type) ? this.records : undefined,
      );
      if (isPacketBlock(type)) this.skippedRecords++;
      this.skippedBytes += len;
      return;
    }
    switch (type) {
      case PCAPNG_IDB:
        this.handleIdb(dv, p, len, le);
        return;
      case PCAPNG_EPB:
        this.handlePacket(buf, dv, p, len, le, 28, dv.getUint32(p + 8, le), p + 12, p + 20, p + 24);
        return;
      case PCAPNG_PB:
        this.handlePacket(buf, dv, p, len, le, 28, dv.getUint16(p + 8, le), p + 12, p + 20, p + 24);
        return;
      case PCAPNG_SPB:
        this.handleSpb(buf, dv, p, len, le);
        return;
      default:
        // NRB, ISB, DSB, custom blocks and unknown types carry no packets: skipped by length.
        return;
    }
  }

  /**
   * Walks options in [start, end); reports an option that overruns. When iface is given, if_tsresol and
   * if_tsoffset are applied to it.
   */
  private checkOptions(
    dv: DataView,
    block: number,
    start: number,
    end: number,
    type: number,
    le: boolean,
    iface: PcapngIface | null,
  ): void {
    let o = start;
    while (o + 4 <= end) {
      const code = dv.getUint16(o, le);
      const olen = dv.getUint16(o + 2, le);
      if (code === 0) return;
      const vEnd = o + 4 + olen;
      if (vEnd > end) {
        this.report(
          C.PCAPNG_BAD_OPTION,
          `option ${code} of block type 0x${type.toString(16)} has length ${olen}, overrunning the block by ${vEnd - end} bytes: remaining options ignored`,
          this.consumed + (o - block),
          undefined,
          'warning',
        );
        return;
      }
      if (iface !== null) {
        if (code === 9 && olen >= 1) {
          const r = dv.getUint8(o + 4);
          const ticksPerSec = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
          iface.msPerTick = 1000 / ticksPerSec;
          iface.ticksPerMs = Number.isInteger(ticksPerSec / 1000) ? ticksPerSec / 1000 : 0;
          this.interfaces[iface.global].tsResolution = ticksPerSec;
        } else if (code === 14 && olen >= 8) {
          iface.offsetMs = Number(dv.getBigInt64(o + 4, le)) * 1000;
        }
      }
      o = vEnd + ((4 - (olen % 4)) % 4);
    }
  }

  private handleIdb(dv: DataView, p: number, len: number, le: boolean): void {
    if (len < 20) {
      this.report(
        C.PCAPNG_BAD_BLOCK_BODY,
        `interface description block of ${len} bytes: expected at least 20`,
        this.consumed,
      );
      return;
    }
    const linkType = dv.getUint16(p + 8, le);
    const snaplen = dv.getUint32(p + 12, le);
    const iface: PcapngIface = {
      global: this.interfaces.length,
      linkType,
      snaplen,
      msPerTick: 1e-3,
      offsetMs: 0,
      ticksPerMs: 1000,
    };
    this.interfaces.push({
      linkType,
      tsResolution: 1e6,
      section: this.section,
      sectionIndex: this.sectionIfaces.length,
      snaplen,
    });
    this.sectionIfaces.push(iface);
    this.checkOptions(dv, p, p + 16, p + len - 4, PCAPNG_IDB, le, iface);
  }

  private tsOf(iface: PcapngIface, hi: number, lo: number): number {
    const ticks = hi * 4294967296 + lo;
    return (iface.ticksPerMs > 0 ? ticks / iface.ticksPerMs : ticks * iface.msPerTick) + iface.offsetMs;
  }

  private handlePacket(
    buf: Uint8Array,
    dv: DataView,
    p: number,
    len: number,
    le: boolean,
    dataOff: number,
    ifid: number,
    tsAt: number,
    caplenAt: number,
    origlenAt: number,
  ): void {
    const type = dv.getUint32(p, le);
    if (len < dataOff + 4) {
      this.skipPacketBlock(
        C.PCAPNG_BAD_BLOCK_BODY,
        `packet block of ${len} bytes: expected at least ${dataOff + 4}`,
        len,
      );
      return;
    }
    const iface = this.sectionIfaces[ifid];
    if (iface === undefined) {
      this.skipPacketBlock(
        C.PCAPNG_UNKNOWN_INTERFACE,
        `packet block names interface ${ifid}, but the section declared ${this.sectionIfaces.length}`,
        len,
      );
      return;
    }
    const caplen = dv.getUint32(caplenAt, le);
    const origlen = dv.getUint32(origlenAt, le);
    const room = len - dataOff - 4;
    if (caplen > room || caplen > MAX_CAPLEN) {
      this.skipPacketBlock(
        C.PCAPNG_BAD_PACKET_LENGTH,
        `captured length ${caplen} does not fit: block has room for ${room} bytes (limit ${MAX_CAPLEN})`,
        len,
      );
      return;
    }
    if (caplen > origlen) {
      this.report(
        C.PCAP_CAPLEN_GT_ORIGLEN,
        `caplen ${caplen} > origlen ${origlen}: record kept, wire length taken as ${caplen}`,
        this.consumed,
        this.records,
        'warning',
      );
    }
    const padded = dataOff + caplen + ((4 - (caplen % 4)) % 4);
    this.checkOptions(dv, p, p + padded, p + len - 4, type, le, null);
    const ts = this.tsOf(iface, dv.getUint32(tsAt, le), dv.getUint32(tsAt + 4, le));
    this.lastTs = ts;
    this.emitPcapng(buf, p + dataOff, caplen, Math.max(origlen, caplen), iface, ts, false);
  }

  private skipPacketBlock(code: ErrorCode, message: string, len: number): void {
    this.report(code, `${message}: block skipped`, this.consumed, this.records);
    this.skippedRecords++;
    this.skippedBytes += len;
  }

  private handleSpb(buf: Uint8Array, dv: DataView, p: number, len: number, le: boolean): void {
    if (len < 16) {
      this.skipPacketBlock(
        C.PCAPNG_BAD_BLOCK_BODY,
        `simple packet block of ${len} bytes: expected at least 16`,
        len,
      );
      return;
    }
    const iface = this.sectionIfaces[0];
    if (iface === undefined) {
      this.skipPacketBlock(
        C.PCAPNG_UNKNOWN_INTERFACE,
        'simple packet block in a section without interface 0',
        len,
      );
      return;
    }
    const origlen = dv.getUint32(p + 8, le);
    let caplen = Math.min(origlen, len - 16);
    if (iface.snaplen > 0 && caplen > iface.snaplen) caplen = iface.snaplen;
    if (caplen > MAX_CAPLEN) caplen = MAX_CAPLEN;
    // SPBs carry no timestamp: the record gets the previous packet's time and is flagged.
    this.emitPcapng(buf, p + 12, caplen, origlen, iface, this.lastTs, true);
  }

  private emitPcapng(
    buf: Uint8Array,
    at: number,
    caplen: number,
    wireLen: number,
    iface: PcapngIface,
    ts: number,
    tsMissing: boolean,
  ): void {
    const rec: CaptureRecord = {
      ts,
      linkType: iface.linkType,
      iface: iface.global,
      wireLen,
      data: buf.subarray(at, at + caplen),
      record: this.records,
      offset: this.consumed,
    };
    if (tsMissing) rec.tsMissing = true;
    this.records++;
    this.handlers.onRecord(rec);
  }

  private beginPcapngResync(): number {
    this.resyncStart = this.consumed;
    this.state = State.PcapngResync;
    this.skippedRecords++;
    this.skippedBytes += 1;
    return 1;
  }

  /** Plausible block at c: 2 = yes, 1 = cannot tell yet (needs more bytes), 0 = no. */
  private pcapngCandidate(buf: Uint8Array, dv: DataView, c: number): 0 | 1 | 2 {
    if (c + 12 > buf.length) return 1;
    let le = this.le;
    const typeBE = dv.getUint32(c, false);
    let type: number;
    if (typeBE === PCAPNG_SHB) {
      if (dv.getUint32(c + 8, true) === PCAPNG_BOM) le = true;
      else if (dv.getUint32(c + 8, false) === PCAPNG_BOM) le = false;
      else return 0;
      type = PCAPNG_SHB;
    } else {
      type = dv.getUint32(c, le);
      if (!isKnownBlockType(type)) return 0;
      if (!this.sectionValid) return 0;
    }
    const len = dv.getUint32(c + 4, le);
    if (len < 12 || len % 4 !== 0 || len > MAX_RESYNC_BLOCK_LEN) return 0;
    if (c + len > buf.length) return 1;
    return dv.getUint32(c + len - 4, le) === len ? 2 : 0;
  }

  private stepPcapngResync(buf: Uint8Array, dv: DataView, p: number, final: boolean): number {
    let c = p;
    for (; c < buf.length; c++) {
      const q = this.pcapngCandidate(buf, dv, c);
      if (q === 0) continue;
      if (q === 2) {
        const skip = c - p;
        this.skippedBytes += skip;
        const at = this.consumed + skip;
        this.report(
          C.CAPTURE_RESYNC,
          `skipped ${at - this.resyncStart} bytes of corrupt data; next plausible block at offset ${at}`,
          this.resyncStart,
          undefined,
          'warning',
        );
        this.state = State.PcapngBlock;
        return skip;
      }
      if (final) continue;
      const skip = c - p;
      this.skippedBytes += skip;
      return skip > 0 ? skip : NEED_MORE;
    }
    const rest = buf.length - p;
    this.skippedBytes += rest;
    if (final) {
      this.report(
        C.CAPTURE_RESYNC,
        `no plausible block in the remaining ${this.consumed + rest - this.resyncStart} bytes: skipped to the end of input`,
        this.resyncStart,
      );
      this.state = State.PcapngBlock;
    }
    return rest > 0 ? rest : NEED_MORE;
  }
}

function isPacketBlock(type: number): boolean {
  return type === PCAPNG_EPB || type === PCAPNG_SPB || type === PCAPNG_PB;
}

function isKnownBlockType(type: number): boolean {
  return (
    (type >= PCAPNG_IDB && type <= PCAPNG_EPB) ||
    type === PCAPNG_DSB ||
    type === 7 ||
    type === 8 ||
    type === PCAPNG_CB_COPY ||
    type === PCAPNG_CB_NOCOPY ||
    type === PCAPNG_NRB ||
    type === PCAPNG_ISB
  );
}

import type { ErrorCode } from '../../lib/errors.js';
import { CaptureIssueCode as C } from './issues.js';
import type { CaptureRecord } from './record.js';
import { MAX_BLOCK_LEN, MAX_CAPLEN, NEED_MORE, type PcapngIface, type ReaderState, view } from './state.js';

/**
 * pcapng: sections (SHB), their interfaces (IDB) and packet blocks (EPB, PB, SPB); other blocks are
 * skipped by length. A block whose length fields disagree sends the reader to resync.ts.
 */

export const PCAPNG_SHB = 0x0a0d0d0a;
export const PCAPNG_BOM = 0x1a2b3c4d;
const PCAPNG_IDB = 1;
const PCAPNG_PB = 2;
const PCAPNG_SPB = 3;
const PCAPNG_NRB = 4;
const PCAPNG_ISB = 5;
const PCAPNG_EPB = 6;
const PCAPNG_DSB = 10;
const PCAPNG_CB_COPY = 0x00000bad;
const PCAPNG_CB_NOCOPY = 0x40000bad;

/** Reads the block type and total length at p; le comes from the section (or the SHB's own BOM). */
export function stepPcapngBlock(
  s: ReaderState,
  buf: Uint8Array,
  dv: DataView,
  p: number,
  final: boolean,
): number {
  const avail = buf.length - p;
  if (avail === 0) return NEED_MORE;
  if (avail < 12) {
    if (!final) return NEED_MORE;
    return s.endsInside(
      C.PCAPNG_TRUNCATED_BLOCK,
      `input ends inside a block header: ${avail} of at least 12 bytes`,
      avail,
    );
  }
  let le = s.le;
  const typeBE = dv.getUint32(p, false);
  if (typeBE === PCAPNG_SHB) {
    const bomLE = dv.getUint32(p + 8, true);
    if (bomLE === PCAPNG_BOM) le = true;
    else if (dv.getUint32(p + 8, false) === PCAPNG_BOM) le = false;
    else {
      s.report(
        C.PCAPNG_BAD_SECTION_HEADER,
        `section header byte-order magic 0x${bomLE.toString(16)} is neither 1a2b3c4d nor 4d3c2b1a: searching for the next block`,
        s.consumed + 8,
      );
      s.sectionValid = false;
      return s.beginPcapngResync();
    }
  }
  const type = typeBE === PCAPNG_SHB ? PCAPNG_SHB : dv.getUint32(p, le);
  const len = dv.getUint32(p + 4, le);
  if (len < 12 || len % 4 !== 0 || len > MAX_BLOCK_LEN || (type === PCAPNG_SHB && len < 28)) {
    s.report(
      C.PCAPNG_BAD_BLOCK_LENGTH,
      `block type 0x${type.toString(16)} has total length ${len}: expected a multiple of 4 between ${type === PCAPNG_SHB ? 28 : 12} and ${MAX_BLOCK_LEN}`,
      s.consumed,
    );
    if (type === PCAPNG_SHB) {
      s.le = le;
      s.sectionValid = false;
    }
    return s.beginPcapngResync();
  }
  if (avail < len) {
    if (!final) return NEED_MORE;
    return s.endsInside(
      C.PCAPNG_TRUNCATED_BLOCK,
      `input ends inside block type 0x${type.toString(16)}: ${avail} of ${len} bytes`,
      avail,
      isPacketBlock(type) ? s.records : undefined,
    );
  }
  const trailer = dv.getUint32(p + len - 4, le);
  if (trailer !== len) {
    s.report(
      C.PCAPNG_BAD_BLOCK_LENGTH,
      `block type 0x${type.toString(16)}: trailing total length ${trailer} differs from leading ${len}: searching for the next block`,
      s.consumed,
      isPacketBlock(type) ? s.records : undefined,
    );
    if (type === PCAPNG_SHB) {
      s.le = le;
      s.sectionValid = false;
      s.sectionIfaces = [];
    }
    return s.beginPcapngResync();
  }
  handleBlock(s, buf, dv, p, type, len, le);
  return len;
}

function handleBlock(
  s: ReaderState,
  buf: Uint8Array,
  dv: DataView,
  p: number,
  type: number,
  len: number,
  le: boolean,
): void {
  if (type === PCAPNG_SHB) {
    s.le = le;
    const major = dv.getUint16(p + 12, le);
    s.section++;
    s.sectionIfaces = [];
    if (major !== 1) {
      s.sectionValid = false;
      s.report(
        C.PCAPNG_BAD_SECTION_HEADER,
        `section header version ${major}.${dv.getUint16(p + 14, le)}: expected major version 1; blocks of this section are skipped`,
        s.consumed + 12,
      );
      return;
    }
    s.sectionValid = true;
    checkOptions(s, dv, p, p + 24, p + len - 4, type, le, null);
    return;
  }
  if (!s.sectionValid) {
    s.report(
      C.PCAPNG_BLOCK_OUTSIDE_SECTION,
      `block type 0x${type.toString(16)} outside a valid section header block: skipped`,
      s.consumed,
      isPacketBlock(type) ? s.records : undefined,
    );
    if (isPacketBlock(type)) s.skippedRecords++;
    s.skippedBytes += len;
    return;
  }
  switch (type) {
    case PCAPNG_IDB:
      handleIdb(s, dv, p, len, le);
      return;
    case PCAPNG_EPB:
      handlePacket(s, buf, dv, p, len, le, 28, dv.getUint32(p + 8, le), p + 12, p + 20, p + 24);
      return;
    case PCAPNG_PB:
      handlePacket(s, buf, dv, p, len, le, 28, dv.getUint16(p + 8, le), p + 12, p + 20, p + 24);
      return;
    case PCAPNG_SPB:
      handleSpb(s, buf, dv, p, len, le);
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
function checkOptions(
  s: ReaderState,
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
      s.report(
        C.PCAPNG_BAD_OPTION,
        `option ${code} of block type 0x${type.toString(16)} has length ${olen}, overrunning the block by ${vEnd - end} bytes: remaining options ignored`,
        s.consumed + (o - block),
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
        s.interfaces[iface.global].tsResolution = ticksPerSec;
      } else if (code === 14 && olen >= 8) {
        iface.offsetMs = Number(dv.getBigInt64(o + 4, le)) * 1000;
      }
    }
    o = vEnd + ((4 - (olen % 4)) % 4);
  }
}

function handleIdb(s: ReaderState, dv: DataView, p: number, len: number, le: boolean): void {
  if (len < 20) {
    s.report(
      C.PCAPNG_BAD_BLOCK_BODY,
      `interface description block of ${len} bytes: expected at least 20`,
      s.consumed,
    );
    return;
  }
  const linkType = dv.getUint16(p + 8, le);
  const snaplen = dv.getUint32(p + 12, le);
  const iface: PcapngIface = {
    global: s.interfaces.length,
    linkType,
    snaplen,
    msPerTick: 1e-3,
    offsetMs: 0,
    ticksPerMs: 1000,
  };
  s.interfaces.push({
    linkType,
    tsResolution: 1e6,
    section: s.section,
    sectionIndex: s.sectionIfaces.length,
    snaplen,
  });
  s.sectionIfaces.push(iface);
  checkOptions(s, dv, p, p + 16, p + len - 4, PCAPNG_IDB, le, iface);
}

function tsOf(iface: PcapngIface, hi: number, lo: number): number {
  const ticks = hi * 4294967296 + lo;
  return (iface.ticksPerMs > 0 ? ticks / iface.ticksPerMs : ticks * iface.msPerTick) + iface.offsetMs;
}

function handlePacket(
  s: ReaderState,
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
    skipPacketBlock(
      s,
      C.PCAPNG_BAD_BLOCK_BODY,
      `packet block of ${len} bytes: expected at least ${dataOff + 4}`,
      len,
    );
    return;
  }
  const iface = s.sectionIfaces[ifid];
  if (iface === undefined) {
    skipPacketBlock(
      s,
      C.PCAPNG_UNKNOWN_INTERFACE,
      `packet block names interface ${ifid}, but the section declared ${s.sectionIfaces.length}`,
      len,
    );
    return;
  }
  const caplen = dv.getUint32(caplenAt, le);
  const origlen = dv.getUint32(origlenAt, le);
  const room = len - dataOff - 4;
  if (caplen > room || caplen > MAX_CAPLEN) {
    skipPacketBlock(
      s,
      C.PCAPNG_BAD_PACKET_LENGTH,
      `captured length ${caplen} does not fit: block has room for ${room} bytes (limit ${MAX_CAPLEN})`,
      len,
    );
    return;
  }
  if (caplen > origlen) {
    s.report(
      C.PCAP_CAPLEN_GT_ORIGLEN,
      `caplen ${caplen} > origlen ${origlen}: record kept, wire length taken as ${caplen}`,
      s.consumed,
      s.records,
      'warning',
    );
  }
  const padded = dataOff + caplen + ((4 - (caplen % 4)) % 4);
  checkOptions(s, dv, p, p + padded, p + len - 4, type, le, null);
  const ts = tsOf(iface, dv.getUint32(tsAt, le), dv.getUint32(tsAt + 4, le));
  s.lastTs = ts;
  emitPcapng(s, buf, p + dataOff, caplen, Math.max(origlen, caplen), iface, ts, false);
}

function skipPacketBlock(s: ReaderState, code: ErrorCode, message: string, len: number): void {
  s.report(code, `${message}: block skipped`, s.consumed, s.records);
  s.skippedRecords++;
  s.skippedBytes += len;
}

function handleSpb(s: ReaderState, buf: Uint8Array, dv: DataView, p: number, len: number, le: boolean): void {
  if (len < 16) {
    skipPacketBlock(
      s,
      C.PCAPNG_BAD_BLOCK_BODY,
      `simple packet block of ${len} bytes: expected at least 16`,
      len,
    );
    return;
  }
  const iface = s.sectionIfaces[0];
  if (iface === undefined) {
    skipPacketBlock(
      s,
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
  emitPcapng(s, buf, p + 12, caplen, origlen, iface, s.lastTs, true);
}

function emitPcapng(
  s: ReaderState,
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
    data: view(buf, at, caplen),
    record: s.records,
    offset: s.consumed,
  };
  if (tsMissing) rec.tsMissing = true;
  s.records++;
  s.handlers.onRecord(rec);
}

function isPacketBlock(type: number): boolean {
  return type === PCAPNG_EPB || type === PCAPNG_SPB || type === PCAPNG_PB;
}

export function isKnownBlockType(type: number): boolean {
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

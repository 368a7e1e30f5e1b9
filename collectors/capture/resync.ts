import { CaptureIssueCode as C } from './issues.js';
import { pcapHeaderReadable } from './pcap.js';
import { isKnownBlockType, PCAPNG_BOM, PCAPNG_SHB } from './pcapng.js';
import { MAX_RESYNC_BLOCK_LEN, NEED_MORE, RESYNC_TS_WINDOW_S, type ReaderState, State } from './state.js';

/**
 * Resynchronisation after corruption: scans byte by byte for the next plausible pcap record header or
 * pcapng block (ReaderState.beginPcapResync/beginPcapngResync enter it), then hands back to pcap.ts or
 * pcapng.ts. A run of garbage is reported once, with its length.
 */

// ---------------------------------------------------------------- pcap

/**
 * A resynchronisation candidate: readable, within a day of refSec, and caplen <= origlen and <= snaplen
 * unless this file already showed (in records we kept) that its writer breaks that rule.
 */
function pcapResyncCandidate(s: ReaderState, dv: DataView, p: number, refSec: number): boolean {
  if (!pcapHeaderReadable(s, dv, p)) return false;
  const le = s.le;
  const caplen = dv.getUint32(p + 8, le);
  if (caplen > dv.getUint32(p + 12, le) && !s.quirkCaplenGtOriglen) return false;
  if (s.snaplen > 0 && caplen > s.snaplen && !s.quirkCaplenGtSnaplen) return false;
  return Number.isNaN(refSec) || Math.abs(dv.getUint32(p, le) - refSec) <= RESYNC_TS_WINDOW_S;
}

export function stepPcapResync(
  s: ReaderState,
  buf: Uint8Array,
  dv: DataView,
  p: number,
  final: boolean,
): number {
  const h = s.recordHeaderLen;
  let c = p;
  for (; c + h <= buf.length; c++) {
    if (!pcapResyncCandidate(s, dv, c, s.lastSec)) continue;
    const caplen = dv.getUint32(c + 8, s.le);
    const recEnd = c + h + caplen;
    if (recEnd + h > buf.length) {
      if (recEnd === buf.length && final) return endPcapResync(s, c, p);
      if (final) continue;
      // Cannot judge this candidate yet: skip what is certainly garbage and wait.
      s.skippedBytes += c - p;
      return c > p ? c - p : NEED_MORE;
    }
    if (pcapResyncCandidate(s, dv, recEnd, dv.getUint32(c, s.le))) return endPcapResync(s, c, p);
  }
  if (!final) {
    const skip = Math.max(0, c - p);
    s.skippedBytes += skip;
    return skip > 0 ? skip : NEED_MORE;
  }
  const rest = buf.length - p;
  s.skippedBytes += rest;
  const skippedTotal = s.consumed + rest - s.resyncStart;
  s.report(
    C.CAPTURE_RESYNC,
    `no plausible record header in the remaining ${skippedTotal} bytes: skipped to the end of input`,
    s.resyncStart,
    s.records,
  );
  s.state = State.PcapRecord;
  return rest > 0 ? rest : NEED_MORE;
}

function endPcapResync(s: ReaderState, c: number, p: number): number {
  const skip = c - p;
  s.skippedBytes += skip;
  const at = s.consumed + skip;
  s.report(
    C.CAPTURE_RESYNC,
    `skipped ${at - s.resyncStart} bytes of corrupt data; next plausible record header at offset ${at}`,
    s.resyncStart,
    s.records,
    'warning',
  );
  s.state = State.PcapRecord;
  return Math.max(skip, 0);
}

// ---------------------------------------------------------------- pcapng

/** Plausible block at c: 2 = yes, 1 = cannot tell yet (needs more bytes), 0 = no. */
function pcapngCandidate(s: ReaderState, buf: Uint8Array, dv: DataView, c: number): 0 | 1 | 2 {
  if (c + 12 > buf.length) return 1;
  let le = s.le;
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
    if (!s.sectionValid) return 0;
  }
  const len = dv.getUint32(c + 4, le);
  if (len < 12 || len % 4 !== 0 || len > MAX_RESYNC_BLOCK_LEN) return 0;
  if (c + len > buf.length) return 1;
  return dv.getUint32(c + len - 4, le) === len ? 2 : 0;
}

export function stepPcapngResync(
  s: ReaderState,
  buf: Uint8Array,
  dv: DataView,
  p: number,
  final: boolean,
): number {
  let c = p;
  for (; c < buf.length; c++) {
    const q = pcapngCandidate(s, buf, dv, c);
    if (q === 0) continue;
    if (q === 2) {
      const skip = c - p;
      s.skippedBytes += skip;
      const at = s.consumed + skip;
      s.report(
        C.CAPTURE_RESYNC,
        `skipped ${at - s.resyncStart} bytes of corrupt data; next plausible block at offset ${at}`,
        s.resyncStart,
        undefined,
        'warning',
      );
      s.state = State.PcapngBlock;
      return skip;
    }
    if (final) continue;
    const skip = c - p;
    s.skippedBytes += skip;
    return skip > 0 ? skip : NEED_MORE;
  }
  const rest = buf.length - p;
  s.skippedBytes += rest;
  if (final) {
    s.report(
      C.CAPTURE_RESYNC,
      `no plausible block in the remaining ${s.consumed + rest - s.resyncStart} bytes: skipped to the end of input`,
      s.resyncStart,
    );
    s.state = State.PcapngBlock;
  }
  return rest > 0 ? rest : NEED_MORE;
}

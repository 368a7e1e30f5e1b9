import { CaptureIssueCode as C } from './issues.js';
import type { CaptureRecord } from './record.js';
import { MAX_CAPLEN, MAX_ORIGLEN, NEED_MORE, type ReaderState, State, view } from './state.js';

/**
 * pcap (all magic variants): the file header, then records. A record header that looks wrong is
 * believed only when a plausible header follows its record; otherwise resync.ts searches for the next.
 */

export function stepPcapHeader(
  s: ReaderState,
  buf: Uint8Array,
  dv: DataView,
  p: number,
  final: boolean,
): number {
  const avail = buf.length - p;
  if (avail < 24) {
    if (!final) return NEED_MORE;
    s.state = State.Dead;
    return s.endsInside(C.TRUNCATED_FILE_HEADER, `pcap file header cut short: ${avail} of 24 bytes`, avail);
  }
  const le = s.le;
  const major = dv.getUint16(p + 4, le);
  const minor = dv.getUint16(p + 6, le);
  if (major !== 2 || minor > 4) {
    s.report(
      C.PCAP_BAD_VERSION,
      `unsupported pcap version ${major}.${minor}: expected 2.4 (major 2, minor <= 4); file rejected`,
      s.consumed + 4,
    );
    s.state = State.Dead;
    s.skippedBytes += 24;
    return 24;
  }
  s.snaplen = dv.getUint32(p + 16, le);
  // Upper bits carry FCS information (LT_FCS_*), not the link type.
  s.linkType = dv.getUint32(p + 20, le) & 0x03ffffff;
  s.interfaces.push({
    linkType: s.linkType,
    tsResolution: s.nano ? 1e9 : 1e6,
    section: 0,
    sectionIndex: 0,
    snaplen: s.snaplen,
  });
  s.state = State.PcapRecord;
  return 24;
}

/**
 * Judges a pcap record header. 2 = plausible, 1 = readable but suspicious (caplen > snaplen or > origlen,
 * bad sub-second field), 0 = impossible (caplen beyond the hard limit).
 */
function pcapHeaderQuality(s: ReaderState, dv: DataView, p: number): 0 | 1 | 2 {
  const le = s.le;
  const frac = dv.getUint32(p + 4, le);
  const caplen = dv.getUint32(p + 8, le);
  const origlen = dv.getUint32(p + 12, le);
  if (caplen > MAX_CAPLEN) return 0;
  if (frac >= (s.nano ? 1e9 : 1e6)) return 1;
  if (origlen > MAX_ORIGLEN) return 1;
  // Once a kept record showed the writer has this quirk, it is normal for the file.
  if (caplen > origlen && !s.quirkCaplenGtOriglen) return 1;
  if (s.snaplen > 0 && caplen > s.snaplen && !s.quirkCaplenGtSnaplen) return 1;
  return 2;
}

/**
 * Could a real writer have produced this header? Used to confirm a suspicious record by the header
 * after it: sizes within limits and a valid sub-second field (random bytes pass with p ~ 1e-8).
 */
export function pcapHeaderReadable(s: ReaderState, dv: DataView, p: number): boolean {
  const le = s.le;
  return (
    dv.getUint32(p + 8, le) <= MAX_CAPLEN &&
    dv.getUint32(p + 12, le) <= MAX_ORIGLEN &&
    dv.getUint32(p + 4, le) < (s.nano ? 1e9 : 1e6)
  );
}

export function stepPcapRecord(
  s: ReaderState,
  buf: Uint8Array,
  dv: DataView,
  p: number,
  final: boolean,
): number {
  const h = s.recordHeaderLen;
  const avail = buf.length - p;
  if (avail === 0) return NEED_MORE;
  if (avail < h) {
    if (!final) return NEED_MORE;
    return s.endsInside(
      C.PCAP_TRUNCATED_RECORD,
      `input ends inside a record header: ${avail} of ${h} bytes`,
      avail,
      s.records,
    );
  }
  const le = s.le;
  const caplen = dv.getUint32(p + 8, le);
  const origlen = dv.getUint32(p + 12, le);
  const quality = pcapHeaderQuality(s, dv, p);
  if (quality === 0) {
    s.report(
      C.PCAP_BAD_CAPLEN,
      `record caplen ${caplen} exceeds the ${MAX_CAPLEN}-byte limit: corrupt record header, searching for the next record`,
      s.consumed,
      s.records,
    );
    return s.beginPcapResync();
  }
  const recEnd = p + h + caplen;
  if (recEnd > buf.length) {
    if (!final) return NEED_MORE;
    return s.endsInside(
      C.PCAP_TRUNCATED_RECORD,
      `input ends inside a record: header announces ${caplen} captured bytes, ${avail - h} present`,
      avail,
      s.records,
    );
  }
  if (quality === 1) {
    // A suspicious header is believed only when a plausible record header (or the end of input)
    // follows the record it describes; otherwise it is garbage and we resynchronise.
    if (recEnd + h > buf.length && !(final && recEnd === buf.length)) {
      if (!final) return NEED_MORE;
    }
    const nextOk =
      recEnd === buf.length ? final : recEnd + h <= buf.length && pcapHeaderReadable(s, dv, recEnd);
    if (!nextOk) {
      s.report(
        C.PCAP_BAD_CAPLEN,
        `implausible record header (caplen ${caplen}, origlen ${origlen}, snaplen ${s.snaplen}) not followed by a valid record: searching for the next record`,
        s.consumed,
        s.records,
      );
      return s.beginPcapResync();
    }
  }
  if (caplen > origlen) {
    s.quirkCaplenGtOriglen = true;
    s.report(
      C.PCAP_CAPLEN_GT_ORIGLEN,
      `caplen ${caplen} > origlen ${origlen}: record kept, wire length taken as ${caplen}`,
      s.consumed,
      s.records,
      'warning',
    );
  }
  if (s.snaplen > 0 && caplen > s.snaplen) {
    s.quirkCaplenGtSnaplen = true;
    s.report(
      C.PCAP_CAPLEN_GT_SNAPLEN,
      `caplen ${caplen} > file snaplen ${s.snaplen}: record kept`,
      s.consumed,
      s.records,
      'warning',
    );
  }
  emitPcap(s, buf, dv, p, caplen, origlen);
  return h + caplen;
}

function emitPcap(
  s: ReaderState,
  buf: Uint8Array,
  dv: DataView,
  p: number,
  caplen: number,
  origlen: number,
): void {
  const le = s.le;
  const sec = dv.getUint32(p, le);
  const frac = dv.getUint32(p + 4, le);
  s.lastSec = sec;
  const h = s.recordHeaderLen;
  const rec: CaptureRecord = {
    ts: sec * 1000 + (s.nano ? frac / 1e6 : frac / 1e3),
    linkType: s.linkType,
    iface: 0,
    wireLen: Math.max(origlen, caplen),
    data: view(buf, p + h, caplen),
    record: s.records,
    offset: s.consumed,
  };
  s.records++;
  s.handlers.onRecord(rec);
}

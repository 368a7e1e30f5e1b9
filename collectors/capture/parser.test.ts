import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { InputIssue } from '../../lib/errors.js';
import * as c from './craft.js';
import {
  CaptureParser,
  type CaptureSummary,
  PcapWriter,
  readCaptureFile,
  readCaptureStream,
} from './index.js';
import type { CaptureRecord } from './record.js';

interface Got {
  records: (Omit<CaptureRecord, 'data'> & { data: number[] })[];
  issues: InputIssue[];
  summary: CaptureSummary;
}

/** Parses `bytes` pushed in the given chunk sizes (whole buffer when none). */
function parse(bytes: Uint8Array, chunks: number[] = []): Got {
  const records: Got['records'] = [];
  const issues: InputIssue[] = [];
  const parser = new CaptureParser('test.cap', {
    onRecord(r) {
      records.push({ ...r, data: [...r.data] });
    },
    onIssue(i) {
      issues.push(i);
    },
  });
  let o = 0;
  for (const n of chunks) {
    parser.push(bytes.subarray(o, o + n));
    o += n;
  }
  if (o < bytes.length) parser.push(bytes.subarray(o));
  return { records, issues, summary: parser.end() };
}

const pkt = (n: number, fill = n) => new Uint8Array(n).fill(fill & 0xff);

describe('pcap', () => {
  it.each([
    ['little-endian microsecond', { le: true }],
    ['big-endian microsecond', { le: false }],
    ['little-endian nanosecond', { le: true, nano: true }],
    ['big-endian nanosecond', { le: false, nano: true }],
    ['modified (Kuznetzov)', { le: true, modified: true }],
    ['modified big-endian', { le: false, modified: true }],
  ] as const)('%s', (_, opts) => {
    const frac = 'nano' in opts && opts.nano ? 123456789 : 123456;
    const file = c.pcapFile({ ...opts, linkType: 113, snaplen: 96 }, [
      { sec: 1700000000, frac, data: pkt(60), origlen: 1514 },
      { sec: 1700000001, frac: 0, data: pkt(42) },
    ]);
    const { records, issues, summary } = parse(file);
    expect(issues).toEqual([]);
    expect(summary).toMatchObject({
      format: 'pcap',
      records: 2,
      bytes: file.length,
      skippedRecords: 0,
      skippedBytes: 0,
      truncated: false,
    });
    expect(summary.interfaces).toEqual([
      {
        linkType: 113,
        tsResolution: 'nano' in opts && opts.nano ? 1e9 : 1e6,
        section: 0,
        sectionIndex: 0,
        snaplen: 96,
      },
    ]);
    expect(records[0].ts).toBeCloseTo(1700000000123.456 + ('nano' in opts && opts.nano ? 0.000789 : 0), 3);
    expect(records[0]).toMatchObject({ linkType: 113, iface: 0, wireLen: 1514, record: 0, offset: 24 });
    expect(records[0].data).toEqual([...pkt(60)]);
    const hdr = 'modified' in opts ? 24 : 16;
    expect(records[1]).toMatchObject({ ts: 1700000001000, wireLen: 42, record: 1, offset: 24 + hdr + 60 });
  });

  it('masks the FCS bits out of the link-type field', () => {
    const file = c.pcapFile({ linkType: 0x14000001 }, [{ sec: 1, frac: 0, data: pkt(20) }]);
    expect(parse(file).records[0].linkType).toBe(1);
  });

  it.each([
    [1, 4],
    [3, 0],
    [2, 5],
  ])('rejects version %i.%i cleanly', (major, minor) => {
    const file = c.pcapFile({ major, minor }, [{ sec: 1, frac: 0, data: pkt(20) }]);
    const { records, issues, summary } = parse(file);
    expect(records).toEqual([]);
    expect(issues).toMatchObject([
      { code: 'PCAP_BAD_VERSION', offset: 4, source: 'test.cap', severity: 'error' },
    ]);
    expect(issues[0].message).toContain(`${major}.${minor}`);
    expect(summary).toMatchObject({ records: 0, skippedBytes: file.length, issues: 1 });
  });

  it('accepts version 2.2 (older libpcap writers)', () => {
    expect(parse(c.pcapFile({ minor: 2 }, [{ sec: 1, frac: 0, data: pkt(20) }])).summary.records).toBe(1);
  });

  it('reports a record header cut at the end and keeps the good records', () => {
    const good = c.pcapFile({}, [{ sec: 5, frac: 0, data: pkt(30) }]);
    const file = c.concat(good, new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
    const { records, issues, summary } = parse(file);
    expect(records.length).toBe(1);
    expect(issues).toMatchObject([{ code: 'PCAP_TRUNCATED_RECORD', offset: good.length, record: 1 }]);
    expect(issues[0].message).toContain('7 of 16');
    expect(summary).toMatchObject({ truncated: true, skippedRecords: 1, skippedBytes: 7, records: 1 });
  });

  it('reports a record body cut at the end', () => {
    const file = c.pcapFile({}, [
      { sec: 5, frac: 0, data: pkt(30) },
      { sec: 5, frac: 1, data: pkt(100) },
    ]);
    const { records, issues, summary } = parse(file.subarray(0, file.length - 40));
    expect(records.length).toBe(1);
    expect(issues).toMatchObject([{ code: 'PCAP_TRUNCATED_RECORD', offset: 24 + 46, record: 1 }]);
    expect(issues[0].message).toContain('100 captured bytes, 60 present');
    expect(summary).toMatchObject({ truncated: true, skippedRecords: 1, skippedBytes: 16 + 60 });
  });

  it('resynchronises after a corrupt record header and keeps every later record', () => {
    const opts = { snaplen: 1500 };
    const before = c.pcapRecord({ sec: 100, frac: 1, data: pkt(50) }, opts);
    const garbage = c.pcapRecord({ sec: 100, frac: 2, data: pkt(40, 0xff), caplen: 0x7fffffff }, opts);
    const after = [1, 2, 3].map((i) => c.pcapRecord({ sec: 100, frac: 10 + i, data: pkt(60 + i) }, opts));
    const file = c.concat(c.pcapHeader(opts), before, garbage, ...after);
    const { records, issues, summary } = parse(file);
    expect(records.map((r) => r.data.length)).toEqual([50, 61, 62, 63]);
    expect(records.map((r) => r.record)).toEqual([0, 1, 2, 3]);
    const at = 24 + before.length;
    expect(issues).toMatchObject([
      { code: 'PCAP_BAD_CAPLEN', offset: at, record: 1, severity: 'error' },
      { code: 'CAPTURE_RESYNC', offset: at, record: 1 },
    ]);
    expect(issues[1].message).toContain(`skipped ${garbage.length} bytes`);
    expect(summary).toMatchObject({ skippedRecords: 1, skippedBytes: garbage.length, records: 4 });
  });

  it('resynchronises past inserted junk bytes', () => {
    const opts = { snaplen: 200 };
    const recs = [0, 1, 2, 3].map((i) => c.pcapRecord({ sec: 7, frac: i, data: pkt(40 + i) }, opts));
    const junk = Uint8Array.from({ length: 13 }, (_, i) => (i * 97 + 200) & 0xff);
    const file = c.concat(c.pcapHeader(opts), recs[0], recs[1], junk, recs[2], recs[3]);
    const { records, summary } = parse(file);
    expect(records.map((r) => r.data.length)).toEqual([40, 41, 42, 43]);
    expect(summary.skippedBytes).toBe(13);
  });

  it('reports when no plausible record follows the corruption', () => {
    const file = c.concat(
      c.pcapHeader(),
      c.pcapRecord({ sec: 1, frac: 0, data: pkt(10), caplen: 0x00ffffff }),
      pkt(5, 0xff),
    );
    const { issues, summary } = parse(file);
    expect(issues.map((i) => i.code)).toEqual(['PCAP_BAD_CAPLEN', 'CAPTURE_RESYNC']);
    expect(issues[1].message).toContain('skipped to the end');
    expect(summary.skippedBytes).toBe(file.length - 24);
  });

  it('keeps a caplen > origlen record when a valid record follows, with a warning', () => {
    const file = c.pcapFile({ snaplen: 47 }, [
      { sec: 9, frac: 0, data: pkt(47), origlen: 0 },
      { sec: 9, frac: 5, data: pkt(20) },
    ]);
    const { records, issues } = parse(file);
    expect(records.map((r) => [r.data.length, r.wireLen])).toEqual([
      [47, 47],
      [20, 20],
    ]);
    expect(issues).toMatchObject([
      { code: 'PCAP_CAPLEN_GT_ORIGLEN', severity: 'warning', offset: 24, record: 0 },
    ]);
  });

  it('resyncs in a file whose writer always breaks caplen <= origlen (origlen 0 everywhere)', () => {
    const opts = { snaplen: 100 };
    const recs = [0, 1, 2, 3, 4].map((i) =>
      c.pcapRecord({ sec: 3, frac: i, data: pkt(30 + i), origlen: 0 }, opts),
    );
    recs[2] = c.pcapRecord({ sec: 3, frac: 2, data: pkt(32), origlen: 0, caplen: 0xfffffff }, opts);
    const { records, issues, summary } = parse(c.concat(c.pcapHeader(opts), ...recs));
    expect(records.map((r) => [r.data.length, r.wireLen])).toEqual([
      [30, 30],
      [31, 31],
      [33, 33],
      [34, 34],
    ]);
    expect(issues.map((i) => i.code)).toEqual([
      'PCAP_CAPLEN_GT_ORIGLEN',
      'PCAP_CAPLEN_GT_ORIGLEN',
      'PCAP_BAD_CAPLEN',
      'CAPTURE_RESYNC',
      'PCAP_CAPLEN_GT_ORIGLEN',
      'PCAP_CAPLEN_GT_ORIGLEN',
    ]);
    expect(summary.skippedBytes).toBe(recs[2].length);
  });

  it('reports the first 20 warnings of a code, then one summing up the rest', () => {
    const recs = Array.from({ length: 50 }, (_, i) => ({ sec: 3, frac: i, data: pkt(10), origlen: 4 }));
    const { records, issues, summary } = parse(c.pcapFile({}, recs));
    expect(records.length).toBe(50);
    expect(issues.length).toBe(21);
    expect(summary.issues).toBe(21);
    expect(issues[19]).toMatchObject({ code: 'PCAP_CAPLEN_GT_ORIGLEN', record: 19 });
    expect(issues[20]).toMatchObject({ code: 'PCAP_CAPLEN_GT_ORIGLEN', severity: 'warning' });
    expect(issues[20].message).toBe(
      '30 more PCAP_CAPLEN_GT_ORIGLEN warnings not reported individually (50 in total)',
    );
  });

  it('believes a suspicious record followed by a readable header days later (fuzzed-capture case)', () => {
    const file = c.pcapFile({ snaplen: 47 }, [
      { sec: 167800896, frac: 131862, data: pkt(47), origlen: 0 },
      { sec: 168239168, frac: 999999, data: pkt(47), origlen: 54 },
    ]);
    const { records, issues } = parse(file);
    expect(records.length).toBe(2);
    expect(issues.map((i) => i.code)).toEqual(['PCAP_CAPLEN_GT_ORIGLEN']);
  });

  it('keeps a caplen > snaplen record when a valid record follows, with a warning', () => {
    const file = c.pcapFile({ snaplen: 64 }, [
      { sec: 9, frac: 0, data: pkt(100) },
      { sec: 9, frac: 5, data: pkt(20) },
    ]);
    const { records, issues } = parse(file);
    expect(records.length).toBe(2);
    expect(issues).toMatchObject([{ code: 'PCAP_CAPLEN_GT_SNAPLEN', severity: 'warning' }]);
  });

  it('reports unknown magic and empty input', () => {
    expect(parse(Uint8Array.from('GET / HTTP/1.1\r\n', (ch) => ch.charCodeAt(0))).issues).toMatchObject([
      { code: 'CAPTURE_UNKNOWN_FORMAT', offset: 0 },
    ]);
    const empty = parse(new Uint8Array(0));
    expect(empty.issues).toMatchObject([{ code: 'CAPTURE_UNKNOWN_FORMAT', offset: 0 }]);
    expect(empty.summary).toMatchObject({ format: 'unknown', records: 0, bytes: 0 });
    expect(parse(c.pcapHeader().subarray(0, 10)).issues).toMatchObject([
      { code: 'CAPTURE_TRUNCATED_FILE_HEADER' },
    ]);
  });
});

describe('pcapng', () => {
  const u8 = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0));

  function multiSection(): Uint8Array {
    return c.concat(
      c.shb(true, [{ code: 4, value: u8('netpol-audit test') }]),
      c.idb(true, 1, 96, [tsresolOpt(9)]), // nanoseconds
      c.idb(true, 0, 0), // default microseconds
      c.opaqueBlock(true, 4, new Uint8Array(12)), // NRB
      c.epb(true, { iface: 0, ticks: 1700000000_123456789n, data: pkt(96), origlen: 300 }),
      c.epb(true, {
        iface: 1,
        ticks: 1700000000_500000n,
        data: pkt(44),
        options: [{ code: 1, value: u8('hi') }],
      }),
      c.opaqueBlock(true, 0x00000bad, new Uint8Array(8)),
      c.spb(true, pkt(200), 200), // cut to interface 0's snaplen (96)
      c.opaqueBlock(true, 5, new Uint8Array(20)), // ISB
      c.shb(false),
      c.idb(false, 113, 0, [tsresolOpt(0x80 | 10), c.tsoffset(false, 1000)]), // 2^-10 s, +1000 s
      c.opaqueBlock(false, 0x40000bad, new Uint8Array(4)),
      c.opaqueBlock(false, 10, new Uint8Array(16)), // DSB
      c.opaqueBlock(false, 0x12345678, new Uint8Array(4)), // unknown
      c.epb(false, { iface: 0, ticks: 1024n * 5n + 512n, data: pkt(10) }),
      c.pb(false, { iface: 0, ticks: 2048n, data: pkt(12) }),
    );
  }

  function tsresolOpt(v: number) {
    return c.tsresol(v);
  }

  it('reads several sections, interfaces, resolutions and packet block kinds', () => {
    const file = multiSection();
    const { records, issues, summary } = parse(file);
    expect(issues).toEqual([]);
    expect(summary).toMatchObject({
      format: 'pcapng',
      records: 5,
      skippedRecords: 0,
      skippedBytes: 0,
      truncated: false,
    });
    expect(summary.interfaces).toEqual([
      { linkType: 1, tsResolution: 1e9, section: 0, sectionIndex: 0, snaplen: 96 },
      { linkType: 0, tsResolution: 1e6, section: 0, sectionIndex: 1, snaplen: 0 },
      { linkType: 113, tsResolution: 1024, section: 1, sectionIndex: 0, snaplen: 0 },
    ]);
    expect(records.map((r) => [r.iface, r.linkType, r.data.length, r.wireLen])).toEqual([
      [0, 1, 96, 300],
      [1, 0, 44, 44],
      [0, 1, 96, 200],
      [2, 113, 10, 10],
      [2, 113, 12, 12],
    ]);
    expect(records[0].ts).toBeCloseTo(1700000000123 + 0.456789, 3);
    expect(records[1].ts).toBeCloseTo(1700000000500, 6);
    expect(records[2].tsMissing).toBe(true);
    expect(records[2].ts).toBe(records[1].ts);
    expect(records[3].ts).toBeCloseTo(1000_000 + 5500, 6);
    expect(records[4].ts).toBeCloseTo(1000_000 + 2000, 6);
    expect(records.map((r) => r.record)).toEqual([0, 1, 2, 3, 4]);
  });

  it('skips a block whose trailing length differs and resynchronises on the next block', () => {
    const head = c.concat(c.shb(true), c.idb(true, 1));
    const bad = c.epb(true, { iface: 0, ticks: 1n, data: pkt(30), trailer: 999 });
    const good = c.epb(true, { iface: 0, ticks: 2n, data: pkt(31) });
    const file = c.concat(head, c.epb(true, { iface: 0, ticks: 0n, data: pkt(29) }), bad, good);
    const { records, issues, summary } = parse(file);
    expect(records.map((r) => r.data.length)).toEqual([29, 31]);
    const at = head.length + 64;
    expect(issues).toMatchObject([
      { code: 'PCAPNG_BAD_BLOCK_LENGTH', offset: at, record: 1 },
      { code: 'CAPTURE_RESYNC', offset: at, severity: 'warning' },
    ]);
    expect(issues[0].message).toContain('trailing total length 999');
    expect(summary).toMatchObject({ skippedRecords: 1, skippedBytes: bad.length });
  });

  it('rejects block lengths that are not a multiple of 4', () => {
    const head = c.concat(c.shb(true), c.idb(true, 1));
    const bad = c.epb(true, { iface: 0, ticks: 1n, data: pkt(30), length: 62 });
    const file = c.concat(head, bad, c.epb(true, { iface: 0, ticks: 2n, data: pkt(8) }));
    const { records, issues } = parse(file);
    expect(records.map((r) => r.data.length)).toEqual([8]);
    expect(issues[0]).toMatchObject({ code: 'PCAPNG_BAD_BLOCK_LENGTH', offset: head.length });
    expect(issues[0].message).toContain('multiple of 4');
  });

  it('reports an option that overruns its block and keeps the interface', () => {
    const file = c.concat(
      c.shb(true),
      c.idb(true, 1, 0, [{ code: 2, value: u8('eth0'), length: 400 }]),
      c.epb(true, { iface: 0, ticks: 1n, data: pkt(8) }),
    );
    const { records, issues } = parse(file);
    expect(records.length).toBe(1);
    expect(issues).toMatchObject([{ code: 'PCAPNG_BAD_OPTION', severity: 'warning', offset: 28 + 16 }]);
  });

  it('an SHB option overrunning a block whose lengths agree is a warning; the section is used', () => {
    const file = c.concat(
      c.shb(false, [{ code: 4, value: u8('tool'), length: 0x3030 }]),
      c.idb(false, 1),
      c.epb(false, { iface: 0, ticks: 1n, data: pkt(8) }),
    );
    const { records, issues } = parse(file);
    expect(records.length).toBe(1);
    expect(issues).toMatchObject([{ code: 'PCAPNG_BAD_OPTION', severity: 'warning', offset: 24 }]);
    expect(issues[0].message).toContain('length 12336');
  });

  it('skips packets naming an unknown interface or with a caplen that does not fit', () => {
    const file = c.concat(
      c.shb(true),
      c.idb(true, 1),
      c.epb(true, { iface: 3, ticks: 1n, data: pkt(8) }),
      c.epb(true, { iface: 0, ticks: 1n, data: pkt(8), caplen: 5000 }),
      c.epb(true, { iface: 0, ticks: 1n, data: pkt(9) }),
    );
    const { records, issues, summary } = parse(file);
    expect(records.map((r) => [r.data.length, r.record])).toEqual([[9, 0]]);
    expect(issues.map((i) => [i.code, i.record])).toEqual([
      ['PCAPNG_UNKNOWN_INTERFACE', 0],
      ['PCAPNG_BAD_PACKET_LENGTH', 0],
    ]);
    expect(summary.skippedRecords).toBe(2);
  });

  it('reports a block cut at the end of input', () => {
    const full = c.concat(c.shb(true), c.idb(true, 1), c.epb(true, { iface: 0, ticks: 1n, data: pkt(100) }));
    const { issues, summary } = parse(full.subarray(0, full.length - 30));
    expect(issues).toMatchObject([{ code: 'PCAPNG_TRUNCATED_BLOCK', offset: 28 + 20, record: 0 }]);
    expect(summary).toMatchObject({ truncated: true, skippedRecords: 1, records: 0 });
  });

  it('rejects a section header with a bad byte-order magic or major version', () => {
    const bom = c.shb(true);
    bom[8] = 0x11;
    expect(parse(bom).issues[0]).toMatchObject({ code: 'PCAPNG_BAD_SECTION_HEADER', offset: 8 });
    const v2 = c.concat(
      c.shb(true, [], 2),
      c.idb(true, 1),
      c.epb(true, { iface: 0, ticks: 1n, data: pkt(8) }),
    );
    const { records, issues } = parse(v2);
    expect(records).toEqual([]);
    expect(issues.map((i) => i.code)).toEqual([
      'PCAPNG_BAD_SECTION_HEADER',
      'PCAPNG_BLOCK_OUTSIDE_SECTION',
      'PCAPNG_BLOCK_OUTSIDE_SECTION',
    ]);
  });

  it('gives the same result whatever the chunk boundaries', () => {
    const file = multiSection();
    const whole = parse(file);
    for (const size of [1, 2, 3, 7, 13, 64, 1000]) {
      const chunks = Array.from({ length: Math.ceil(file.length / size) }, () => size);
      expect(parse(file, chunks)).toEqual(whole);
    }
  });
});

describe('file and stream readers, writer', () => {
  it('round-trips PcapWriter output through readCaptureFile and readCaptureStream', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'netpol-capture-'));
    const path = join(dir, 'w.pcap');
    const w = new PcapWriter(path, { linkType: 101 });
    for (let i = 0; i < 5000; i++) w.writePacket(1700000000000 + i * 1.5, pkt(20 + (i % 300), i), 1500);
    await w.close();
    const seen: number[] = [];
    const fromFile = await readCaptureFile(path, {
      onRecord(r) {
        seen.push(r.data.length);
        expect(r.ts).toBeCloseTo(1700000000000 + r.record * 1.5, 3);
        expect(r.wireLen).toBe(1500);
        expect(r.data[0]).toBe(r.record & 0xff);
      },
      onIssue(i) {
        throw new Error(i.message);
      },
    });
    expect(fromFile).toMatchObject({ format: 'pcap', records: 5000, issues: 0, bytes: w.bytes });
    expect(seen.slice(0, 3)).toEqual([20, 21, 22]);
    const { createReadStream } = await import('node:fs');
    const fromStream = await readCaptureStream(createReadStream(path, { highWaterMark: 777 }), '<stdin>', {
      onRecord() {},
      onIssue() {},
    });
    expect(fromStream).toEqual(fromFile);
  });

  it('readCaptureStream accepts any Readable', async () => {
    const file = c.pcapFile({}, [{ sec: 1, frac: 0, data: pkt(33) }]);
    const issues: InputIssue[] = [];
    const s = await readCaptureStream(Readable.from([file.subarray(0, 5), file.subarray(5)]), 'pipe', {
      onRecord() {},
      onIssue: (i) => issues.push(i),
    });
    expect(s.records).toBe(1);
    expect(issues).toEqual([]);
  });

  it('readCaptureFile rejects a missing file (I/O error, not data)', async () => {
    await expect(readCaptureFile('/nonexistent/x.pcap', { onRecord() {}, onIssue() {} })).rejects.toThrow(
      /ENOENT/,
    );
  });

  it('writes nanosecond files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'netpol-capture-'));
    const path = join(dir, 'n.pcap');
    const w = new PcapWriter(path, { nano: true });
    w.writePacket(1700000000123 + 0.456789, pkt(14));
    await w.close();
    const got: number[] = [];
    await readCaptureFile(path, { onRecord: (r) => got.push(r.ts), onIssue() {} });
    expect(got[0]).toBeCloseTo(1700000000123 + 0.456789, 4);
    writeFileSync(join(dir, 'x'), '');
  });
});

/**
 * Property tests for the capture readers and the packet decoder: corpus captures mutated (byte flips,
 * truncation, insertion, deletion, overwritten lengths), and random bytes, pushed through CaptureParser
 * in random chunk splits and then through decodePacket. Inputs that once broke a property are kept
 * in test/fuzz/corpus/ and replayed first.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as c from '../../collectors/capture/craft.js';
import { CaptureParser, type CaptureSummary, MAX_CAPLEN } from '../../collectors/capture/index.js';
import { DecodeStatus, decodePacket, newDecodedPacket } from '../../collectors/decode/index.js';
import type { InputIssue } from '../../lib/errors.js';
import { CORPUS } from '../support/cli.js';

const FUZZ_CORPUS = join(import.meta.dirname, 'corpus');
// FUZZ_RUNS raises the budget for a longer local hunt (the default keeps the suite quick).
const NUM_RUNS = Number(process.env.FUZZ_RUNS ?? 150);

interface Outcome {
  records: {
    ts: number;
    iface: number;
    wireLen: number;
    record: number;
    offset: number;
    linkType: number;
    data: string;
  }[];
  issues: InputIssue[];
  summary: CaptureSummary;
}

function run(bytes: Uint8Array, cuts: number[]): Outcome {
  const records: Outcome['records'] = [];
  const issues: InputIssue[] = [];
  const out = newDecodedPacket();
  const parser = new CaptureParser('fuzz', {
    onRecord(r) {
      // Records are views into the reader's buffer: check bounds before anything else.
      expect(r.data.byteOffset + r.data.length).toBeLessThanOrEqual(r.data.buffer.byteLength);
      expect(r.data.length).toBeLessThanOrEqual(MAX_CAPLEN);
      expect(r.data.length).toBeLessThanOrEqual(r.wireLen);
      expect(Number.isFinite(r.ts)).toBe(true);
      const st = decodePacket(r, out);
      expect([0, 1, 2, 3, 4]).toContain(st);
      checkDecoded(st, out);
      records.push({
        ts: r.ts,
        iface: r.iface,
        wireLen: r.wireLen,
        record: r.record,
        offset: r.offset,
        linkType: r.linkType,
        data: Buffer.from(r.data).toString('hex'),
      });
    },
    onIssue(i) {
      issues.push(i);
    },
  });
  let prev = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    parser.push(bytes.subarray(prev, cut));
    prev = cut;
  }
  parser.push(bytes.subarray(prev));
  const summary = parser.end();
  checkSummary(bytes, records, issues, summary);
  return { records, issues, summary };
}

function checkDecoded(st: number, p: ReturnType<typeof newDecodedPacket>): void {
  for (const port of [p.srcPort, p.dstPort, p.quotedSrcPort, p.quotedDstPort]) {
    expect(port >= -1 && port <= 65535).toBe(true);
  }
  if (st === DecodeStatus.OK) expect(p.src.length).toBeGreaterThan(0);
  if (p.tunnelType !== '') expect(p.tunnelSrc.length).toBeGreaterThan(0);
  expect(p.vlans.length).toBeLessThanOrEqual(8);
  expect(p.proto >= 0 && p.proto <= 255).toBe(true);
}

function checkSummary(
  bytes: Uint8Array,
  records: Outcome['records'],
  issues: InputIssue[],
  s: CaptureSummary,
): void {
  expect(s.bytes).toBe(bytes.length);
  expect(s.records).toBe(records.length);
  expect(s.issues).toBe(issues.length);
  expect(s.skippedBytes).toBeGreaterThanOrEqual(0);
  expect(s.skippedBytes).toBeLessThanOrEqual(bytes.length);
  records.forEach((r, i) => {
    expect(r.record).toBe(i);
    expect(r.offset).toBeLessThan(bytes.length);
    if (i > 0) expect(r.offset).toBeGreaterThan(records[i - 1].offset);
    expect(r.iface).toBeLessThan(Math.max(1, s.interfaces.length));
  });
  for (const i of issues) {
    expect(i.code).toMatch(/^[A-Z][A-Z_]+$/);
    expect(i.source).toBe('fuzz');
    expect(i.offset).toBeGreaterThanOrEqual(0);
    expect(i.offset).toBeLessThanOrEqual(bytes.length);
    expect(i.message.length).toBeGreaterThan(0);
  }
  if (
    s.format === 'pcap' &&
    !issues.some((i) => i.code === 'PCAP_BAD_VERSION' || i.code === 'CAPTURE_TRUNCATED_FILE_HEADER')
  ) {
    // Every byte is a file header, a record (header + data) or skipped: nothing counted twice or lost.
    const hdr = bytes[0] === 0x34 || bytes[3] === 0x34 ? 24 : 16;
    const recordBytes = records.reduce((n, r) => n + hdr + r.data.length / 2, 0);
    expect(24 + recordBytes + s.skippedBytes).toBe(bytes.length);
  }
  if (s.format === 'unknown') expect(s.skippedBytes).toBe(bytes.length);
}

/** Same outcome whole and chunked. */
function checkChunking(bytes: Uint8Array, cuts: number[]): void {
  const whole = run(bytes, []);
  const chunked = run(bytes, cuts);
  expect(chunked).toEqual(whole);
}

/** Hand-built seeds reach what the corpus lacks: PB/SPB blocks, power-of-2 resolutions, big-endian modified pcap. */
function craftedSeeds(): { name: string; bytes: Uint8Array }[] {
  const frame = new Uint8Array(60).fill(7);
  const multi = c.concat(
    c.shb(true),
    c.idb(true, 1, 64, [c.tsresol(9)]),
    c.idb(true, 113, 0, [c.tsresol(0x8a), c.tsoffset(true, 5)]),
    c.epb(true, { iface: 1, ticks: 99n, data: frame }),
    c.spb(true, frame),
    c.opaqueBlock(true, 5, new Uint8Array(16)),
    c.shb(false),
    c.idb(false, 101, 0),
    c.pb(false, { iface: 0, ticks: 1n, data: frame }),
    c.epb(false, { iface: 0, ticks: 2n, data: frame }),
  );
  const recs = [1, 2, 3].map((i) => ({ sec: 1000 + i, frac: i, data: frame, origlen: 100 }));
  return [
    { name: 'crafted-pcapng', bytes: multi },
    { name: 'crafted-modified-be', bytes: c.pcapFile({ le: false, modified: true, snaplen: 60 }, recs) },
    { name: 'crafted-nano-le', bytes: c.pcapFile({ nano: true, snaplen: 60 }, recs) },
  ];
}

const seeds: { name: string; bytes: Uint8Array }[] = readdirSync(CORPUS)
  .filter((f) => !/\.(json|gz|md)$/.test(f) && statSync(join(CORPUS, f)).size <= 64 * 1024)
  .map((f) => ({ name: f, bytes: new Uint8Array(readFileSync(join(CORPUS, f))) as Uint8Array }))
  .concat(craftedSeeds());

type Mutation =
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: number[] }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'u32'; at: number; value: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 40 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }),
  // Lengths are where readers break: overwrite an aligned 32-bit word with an edge value.
  fc.record({
    kind: fc.constant('u32' as const),
    at: fc.nat(),
    value: fc.constantFrom(
      0,
      1,
      3,
      11,
      12,
      13,
      0xffff,
      0x10000,
      0x40000,
      0x40001,
      0x7fffffff,
      0xffffffff,
      0x0a0d0d0a,
    ),
  }),
);

function mutate(input: Uint8Array, muts: Mutation[]): Uint8Array {
  let b = input.slice();
  for (const m of muts) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    switch (m.kind) {
      case 'flip':
        b[at] = m.value;
        break;
      case 'truncate':
        b = b.slice(0, at);
        break;
      case 'insert':
        b = Uint8Array.from([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
        break;
      case 'delete':
        b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + m.len)]);
        break;
      case 'u32': {
        const a = at & ~3;
        if (a + 4 <= b.length) new DataView(b.buffer).setUint32(a, m.value, (m.value & 1) === 0);
        break;
      }
    }
  }
  return b;
}

const cutsFor = (len: number) => fc.array(fc.integer({ min: 0, max: Math.max(0, len) }), { maxLength: 12 });

describe('capture fuzzing', () => {
  it('has seeds', () => {
    expect(seeds.length).toBeGreaterThan(20);
  });

  it('replays the saved fuzz corpus', () => {
    const files = readdirSync(FUZZ_CORPUS).filter((f) => f.endsWith('.bin'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const bytes = new Uint8Array(readFileSync(join(FUZZ_CORPUS, f)));
      for (const size of [1, 3, 17, 256]) {
        const cuts = Array.from({ length: Math.floor(bytes.length / size) }, (_, i) => (i + 1) * size);
        checkChunking(bytes, cuts);
      }
    }
  });

  it('mutated corpus captures: never throws, chunking-invariant, consistent counts', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: seeds.length - 1 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (seedIndex, muts, rawCuts) => {
          const bytes = mutate(seeds[seedIndex].bytes, muts);
          const cuts = rawCuts.map((x) => (bytes.length === 0 ? 0 : x % (bytes.length + 1)));
          checkChunking(bytes, cuts);
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it('random bytes behind a valid pcap or pcapng magic', () => {
    const magics = [
      [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0],
      [0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4],
      [0x34, 0xcd, 0xb2, 0xa1, 2, 0, 4, 0],
      [0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a],
      [],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...magics), fc.uint8Array({ maxLength: 600 }), (magic, tail) => {
        const bytes = Uint8Array.from([...magic, ...tail]);
        return fc.assert(
          fc.property(cutsFor(bytes.length), (cuts) => checkChunking(bytes, cuts)),
          { numRuns: 3 },
        );
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('decodePacket on random and mutated frames never throws and stays in bounds', () => {
    const frames: Uint8Array[] = [];
    for (const s of seeds.slice(0, 30)) {
      const p = new CaptureParser(s.name, {
        onRecord: (r) => frames.length < 400 && frames.push(r.data.slice()),
        onIssue() {},
      });
      p.push(s.bytes);
      p.end();
    }
    const out = newDecodedPacket();
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147),
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc
            .tuple(fc.constantFrom(...frames), fc.array(mutation, { maxLength: 3 }))
            .map(([f, m]) => mutate(f, m)),
        ),
        (linkType, data) => {
          const st = decodePacket(
            { ts: 0, linkType, iface: 0, wireLen: data.length, data, record: 0, offset: 0 },
            out,
          );
          expect([0, 1, 2, 3, 4]).toContain(st);
          checkDecoded(st, out);
        },
      ),
      { numRuns: NUM_RUNS * 4 },
    );
  });
});

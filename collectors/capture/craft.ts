/**
 * In-memory pcap and pcapng builders for tests (any byte order, every magic, every block type), so that
 * reader tests state the bytes they feed instead of depending on external files.
 */
import { concat } from '../decode/craft.js';

export { concat };

class Bytes {
  private readonly parts: number[] = [];
  constructor(private readonly le: boolean) {}
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.le ? this.u8(v).u8(v >> 8) : this.u8(v >> 8).u8(v);
  }
  u32(v: number): this {
    v >>>= 0;
    return this.le ? this.u16(v & 0xffff).u16(v >>> 16) : this.u16(v >>> 16).u16(v & 0xffff);
  }
  bytes(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  pad4(): this {
    while (this.parts.length % 4) this.parts.push(0);
    return this;
  }
  get length(): number {
    return this.parts.length;
  }
  build(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export interface PcapFileOptions {
  le?: boolean;
  nano?: boolean;
  /** Kuznetzov's modified format: magic a1b2cd34, 24-byte record headers. */
  modified?: boolean;
  major?: number;
  minor?: number;
  snaplen?: number;
  linkType?: number;
}

export interface PcapRecordSpec {
  sec: number;
  /** Microseconds or nanoseconds, per the file. */
  frac: number;
  data: Uint8Array;
  origlen?: number;
  /** Override the caplen field (to build corrupt records). */
  caplen?: number;
}

export function pcapHeader(o: PcapFileOptions = {}): Uint8Array {
  const b = new Bytes(o.le ?? true);
  b.u32(o.modified ? 0xa1b2cd34 : o.nano ? 0xa1b23c4d : 0xa1b2c3d4);
  b.u16(o.major ?? 2).u16(o.minor ?? 4);
  b.u32(0).u32(0);
  b.u32(o.snaplen ?? 65535);
  b.u32(o.linkType ?? 1);
  return b.build();
}

export function pcapRecord(r: PcapRecordSpec, o: PcapFileOptions = {}): Uint8Array {
  const b = new Bytes(o.le ?? true);
  b.u32(r.sec).u32(r.frac);
  b.u32(r.caplen ?? r.data.length);
  b.u32(r.origlen ?? r.data.length);
  if (o.modified) b.u32(1).u16(2).u8(0).u8(0);
  b.bytes(r.data);
  return b.build();
}

export function pcapFile(o: PcapFileOptions, records: PcapRecordSpec[]): Uint8Array {
  return concat(pcapHeader(o), ...records.map((r) => pcapRecord(r, o)));
}

// ---------------------------------------------------------------- pcapng

export interface PcapngOption {
  code: number;
  value: Uint8Array;
  /** Override the option length field (to build overruns). */
  length?: number;
}

function block(
  le: boolean,
  type: number,
  body: (b: Bytes) => void,
  options: PcapngOption[] = [],
  lengthOverride?: number,
  trailerOverride?: number,
): Uint8Array {
  const inner = new Bytes(le);
  body(inner);
  inner.pad4();
  if (options.length > 0) {
    for (const opt of options) {
      inner
        .u16(opt.code)
        .u16(opt.length ?? opt.value.length)
        .bytes(opt.value)
        .pad4();
    }
    inner.u16(0).u16(0);
  }
  const len = 12 + inner.length;
  const b = new Bytes(le);
  if (type === 0x0a0d0d0a) b.u8(0x0a).u8(0x0d).u8(0x0d).u8(0x0a);
  else b.u32(type);
  b.u32(lengthOverride ?? len);
  b.bytes(inner.build());
  b.u32(trailerOverride ?? lengthOverride ?? len);
  return b.build();
}

export function shb(le: boolean, options: PcapngOption[] = [], major = 1): Uint8Array {
  return block(
    le,
    0x0a0d0d0a,
    (b) => b.u32(0x1a2b3c4d).u16(major).u16(0).u32(0xffffffff).u32(0xffffffff),
    options,
  );
}

export function idb(le: boolean, linkType: number, snaplen = 0, options: PcapngOption[] = []): Uint8Array {
  return block(le, 1, (b) => b.u16(linkType).u16(0).u32(snaplen), options);
}

/** if_tsresol option value. */
export function tsresol(v: number): PcapngOption {
  return { code: 9, value: Uint8Array.of(v) };
}

/** if_tsoffset option (seconds). */
export function tsoffset(le: boolean, seconds: number): PcapngOption {
  const v = new Uint8Array(8);
  new DataView(v.buffer).setBigInt64(0, BigInt(seconds), le);
  return { code: 14, value: v };
}

export interface EpbSpec {
  iface: number;
  /** Timestamp in ticks of the interface resolution. */
  ticks: bigint;
  data: Uint8Array;
  origlen?: number;
  caplen?: number;
  options?: PcapngOption[];
  /** Corrupt the block: a different trailing length. */
  trailer?: number;
  length?: number;
}

export function epb(le: boolean, e: EpbSpec): Uint8Array {
  return block(
    le,
    6,
    (b) =>
      b
        .u32(e.iface)
        .u32(Number(e.ticks >> 32n))
        .u32(Number(e.ticks & 0xffffffffn))
        .u32(e.caplen ?? e.data.length)
        .u32(e.origlen ?? e.data.length)
        .bytes(e.data),
    e.options ?? [],
    e.length,
    e.trailer,
  );
}

/** Obsolete Packet Block (type 2). */
export function pb(le: boolean, e: EpbSpec): Uint8Array {
  return block(le, 2, (b) =>
    b
      .u16(e.iface)
      .u16(0)
      .u32(Number(e.ticks >> 32n))
      .u32(Number(e.ticks & 0xffffffffn))
      .u32(e.caplen ?? e.data.length)
      .u32(e.origlen ?? e.data.length)
      .bytes(e.data),
  );
}

export function spb(le: boolean, data: Uint8Array, origlen = data.length): Uint8Array {
  return block(le, 3, (b) => b.u32(origlen).bytes(data));
}

/** Any other block (NRB 4, ISB 5, DSB 10, custom 0xBAD / 0x40000BAD, unknown types) with an opaque body. */
export function opaqueBlock(le: boolean, type: number, body: Uint8Array): Uint8Array {
  return block(le, type, (b) => b.bytes(body));
}

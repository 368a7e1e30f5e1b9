import { closeSync, openSync, writeSync } from 'node:fs';

export interface PcapWriterOptions {
  /** LINKTYPE_* of every packet (default 1, Ethernet). */
  linkType?: number;
  /** File snaplen field (default 262144). */
  snaplen?: number;
  /** Write nanosecond timestamps (magic a1b23c4d) instead of microseconds. */
  nano?: boolean;
}

/**
 * Minimal little-endian pcap writer for tests and benchmarks: builds files from packets (e.g. corpus
 * packets repeated with shifted timestamps). Writes synchronously in 1 MiB blocks, so memory stays flat
 * however large the file grows.
 */
export class PcapWriter {
  private readonly fd: number;
  private readonly nano: boolean;
  private block = Buffer.allocUnsafe(1 << 20);
  private used = 0;
  private closed = false;
  /** Packets written so far. */
  packets = 0;
  /** Bytes written so far (file header included). */
  bytes = 0;

  constructor(path: string, opts: PcapWriterOptions = {}) {
    this.fd = openSync(path, 'w');
    this.nano = opts.nano ?? false;
    const h = Buffer.alloc(24);
    h.writeUInt32LE(this.nano ? 0xa1b23c4d : 0xa1b2c3d4, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeUInt32LE(opts.snaplen ?? 262144, 16);
    h.writeUInt32LE(opts.linkType ?? 1, 20);
    this.put(h);
  }

  /** Appends one record: tsMs is epoch milliseconds (fractions kept to the file's resolution). */
  writePacket(tsMs: number, data: Uint8Array, wireLen: number = data.length): void {
    if (this.closed) throw new Error('PcapWriter: write after close');
    const sec = Math.floor(tsMs / 1000);
    const frac = this.nano
      ? Math.min(999_999_999, Math.round((tsMs - sec * 1000) * 1e6))
      : Math.min(999_999, Math.round((tsMs - sec * 1000) * 1e3));
    if (this.block.length - this.used < 16 + data.length) this.flush(16 + data.length);
    const b = this.block;
    let o = this.used;
    b.writeUInt32LE(sec >>> 0, o);
    b.writeUInt32LE(frac, o + 4);
    b.writeUInt32LE(data.length, o + 8);
    b.writeUInt32LE(Math.max(wireLen, data.length), o + 12);
    o += 16;
    b.set(data, o);
    this.used = o + data.length;
    this.bytes += 16 + data.length;
    this.packets++;
  }

  /** Flushes and closes the file (synchronously; the promise is for callers that await). */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.flush(0);
      closeSync(this.fd);
    }
    return Promise.resolve();
  }

  private put(data: Uint8Array): void {
    if (this.block.length - this.used < data.length) this.flush(data.length);
    this.block.set(data, this.used);
    this.used += data.length;
    this.bytes += data.length;
  }

  private flush(need: number): void {
    let o = 0;
    while (o < this.used) o += writeSync(this.fd, this.block, o, this.used - o);
    if (this.block.length < need) this.block = Buffer.allocUnsafe(need);
    this.used = 0;
  }
}

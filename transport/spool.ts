import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

/**
 * A bounded, ordered, on-disk buffer of messages for when the broker is unreachable. Messages are
 * appended to segment files (one JSON message per line); `drain` hands them back oldest first and
 * deletes a segment only after the caller confirms it was delivered, so a crash mid-resend sends
 * a segment again rather than losing it (at-least-once; consumers dedupe by offsets downstream).
 * When the spool is full, new messages are refused and counted: never dropped silently.
 */
export interface SpooledMessage {
  topic: string;
  key: string | null;
  /** A buffer (a v2 pack, UTF-8) is spooled as its text, and read back as a string. */
  value: string | Buffer | null;
  headers?: Record<string, string>;
  /** The partition a v2 pack was packed for (its records' keys hash there). */
  partition?: number;
  /** Records in the message: 1 for a v1 message, the pack's size for a v2 pack. Stats count records. */
  count?: number;
}

export interface SpoolStats {
  spooled: number;
  bytes: number;
  dropped: number;
  droppedBytes: number;
  resent: number;
}

export class DiskSpool {
  readonly stats: SpoolStats = { spooled: 0, bytes: 0, dropped: 0, droppedBytes: 0, resent: 0 };
  private fd: number | undefined;
  private current: string | undefined;
  private seq = 0;

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    readonly segmentBytes = 4 * 1024 * 1024,
  ) {
    mkdirSync(dir, { recursive: true });
    // A spool left by an earlier run is resent first: count what is there.
    for (const f of this.segments()) {
      this.stats.bytes += fstatSizeOf(join(dir, f));
      this.seq = Math.max(this.seq, Number.parseInt(f, 10) + 1);
    }
  }

  get empty(): boolean {
    return this.stats.bytes === 0;
  }

  /** Appends a message; false (and its records counted as dropped) when the spool is full. */
  append(m: SpooledMessage): boolean {
    const line = `${JSON.stringify(Buffer.isBuffer(m.value) ? { ...m, value: m.value.toString('utf8') } : m)}\n`;
    const size = Buffer.byteLength(line);
    const records = m.count ?? 1;
    if (this.stats.bytes + size > this.maxBytes) {
      this.stats.dropped += records;
      this.stats.droppedBytes += size;
      return false;
    }
    if (this.fd === undefined || (this.current && fstatSync(this.fd).size + size > this.segmentBytes))
      this.rotate();
    writeSync(this.fd!, line);
    this.stats.spooled += records;
    this.stats.bytes += size;
    return true;
  }

  private rotate(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    const name = `${String(this.seq++).padStart(12, '0')}.spool`;
    this.current = join(this.dir, `${name}.open`);
    this.fd = openSync(this.current, 'a');
  }

  private seal(): void {
    if (this.fd === undefined || !this.current) return;
    closeSync(this.fd);
    renameSync(this.current, this.current.replace(/\.open$/, ''));
    this.fd = undefined;
    this.current = undefined;
  }

  private segments(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => /^\d{12}\.spool(\.open)?$/.test(f))
      .sort();
  }

  /**
   * Resends everything spooled, oldest first, through `send` (which throws when the broker is still
   * away: the rest stays spooled). A segment is removed only after `send` resolved for all of it.
   */
  async drain(send: (batch: SpooledMessage[]) => Promise<void>): Promise<number> {
    this.seal();
    let sent = 0;
    for (const f of this.segments()) {
      const path = join(this.dir, f);
      const text = readFileSync(path, 'utf8');
      const batch = text
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as SpooledMessage);
      await send(batch);
      rmSync(path);
      this.stats.bytes -= Buffer.byteLength(text);
      const records = batch.reduce((n, m) => n + (m.count ?? 1), 0);
      this.stats.resent += records;
      sent += records;
    }
    this.stats.bytes = Math.max(0, this.stats.bytes);
    return sent;
  }

  close(): void {
    this.seal();
  }
}

function fstatSizeOf(path: string): number {
  const fd = openSync(path, 'r');
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

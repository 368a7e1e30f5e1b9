import type { Writable } from 'node:stream';
import type { FlowRecord } from '../schema/index.js';

/**
 * Where collectors put their FlowRecords. The JSONL sink writes them to a stream; the Kafka sink
 * (pipeline) and the in-process processor (embedded mode) implement the same interface, so a
 * collector never knows which wiring it runs in.
 */
export interface FlowSink {
  /** May return a promise to apply back-pressure; the caller awaits it before writing more. */
  write(record: FlowRecord): void | Promise<void>;
  /** Everything written so far is delivered (or durably spooled) when this resolves. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Lines are gathered into writes of about this many bytes. */
const JSONL_BATCH_BYTES = 64 * 1024;
/** Lines are encoded into Buffers of this size, a few batches each. */
const JSONL_BUFFER_BYTES = 4 * JSONL_BATCH_BYTES;

/**
 * Writes one record per line. A stream write per line cost more than the JSON itself (a Buffer and
 * a queue entry per line), so lines are gathered and written when the batch is full or, at the
 * latest, on the next turn of the event loop: a live collector's records still go out at once.
 * Lines are encoded straight into a Buffer: appending them to a string made a rope that the stream
 * then flattened and encoded again.
 */
export class JsonlSink implements FlowSink {
  private buf = Buffer.allocUnsafe(JSONL_BUFFER_BYTES);
  /** buf[start, used) holds the lines not yet handed to the stream; the stream may still hold what is before. */
  private start = 0;
  private used = 0;
  private scheduled = false;
  private draining: Promise<void> | undefined;

  constructor(private readonly out: Writable) {}

  write(record: FlowRecord): void | Promise<void> {
    const line = JSON.stringify(record);
    // A UTF-16 code unit takes at most 3 bytes in UTF-8 (a surrogate pair, 2 units, takes 4).
    const room = line.length * 3 + 1;
    if (this.used + room > this.buf.length) {
      this.writePending();
      this.buf = Buffer.allocUnsafe(Math.max(JSONL_BUFFER_BYTES, room));
      this.start = 0;
      this.used = 0;
    }
    this.used += this.buf.write(line, this.used);
    this.buf[this.used++] = 0x0a;
    if (this.used - this.start >= JSONL_BATCH_BYTES) return this.writePending();
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.writePending();
      });
    }
  }

  /** Hands the gathered lines to the stream; resolves when the stream wants more. */
  private writePending(): Promise<void> | undefined {
    if (this.used > this.start) {
      // The stream keeps the chunk (a view) until it is written: later lines go after it.
      const chunk = this.buf.subarray(this.start, this.used);
      this.start = this.used;
      if (!this.out.write(chunk) && this.draining === undefined) {
        this.draining = new Promise((resolve) =>
          this.out.once('drain', () => {
            this.draining = undefined;
            resolve();
          }),
        );
      }
    }
    return this.draining;
  }

  async flush(): Promise<void> {
    this.writePending();
  }

  async close(): Promise<void> {
    this.writePending();
    if (this.out === process.stdout || this.out === process.stderr) return;
    await new Promise<void>((resolve, reject) =>
      this.out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
  }
}

/** Collects records in memory: for tests and the embedded wiring. */
export class ArraySink implements FlowSink {
  readonly records: FlowRecord[] = [];
  write(record: FlowRecord): void {
    this.records.push(record);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

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

/** Lines are gathered into writes of about this many characters. */
const JSONL_BATCH_CHARS = 64 * 1024;

/**
 * Writes one record per line. A stream write per line cost more than the JSON itself (a Buffer and
 * a queue entry per line), so lines are gathered and written when the batch is full or, at the
 * latest, on the next turn of the event loop: a live collector's records still go out at once.
 */
export class JsonlSink implements FlowSink {
  private pending = '';
  private scheduled = false;
  private draining: Promise<void> | undefined;

  constructor(private readonly out: Writable) {}

  write(record: FlowRecord): void | Promise<void> {
    this.pending += `${JSON.stringify(record)}\n`;
    if (this.pending.length >= JSONL_BATCH_CHARS) return this.writePending();
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
    if (this.pending !== '') {
      const chunk = this.pending;
      this.pending = '';
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

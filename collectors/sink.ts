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

export class JsonlSink implements FlowSink {
  constructor(private readonly out: Writable) {}

  write(record: FlowRecord): void | Promise<void> {
    if (this.out.write(`${JSON.stringify(record)}\n`)) return;
    return new Promise((resolve) => this.out.once('drain', resolve));
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
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

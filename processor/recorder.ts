import type { JudgedFlow, JudgedSink } from './processor.js';
import type { AuditStore, OffsetPosition } from './store/index.js';

/**
 * Writes judged flows to the store in batches. The store is the only writer of its SQLite file; in
 * scale-out mode one recorder consumes the processors' verdicts. A batch and the input positions it
 * covers are committed together (see AuditStore.applyBatch).
 */
export class StoreRecorder implements JudgedSink {
  private batch: JudgedFlow['stored'][] = [];
  private pendingOffsets = new Map<string, OffsetPosition>();
  written = 0;

  constructor(
    private readonly store: AuditStore,
    private readonly batchSize = 5000,
  ) {}

  write(judged: JudgedFlow): void {
    this.batch.push(judged.stored);
    if (this.batch.length >= this.batchSize) this.commit();
  }

  /** Positions to commit with the next batch: everything before them has been written. */
  advance(position: OffsetPosition): void {
    this.pendingOffsets.set(
      `${position.consumer}\u0000${position.topic}\u0000${position.partition}`,
      position,
    );
  }

  commit(): void {
    if (this.batch.length === 0 && this.pendingOffsets.size === 0) return;
    this.store.applyBatch(this.batch, [...this.pendingOffsets.values()]);
    this.written += this.batch.length;
    this.batch = [];
    this.pendingOffsets.clear();
  }

  async flush(): Promise<void> {
    this.commit();
  }
}

import type { JudgedFlow, JudgedSink } from '../processor/processor.js';
import { identityOf } from '../processor/store/identity.js';
import { type AuditStore, keepsEvidence, type OffsetPosition } from '../processor/store/index.js';

/**
 * Writes judged flows to the store in batches. The store is the only writer of its SQLite file; in
 * scale-out mode one recorder consumes the processors' verdicts. A batch and the input positions it
 * covers are committed together (see AuditStore.applyBatch). Every flow carries its identity, so the
 * store counts a flow it has already counted (same capture again, rerun, second observer) once.
 */
/** Flows and input positions written but not committed yet (StoreRecorder.take). */
export interface RecorderUnit {
  flows: JudgedFlow['stored'][];
  offsets: OffsetPosition[];
}

export class StoreRecorder implements JudgedSink {
  private batch: JudgedFlow['stored'][] = [];
  private pendingOffsets = new Map<string, OffsetPosition>();
  written = 0;
  /** Flows the store had already counted, not added again. */
  duplicates = 0;
  /** Of those, observed here with more packets than the observation the store kept. */
  largerThanStored = 0;

  constructor(
    private readonly store: AuditStore,
    /**
     * Flows per transaction. Fewer means more commits; more means more live flows for the young
     * generation's garbage collector to copy until the commit. 2,000 beat 5,000 by ~10% of CPU per
     * flow on the shop stream and tied on the mixed one (bench/embedded.ts, docs/pipeline.md).
     */
    private readonly batchSize = 2000,
    /** Called inside each batch's transaction with the flows counted for the first time (alerts). */
    private readonly onCounted?: (fresh: readonly JudgedFlow['stored'][]) => void,
  ) {}

  write(judged: JudgedFlow): void {
    const stored = judged.stored;
    // A verdict from Kafka (scale-out) has no record: its evidence is the judged record.
    const identity = stored.identity ?? identityOf(judged.record ?? stored.evidence);
    // The batch holds its flows until the commit: an allowed flow's evidence (the judged record, most
    // of what a flow holds) is let go now, not copied by every garbage collection until then.
    const evidence = keepsEvidence(stored.classification) ? stored.evidence : null;
    if (identity === stored.identity && evidence === stored.evidence) this.batch.push(stored);
    else this.batch.push(identity ? { ...stored, evidence, identity } : { ...stored, evidence });
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
    this.commitTaken(this.take());
  }

  /**
   * What was written since the last commit, taken out to be committed later with `commitTaken`
   * (the pipeline commits a Kafka batch once its side outputs are published, while it judges the
   * next one). Units must be committed in the order they were taken: each one's positions assume
   * the ones before it.
   */
  take(): RecorderUnit {
    const unit = { flows: this.batch, offsets: [...this.pendingOffsets.values()] };
    this.batch = [];
    this.pendingOffsets.clear();
    return unit;
  }

  commitTaken(unit: RecorderUnit): void {
    if (unit.flows.length === 0 && unit.offsets.length === 0) return;
    const result = this.store.applyBatch(unit.flows, unit.offsets, this.onCounted);
    this.written += result.stored;
    this.duplicates += result.duplicates;
    this.largerThanStored += result.largerThanStored;
  }

  async flush(): Promise<void> {
    this.commit();
  }
}

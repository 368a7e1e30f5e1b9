import { type CollectOptions, type CollectSummary, collectCaptureFiles } from '../collectors/flow/collect.js';
import type { ClusterView } from '../processor/cluster-view.js';
import { FlowProcessor } from '../processor/processor.js';
import type { AuditStore, StoredFlow } from '../processor/store/index.js';
import { StoreRecorder } from '../sinks/store.js';
import { TapSink } from '../sinks/tee.js';

/**
 * The embedded wiring: captures → collector → processor → store (→ alerts, through the store's
 * transaction), in one process. The Kafka wiring (kafka.ts) puts topics between the same stages.
 */
export interface EmbeddedOptions {
  captures: string[];
  cluster: ClusterView;
  store: AuditStore;
  /** Called in each batch's transaction with the flows counted for the first time (the alert stage). */
  onCounted?: (fresh: readonly StoredFlow[]) => void;
  collect: CollectOptions;
}

export interface EmbeddedResult {
  processor: FlowProcessor;
  recorder: StoreRecorder;
  collected: CollectSummary;
  /** Flows with at least one end the cluster knows (a pod, Service or node). */
  placed: number;
}

export async function runEmbedded(opts: EmbeddedOptions): Promise<EmbeddedResult> {
  const recorder = new StoreRecorder(opts.store, undefined, opts.onCounted);
  let placed = 0;
  const processor = new FlowProcessor(
    opts.cluster,
    new TapSink(recorder, (judged) => {
      if (judged.record.src.kind !== 'external' || judged.record.dst.kind !== 'external') placed++;
    }),
  );
  const collected = await collectCaptureFiles(opts.captures, processor, opts.collect);
  await processor.close();
  return { processor, recorder, collected, placed };
}

import type { Classification } from '../processor/classify.js';
import type { CheckRecord } from '../processor/judge/index.js';
import type { StoredFlow } from '../processor/store/index.js';

/**
 * The outputs of the processor stage. A JudgedSink takes judged flows: the store (store.ts), Kafka
 * verdicts (the judge role of the pipeline), several at once (tee.ts). The processor writes to one
 * and does not know which, so embedded and Kafka wirings use the same stage.
 */

export interface JudgedFlow {
  record: CheckRecord;
  classification: Classification;
  stored: StoredFlow;
}

export interface JudgedSink {
  write(judged: JudgedFlow): void | Promise<void>;
  flush(): Promise<void>;
}

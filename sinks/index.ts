/**
 * Sinks: where judged flows go. One small interface (types.ts); the store (store.ts), fan-out and
 * taps (tee.ts). A new output (an alert receiver is not one: alerts hang off the store's
 * transaction, see alerts/) is a module here implementing JudgedSink.
 */
export { StoreRecorder } from './store.js';
export { TapSink, TeeSink } from './tee.js';
export type { JudgedFlow, JudgedSink } from './types.js';

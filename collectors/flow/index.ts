export {
  type CollectOptions,
  type CollectSummary,
  collectCaptureFiles,
  collectCaptureStream,
  emptySummary,
} from './collect.js';
export {
  DEFAULT_ACTIVE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUTS,
  DEFAULT_MAX_FLOWS,
  type FlowObserver,
  FlowTable,
  type FlowTableOptions,
  type FlowTableStats,
  flowHash,
  type IdleTimeouts,
  isIcmpError,
} from './table.js';

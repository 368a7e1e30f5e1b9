/**
 * The cluster inventory: who held an address at a time, from a snapshot or from the API server's
 * events over time. A barrel: the inventory itself is inventory.ts, the snapshot reader snapshot.ts,
 * state over time timeline.ts.
 */
export * from './inventory.js';
export type { ClusterModel } from './model.js';
export type { SnapshotResult, SnapshotSource } from './snapshot.js';
export { ClusterModelBuilder, loadSnapshotFiles, parseSnapshot, SNAPSHOT_ISSUE } from './snapshot.js';
export {
  type ClusterAt,
  ClusterTimeline,
  type ClusterTimelineOptions,
  type ClusterTimelineStats,
  DEFAULT_HORIZON_MS,
  DEFAULT_INITIAL_SYNC_MS,
  type IpClaim,
  type PolicyVersionSpan,
  TIMELINE_ISSUE,
} from './timeline.js';

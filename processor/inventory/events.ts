/**
 * How cluster changes reach the time-versioned inventory. Snapshots (one `replace` per kind at the
 * snapshot's time) and the live API watcher (list = `replace`, watch events = `upsert`/`remove`)
 * feed the same sink, so the processor never knows where its cluster state came from. Objects are
 * raw Kubernetes JSON as the API server (or kubectl) returns them; `at` is Unix epoch milliseconds
 * of the moment the change took effect as far as the source can tell.
 */
export type WatchedKind =
  | 'Namespace'
  | 'Pod'
  | 'Node'
  | 'Service'
  | 'EndpointSlice'
  | 'NetworkPolicy'
  | 'AdminNetworkPolicy'
  | 'BaselineAdminNetworkPolicy'
  | 'ClusterNetworkPolicy';

export interface ClusterChangeSink {
  /** The complete current set of one kind (an initial list or a relist after 410 Gone). */
  replace(kind: WatchedKind, objects: unknown[], at: number): void;
  /** An object was added or modified. */
  upsert(kind: WatchedKind, object: unknown, at: number): void;
  /** An object was deleted. */
  remove(kind: WatchedKind, object: unknown, at: number): void;
}

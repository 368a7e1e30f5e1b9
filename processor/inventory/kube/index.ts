/**
 * The live Kubernetes inventory source: follows the cluster through the API server (list + watch) and
 * feeds a ClusterChangeSink, the same interface snapshots feed. See docs/kube.md.
 */
export {
  forbiddenError,
  isForbidden,
  isGone,
  isNotFound,
  type KubeConnectionOptions,
  KubeHttpError,
  loadKubeConfig,
  openWatch,
  requestJson,
  SERVICE_ACCOUNT_DIR,
  type WatchEvent,
  type WatchStream,
} from './client.js';
export { type CompleteList, type ListOptions, listComplete } from './list.js';
export { KUBE_RESOURCES, type KubeResource, normalizeObject, resourceOf } from './resources.js';
export { type SnapshotListResult, snapshotCluster, snapshotYaml } from './snapshot.js';
export {
  type BackoffOptions,
  type KindHealth,
  type KindState,
  KubeInventorySource,
  type KubeInventorySourceOptions,
  type KubeSourceHealth,
} from './source.js';

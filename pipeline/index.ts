/**
 * The composition root: where the stages are wired. cluster.ts opens the cluster (snapshot or API
 * server) for every command; embedded.ts wires collector → processor → store in one process;
 * kafka.ts wires the same stages across Kafka topics (roles all, judge, record). Commands (cli/)
 * parse flags, call these, and render; stages (collectors/, processor/, sinks/, alerts/) do not
 * know which wiring they are in.
 */
export {
  assertSnapshotUsable,
  CLUSTER_OPTIONS,
  CLUSTER_USAGE,
  type ClusterOptions,
  clusterOptionsFrom,
  type OpenedCluster,
  openCluster,
  policyOptionsFrom,
  type RuleDefinition,
} from './cluster.js';
export { type EmbeddedOptions, type EmbeddedResult, runEmbedded } from './embedded.js';
export { PipelineRunner, type Role, type RunnerOptions, type RunnerStats, runPipeline } from './kafka.js';

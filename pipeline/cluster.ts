import { AuditError, formatIssue, type InputIssue, UsageError } from '../lib/errors.js';
import type { ClusterView } from '../processor/cluster-view.js';
import { StaticClusterView } from '../processor/cluster-view.js';
import {
  type ClusterModel,
  Inventory,
  loadSnapshotFiles,
  SNAPSHOT_ISSUE,
} from '../processor/inventory/index.js';
import { compilePolicyIndex } from '../processor/policy/index.js';
import {
  DEFAULT_POLICY_OPTIONS,
  type PolicyIndexApi,
  type PolicyOptions,
} from '../processor/policy/types.js';
import { type PolicyVersion, policyVersionsInForce } from '../processor/policy/versions.js';
import type { RuleDefinition } from '../processor/store/index.js';
import { type LiveCluster, openLiveCluster } from './live-cluster.js';

/**
 * Opening the cluster, once, for every command that judges flows (audit, check, explain, process):
 * a snapshot or the API server, with one set of options and one error policy. A snapshot that is
 * missing, unreadable, not YAML/JSON or holds no object is fatal for all of them (judging against
 * an empty cluster would allow everything, docs/trust.md); problems inside it are issues, with the
 * file and line of the object they concern.
 */

/** The options every judging command takes, under the same names. */
export const CLUSTER_OPTIONS = {
  cluster: { type: 'string', multiple: true },
  'cluster-domain': { type: 'string' },
  'ipblock-matches-pods': { type: 'string' },
  'host-network': { type: 'string' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  'in-cluster': { type: 'boolean' },
  'history-hours': { type: 'string' },
} as const;

export const CLUSTER_USAGE = `  --cluster FILE             cluster snapshot (repeatable), or:
  --kubeconfig FILE          follow the live cluster (list + watch, docs/kube.md); --context NAME
  --in-cluster               follow the live cluster with the pod's service account (token and CA
                             under /var/run/secrets/kubernetes.io/serviceaccount, the API server
                             the pod's environment names; docs/deploy.md)
  --history-hours H          live: cluster history kept for late flows (default 6)
  --cluster-domain D         cluster DNS domain for names (default cluster.local)
  --ipblock-matches-pods B   true (default, upstream) or false (Cilium): ipBlock peers match pod IPs
  --host-network M           node (default): hostNetwork pods count as their node; pod: as pods`;

export interface ClusterOptions {
  snapshots: string[];
  kubeconfig?: string;
  context?: string;
  /** Follow the cluster with the pod's service account (no kubeconfig). */
  inCluster?: boolean;
  historyHours?: string;
  clusterDomain?: string;
  policy: PolicyOptions;
}

type ClusterValues = {
  cluster?: string[] | undefined;
  'cluster-domain'?: string | undefined;
  'ipblock-matches-pods'?: string | undefined;
  'host-network'?: string | undefined;
  kubeconfig?: string | undefined;
  context?: string | undefined;
  'in-cluster'?: boolean | undefined;
  'history-hours'?: string | undefined;
};

export function policyOptionsFrom(values: ClusterValues): PolicyOptions {
  const out: PolicyOptions = { ...DEFAULT_POLICY_OPTIONS };
  const ib = values['ipblock-matches-pods'];
  if (ib !== undefined) {
    if (ib !== 'true' && ib !== 'false')
      throw new UsageError(`--ipblock-matches-pods must be true or false, not '${ib}'`);
    out.ipBlockMatchesPods = ib === 'true';
  }
  const hn = values['host-network'];
  if (hn !== undefined) {
    if (hn !== 'node' && hn !== 'pod')
      throw new UsageError(`--host-network must be node or pod, not '${hn}'`);
    out.hostNetwork = hn;
  }
  return out;
}

/** The parsed CLUSTER_OPTIONS; `live` says whether the command may follow the API server. */
export function clusterOptionsFrom(values: ClusterValues, live = true): ClusterOptions {
  const snapshots = values.cluster ?? [];
  const inCluster = values['in-cluster'] === true;
  const liveWanted = values.kubeconfig !== undefined || values.context !== undefined || inCluster;
  if (liveWanted && !live)
    throw new UsageError(
      `${inCluster ? '--in-cluster' : '--kubeconfig'} is not available here: give --cluster`,
    );
  if (snapshots.length === 0 && !liveWanted)
    throw new UsageError(
      live ? '--cluster or --kubeconfig is required (or --in-cluster in a pod)' : '--cluster is required',
    );
  if (snapshots.length > 0 && liveWanted)
    throw new UsageError('--cluster excludes --kubeconfig, --context and --in-cluster');
  if (inCluster && (values.kubeconfig !== undefined || values.context !== undefined))
    throw new UsageError('--in-cluster excludes --kubeconfig and --context');
  const out: ClusterOptions = { snapshots, policy: policyOptionsFrom(values) };
  if (inCluster) out.inCluster = true;
  if (values.kubeconfig !== undefined) out.kubeconfig = values.kubeconfig;
  if (values.context !== undefined) out.context = values.context;
  if (values['history-hours'] !== undefined) out.historyHours = values['history-hours'];
  if (values['cluster-domain'] !== undefined) out.clusterDomain = values['cluster-domain'];
  return out;
}

export type { RuleDefinition } from '../processor/store/index.js';

export interface OpenedCluster {
  view: ClusterView;
  /** Snapshot, inventory and policy problems (live: also passed to onIssue as they come). */
  issues: InputIssue[];
  /** The rules and the policy versions in force at a moment, for the store's rule list. */
  policiesAt(ms: number): { rules: RuleDefinition[]; policies: PolicyVersion[] };
  /** Times at which the cluster changed (live), so a run records each version in force. */
  versionTimes(): number[];
  /** One line for a summary. */
  describe(): string;
  /** The labels of a namespace as the cluster had them at `atMs` (alert routes by namespace labels). */
  namespaceLabels(namespace: string, atMs: number): Record<string, string> | undefined;
  /** Live: the API watch's health per kind (metrics). */
  health?(): { kind: string; relists: number; errors: number; lastEventAt?: number }[];
  /** A snapshot's parts, for commands that need them directly (explain). */
  snapshot?: { cluster: ClusterModel; inventory: Inventory; index: PolicyIndexApi };
  close(): Promise<void>;
}

function rulesOf(index: PolicyIndexApi): RuleDefinition[] {
  return index.rules().map((r) => ({
    kind: r.kind,
    policy: r.policy,
    direction: r.direction,
    rule: r.rule,
    summary: r.summary,
  }));
}

export async function openCluster(
  opts: ClusterOptions,
  onIssue?: (i: InputIssue) => void,
): Promise<OpenedCluster> {
  if (opts.snapshots.length === 0) return openLive(opts, onIssue);
  const snapshot = await loadSnapshotFiles(opts.snapshots);
  assertSnapshotUsable(opts.snapshots, snapshot.issues, snapshot.cluster);
  const inventory = new Inventory(
    snapshot.cluster,
    opts.clusterDomain ? { clusterDomain: opts.clusterDomain } : {},
  );
  const compiled = compilePolicyIndex(snapshot.cluster, opts.policy);
  // The compiler names the policy and field; the snapshot knows the file and line it came from.
  // Cluster-scoped policies are named `Kind/name` by the compiler and `name` by the snapshot.
  const clusterScoped = /^(AdminNetworkPolicy|BaselineAdminNetworkPolicy|ClusterNetworkPolicy)\//;
  const policyIssues = compiled.issues.map((i) => {
    const at =
      i.source === undefined && i.object !== undefined
        ? (snapshot.policyLocations.get(i.object) ??
          (clusterScoped.test(i.object)
            ? snapshot.policyLocations.get(i.object.slice(i.object.indexOf('/') + 1))
            : undefined))
        : undefined;
    return at ? { ...i, ...at } : i;
  });
  const issues = [...snapshot.issues, ...inventory.issues, ...policyIssues];
  for (const i of issues) onIssue?.(i);
  const c = snapshot.cluster;
  const fixed = {
    rules: rulesOf(compiled.index),
    policies: policyVersionsInForce(
      [...c.networkPolicies, ...(c.clusterNetworkPolicies ?? [])],
      compiled.issues,
    ),
  };
  const rejected = new Set(
    policyIssues.filter((i) => i.severity === 'error' && i.object).map((i) => i.object),
  );
  const policies = c.networkPolicies.length + (c.clusterNetworkPolicies?.length ?? 0);
  return {
    view: new StaticClusterView(inventory, compiled.index),
    issues,
    policiesAt: () => fixed,
    namespaceLabels: (ns) => inventory.namespace(ns)?.labels,
    versionTimes: () => [],
    describe: () =>
      `cluster: ${c.pods.length} pods, ${c.services.length} services, ${policies} policies (${rejected.size} rejected)`,
    snapshot: { cluster: c, inventory, index: compiled.index },
    close: async () => {},
  };
}

async function openLive(opts: ClusterOptions, onIssue?: (i: InputIssue) => void): Promise<OpenedCluster> {
  const issues: InputIssue[] = [];
  const live: LiveCluster = await openLiveCluster({
    kubeconfig: opts.kubeconfig,
    context: opts.context,
    inCluster: opts.inCluster,
    historyHours: opts.historyHours,
    clusterDomain: opts.clusterDomain,
    policy: opts.policy,
    onIssue: (i) => {
      issues.push(i);
      onIssue?.(i);
    },
  });
  const timeline = live.timeline;
  return {
    view: timeline,
    issues,
    policiesAt: (ms) => ({ rules: rulesOf(timeline.at(ms).index), policies: timeline.policiesAt(ms) }),
    versionTimes: () => timeline.versionTimes(),
    namespaceLabels: (ns, at) => timeline.at(at).inventory.namespace(ns)?.labels,
    health: () => live.source.healthReport().kinds,
    describe: () => {
      const st = timeline.stats();
      return `live cluster: ${st.versions} version(s), ${st.changes} change(s)`;
    },
    close: () => live.close(),
  };
}

/**
 * A snapshot that is missing, unreadable, not YAML/JSON, or holds no Kubernetes object at all would
 * judge every flow against an empty cluster (no policy: everything allowed). That is a fatal input
 * problem, not a finding: the command stops before anything is stored or judged.
 */
export function assertSnapshotUsable(paths: string[], found: InputIssue[], cluster: ClusterModel): void {
  const fatal = found.filter(
    (i) =>
      i.severity === 'error' && (i.code === SNAPSHOT_ISSUE.unreadable || i.code === SNAPSHOT_ISSUE.syntax),
  );
  if (fatal.length > 0)
    throw new AuditError(
      'AUDIT_SNAPSHOT_UNUSABLE',
      `the cluster snapshot cannot be used, nothing was judged or stored: ${fatal.map(formatIssue).join('; ')}`,
      { source: fatal[0]!.source },
    );
  const objects =
    cluster.namespaces.length +
    cluster.pods.length +
    cluster.nodes.length +
    cluster.services.length +
    cluster.endpointSlices.length +
    cluster.networkPolicies.length +
    (cluster.clusterNetworkPolicies?.length ?? 0);
  if (objects === 0)
    throw new AuditError(
      'AUDIT_SNAPSHOT_EMPTY',
      'the cluster snapshot holds no Kubernetes object (an empty file, or a failed kubectl get?): nothing to judge against, nothing was judged or stored',
      { source: paths.join(', ') },
    );
}

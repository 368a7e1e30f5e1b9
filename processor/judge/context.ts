import { AuditError, type InputIssue } from '../../lib/errors.js';
import { Inventory } from '../inventory/index.js';
import { loadSnapshotFiles, SNAPSHOT_ISSUE } from '../inventory/snapshot.js';
import { compilePolicyIndex } from '../policy/index.js';
import type { PolicyIndexApi, PolicyOptions } from '../policy/types.js';

/** Everything a judge needs, loaded from snapshot files: the inventory and the compiled policies. */
export interface JudgeContext {
  inventory: Inventory;
  index: PolicyIndexApi;
  /** Snapshot, inventory and policy problems, in that order. */
  issues: InputIssue[];
  /** Counts for the summary line. */
  counts: { pods: number; services: number; nodes: number; policies: number; rejectedPolicies: number };
}

export interface JudgeContextOptions {
  clusterDomain?: string;
  policy?: Partial<PolicyOptions>;
}

/**
 * Loads snapshots, builds the inventory and compiles the policies. A file that cannot be read is fatal
 * (judging without the cluster would call everything allowed); problems inside the files are not.
 */
export async function loadJudgeContext(
  paths: string[],
  options: JudgeContextOptions = {},
): Promise<JudgeContext> {
  const snapshot = await loadSnapshotFiles(paths);
  const unreadable = snapshot.issues.find((i) => i.code === SNAPSHOT_ISSUE.unreadable);
  if (unreadable) {
    throw new AuditError(
      unreadable.code,
      unreadable.message,
      unreadable.source ? { source: unreadable.source } : {},
    );
  }
  const inventory = new Inventory(
    snapshot.cluster,
    options.clusterDomain ? { clusterDomain: options.clusterDomain } : {},
  );
  const compiled = compilePolicyIndex(snapshot.cluster, options.policy);
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
  const rejected = new Set(
    policyIssues.filter((i) => i.severity === 'error' && i.object).map((i) => i.object),
  );
  return {
    inventory,
    index: compiled.index,
    issues: [...snapshot.issues, ...inventory.issues, ...policyIssues],
    counts: {
      pods: snapshot.cluster.pods.length,
      services: snapshot.cluster.services.length,
      nodes: snapshot.cluster.nodes.length,
      policies:
        snapshot.cluster.networkPolicies.length + (snapshot.cluster.clusterNetworkPolicies?.length ?? 0),
      rejectedPolicies: rejected.size,
    },
  };
}

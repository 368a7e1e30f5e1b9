import type { WatchedKind } from '../events.js';

/** Where the API server serves each kind the inventory follows, cluster-wide. */
export interface KubeResource {
  kind: WatchedKind;
  apiVersion: string;
  /** Plural resource name, as RBAC rules name it. */
  resource: string;
  /** API group ('' for the core group). */
  group: string;
  /** Collection path across all namespaces. */
  path: string;
  /**
   * Served only where a CRD installs it (sigs.k8s.io/network-policy-api). Absence is normal: it is
   * logged once and rechecked now and then, and it does not hold back readiness.
   */
  optional: boolean;
}

function core(kind: WatchedKind, resource: string): KubeResource {
  return { kind, apiVersion: 'v1', resource, group: '', path: `/api/v1/${resource}`, optional: false };
}

function grouped(kind: WatchedKind, group: string, version: string, resource: string, optional = false) {
  return {
    kind,
    apiVersion: `${group}/${version}`,
    resource,
    group,
    path: `/apis/${group}/${version}/${resource}`,
    optional,
  } satisfies KubeResource;
}

export const KUBE_RESOURCES: readonly KubeResource[] = [
  core('Namespace', 'namespaces'),
  core('Node', 'nodes'),
  core('Pod', 'pods'),
  core('Service', 'services'),
  grouped('EndpointSlice', 'discovery.k8s.io', 'v1', 'endpointslices'),
  grouped('NetworkPolicy', 'networking.k8s.io', 'v1', 'networkpolicies'),
  grouped('AdminNetworkPolicy', 'policy.networking.k8s.io', 'v1alpha1', 'adminnetworkpolicies', true),
  grouped(
    'BaselineAdminNetworkPolicy',
    'policy.networking.k8s.io',
    'v1alpha1',
    'baselineadminnetworkpolicies',
    true,
  ),
  grouped('ClusterNetworkPolicy', 'policy.networking.k8s.io', 'v1alpha2', 'clusternetworkpolicies', true),
];

export function resourceOf(kind: WatchedKind): KubeResource {
  const r = KUBE_RESOURCES.find((x) => x.kind === kind);
  if (!r) throw new Error(`no API resource known for kind ${kind}`);
  return r;
}

/**
 * List items of built-in kinds come without kind/apiVersion (the List names them once); watch events and
 * custom resources carry them. Every object handed on names its kind, so consumers can treat both alike.
 * managedFields are dropped: large, never used by the audit, and kubectl hides them too.
 */
export function normalizeObject(obj: Record<string, unknown>, r: KubeResource): Record<string, unknown> {
  const { apiVersion, kind, ...rest } = obj;
  const meta = rest.metadata as Record<string, unknown> | undefined;
  if (meta && meta.managedFields !== undefined) delete meta.managedFields;
  return { apiVersion: apiVersion ?? r.apiVersion, kind: kind ?? r.kind, ...rest };
}

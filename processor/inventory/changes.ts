import type { InputIssue } from '../../lib/errors.js';
import { issue } from '../../lib/errors.js';
import { isJsonObject, type JsonObject } from '../../lib/json.js';
import type { WatchedKind } from './events.js';
import { ClusterModelBuilder } from './snapshot.js';

/**
 * Reading the objects of cluster changes (watch events, lists, snapshots) for the timeline: which
 * kinds it holds, the key each object is held under, and the parsed model of each object.
 */

export const TIMELINE_ISSUE = {
  /** The change names a kind that the object itself contradicts, or no usable metadata.name. */
  badChange: 'TIMELINE_BAD_CHANGE',
  /** The change time is not a number. */
  badTime: 'TIMELINE_BAD_TIME',
} as const;

export const KINDS: readonly WatchedKind[] = [
  'Namespace',
  'Pod',
  'Node',
  'Service',
  'EndpointSlice',
  'NetworkPolicy',
  'AdminNetworkPolicy',
  'BaselineAdminNetworkPolicy',
  'ClusterNetworkPolicy',
];

/** Watch and list items often lack kind/apiVersion (the List carries them); the parser needs both. */
const DEFAULT_API_VERSION: Record<WatchedKind, string> = {
  Namespace: 'v1',
  Pod: 'v1',
  Node: 'v1',
  Service: 'v1',
  EndpointSlice: 'discovery.k8s.io/v1',
  NetworkPolicy: 'networking.k8s.io/v1',
  AdminNetworkPolicy: 'policy.networking.k8s.io/v1alpha1',
  BaselineAdminNetworkPolicy: 'policy.networking.k8s.io/v1alpha1',
  ClusterNetworkPolicy: 'policy.networking.k8s.io/v1alpha2',
};

const CLUSTER_SCOPED = new Set<WatchedKind>([
  'Namespace',
  'Node',
  'AdminNetworkPolicy',
  'BaselineAdminNetworkPolicy',
  'ClusterNetworkPolicy',
]);

/** The kinds a compiled PolicyIndex depends on. */
export const POLICY_INPUTS = new Set<WatchedKind>([
  'Namespace',
  'Node',
  'NetworkPolicy',
  'AdminNetworkPolicy',
  'BaselineAdminNetworkPolicy',
  'ClusterNetworkPolicy',
]);

export const isPolicyKind = (k: WatchedKind) =>
  k === 'NetworkPolicy' ||
  k === 'AdminNetworkPolicy' ||
  k === 'BaselineAdminNetworkPolicy' ||
  k === 'ClusterNetworkPolicy';

/** Where reading a change reports: a rejected change (counted) and its issues (not deduplicated). */
export interface ChangeSink {
  rejected(): void;
  report(i: InputIssue): void;
}

/** `ns/name` (namespaced), `name` (Namespace, Node), `Kind/name` (cluster policies), as the builder keys them. */
export function keyOf(
  kind: WatchedKind,
  obj: unknown,
  prefix: string,
  source: string,
  record: number,
  sink: ChangeSink,
): string | undefined {
  const meta = isJsonObject(obj) && isJsonObject(obj.metadata) ? obj.metadata : undefined;
  const name = meta?.name;
  if (typeof name !== 'string' || name === '') {
    sink.rejected();
    sink.report(
      issue(TIMELINE_ISSUE.badChange, `${kind} without metadata.name; ignored`, {
        source: source,
        record: record,
        field: `${prefix}metadata.name`,
      }),
    );
    return undefined;
  }
  if (kind === 'Namespace' || kind === 'Node') return name;
  if (CLUSTER_SCOPED.has(kind)) return `${kind}/${name}`;
  const ns = meta?.namespace;
  return `${typeof ns === 'string' && ns !== '' ? ns : 'default'}/${name}`;
}

/** Reads one object of a change: its key, and its model (undefined when it cannot be read). */
export function parseChange(
  kind: WatchedKind,
  obj: unknown,
  prefix: string,
  source: string,
  record: number,
  sink: ChangeSink,
): { key?: string; model?: unknown } {
  const key = keyOf(kind, obj, prefix, source, record, sink);
  if (key === undefined) return {};
  const o = obj as JsonObject;
  if (o.kind !== undefined && o.kind !== kind) {
    sink.rejected();
    sink.report(
      issue(TIMELINE_ISSUE.badChange, `a ${kind} change carries a ${String(o.kind)} object; ignored`, {
        source: source,
        record: record,
        object: key,
        field: `${prefix}kind`,
      }),
    );
    return { key };
  }
  let full: JsonObject = { apiVersion: DEFAULT_API_VERSION[kind], ...o, kind };
  if (isPolicyKind(kind) && isJsonObject(o.metadata) && 'managedFields' in o.metadata) {
    // Raw policies are kept for the compiler and the store; managedFields is most of their bulk.
    const { managedFields: _drop, ...metadata } = o.metadata;
    full = { ...full, metadata };
  }
  const r = ClusterModelBuilder.parseObject(full, {
    source: source,
    record: record,
    line: undefined,
    prefix,
  });
  for (const i of r.issues) sink.report(i);
  if (r.model === undefined) {
    sink.rejected();
    if (r.issues.length === 0)
      sink.report(
        issue(
          TIMELINE_ISSUE.badChange,
          `${kind} with apiVersion ${String(full.apiVersion)} is not one the inventory reads; ignored`,
          { source: source, record: record, object: key, field: `${prefix}apiVersion` },
        ),
      );
  }
  return { key, model: r.model };
}

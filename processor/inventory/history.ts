import { type InputIssue, issue } from '../../lib/errors.js';
import { isJsonObject, type JsonObject } from '../../lib/json.js';
import type { PolicyVersion } from '../policy/versions.js';
import { isPolicyKind, KINDS } from './changes.js';
import type { WatchedKind } from './events.js';
import type { ClusterModel, NamespaceModel, PodModel } from './model.js';
import { NAMESPACE_NAME_LABEL, SNAPSHOT_ISSUE } from './snapshot.js';

/**
 * The objects of the timeline over time: each object's short history (one entry per change), the
 * cluster assembled from them at a moment, the policy versions they held, and their retention.
 */

/** One policy's content over a span of time; consecutive versions with the same spec are merged. */
export interface PolicyVersionSpan extends PolicyVersion {
  resourceVersion?: string;
  generation?: number;
  /** In force from this time (inclusive)... */
  validFrom: number;
  /** ...until this time (exclusive); absent while still in force. */
  validTo?: number;
}

export interface Entry {
  /** Version time from which this state holds. */
  from: number;
  /** The parsed model (raw object for policies); null once deleted. */
  model: unknown;
  /** Equal fingerprints mean equal for the audit: an upsert with the same one makes no version. */
  fingerprint: string;
  /** Pods: since when the pod has held its current addresses (the newest claimant wins conflicts). */
  claimSince?: number;
  /** Policies: content hash of spec, as the store records it. */
  hash?: string;
}

/** Each kind's objects by key, each with its history, oldest entry first. */
export type Objects = ReadonlyMap<WatchedKind, Map<string, Entry[]>>;

/** The ClusterModel in force at `ms`, assembled from the object histories (no Inventory, no compile). */
export function clusterModelAt(
  objects: Objects,
  ms: number,
  source: string,
  report: (i: InputIssue) => void,
): ClusterModel {
  const pick = <T>(kind: WatchedKind): { model: T; since: number }[] => {
    const out: { model: T; since: number }[] = [];
    for (const hist of objects.get(kind)!.values()) {
      const e = entryAt(hist, ms);
      if (e && e.model !== null) out.push({ model: e.model as T, since: e.claimSince ?? e.from });
    }
    return out;
  };
  // When two live pods claim one address (the older one's deletion not seen yet), the Inventory
  // keeps the Running one, then the first listed: list the newest claimant first.
  const pods = pick<PodModel>('Pod')
    .sort((a, b) => b.since - a.since)
    .map((p) => p.model);
  const namespaces = pick<NamespaceModel>('Namespace').map((n) => n.model);
  const services = pick<ClusterModel['services'][number]>('Service').map((s) => s.model);
  // As the snapshot parser does: a namespace that is used but unknown gets its certain name label,
  // so namespaceSelector rules do not silently turn into denials.
  const known = new Set(namespaces.map((n) => n.name));
  for (const ns of [...pods.map((p) => p.namespace), ...services.map((s) => s.namespace)]) {
    if (known.has(ns)) continue;
    known.add(ns);
    namespaces.push({ name: ns, labels: { [NAMESPACE_NAME_LABEL]: ns } });
    report(
      issue(
        SNAPSHOT_ISSUE.missingNamespace,
        `namespace ${ns} is used but not known; assuming only the label ${NAMESPACE_NAME_LABEL}=${ns}`,
        { source, object: ns },
        'warning',
      ),
    );
  }
  return {
    namespaces,
    pods,
    nodes: pick<ClusterModel['nodes'][number]>('Node').map((n) => n.model),
    services,
    endpointSlices: pick<ClusterModel['endpointSlices'][number]>('EndpointSlice').map((s) => s.model),
    networkPolicies: pick<unknown>('NetworkPolicy').map((p) => p.model),
    clusterNetworkPolicies: [
      ...pick<unknown>('AdminNetworkPolicy'),
      ...pick<unknown>('BaselineAdminNetworkPolicy'),
      ...pick<unknown>('ClusterNetworkPolicy'),
    ].map((p) => p.model),
  };
}

/**
 * Every policy version held, with the span it was in force, for the store's policy_versions:
 * within `range` when given (spans overlapping it).
 */
export function policyVersionSpans(
  objects: Objects,
  range: { since?: number; until?: number },
): PolicyVersionSpan[] {
  const since = range.since ?? Number.NEGATIVE_INFINITY;
  const until = range.until ?? Number.POSITIVE_INFINITY;
  const out: PolicyVersionSpan[] = [];
  for (const kind of KINDS) {
    if (!isPolicyKind(kind)) continue;
    for (const [key, hist] of objects.get(kind)!) {
      let open: PolicyVersionSpan | undefined;
      const close = (to: number | undefined) => {
        if (!open) return;
        if (to !== undefined) open.validTo = to;
        if (open.validFrom <= until && (open.validTo === undefined || open.validTo > since)) out.push(open);
        open = undefined;
      };
      for (const e of hist) {
        if (e.model === null) {
          close(e.from);
          continue;
        }
        if (open && open.hash === e.hash) continue;
        close(e.from);
        open = policySpan(kind, key, e);
      }
      close(undefined);
    }
  }
  return out.sort(
    (a, b) => a.validFrom - b.validFrom || (a.policy < b.policy ? -1 : a.policy > b.policy ? 1 : 0),
  );
}

/**
 * Drops history entries superseded at or before `first` (the start of the oldest version held) from the
 * objects in `prunable`, and objects deleted by then.
 */
export function pruneHistories(objects: Objects, prunable: Set<string>, first: number): void {
  for (const id of prunable) {
    const sep = id.indexOf('\u0000');
    const bucket = objects.get(id.slice(0, sep) as WatchedKind)!;
    const key = id.slice(sep + 1);
    const hist = bucket.get(key);
    if (!hist) {
      prunable.delete(id);
      continue;
    }
    let j = 0;
    while (j + 1 < hist.length && hist[j + 1]!.from <= first) j++;
    if (j > 0) hist.splice(0, j);
    if (hist.length === 1 && hist[0]!.from <= first) {
      prunable.delete(id);
      if (hist[0]!.model === null) bucket.delete(key);
    }
  }
}

function entryAt(hist: Entry[], ms: number): Entry | undefined {
  // Histories are short and mostly asked about recent times: scan from the end.
  for (let i = hist.length - 1; i >= 0; i--) if (hist[i]!.from <= ms) return hist[i];
  return undefined;
}

function policySpan(kind: WatchedKind, key: string, e: Entry): PolicyVersionSpan {
  const raw = e.model as JsonObject;
  const meta = isJsonObject(raw.metadata) ? raw.metadata : {};
  const span: PolicyVersionSpan = {
    kind,
    policy: kind === 'NetworkPolicy' ? key : key.slice(kind.length + 1),
    hash: e.hash!,
    spec: raw.spec ?? {},
    validFrom: e.from,
  };
  if (typeof meta.resourceVersion === 'string') span.resourceVersion = meta.resourceVersion;
  if (typeof meta.generation === 'number') span.generation = meta.generation;
  return span;
}

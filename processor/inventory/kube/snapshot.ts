import type { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { WatchedKind } from '../events.js';
import { forbiddenError, isForbidden, isNotFound, type KubeHttpError } from './client.js';
import { listComplete } from './list.js';
import { KUBE_RESOURCES } from './resources.js';

export interface SnapshotListResult {
  /** Every object of every followed kind, each with its kind and apiVersion. */
  items: Record<string, unknown>[];
  counts: Partial<Record<WatchedKind, number>>;
  /** CRD-served kinds this cluster does not serve. */
  absent: WatchedKind[];
  /** The resourceVersion of each kind's list. */
  resourceVersions: Partial<Record<WatchedKind, string>>;
}

/**
 * Lists every kind the audit reads, completely (paged), in the order the snapshot reader prefers
 * (namespaces before the objects in them). Kinds served by a CRD that is not installed are skipped and
 * named in `absent`; any other failure is an error: a snapshot missing a kind would mislead.
 */
export async function snapshotCluster(
  kc: KubeConfig,
  opts: { pageSize?: number } = {},
): Promise<SnapshotListResult> {
  const result: SnapshotListResult = { items: [], counts: {}, absent: [], resourceVersions: {} };
  for (const r of KUBE_RESOURCES) {
    try {
      const list = await listComplete(kc, r, { pageSize: opts.pageSize ?? 500 });
      result.items.push(...list.items);
      result.counts[r.kind] = list.items.length;
      result.resourceVersions[r.kind] = list.resourceVersion;
    } catch (err) {
      if (r.optional && isNotFound(err)) {
        result.absent.push(r.kind);
        continue;
      }
      if (isForbidden(err)) throw forbiddenError(`list ${r.kind} (${r.path})`, err as KubeHttpError);
      throw new Error(`listing ${r.kind} (${r.path}) failed: ${(err as Error).message}`);
    }
  }
  return result;
}

/** The `List` YAML `kubectl get ... -o yaml` prints, which processor/inventory/snapshot.ts reads. */
export function snapshotYaml(items: readonly Record<string, unknown>[]): string {
  return stringify(
    { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items },
    // Long strings (annotations with embedded JSON) stay on one line, as kubectl prints them.
    { lineWidth: 0, aliasDuplicateObjects: false },
  );
}

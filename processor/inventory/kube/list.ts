import type { KubeConfig } from '@kubernetes/client-node';
import { isJsonObject } from '../../../lib/json.js';
import { isGone, requestJson } from './client.js';
import { type KubeResource, normalizeObject } from './resources.js';

export interface CompleteList {
  items: Record<string, unknown>[];
  /** The collection's resourceVersion: a watch from here misses nothing and repeats nothing. */
  resourceVersion: string;
  /** Pages of the list returned. */
  pages: number;
  /** The paged list broke off (continue token expired) and was read again unpaged. */
  restarted: boolean;
}

export interface ListOptions {
  /** Objects per page (the `limit` parameter); 0 = no paging. */
  pageSize?: number;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Called after each page but the last, before the next is asked for (progress; tests). */
  onPage?: (page: number, items: number) => Promise<void> | void;
}

interface ListBody {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: unknown[];
}

/**
 * Lists one kind completely, page by page (limit/continue), and returns only a complete list: all pages
 * come from the same snapshot of etcd (the continue token pins its revision), so the items are one
 * consistent state. If the continue token expires mid-way (410: the pinned revision was compacted),
 * the pages read so far are dropped and the list restarts without paging, as client-go's reflector does,
 * because the same would likely happen again for a large list on a busy cluster.
 */
export async function listComplete(
  kc: KubeConfig,
  r: KubeResource,
  opts: ListOptions = {},
): Promise<CompleteList> {
  const pageSize = opts.pageSize ?? 500;
  try {
    return await listPaged(kc, r, pageSize, opts);
  } catch (err) {
    if (!isGone(err) || pageSize === 0) throw err;
    return { ...(await listPaged(kc, r, 0, opts)), restarted: true };
  }
}

async function listPaged(
  kc: KubeConfig,
  r: KubeResource,
  pageSize: number,
  opts: ListOptions,
): Promise<CompleteList> {
  const items: Record<string, unknown>[] = [];
  let token: string | undefined;
  let pages = 0;
  for (;;) {
    const q = new URLSearchParams();
    if (pageSize > 0) q.set('limit', String(pageSize));
    if (token) q.set('continue', token);
    const qs = q.toString();
    const body = (await requestJson(kc, qs ? `${r.path}?${qs}` : r.path, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    })) as ListBody;
    pages++;
    if (!Array.isArray(body.items)) throw new Error(`${r.path}: list answer has no items array`);
    for (const item of body.items) {
      if (isJsonObject(item)) {
        items.push(normalizeObject(item, r));
      }
    }
    token = body.metadata?.continue || undefined;
    if (!token) {
      const resourceVersion = body.metadata?.resourceVersion;
      if (!resourceVersion) throw new Error(`${r.path}: list answer has no metadata.resourceVersion`);
      return { items, resourceVersion, pages, restarted: false };
    }
    await opts.onPage?.(pages, items.length);
  }
}

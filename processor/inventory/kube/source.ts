import { setMaxListeners } from 'node:events';
import type { KubeConfig } from '@kubernetes/client-node';
import { type Logger, log } from '../../../lib/log.js';
import type { ClusterChangeSink, WatchedKind } from '../events.js';
import {
  isForbidden,
  isGone,
  isNotFound,
  KubeHttpError,
  openWatch,
  type WatchEvent,
  type WatchStream,
} from './client.js';
import { listComplete } from './list.js';
import { KUBE_RESOURCES, type KubeResource, normalizeObject } from './resources.js';

/**
 * The live inventory source: list + watch of the kinds the audit needs, fed into a ClusterChangeSink.
 * This is the adapter edge, so it alone reads the clock: `at` is when the change was received.
 *
 * Per kind it runs the loop client-go's reflector runs:
 *  - list completely (paged with limit/continue; a partial list is never handed on), `replace` the kind;
 *  - watch from the list's resourceVersion with bookmarks; ADDED/MODIFIED → `upsert`, DELETED → `remove`;
 *    every event and bookmark advances the resourceVersion the next watch resumes from, so a reconnect
 *    neither repeats nor skips events;
 *  - a watch that ends cleanly (server-side timeout) is reopened at once from that resourceVersion;
 *  - 410 Gone (the resourceVersion was compacted away, e.g. after a long outage) → list again;
 *  - any other failure (API server restarting, network, 5xx, 429, 403) → retry with exponential backoff.
 * Kinds served only by CRDs (AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy) are
 * followed where the CRD is installed; where not, that is logged once and rechecked every
 * `crdRecheckMs`. Readiness = every kind has completed its first list (or is known to be absent).
 */

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export interface KubeInventorySourceOptions {
  kubeConfig: KubeConfig;
  sink: ClusterChangeSink;
  /** Kinds to follow; default all of KUBE_RESOURCES. */
  kinds?: readonly WatchedKind[];
  /** Objects per list page. */
  pageSize?: number;
  backoff?: Partial<BackoffOptions>;
  /** Watch requests ask the server to end them after a random time in [min, 2·min) seconds. */
  minWatchTimeoutSeconds?: number;
  /** A watch that delivers nothing (not even a bookmark) for this long is treated as dead. */
  idleTimeoutMs?: number;
  /** How often to look again for a CRD-served kind that was absent. */
  crdRecheckMs?: number;
  logger?: Logger;
  /** The clock for `at` and health times (Unix ms). */
  now?: () => number;
  /** Told of every failed request before the backoff (a caller may give up, e.g. on 403 at start). */
  onRequestError?: (kind: WatchedKind, what: string, err: unknown) => void;
}

export type KindState = 'starting' | 'listing' | 'watching' | 'backoff' | 'absent' | 'stopped';

export interface KindHealth {
  kind: WatchedKind;
  state: KindState;
  /** The first list completed (or the kind is known to be absent). */
  ready: boolean;
  /** Where the next watch resumes. */
  resourceVersion?: string;
  /** Complete lists handed to the sink (the first one included). */
  lists: number;
  /** Lists after the first one: after 410 Gone or after a CRD came back. */
  relists: number;
  /** 410 Gone answers seen (watch start, watch ERROR event or expired continue token). */
  gone: number;
  /** Watches opened (the first one included). */
  watches: number;
  /** upsert/remove calls made. */
  events: number;
  /** Failed requests and broken watches (each one followed by a backoff). */
  errors: number;
  lastError?: string;
  lastErrorAt?: number;
  /** When the last event or list was handed to the sink. */
  lastEventAt?: number;
  lastListAt?: number;
}

export interface KubeSourceHealth {
  ready: boolean;
  kinds: KindHealth[];
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2 };

export class KubeInventorySource {
  private readonly opts: Required<
    Omit<KubeInventorySourceOptions, 'backoff' | 'kinds' | 'onRequestError'>
  > & {
    backoff: BackoffOptions;
  };
  private readonly onRequestError: KubeInventorySourceOptions['onRequestError'];
  private readonly resources: KubeResource[];
  private readonly health = new Map<WatchedKind, KindHealth>();
  private readonly stopController = new AbortController();
  private readonly streams = new Set<WatchStream>();
  private loops: Promise<void>[] = [];
  private started = false;
  private readyResolve!: () => void;
  private readyReject!: (err: unknown) => void;
  private readonly readyPromise: Promise<void>;

  constructor(options: KubeInventorySourceOptions) {
    this.opts = {
      kubeConfig: options.kubeConfig,
      sink: options.sink,
      pageSize: options.pageSize ?? 500,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      minWatchTimeoutSeconds: options.minWatchTimeoutSeconds ?? 300,
      idleTimeoutMs: options.idleTimeoutMs ?? 0,
      crdRecheckMs: options.crdRecheckMs ?? 60_000,
      logger: options.logger ?? log().child({ component: 'kube-inventory' }),
      now: options.now ?? Date.now,
    };
    this.onRequestError = options.onRequestError;
    const kinds = options.kinds ?? KUBE_RESOURCES.map((r) => r.kind);
    this.resources = KUBE_RESOURCES.filter((r) => kinds.includes(r.kind));
    for (const r of this.resources) {
      this.health.set(r.kind, {
        kind: r.kind,
        state: 'starting',
        ready: false,
        lists: 0,
        relists: 0,
        gone: 0,
        watches: 0,
        events: 0,
        errors: 0,
      });
    }
    this.readyPromise = new Promise((res, rej) => {
      this.readyResolve = res;
      this.readyReject = rej;
    });
    this.readyPromise.catch(() => {});
    // One listener per kind's pending request or sleep, by design.
    setMaxListeners(0, this.stopController.signal);
  }

  /** Starts following every kind; returns at once. Await `ready()` for the initial lists. */
  start(): void {
    if (this.started) throw new Error('KubeInventorySource already started');
    this.started = true;
    this.loops = this.resources.map((r) =>
      this.follow(r).catch((err) => {
        // Only a bug gets here (the loop handles API errors itself); fail loudly rather than go stale.
        this.opts.logger.error({ kind: r.kind, err }, 'kube inventory loop crashed');
        this.readyReject(err);
      }),
    );
  }

  /** Resolves when every kind has completed its first list (or is known to be absent). */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  isReady(): boolean {
    return [...this.health.values()].every((h) => h.ready);
  }

  healthReport(): KubeSourceHealth {
    const kinds = [...this.health.values()].map((h) => ({ ...h }));
    return { ready: kinds.every((h) => h.ready), kinds };
  }

  /** Stops all lists and watches; no sink call happens after this resolves. */
  async stop(): Promise<void> {
    this.stopController.abort();
    for (const s of this.streams) s.close();
    await Promise.all(this.loops);
    for (const h of this.health.values()) h.state = 'stopped';
    this.readyReject(new Error('stopped before ready'));
  }

  private get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  private markReady(h: KindHealth): void {
    if (h.ready) return;
    h.ready = true;
    if (this.isReady()) this.readyResolve();
  }

  private fail(h: KindHealth, err: unknown, what: string): void {
    h.errors++;
    h.lastError = `${what}: ${(err as Error).message ?? String(err)}`;
    h.lastErrorAt = this.opts.now();
    if (isForbidden(err))
      this.opts.logger.error(
        { kind: h.kind, code: 'KUBE_FORBIDDEN', err: h.lastError },
        'kube inventory request refused (403): the ClusterRole lacks this kind; backing off',
      );
    else
      this.opts.logger.warn({ kind: h.kind, err: h.lastError }, 'kube inventory request failed; backing off');
    this.onRequestError?.(h.kind, what, err);
  }

  /** Resolves after `ms`, or at once when the source stops. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopped) return resolve();
      const onStop = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.stopController.signal.removeEventListener('abort', onStop);
        resolve();
      }, ms);
      this.stopController.signal.addEventListener('abort', onStop, { once: true });
    });
  }

  private async follow(r: KubeResource): Promise<void> {
    const h = this.health.get(r.kind)!;
    const { sink, now, logger } = this.opts;
    const b = this.opts.backoff;
    let delay = b.initialMs;
    const backoff = async () => {
      h.state = 'backoff';
      // Full jitter over the upper half: spreads many watchers reconnecting to a restarted server.
      await this.sleep(delay * (0.5 + Math.random() / 2));
      delay = Math.min(b.maxMs, delay * b.factor);
    };
    let needList = true;
    let present = false;
    let absentLogged = false;

    while (!this.stopped) {
      if (needList) {
        // A recheck of an absent kind leaves it reported absent until a list proves it served.
        if (h.state !== 'absent') h.state = 'listing';
        let listed: { resourceVersion: string; at: number } | undefined;
        try {
          listed = await this.listInto(r);
        } catch (err) {
          if (this.stopped) break;
          if (r.optional && isNotFound(err)) {
            if (!absentLogged) {
              logger.info(
                { kind: r.kind, apiVersion: r.apiVersion },
                `${r.kind} is not served (its CRD is not installed); rechecking every ${this.opts.crdRecheckMs} ms`,
              );
              absentLogged = true;
            }
            if (present) {
              // The CRD went away, and with it every object of the kind.
              sink.replace(r.kind, [], now());
              present = false;
            }
            h.state = 'absent';
            this.markReady(h);
            await this.sleep(this.opts.crdRecheckMs);
            continue;
          }
          if (isGone(err)) h.gone++;
          this.fail(h, err, `list ${r.path}`);
          await backoff();
          continue;
        }
        if (!listed) break; // stopped
        const { at } = listed;
        if (absentLogged) logger.info({ kind: r.kind }, `${r.kind} is served now; following it`);
        absentLogged = false;
        present = true;
        h.lists++;
        if (h.lists > 1) h.relists++;
        h.lastListAt = at;
        h.lastEventAt = at;
        h.resourceVersion = listed.resourceVersion;
        needList = false;
        delay = b.initialMs;
        this.markReady(h);
      }

      const timeout = Math.floor(this.opts.minWatchTimeoutSeconds * (1 + Math.random()));
      const q = new URLSearchParams({
        watch: '1',
        resourceVersion: h.resourceVersion!,
        allowWatchBookmarks: 'true',
        timeoutSeconds: String(timeout),
      });
      const onEvent = (e: WatchEvent) => this.onEvent(r, h, e);
      const idle = this.opts.idleTimeoutMs || (timeout + 60) * 1000;
      let stream: WatchStream | undefined;
      try {
        const w = await openWatch(this.opts.kubeConfig, `${r.path}?${q}`, onEvent, idle);
        stream = w.stream;
        this.streams.add(stream);
        if (this.stopped) stream.close();
        await w.opened;
        h.watches++;
        h.state = 'watching';
        delay = b.initialMs;
        const openedAt = performance.now();
        const eventsBefore = h.events;
        await stream.done;
        // A server that ends watches at once (overloaded, shutting down) must not be hammered.
        if (performance.now() - openedAt < 1000 && h.events === eventsBefore && !this.stopped)
          await backoff();
      } catch (err) {
        if (this.stopped) break;
        if (isGone(err)) {
          // Too old to resume from: only a fresh list can tell what changed meanwhile.
          h.gone++;
          logger.info(
            { kind: r.kind, resourceVersion: h.resourceVersion },
            'watch expired (410 Gone); relisting',
          );
          needList = true;
          continue;
        }
        if (r.optional && isNotFound(err)) {
          needList = true;
          continue;
        }
        this.fail(h, err, `watch ${r.path}`);
        await backoff();
      } finally {
        if (stream) this.streams.delete(stream);
      }
    }
    h.state = 'stopped';
  }

  /**
   * One complete list handed to the sink. A method of its own so that the items are garbage once the
   * sink has them: a local of the long-suspended `follow` frame would keep a second copy alive.
   */
  private async listInto(r: KubeResource): Promise<{ resourceVersion: string; at: number } | undefined> {
    const list = await listComplete(this.opts.kubeConfig, r, {
      pageSize: this.opts.pageSize,
      signal: this.stopController.signal,
    });
    if (this.stopped) return undefined;
    const at = this.opts.now();
    this.opts.sink.replace(r.kind, list.items, at);
    return { resourceVersion: list.resourceVersion, at };
  }

  private onEvent(r: KubeResource, h: KindHealth, e: WatchEvent): void {
    if (this.stopped) return;
    const obj = e.object;
    if (e.type === 'ERROR') {
      const status = obj as { code?: number; reason?: string; message?: string };
      throw new KubeHttpError(
        status.code ?? 500,
        status.reason,
        `watch ERROR event: ${status.reason ?? ''} ${status.message ?? ''}`.trim(),
      );
    }
    const meta = (obj?.metadata ?? {}) as { resourceVersion?: string };
    if (e.type === 'BOOKMARK') {
      if (meta.resourceVersion) h.resourceVersion = meta.resourceVersion;
      return;
    }
    if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED') {
      throw new Error(`watch ${r.path}: unknown event type ${JSON.stringify(e.type)}`);
    }
    const at = this.opts.now();
    const object = normalizeObject(obj, r);
    if (e.type === 'DELETED') this.opts.sink.remove(r.kind, object, at);
    else this.opts.sink.upsert(r.kind, object, at);
    // Advanced only after the sink took the event: a sink failure makes the next watch deliver it again.
    if (meta.resourceVersion) h.resourceVersion = meta.resourceVersion;
    h.events++;
    h.lastEventAt = at;
  }
}

import type { InputIssue } from '../lib/errors.js';
import { AuditError, UsageError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { ClusterTimeline } from '../processor/inventory/index.js';
import type { KubeHttpError, KubeInventorySource } from '../processor/inventory/kube/index.js';
import type { PolicyOptions } from '../processor/policy/types.js';

/**
 * The live wiring of the cluster for commands that judge flows: the API watcher feeds a time-versioned
 * ClusterTimeline, which is the processor's ClusterView. Resolves once every kind's first list is in
 * (never judge against a partial cluster).
 */
export interface LiveCluster {
  timeline: ClusterTimeline;
  source: KubeInventorySource;
  close(): Promise<void>;
}

export async function openLiveCluster(opts: {
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
  historyHours?: string;
  clusterDomain?: string;
  policy?: Partial<PolicyOptions>;
  onIssue?: (i: InputIssue) => void;
  readyTimeoutMs?: number;
}): Promise<LiveCluster> {
  let horizonMs: number | undefined;
  if (opts.historyHours !== undefined) {
    const h = Number(opts.historyHours);
    if (!(h > 0))
      throw new UsageError(`--history-hours must be a positive number, not '${opts.historyHours}'`);
    horizonMs = h * 3_600_000;
  }
  // @kubernetes/client-node costs ~0.7 CPU-s to load: only commands that follow a live cluster pay it.
  const { KubeInventorySource, loadKubeConfig, forbiddenError, isForbidden } = await import(
    '../processor/inventory/kube/index.js'
  );
  let kubeConfig: ReturnType<typeof loadKubeConfig>;
  try {
    kubeConfig = loadKubeConfig({
      kubeconfig: opts.kubeconfig,
      context: opts.context,
      ...(opts.inCluster ? { inCluster: true } : {}),
    });
  } catch (err) {
    if (err instanceof AuditError) throw err;
    throw new UsageError(`cannot load the kubeconfig: ${(err as Error).message}`);
  }
  const timeline = new ClusterTimeline({
    source: 'watch',
    ...(horizonMs !== undefined ? { horizonMs } : {}),
    ...(opts.clusterDomain ? { clusterDomain: opts.clusterDomain } : {}),
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.onIssue ? { onIssue: opts.onIssue } : {}),
  });
  // A 403 before the first lists are in is a missing ClusterRole (or binding): stop with its code
  // rather than wait (in a pod the restart backs off and the log says why). Once following, the
  // source logs a 403 and retries (a role being edited).
  let refuse!: (err: unknown) => void;
  const refused = new Promise<never>((_, reject) => {
    refuse = reject;
  });
  refused.catch(() => {});
  let following = false;
  const source = new KubeInventorySource({
    kubeConfig,
    sink: timeline,
    logger: createLogger('inventory'),
    onRequestError: (kind, what, err) => {
      if (following || !isForbidden(err)) return;
      // `what` is "list /api/v1/pods" or "watch ...": say it as snapshot does, "list Pod (/api/v1/pods)".
      const [verb, path] = what.split(' ');
      refuse(forbiddenError(`${verb} ${kind} (${path})`, err as KubeHttpError));
    },
  });
  source.start();
  const timeoutMs = opts.readyTimeoutMs ?? 120_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      refused,
      source.ready(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `the cluster's initial lists were not complete after ${timeoutMs / 1000} s: ${JSON.stringify(source.healthReport())}`,
              ),
            ),
          timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    await source.stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  following = true;
  return { timeline, source, close: () => source.stop() };
}

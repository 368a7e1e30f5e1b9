import { existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { AuditError } from '../../../lib/errors.js';

/** Where a pod's service-account token, CA and namespace are mounted. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The HTTP edge to the API server. Configuration and authentication (kubeconfig, contexts, client
 * certificates, tokens, exec plugins, the in-cluster service account with its rotating token) come from
 * @kubernetes/client-node's KubeConfig; the requests themselves are plain node:https so that list paging,
 * watch streams, their errors and their timeouts are fully under the watcher's control. The generated
 * typed clients would also turn objects into class instances (dates as Date), while the sink wants the
 * JSON exactly as the server sent it.
 */

export interface KubeConnectionOptions {
  /** A kubeconfig file; default: in-cluster service account when running in a pod, else $KUBECONFIG / ~/.kube/config. */
  kubeconfig?: string;
  /** Context of the kubeconfig to use; default its current-context. */
  context?: string;
  /** The pod's service account only (no kubeconfig, whatever $KUBECONFIG says); an error outside a pod. */
  inCluster?: boolean;
}

export function loadKubeConfig(opts: KubeConnectionOptions = {}): KubeConfig {
  const kc = new KubeConfig();
  if (opts.inCluster) {
    const missing = [
      ...(process.env.KUBERNETES_SERVICE_HOST && process.env.KUBERNETES_SERVICE_PORT
        ? []
        : ["no API server address in the environment (Kubernetes' service variables host and port)"]),
      ...(existsSync(`${SERVICE_ACCOUNT_DIR}/token`) ? [] : [`no ${SERVICE_ACCOUNT_DIR}/token`]),
    ];
    if (missing.length > 0)
      throw new AuditError(
        'KUBE_IN_CLUSTER_UNAVAILABLE',
        `--in-cluster: not in a pod with a service account (${missing.join(', ')})`,
      );
    kc.loadFromCluster();
  } else if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else if (process.env.KUBERNETES_SERVICE_HOST && !process.env.KUBECONFIG) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new Error(
        `kubeconfig has no context "${opts.context}" (contexts: ${known.join(', ') || 'none'})`,
      );
    }
    kc.setCurrentContext(opts.context);
  }
  if (!kc.getCurrentCluster()) throw new Error('kubeconfig names no cluster for the current context');
  return kc;
}

/** An HTTP answer other than 2xx, with the Kubernetes Status reason when the body carried one. */
export class KubeHttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'KubeHttpError';
  }
}

/** 410 Gone: the resourceVersion (or continue token) is older than what the server still has. */
export function isGone(err: unknown): boolean {
  return err instanceof KubeHttpError && err.statusCode === 410;
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeHttpError && err.statusCode === 404;
}

export function isForbidden(err: unknown): boolean {
  return err instanceof KubeHttpError && err.statusCode === 403;
}

/**
 * A 403 as the catalogued KUBE_FORBIDDEN: what was asked (`list Pod (/api/v1/pods)`) and the server's
 * message, which names the resource, the verb and the user (`pods is forbidden: User "..." cannot list
 * resource "pods" in API group "" at the cluster scope`).
 */
export function forbiddenError(what: string, err: KubeHttpError): AuditError {
  return new AuditError(
    'KUBE_FORBIDDEN',
    `${what}: refused by the API server (403): ${err.message.replace(/^HTTP 403 Forbidden: /, '')}; the netpol-audit ClusterRole (deploy/base/rbac.yaml) grants get, list and watch on it`,
  );
}

function statusMessage(statusCode: number, body: string): KubeHttpError {
  let reason: string | undefined;
  let message = body.slice(0, 300);
  try {
    const status = JSON.parse(body) as { reason?: string; message?: string };
    reason = status.reason;
    if (status.message) message = status.message;
  } catch {
    // not a Status object; keep the raw text
  }
  return new KubeHttpError(statusCode, reason, `HTTP ${statusCode}${reason ? ` ${reason}` : ''}: ${message}`);
}

async function requestOptions(
  kc: KubeConfig,
  path: string,
  method: string,
): Promise<{ url: URL; options: https.RequestOptions }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in kubeconfig');
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  const options: https.RequestOptions = { method, headers: {} };
  // Sets ca/cert/key, the Authorization header (refreshing tokens as needed) and an agent (proxy-aware).
  await kc.applyToHTTPSOptions(options);
  options.headers = { ...(options.headers ?? {}), Accept: 'application/json' };
  return { url, options };
}

function send(url: URL, options: https.RequestOptions, signal?: AbortSignal): http.ClientRequest {
  const lib = url.protocol === 'http:' ? http : https;
  return lib.request(url, { ...options, ...(signal ? { signal } : {}) });
}

/** GET (or another method with a JSON body) and parse the JSON answer; non-2xx becomes KubeHttpError. */
export async function requestJson(
  kc: KubeConfig,
  path: string,
  init: { method?: string; body?: unknown; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<unknown> {
  const { url, options } = await requestOptions(kc, path, init.method ?? 'GET');
  const payload = init.body === undefined ? undefined : Buffer.from(JSON.stringify(init.body));
  if (payload) {
    options.headers = {
      ...options.headers,
      'Content-Type': init.method === 'PATCH' ? 'application/merge-patch+json' : 'application/json',
      'Content-Length': payload.length,
    };
  }
  return new Promise((resolve, reject) => {
    const req = send(url, options, init.signal);
    req.setTimeout(init.timeoutMs ?? 60_000, () => {
      req.destroy(new Error(`no answer from ${url.host} within ${init.timeoutMs ?? 60_000} ms for ${path}`));
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const code = res.statusCode ?? 0;
        if (code < 200 || code >= 300) {
          reject(statusMessage(code, body));
          return;
        }
        try {
          resolve(JSON.parse(body));
        } catch (err) {
          reject(new Error(`${path}: answer is not JSON: ${(err as Error).message}`));
        }
      });
    });
    req.end(payload);
  });
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: Record<string, unknown>;
}

export interface WatchStream {
  /** Settles when the stream ends: resolves on a clean end (server timeout), rejects on errors. */
  done: Promise<void>;
  /** Closes the stream; `done` then resolves. */
  close(): void;
}

/**
 * Opens a watch and hands each event to `onEvent` in order, as its line arrives. `opened` resolves once the
 * server answered 200 (or rejects with KubeHttpError, e.g. 410 for a too-old resourceVersion). If no line,
 * not even a bookmark, arrives for `idleTimeoutMs`, the stream is considered dead (a half-open TCP
 * connection after a network cut gives no error of its own) and `done` rejects.
 */
export async function openWatch(
  kc: KubeConfig,
  path: string,
  onEvent: (event: WatchEvent) => void,
  idleTimeoutMs: number,
): Promise<{ stream: WatchStream; opened: Promise<void> }> {
  const { url, options } = await requestOptions(kc, path, 'GET');
  const controller = new AbortController();
  let closedByUs = false;
  let resolveOpened!: () => void;
  let rejectOpened!: (e: unknown) => void;
  const opened = new Promise<void>((res, rej) => {
    resolveOpened = res;
    rejectOpened = rej;
  });
  let resolveDone!: () => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  // Callers await `opened` first; an early failure must not also surface as an unhandled `done`.
  done.catch(() => {});
  let settled = false;
  const finish = (err?: unknown) => {
    if (settled) return;
    settled = true;
    clearTimeout(idle);
    if (!closedByUs) controller.abort();
    if (err && !closedByUs) {
      rejectOpened(err);
      rejectDone(err);
    } else {
      resolveOpened();
      resolveDone();
    }
  };
  let idle: NodeJS.Timeout = setTimeout(() => {}, 0);
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(
      () => finish(new Error(`watch ${path}: nothing received for ${idleTimeoutMs} ms`)),
      idleTimeoutMs,
    );
    idle.unref();
  };
  armIdle();
  const req = send(url, options, controller.signal);
  req.on('error', (err) => finish(err));
  req.on('response', (res) => {
    const code = res.statusCode ?? 0;
    if (code !== 200) {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish(statusMessage(code, Buffer.concat(chunks).toString('utf8'))));
      res.on('error', (err) => finish(err));
      return;
    }
    resolveOpened();
    let pending = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      armIdle();
      pending += chunk;
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
        if (line === '') continue;
        let event: WatchEvent;
        try {
          event = JSON.parse(line) as WatchEvent;
        } catch (err) {
          // A torn line means the stream is corrupt; resuming from the last good resourceVersion is safe.
          finish(new Error(`watch ${path}: unparsable event line: ${(err as Error).message}`));
          return;
        }
        try {
          onEvent(event);
        } catch (err) {
          finish(err);
          return;
        }
        if (settled) return;
      }
    });
    res.on('end', () => finish());
    res.on('aborted', () => finish(new Error(`watch ${path}: connection aborted by the server`)));
    res.on('error', (err) => finish(err));
  });
  req.end();
  return {
    stream: {
      done,
      close() {
        if (settled) return;
        closedByUs = true;
        controller.abort();
        finish();
      },
    },
    opened,
  };
}

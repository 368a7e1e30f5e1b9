// Test helper: a real etcd + kube-apiserver per test file, driven through apiserver.sh so the shell script
// and the tests start them the same way. Each instance gets a fresh data dir and free loopback ports, and a
// watchdog stops both if the test process dies without calling stop().
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { requestJson } from '../../processor/inventory/kube/index.js';

const script = join(dirname(fileURLToPath(import.meta.url)), 'apiserver.sh');

export interface RunningApiServer {
  /** Admin (system:masters) kubeconfig file. */
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  server: string;
  etcdUrl: string;
  dataDir: string;
  /** Wall time of the last start of etcd + API server (or the API server alone after restart), ms. */
  startupMs: number;
  /** Stops the API server (SIGTERM) and starts it again; etcd and all objects are kept. */
  restart(): Promise<void>;
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  /** Stops both and deletes the data dir. Idempotent. */
  stop(): Promise<void>;
  logs(lines?: number): Promise<string>;
  /** Admin request: GET/POST/PUT/PATCH(merge)/DELETE with a JSON body. */
  api(method: string, path: string, body?: unknown): Promise<unknown>;
  /** etcd v3 (JSON gateway) calls, for what only etcd can do: compaction, edits behind the server's back. */
  etcd(path: string, body: unknown): Promise<Record<string, unknown>>;
  /** Compacts etcd at its current revision; returns that revision. */
  compactEtcd(): Promise<number>;
  /** Applies the network-policy-api CRDs (ANP, BANP, CNP) and waits until they are served. */
  installPolicyCrds(): Promise<void>;
}

function run(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [script, ...args],
      { env, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`apiserver.sh ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        else resolve(stdout.trim());
      },
    );
  });
}

function parsePorts(dataDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(dataDir, 'ports'), 'utf8').split('\n')) {
    const m = /^(\w+)=(\d+)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** Builds kube-apiserver if needed (first time only: needs the Go module proxy), then starts both. */
export async function startApiServer(opts: { extraArgs?: string } = {}): Promise<RunningApiServer> {
  // The first build takes many minutes; it is outside the start timeout and done once per machine.
  await run(['fetch'], process.env, 60 * 60_000);
  const dataDir = await mkdtemp(join(tmpdir(), 'netpol-audit-kube-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KUBE_DATA_DIR: dataDir,
    KUBE_OWNER_PID: String(process.pid),
    ...(opts.extraArgs ? { KUBE_APISERVER_ARGS: opts.extraArgs } : {}),
  };
  let kubeconfigPath = '';
  let startupMs = 0;
  for (let attempt = 1; ; attempt++) {
    const t0 = performance.now();
    try {
      kubeconfigPath = await run(['start'], env, 240_000);
      startupMs = performance.now() - t0;
      break;
    } catch (err) {
      await run(['stop'], env, 60_000).catch(() => undefined);
      // Another process may take a port between the choice and the bind: choose again.
      if (!/already in use/.test(String(err)) || attempt >= 3) {
        rmSync(dataDir, { recursive: true, force: true });
        throw err;
      }
      rmSync(join(dataDir, 'ports'), { force: true });
    }
  }
  const ports = parsePorts(dataDir);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const etcdUrl = `http://127.0.0.1:${ports.ETCD_PORT}`;
  let stopped = false;

  const etcd = async (path: string, body: unknown) => {
    const res = await fetch(`${etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const api = (method: string, path: string, body?: unknown) =>
    requestJson(kubeConfig, path, { method, ...(body === undefined ? {} : { body }) });

  const srv: RunningApiServer = {
    kubeconfigPath,
    kubeConfig,
    server: `https://127.0.0.1:${ports.KUBE_APISERVER_PORT}`,
    etcdUrl,
    dataDir,
    get startupMs() {
      return startupMs;
    },
    async restart() {
      const t0 = performance.now();
      await run(['restart'], env, 240_000);
      startupMs = performance.now() - t0;
    },
    async stopApiServer() {
      await run(['stop-apiserver'], env, 60_000);
    },
    async startApiServer() {
      const t0 = performance.now();
      await run(['start-apiserver'], env, 240_000);
      startupMs = performance.now() - t0;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await run(['stop'], env, 90_000);
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
    logs: (lines = 100) => run(['logs', String(lines)], env, 10_000),
    api,
    etcd,
    async compactEtcd() {
      const status = await etcd('/v3/kv/range', { key: Buffer.from('/').toString('base64'), limit: 1 });
      const revision = Number((status.header as { revision: string }).revision);
      await etcd('/v3/kv/compaction', { revision: String(revision), physical: true });
      return revision;
    },
    async installPolicyCrds() {
      const files = (await run(['crds'], process.env, 5 * 60_000))
        .split('\n')
        .filter((f) => f.endsWith('.yaml'));
      const names: string[] = [];
      for (const file of files) {
        for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
          const crd = (Array.isArray(doc) ? undefined : doc.toJS()) as { metadata: { name: string } } | null;
          if (!crd) continue;
          await api('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
          names.push(crd.metadata.name);
        }
      }
      for (const name of names) {
        for (let i = 0; ; i++) {
          const crd = (await api(
            'GET',
            `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
          )) as {
            status?: { conditions?: { type: string; status: string }[] };
          };
          if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
          if (i > 300) throw new Error(`CRD ${name} not Established after 30 s`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
  return srv;
}

// 5,000 pods created in bulk against a real kube-apiserver + etcd; the live source lists them (paged) and
// its memory is measured in a separate process (test/k8s/watch-memory.ts).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeInventorySource } from '../../processor/inventory/kube/index.js';
import { ROOT } from '../support/cli.js';
import { type RunningApiServer, startApiServer } from './apiserver.js';
import { type K8sObject, latencyStats, RecordingSink } from './recording-sink.js';

const PODS = 5000;
const NAMESPACES = 10;

let srv: RunningApiServer;

/** One keep-alive connection pool for the bulk writes (the TLS handshake would otherwise dominate). */
function bulkClient(s: RunningApiServer) {
  const pki = join(s.dataDir, 'pki');
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: 16,
    ca: readFileSync(join(pki, 'ca.crt')),
    cert: readFileSync(join(pki, 'admin.crt')),
    key: readFileSync(join(pki, 'admin.key')),
  });
  const url = new URL(s.server);
  const send = (method: string, path: string, body: unknown): Promise<void> =>
    new Promise((resolve, reject) => {
      const data = Buffer.from(JSON.stringify(body));
      const req = https.request(
        {
          agent,
          hostname: url.hostname,
          port: url.port,
          method,
          path,
          headers: {
            'Content-Type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json',
            'Content-Length': data.length,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            (res.statusCode ?? 0) < 300
              ? resolve()
              : reject(new Error(`${method} ${path}: ${res.statusCode} ${Buffer.concat(chunks).toString()}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  return { send, close: () => agent.destroy() };
}

function probe(mode: 'keep' | 'count'): Promise<Record<string, number | string>> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', join(ROOT, 'test/k8s/watch-memory.ts'), srv.kubeconfigPath, mode],
      { cwd: ROOT, timeout: 300_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
    );
  });
}

describe('the live source with 5,000 pods', () => {
  beforeAll(async () => {
    srv = await startApiServer();
  }, 3_600_000);

  afterAll(async () => {
    await srv?.stop();
  });

  it('lists 5,000 pods created in bulk; memory measured per mode', async () => {
    const c = bulkClient(srv);
    const t0 = performance.now();
    try {
      for (let n = 0; n < NAMESPACES; n++)
        await c.send('POST', '/api/v1/namespaces', { metadata: { name: `bulk-${n}` } });
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < PODS; i = next++) {
          const ns = `bulk-${i % NAMESPACES}`;
          const name = `pod-${i}`;
          const ip = `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
          await c.send('POST', `/api/v1/namespaces/${ns}/pods`, {
            metadata: {
              name,
              labels: { app: `app-${i % 50}`, tier: i % 2 ? 'back' : 'front', shard: String(i % 7) },
            },
            spec: {
              nodeName: `node-${i % 20}`,
              containers: [
                { name: 'app', image: 'registry.invalid/app:1', ports: [{ containerPort: 8080 }] },
              ],
            },
          });
          await c.send('PATCH', `/api/v1/namespaces/${ns}/pods/${name}/status`, {
            status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
          });
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
    } finally {
      c.close();
    }
    const createMs = performance.now() - t0;
    console.info(
      `created ${PODS} pods (create + status) in ${(createMs / 1000).toFixed(1)} s: ${((2 * PODS) / (createMs / 1000)).toFixed(0)} writes/s`,
    );

    const count = await probe('count');
    const keep = await probe('keep');
    console.info(`watcher memory, sink drops objects: ${JSON.stringify(count)}`);
    console.info(`watcher memory, sink keeps objects: ${JSON.stringify(keep)}`);
    expect(count.pods).toBe(PODS);
    expect(keep.pods).toBe(PODS);
    // keep holds every object: 5,000 pods, 14 namespaces, the kubernetes Service and its slice at least.
    expect(keep.objects).toBeGreaterThanOrEqual(PODS + NAMESPACES + 4);
    expect(count.objectsJsonMiB).toBe(0);
    expect(keep.objectsJsonMiB).toBeGreaterThan(0);
    // Dropping the sink's objects frees them: the watcher keeps no copy of its lists.
    expect(keep.objectsHeapMiB).toBeGreaterThan((keep.objectsJsonMiB as number) / 2);

    // Latency with 5,000 pods watched: relabel 200 of them one after another.
    const sink = new RecordingSink();
    const source = new KubeInventorySource({
      kubeConfig: srv.kubeConfig,
      sink,
      logger: pino({ level: 'silent' }),
    });
    source.start();
    try {
      await source.ready();
      const ms: number[] = [];
      for (let i = 0; i < 200; i++) {
        const from = sink.calls.length;
        const t0 = Date.now();
        const o = (await srv.api('PATCH', `/api/v1/namespaces/bulk-${i % NAMESPACES}/pods/pod-${i}`, {
          metadata: { labels: { relabelled: 'yes' } },
        })) as K8sObject;
        const call = await sink.waitFor(
          (c) => c.op === 'upsert' && c.object?.metadata.resourceVersion === o.metadata.resourceVersion,
          `relabel of pod-${i}`,
          from,
        );
        ms.push(call.at - t0);
      }
      const s = latencyStats(ms);
      console.info(
        `relabel → sink with 5,000 pods watched: median ${s.median} ms, p90 ${s.p90} ms, max ${s.max} ms`,
      );
      expect(
        sink.keys('Pod').filter((k) => sink.get('Pod', k)!.metadata.labels?.relabelled === 'yes'),
      ).toHaveLength(200);
    } finally {
      await source.stop();
    }
  }, 600_000);
});

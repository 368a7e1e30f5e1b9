// `snapshot` and `process` exactly as they run in a pod of deploy/: the ServiceAccount, ClusterRole and
// binding of deploy/base/rbac.yaml applied to a real kube-apiserver, a token from the TokenRequest API
// mounted with the CA and namespace at /var/run/secrets/kubernetes.io/serviceaccount inside a private
// mount namespace (the host's /var/run is untouched), KUBERNETES_SERVICE_HOST/PORT pointing at the API
// server, no kubeconfig, no $KUBECONFIG, a HOME without ~/.kube. `process` runs with a real Kafka broker.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseSnapshot } from '../../processor/inventory/index.js';
import { KubeHttpError, requestJson } from '../../processor/inventory/kube/index.js';
import { flowAt } from '../../processor/judge/fixtures.js';
import { AuditStore } from '../../processor/store/index.js';
import { ensureTopics, KafkaFlowSink, kafkaSettings, topicNames } from '../../transport/kafka/index.js';
import { type RunningBroker, startBroker } from '../kafka/broker.js';
import { storedRecords, waitUntil } from '../pipeline/support.js';
import { ROOT } from '../support/cli.js';
import { requirePrograms } from '../support/programs.js';
import { type RunningApiServer, startApiServer } from './apiserver.js';
import { buildKubectl, type K8sObject, kubectlFor, parseObjects } from './kubectl.js';
import { ClusterWriter } from './objects.js';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const SA_USER = 'system:serviceaccount:netpol-audit:netpol-audit';

function rbacObjects(): Obj[] {
  return ['namespace.yaml', 'rbac.yaml'].flatMap((f) =>
    parseAllDocuments(readFileSync(join(ROOT, 'deploy/base', f), 'utf8'))
      .map((d) => (Array.isArray(d) ? undefined : (d.toJS() as Obj | null)))
      .filter((o): o is Obj => !!o),
  );
}

function collectionPath(o: Obj): string {
  const plural: Record<string, string> = {
    Namespace: 'namespaces',
    ServiceAccount: 'serviceaccounts',
    ClusterRole: 'clusterroles',
    ClusterRoleBinding: 'clusterrolebindings',
  };
  const base = o.apiVersion === 'v1' ? '/api/v1' : `/apis/${o.apiVersion}`;
  return o.metadata.namespace
    ? `${base}/namespaces/${o.metadata.namespace}/${plural[o.kind]}`
    : `${base}/${plural[o.kind]}`;
}

async function httpStatus(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof KubeHttpError) return err.statusCode;
    throw err;
  }
}

// Mounts a tmpfs over /run (/var/run) in the new mount namespace only, puts the service-account files
// where the kubelet would, then execs the command.
const IN_POD = `set -eu
stage=$1; shift
mount -t tmpfs -o size=1m,mode=0755 tmpfs /var/run
mkdir -p ${SA_DIR}
cp "$stage/token" "$stage/ca.crt" "$stage/namespace" ${SA_DIR}/
exec "$@"`;

interface PodRun {
  proc: ChildProcess;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  stderr(): string;
}

let srv: RunningApiServer;
let broker: RunningBroker;
let w: ClusterWriter;
const dir = mkdtempSync(join(tmpdir(), 'npa-in-cluster-'));
const stage = join(dir, 'serviceaccount');
const home = join(dir, 'home');
const running = new Set<ChildProcess>();
let tokenConfig: KubeConfig;
type Container = { args: string[]; volumeMounts: { mountPath: string }[] };
let rendered: K8sObject[] = [];

/** A container's arguments as the kubelet expands them here; its volumes become directories of `into`. */
function argsOf(kind: string, name: string, prefix: string, into: string): string[] {
  const o = rendered.find((x) => x.kind === kind && x.metadata.name === name)!;
  const c = (o.spec as { template: { spec: { containers: Container[] } } }).template.spec.containers[0]!;
  const values: Record<string, string> = { KAFKA_BROKERS: broker.brokers.join(','), TOPIC_PREFIX: prefix };
  return c.args.map((a) => {
    let out = a.replace(/\$\((\w+)\)/g, (_, v: string) => values[v] ?? `$(${v})`);
    const m = c.volumeMounts.find((v) => out.startsWith(`${v.mountPath}/`));
    if (m) out = join(into, out.slice(m.mountPath.length + 1));
    return out === ':9464' ? '127.0.0.1:0' : out;
  });
}

/** The CLI as a pod runs it: the pod's environment, the token mounted, nothing else. */
function inPod(args: string[]): PodRun {
  const port = new URL(srv.server).port;
  const proc = spawn(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      '--',
      'bash',
      '-c',
      IN_POD,
      'in-pod',
      stage,
      process.execPath,
      '--import',
      'tsx',
      resolve(ROOT, 'cli/index.ts'),
      ...args,
    ],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: home,
        TMPDIR: dir,
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_PORT: port,
        NETPOL_AUDIT_LOG_PRETTY: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(proc);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  proc.stdout?.on('data', (d: Buffer) => out.push(d));
  proc.stderr?.on('data', (d: Buffer) => err.push(d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((res, rej) => {
    proc.on('error', rej);
    proc.on('close', (code) => {
      running.delete(proc);
      res({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
  return { proc, done, stderr: () => Buffer.concat(err).toString('utf8') };
}

async function podLastEventAge(
  metricsUrl: string,
): Promise<{ scrapedFrom: number; ageMs: number } | undefined> {
  const scrapedFrom = Date.now();
  const text = await (await fetch(metricsUrl)).text();
  const m = /^netpol_audit_inventory_last_event_age_seconds\{kind="Pod"\} ([0-9.e+-]+)$/m.exec(text);
  return m ? { scrapedFrom, ageMs: Number(m[1]) * 1000 } : undefined;
}

/** Resolves once the process's Pod watch delivered something at or after `t` (its metrics say so). */
async function podEventSince(metricsUrl: string, t: number, what: string): Promise<void> {
  await waitUntil(what, async () => {
    const s = await podLastEventAge(metricsUrl);
    // lastEventAt = (the process's clock at the scrape) - age >= scrapedFrom - age
    return s !== undefined && s.scrapedFrom - s.ageMs >= t;
  });
}

beforeAll(async () => {
  requirePrograms('test/k8s/in-cluster.test.ts', ['unshare', 'mount']);
  const [s0, b0, kubectlBin] = await Promise.all([startApiServer(), startBroker(), buildKubectl()]);
  srv = s0;
  broker = b0;
  const k = await kubectlFor(kubectlBin, srv.kubeconfigPath)(['kustomize', join(ROOT, 'deploy')]);
  if (k.code !== 0) throw new Error(k.stderr);
  rendered = parseObjects(k.stdout);
  w = new ClusterWriter(srv);
  await w.namespace('shop', { team: 'shop' });
  await w.node('node-1', '172.18.0.2', '10.244.1.0/24');
  await w.runningPod('shop', 'web-1', { app: 'web' }, '10.244.1.5');
  await w.runningPod('shop', 'client', { role: 'client' }, '10.244.1.7');
  await w.networkPolicy('shop', 'web-from-clients', { app: 'web' }, { role: 'client' });
  // deploy/'s namespace, ServiceAccount and ClusterRole; the binding comes later (the 403 test first).
  for (const o of rbacObjects().filter((x) => x.kind !== 'ClusterRoleBinding'))
    await srv.api('POST', collectionPath(o), o);
  const tr = (await srv.api('POST', '/api/v1/namespaces/netpol-audit/serviceaccounts/netpol-audit/token', {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  })) as { status: { token: string } };
  const cluster = srv.kubeConfig.getCurrentCluster()!;
  mkdirSync(stage);
  mkdirSync(home);
  writeFileSync(join(stage, 'token'), tr.status.token);
  writeFileSync(join(stage, 'ca.crt'), Buffer.from(cluster.caData!, 'base64'));
  writeFileSync(join(stage, 'namespace'), 'netpol-audit');
  tokenConfig = new KubeConfig();
  tokenConfig.loadFromOptions({
    clusters: [{ name: 'c', server: cluster.server, caData: cluster.caData }],
    users: [{ name: 'sa', token: tr.status.token }],
    contexts: [{ name: 'sa', cluster: 'c', user: 'sa' }],
    currentContext: 'sa',
  });
}, 3_600_000);

afterAll(async () => {
  for (const p of running) p.kill('SIGKILL');
  await Promise.all([srv?.stop(), broker?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('snapshot and process in a pod: service account, no kubeconfig', () => {
  it('without the ClusterRoleBinding: both stop with KUBE_FORBIDDEN naming the resource and the user', async () => {
    expect(await httpStatus(requestJson(tokenConfig, '/api/v1/namespaces'))).toBe(403);
    const out = join(dir, 'forbidden.yaml');
    const snap = await inPod(['snapshot', '--in-cluster', '--output', out]).done;
    expect(snap.code, snap.stderr).toBe(3);
    expect(snap.stderr).toMatch(/^netpol-audit: KUBE_FORBIDDEN: list Namespace \(\/api\/v1\/namespaces\): /m);
    expect(snap.stderr).toContain(`User "${SA_USER}" cannot list resource "namespaces"`);
    expect(existsSync(out)).toBe(false);
    // process, with nothing said about the cluster: in a pod it follows it in-cluster, and stops at
    // the first 403 rather than wait for a role that is not there.
    const proc = await inPod(['process', '--role', 'judge', '--brokers', broker.brokers.join(',')]).done;
    expect(proc.code, proc.stderr).toBe(3);
    expect(proc.stderr).toMatch(/netpol-audit: KUBE_FORBIDDEN: (list|watch) \w+ \(\/api/);
    expect(proc.stderr).toContain(`User "${SA_USER}" cannot list resource`);
    // The files were mounted in the child's mount namespace only.
    expect(existsSync(SA_DIR)).toBe(false);
  });

  it('with the binding: snapshot writes the cluster; the token gets 403 beyond the ClusterRole', async () => {
    for (const o of rbacObjects().filter((x) => x.kind === 'ClusterRoleBinding'))
      await srv.api('POST', collectionPath(o), o);
    // The authorizer learns of the new binding through its informers.
    await waitUntil('the ClusterRoleBinding to take effect', async () => {
      return (await httpStatus(requestJson(tokenConfig, '/api/v1/pods?limit=1'))) === 200;
    });
    // What the shipped ClusterRole does not grant, with the very token the pod has.
    expect(await httpStatus(requestJson(tokenConfig, '/api/v1/secrets'))).toBe(403);
    expect(await httpStatus(requestJson(tokenConfig, '/api/v1/namespaces/netpol-audit/secrets'))).toBe(403);
    expect(await httpStatus(requestJson(tokenConfig, '/api/v1/configmaps'))).toBe(403);
    expect(
      await httpStatus(requestJson(tokenConfig, '/api/v1/namespaces/shop/pods/web-1', { method: 'DELETE' })),
    ).toBe(403);

    const out = join(dir, 'cluster.yaml');
    const snap = await inPod(['snapshot', '--output', out]).done;
    expect(snap.code, snap.stderr).toBe(0);
    expect(snap.stderr).toContain('2 Pod');
    const parsed = parseSnapshot([{ source: out, text: readFileSync(out, 'utf8') }]);
    expect(parsed.issues).toEqual([]);
    expect(parsed.cluster.pods.map((p) => `${p.namespace}/${p.name} ${p.ips.join(',')}`).sort()).toEqual([
      'shop/client 10.244.1.7',
      'shop/web-1 10.244.1.5',
    ]);
    expect(parsed.cluster.networkPolicies.map((p) => (p as unknown as Obj).metadata.name)).toEqual([
      'web-from-clients',
    ]);
    expect(parsed.cluster.namespaces.map((n) => n.name).sort()).toEqual([
      'default',
      'kube-node-lease',
      'kube-public',
      'kube-system',
      'netpol-audit',
      'shop',
    ]);
  });

  it('process --in-cluster follows the cluster under the shipped ClusterRole: a pod created after the start attributes flows', async () => {
    const prefix = 'incluster.';
    const settings = kafkaSettings({ brokers: broker.brokers, topics: topicNames(prefix) });
    const kafka = new Kafka({
      clientId: 'in-cluster-test',
      brokers: broker.brokers,
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, settings);
    await admin.disconnect();

    const db = join(dir, 'store.db');
    const proc = inPod([
      'process',
      '--in-cluster',
      '--brokers',
      broker.brokers.join(','),
      '--topic-prefix',
      prefix,
      '--db',
      db,
      '--metrics-listen',
      '127.0.0.1:0',
      '--format',
      'json',
    ]);
    await waitUntil(
      () => `the processor to be assigned its partitions; log:\n${proc.stderr().slice(-3000)}`,
      () => proc.stderr().includes('"assigned partitions"'),
    );
    const metricsUrl = /metrics at (http:\/\/\S+)/.exec(proc.stderr())![1]!;

    // Two pods that did not exist when the processor started: a client (allowed to web) and a visitor
    // (not allowed). Each is created Pending, then given its IP, as a kubelet would.
    for (const [name, role, ip] of [
      ['late-client', 'client', '10.244.1.8'],
      ['late-visitor', 'visitor', '10.244.1.9'],
    ] as const) {
      const created = Date.now();
      await w.pod('shop', name, { role });
      await podEventSince(metricsUrl, created, `the watch to deliver ${name}'s creation`);
      const running = Date.now();
      await w.podRunning('shop', name, ip);
      await podEventSince(metricsUrl, running, `the watch to deliver ${name}'s IP`);
    }
    const at = Date.now();
    const flow = (src: string, port: number) =>
      flowAt(at, src, '10.244.1.5', port, { src: { ip: src, port: 40000 + port }, state: 'closed' });
    const sink = new KafkaFlowSink({ settings, spoolDir: join(dir, 'spool') });
    await sink.write(flow('10.244.1.8', 8080)); // late-client → web: allowed by web-from-clients
    await sink.write(flow('10.244.1.9', 8080)); // late-visitor → web: denied, observed: a violation
    await sink.close();
    expect(sink.stats.sent).toBe(2);

    await waitUntil(
      () => `the store to hold the 2 flows (has ${storedRecords(db)}); log:\n${proc.stderr().slice(-3000)}`,
      () => storedRecords(db) === 2,
    );
    proc.proc.kill('SIGTERM');
    const r = await proc.done;
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const stats = JSON.parse(r.stdout);
    expect(stats.recorded).toBe(2);
    expect(stats.allowed).toBe(1);
    expect(stats.deniedButObserved).toBe(1);
    // Only the API server's answers under the role: no request was refused.
    expect(r.stderr).not.toContain('KUBE_FORBIDDEN');

    const store = AuditStore.open(db, { readonly: true });
    try {
      expect(store.violations().map((v) => `${v.srcWorkload}>${v.dstWorkload}:${v.port}`)).toEqual([
        'shop/late-visitor>shop/web-1:8080',
      ]);
      expect(store.rules().map((x) => `${x.policy}#${x.rule}:${x.hits}`)).toEqual([
        'shop/web-from-clients#0:1',
      ]);
      const runs = store.db.prepare('SELECT inputs FROM runs').all() as { inputs: string }[];
      expect(runs.map((x) => JSON.parse(x.inputs)[0])).toEqual(['in-cluster']);
    } finally {
      store.close();
    }
  });

  it("deploy/'s judge and recorder, with the arguments kustomize renders, follow the cluster in-cluster", async () => {
    const prefix = 'deployed.';
    const settings = kafkaSettings({ brokers: broker.brokers, topics: topicNames(prefix) });
    const kafka = new Kafka({
      clientId: 'in-cluster-deployed',
      brokers: broker.brokers,
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, settings);
    await admin.disconnect();
    const volumes = join(dir, 'recorder-volumes');
    mkdirSync(volumes);
    const judgeArgs = argsOf('Deployment', 'netpol-audit-processor', prefix, volumes);
    const recorderArgs = argsOf('StatefulSet', 'netpol-audit-recorder', prefix, volumes);
    expect(judgeArgs.slice(0, 4)).toEqual(['process', '--role', 'judge', '--in-cluster']);
    expect(recorderArgs.slice(0, 4)).toEqual(['process', '--role', 'record', '--in-cluster']);
    const db = recorderArgs[recorderArgs.indexOf('--db') + 1]!;
    expect(db).toBe(join(volumes, 'store.db'));
    const judge = inPod(judgeArgs);
    const recorder = inPod(recorderArgs);
    for (const [p, what] of [
      [judge, 'judge'],
      [recorder, 'recorder'],
    ] as const)
      await waitUntil(
        () => `the ${what} to be assigned its partitions; log:\n${p.stderr().slice(-3000)}`,
        () => p.stderr().includes('"assigned partitions"'),
      );
    const metricsUrl = /metrics at (http:\/\/\S+)/.exec(judge.stderr())![1]!;
    for (const [name, role, ip] of [
      ['deployed-client', 'client', '10.244.1.10'],
      ['deployed-visitor', 'visitor', '10.244.1.11'],
    ] as const) {
      const created = Date.now();
      await w.pod('shop', name, { role });
      await podEventSince(metricsUrl, created, `the judge's watch to deliver ${name}'s creation`);
      const running = Date.now();
      await w.podRunning('shop', name, ip);
      await podEventSince(metricsUrl, running, `the judge's watch to deliver ${name}'s IP`);
    }
    const at = Date.now();
    const flow = (src: string) =>
      flowAt(at, src, '10.244.1.5', 8080, { src: { ip: src, port: 41000 }, state: 'closed' });
    const sink = new KafkaFlowSink({ settings, spoolDir: join(dir, 'spool-deployed') });
    await sink.write(flow('10.244.1.10'));
    await sink.write(flow('10.244.1.11'));
    await sink.close();
    await waitUntil(
      () =>
        `the recorder to store the 2 flows (has ${storedRecords(db)}); logs:\n${judge.stderr().slice(-1500)}\n${recorder.stderr().slice(-1500)}`,
      () => storedRecords(db) === 2,
    );
    judge.proc.kill('SIGTERM');
    recorder.proc.kill('SIGTERM');
    const [j, r] = await Promise.all([judge.done, recorder.done]);
    expect(j.code, j.stderr.slice(-2000)).toBe(0);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(j.stdout).toContain('process (judge): 2 flows judged');
    const store = AuditStore.open(db, { readonly: true });
    try {
      expect(store.violations().map((v) => `${v.srcWorkload}>${v.dstWorkload}:${v.port}`)).toEqual([
        'shop/deployed-visitor>shop/web-1:8080',
      ]);
      // The recorder, following the cluster too, recorded the policy in force over the data.
      expect(store.rules().map((x) => `${x.policy}#${x.rule}:${x.hits}`)).toEqual([
        'shop/web-from-clients#0:1',
      ]);
    } finally {
      store.close();
    }
  }, 300_000);
});

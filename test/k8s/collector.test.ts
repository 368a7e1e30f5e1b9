// The collector exactly as deploy/'s DaemonSet runs it, taken from `kubectl kustomize` (default install:
// conntrack; overlays/live-capture: tcpdump): its arguments with the variables the kubelet expands
// ($(NODE_NAME) from the downward API, $(KAFKA_BROKERS)/$(TOPIC_PREFIX) from the ConfigMap), uid 0 with
// a bounding set of only the capabilities the manifest adds (setpriv, no new privileges), in the network
// namespace of a "node" (test/netns/topology.ts: two pods routed through it, conntrack in use, as
// kube-proxy makes it), publishing to a real Kafka broker. The broker listens in this machine's network
// namespace: a bridge in the node's namespace forwards its address through a Unix socket, so the
// collector dials the same address the broker advertises. Without those capabilities, it cannot run.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Consumer, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics, kafkaSettings, topicNames } from '../../transport/kafka/index.js';
import { type RunningBroker, startBroker } from '../kafka/broker.js';
import {
  createTopology,
  destroyTopology,
  inNs,
  type Proc,
  removeStaleTopologies,
  start,
  type Topology,
} from '../netns/topology.js';
import { waitUntil } from '../pipeline/support.js';
import { ROOT } from '../support/cli.js';
import { requirePrograms } from '../support/programs.js';
import { buildKubectl, type K8sObject, kubectlFor, parseObjects } from './kubectl.js';

type Container = {
  args: string[];
  env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  securityContext: { runAsUser: number; allowPrivilegeEscalation: boolean; capabilities: { add: string[] } };
  volumeMounts: { mountPath: string }[];
};

interface FlowRec {
  src: { ip: string; port?: number };
  dst: { ip: string; port?: number };
  observer: { node?: string; source?: string };
  reason?: string;
}

const NODE = 'node-ds-1';
let broker: RunningBroker;
const dir = mkdtempSync(join(tmpdir(), 'npa-collector-'));
const collectors = new Map<string, Container>();
const running = new Set<ChildProcess>();
let topo: Topology;
let bridge: net.Server;
const helpers: Proc[] = [];
const PEER = resolve(ROOT, 'test/netns/peer.mjs');
// Inside the node's namespace: the broker's address, forwarded to a Unix socket of this test.
const BRIDGE = `import net from 'node:net';
const [port, path] = process.argv.slice(2);
net.createServer((c) => {
  const u = net.connect(path);
  c.pipe(u).pipe(c);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\\n'));
`;

function collectorOf(objects: K8sObject[]): Container {
  const ds = objects.find((o) => o.kind === 'DaemonSet')!;
  return (ds.spec as { template: { spec: { containers: Container[] } } }).template.spec.containers[0]!;
}

/** Runs the container's command as the kubelet would start it on this (host-network) node. */
function runAsDaemonSet(
  c: Container,
  prefix: string,
  caps = c.securityContext.capabilities.add,
  drop: string[] = [],
) {
  const work = mkdtempSync(join(dir, 'pod-'));
  // Downward API and ConfigMap values; the volumes become directories of this test.
  const env: Record<string, string> = {};
  for (const e of c.env) {
    if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = NODE;
    else if (e.name === 'KAFKA_BROKERS') env[e.name] = broker.brokers.join(',');
    else if (e.name === 'TOPIC_PREFIX') env[e.name] = prefix;
    else if (e.value !== undefined) env[e.name] = e.value;
  }
  const mounts = c.volumeMounts.map((m, i) => {
    const d = join(work, `volume-${i}`);
    mkdirSync(d);
    return [m.mountPath, d] as const;
  });
  let args = c.args.map((a) => {
    let out = a.replace(/\$\((\w+)\)/g, (_, v: string) => env[v] ?? `$(${v})`);
    for (const [from, to] of mounts) if (out === from) out = to;
    // Port 9464 may be taken: the same flag on a free loopback port.
    return out === ':9464' ? '127.0.0.1:0' : out;
  });
  for (const flag of drop) {
    const i = args.indexOf(flag);
    args = [...args.slice(0, i), ...args.slice(i + 2)];
  }
  expect(c.securityContext.runAsUser).toBe(0);
  expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
  const bounding = ['-all', ...caps.map((x) => `+${x.toLowerCase()}`)].join(',');
  const proc = spawn(
    'ip',
    [
      'netns',
      'exec',
      topo.node,
      'setpriv',
      '--bounding-set',
      bounding,
      '--inh-caps=-all',
      '--no-new-privs',
      '--',
      process.execPath,
      '--import',
      'tsx',
      resolve(ROOT, 'cli/index.ts'),
      ...args,
    ],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: work, TMPDIR: work, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(proc);
  const err: Buffer[] = [];
  proc.stderr?.on('data', (d: Buffer) => err.push(d));
  proc.stdout?.resume();
  const done = new Promise<number | null>((res) =>
    proc.on('close', (code) => {
      running.delete(proc);
      res(code);
    }),
  );
  return { proc, done, args, stderr: () => Buffer.concat(err).toString('utf8') };
}

async function consume(prefix: string): Promise<{ records: FlowRec[]; consumer: Consumer }> {
  const kafka = new Kafka({
    clientId: `collector-test-${prefix}`,
    brokers: broker.brokers,
    logLevel: logLevel.NOTHING,
  });
  const consumer = kafka.consumer({ groupId: `collector-test-${prefix}` });
  await consumer.connect();
  await consumer.subscribe({ topic: `${prefix}flows`, fromBeginning: true });
  const records: FlowRec[] = [];
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (message.value) records.push(JSON.parse(message.value.toString('utf8')) as FlowRec);
    },
  });
  return { records, consumer };
}

/** One TCP connection pod A → pod B:8080 through the node (its own source port each time). */
const podTraffic = () => inNs(topo.podA, process.execPath, [PEER, 'tcp-client', topo.ip.b, '8080', 'hello']);

/** Waits for a record of pod A → pod B:8080, making such a connection every second meanwhile. */
async function waitForPodFlow(records: FlowRec[], what: () => string): Promise<FlowRec> {
  const match = (r: FlowRec) => r.src.ip === topo.ip.a && r.dst.ip === topo.ip.b && r.dst.port === 8080;
  let last = 0;
  await waitUntil(what, async () => {
    if (records.some(match)) return true;
    if (Date.now() - last > 1000) {
      last = Date.now();
      await podTraffic();
    }
    return false;
  });
  return records.find(match)!;
}

async function topics(prefix: string) {
  const kafka = new Kafka({
    clientId: 'collector-test-admin',
    brokers: broker.brokers,
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, kafkaSettings({ brokers: broker.brokers, topics: topicNames(prefix) }));
  await admin.disconnect();
}

beforeAll(async () => {
  requirePrograms('test/k8s/collector.test.ts', ['ip', 'nft', 'sysctl', 'setpriv', 'conntrack', 'tcpdump']);
  await removeStaleTopologies();
  const [b, bin] = await Promise.all([startBroker(), buildKubectl()]);
  broker = b;
  // kustomize needs no API server; the kubeconfig is never read.
  const kubectl = kubectlFor(bin, '/dev/null');
  for (const t of ['deploy', 'deploy/overlays/live-capture']) {
    const r = await kubectl(['kustomize', join(ROOT, t)]);
    if (r.code !== 0) throw new Error(r.stderr);
    collectors.set(t, collectorOf(parseObjects(r.stdout)));
  }
  topo = await createTopology(`npa-${process.pid}`);
  const sock = join(dir, 'kafka.sock');
  const [host, port] = broker.brokers[0]!.split(':') as [string, string];
  bridge = net.createServer((c) => {
    const k = net.connect(Number(port), host);
    c.pipe(k).pipe(c);
    c.on('error', () => k.destroy());
    k.on('error', () => c.destroy());
  });
  await new Promise<void>((res) => bridge.listen(sock, res));
  writeFileSync(join(dir, 'bridge.mjs'), BRIDGE);
  const b2 = start('ip', ['netns', 'exec', topo.node, process.execPath, join(dir, 'bridge.mjs'), port, sock]);
  helpers.push(b2);
  await b2.waitFor(/ready/, 'stdout');
  const echo = start('ip', ['netns', 'exec', topo.podB, process.execPath, PEER, 'tcp-echo-server', '8080']);
  helpers.push(echo);
  await echo.waitFor(/ready/, 'stdout');
}, 3_600_000);

afterAll(async () => {
  for (const p of running) p.kill('SIGKILL');
  for (const h of helpers) await h.stop('SIGKILL');
  if (topo) await destroyTopology(topo);
  bridge?.close();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("the collector as deploy/'s DaemonSet runs it", () => {
  it("conntrack with only CAP_NET_ADMIN: follows the node's connections, publishes them with the node name", async () => {
    const c = collectors.get('deploy')!;
    expect(c.securityContext.capabilities.add).toEqual(['NET_ADMIN']);
    const prefix = 'ds-conntrack.';
    await topics(prefix);
    const { records, consumer } = await consume(prefix);
    try {
      const col = runAsDaemonSet(c, prefix);
      expect(col.args.slice(0, 4)).toEqual(['collect', 'conntrack', '--node', NODE]);
      await waitUntil(
        () => `the collector to listen; log:\n${col.stderr()}`,
        () => col.stderr().includes('collect conntrack: listening'),
      );
      // Published while it runs: the flow's DESTROY event (TIME_WAIT is 1 s in the node namespace).
      const r = await waitForPodFlow(
        records,
        () => `a pod A → pod B record (${records.length} records); log:\n${col.stderr().slice(-2000)}`,
      );
      expect(r.observer).toMatchObject({ node: NODE, source: 'conntrack' });
      expect(r.reason).toBe('conntrack-destroy');
      col.proc.kill('SIGTERM');
      expect(await col.done, col.stderr().slice(-2000)).toBe(0);
      expect(col.stderr()).not.toContain('CONNTRACK_TOOL_FAILED');
    } finally {
      await consumer.disconnect();
    }
  }, 300_000);

  it('conntrack without CAP_NET_ADMIN cannot run', async () => {
    // With every argument of the DaemonSet, --metrics-listen included: a fatal error still exits
    // (the metrics server and the Kafka client are closed on every path), so the pod restarts.
    const col = runAsDaemonSet(collectors.get('deploy')!, 'ds-nocap.', []);
    expect(await col.done).toBe(3);
    expect(col.stderr()).toContain('CONNTRACK_TOOL_FAILED');
    expect(col.stderr()).toContain('Operation not permitted');
  }, 120_000);

  it("live capture with CAP_NET_RAW, CAP_SETUID, CAP_SETGID and CAP_KILL: captures the node's traffic, publishes it with the node name", async () => {
    const c = collectors.get('deploy/overlays/live-capture')!;
    expect(c.securityContext.capabilities.add).toEqual(['NET_RAW', 'SETUID', 'SETGID', 'KILL']);
    const prefix = 'ds-live.';
    await topics(prefix);
    const { records, consumer } = await consume(prefix);
    try {
      const col = runAsDaemonSet(c, prefix);
      expect(col.args.slice(0, 4)).toEqual(['collect', 'live', '--iface', 'any']);
      const r = await waitForPodFlow(
        records,
        () => `a pod A → pod B record (${records.length} records); log:\n${col.stderr().slice(-2000)}`,
      );
      expect(r.observer).toMatchObject({ node: NODE, source: 'live' });
      col.proc.kill('SIGTERM');
      expect(await col.done, col.stderr().slice(-2000)).toBe(0);
      expect(col.stderr()).toMatch(/tcpdump: \d+ packets captured/);
    } finally {
      await consumer.disconnect();
    }
  }, 300_000);

  it("live capture without CAP_SETUID and CAP_SETGID cannot run (Debian's tcpdump switches to its user)", async () => {
    const col = runAsDaemonSet(collectors.get('deploy/overlays/live-capture')!, 'ds-live-nocap.', [
      'NET_RAW',
    ]);
    expect(await col.done).toBe(3);
    expect(col.stderr()).toContain("Couldn't change to 'tcpdump'");
  }, 120_000);
});

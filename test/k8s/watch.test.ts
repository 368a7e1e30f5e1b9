// The live inventory source against a real kube-apiserver + etcd (test/k8s/apiserver.sh): lists, watch
// events, resuming after watch ends and API server restarts, relisting on 410 Gone, CRD-served kinds.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WatchedKind } from '../../processor/inventory/events.js';
import { KubeInventorySource, listComplete, resourceOf } from '../../processor/inventory/kube/index.js';
import { type RunningApiServer, startApiServer } from './apiserver.js';
import {
  ADMIN_NETWORK_POLICY,
  BASELINE_ADMIN_NETWORK_POLICY,
  CLUSTER_NETWORK_POLICY,
  ClusterWriter,
} from './objects.js';
import { type K8sObject, latencyStats, RecordingSink, type SinkCall } from './recording-sink.js';

const BUILTIN: WatchedKind[] = ['Namespace', 'Node', 'Pod', 'Service', 'EndpointSlice', 'NetworkPolicy'];
const CRD_KINDS: WatchedKind[] = ['AdminNetworkPolicy', 'BaselineAdminNetworkPolicy', 'ClusterNetworkPolicy'];

function captureLogger() {
  const lines: { msg: string; kind?: string; level: number }[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

let srv: RunningApiServer;
let w: ClusterWriter;
const sink = new RecordingSink();
const logs = captureLogger();
let source: KubeInventorySource;
const latencies: { what: string; ms: number; writeMs: number }[] = [];

/** Writes through the API and waits for the sink to see exactly that version of the object. */
async function change(
  what: string,
  kind: WatchedKind,
  op: 'upsert' | 'remove',
  write: () => Promise<K8sObject>,
): Promise<SinkCall> {
  const from = sink.calls.length;
  const t0 = Date.now();
  const written = await write();
  const writeMs = Date.now() - t0;
  const rv = written.metadata?.resourceVersion;
  // Some DELETEs answer with a Status naming the object's uid instead of the object.
  const uid = written.metadata?.uid ?? (written.details as { uid?: string } | undefined)?.uid;
  expect(uid).toBeTruthy();
  const call = await sink.waitFor(
    (c) =>
      c.op === op &&
      c.kind === kind &&
      c.object?.metadata.uid === uid &&
      // A DELETE answers with the object as it was before; the event carries the deletion's version.
      (op === 'remove' || c.object?.metadata.resourceVersion === rv),
    `${op} ${kind} ${what}`,
    from,
  );
  latencies.push({ what, ms: call.at - t0, writeMs });
  return call;
}

/** Every (kind, object, resourceVersion) reaches the sink through upsert/remove at most once. */
function expectNoDuplicateEvents(calls: SinkCall[]) {
  const seen = new Set<string>();
  const dups: string[] = [];
  for (const c of calls) {
    if (c.op === 'replace') continue;
    const id = `${c.op} ${c.kind} ${c.object!.metadata.uid} ${c.object!.metadata.resourceVersion}`;
    if (seen.has(id)) dups.push(id);
    seen.add(id);
  }
  expect(dups).toEqual([]);
}

async function waitUntil(cond: () => boolean, what: string, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('KubeInventorySource against a real kube-apiserver', () => {
  beforeAll(async () => {
    // Continuation pages come from etcd, not from watch-cache snapshots (beta, on by default since 1.34),
    // so that compacting etcd expires a continue token as it does on clusters without that feature.
    srv = await startApiServer({ extraArgs: '--feature-gates=ListFromCacheSnapshot=false' });
    console.info(`etcd + kube-apiserver started in ${srv.startupMs.toFixed(0)} ms`);
    w = new ClusterWriter(srv);
    // Objects that exist before the watcher starts arrive through the initial lists.
    await w.namespace('before', { team: 'early' });
    await w.node('node-1', '172.18.0.2', '10.244.1.0/24');
    await w.runningPod('before', 'p0', { app: 'early' }, '10.244.1.2');
    source = new KubeInventorySource({
      kubeConfig: srv.kubeConfig,
      sink,
      backoff: { initialMs: 100, maxMs: 1000 },
      crdRecheckMs: 300,
      logger: logs.logger,
    });
    source.start();
    await source.ready();
  }, 3_600_000);

  afterAll(async () => {
    await source?.stop();
    if (latencies.length > 0) {
      const s = latencyStats(latencies.map((l) => l.ms));
      const a = latencyStats(latencies.map((l) => l.ms - l.writeMs));
      console.info(
        `sink call after the API's answer: median ${a.median} ms, p90 ${a.p90} ms, max ${a.max} ms (negative: the event came first)`,
      );
      const slowest = [...latencies].sort((a, b) => b.ms - a.ms).slice(0, 3);
      console.info(
        `API write → sink latency over ${s.n} changes: median ${s.median} ms, p90 ${s.p90} ms, max ${s.max} ms; ` +
          `slowest: ${slowest.map((l) => `${l.what} ${l.ms} ms (API answered after ${l.writeMs} ms)`).join(', ')}`,
      );
    }
    await srv?.stop();
  });

  it('reports ready only after one complete list per served kind, and logs absent CRD kinds once', async () => {
    expect(source.isReady()).toBe(true);
    const replaces = sink.calls.filter((c) => c.op === 'replace');
    expect(replaces.map((c) => c.kind).sort()).toEqual([...BUILTIN].sort());
    const pods = replaces.find((c) => c.kind === 'Pod')!.objects!;
    const p0 = pods.find((p) => p.metadata.name === 'p0')!;
    expect(p0.kind).toBe('Pod');
    expect(p0.apiVersion).toBe('v1');
    expect(p0.metadata.labels).toEqual({ app: 'early' });
    expect((p0.status as { podIP: string }).podIP).toBe('10.244.1.2');
    expect(p0.metadata).not.toHaveProperty('managedFields');
    expect(sink.keys('Namespace')).toContain('before');
    expect(sink.keys('Node')).toEqual(['node-1']);
    // The API server's own `kubernetes` Service in default.
    expect(sink.keys('Service')).toContain('default/kubernetes');

    // Several recheck rounds pass; each absent kind is still logged only once.
    const health = () => source.healthReport().kinds;
    await new Promise((r) => setTimeout(r, 1200));
    for (const kind of CRD_KINDS) {
      expect(health().find((h) => h.kind === kind)).toMatchObject({ state: 'absent', ready: true, lists: 0 });
      expect(logs.lines.filter((l) => l.kind === kind && /not served/.test(l.msg))).toHaveLength(1);
    }
    for (const kind of BUILTIN) {
      expect(health().find((h) => h.kind === kind)).toMatchObject({ state: 'watching', lists: 1, errors: 0 });
    }
  });

  it('hands every change to the sink once, in order, with the object as written', async () => {
    const start = sink.calls.length;
    await change('namespace shop', 'Namespace', 'upsert', () => w.namespace('shop', { team: 'shop' }));
    const created = await change('pod web-1 created', 'Pod', 'upsert', () =>
      w.pod('shop', 'web-1', { app: 'web' }),
    );
    expect(created.object!.status).toMatchObject({ phase: 'Pending' });
    const running = await change('pod web-1 running', 'Pod', 'upsert', () =>
      w.podRunning('shop', 'web-1', '10.244.1.5'),
    );
    expect(running.object!.status).toMatchObject({ phase: 'Running', podIP: '10.244.1.5' });
    const relabelled = await change('pod web-1 relabelled', 'Pod', 'upsert', () =>
      w.labelPod('shop', 'web-1', { app: 'web', tier: 'front' }),
    );
    expect(relabelled.object!.metadata.labels).toEqual({ app: 'web', tier: 'front' });
    await change('service web', 'Service', 'upsert', () => w.service('shop', 'web', { app: 'web' }));
    await change('slice web', 'EndpointSlice', 'upsert', () =>
      w.endpointSlice('shop', 'web', [{ ip: '10.244.1.5', pod: 'web-1' }]),
    );
    await change('policy allow-front', 'NetworkPolicy', 'upsert', () =>
      w.networkPolicy('shop', 'allow-front', { app: 'web' }, { role: 'client' }),
    );
    const narrowed = await change('policy allow-front narrowed', 'NetworkPolicy', 'upsert', () =>
      w.patch('/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/allow-front', {
        spec: { ingress: [{ from: [{ podSelector: { matchLabels: { role: 'admin' } } }] }] },
      }),
    );
    expect(JSON.stringify(narrowed.object!.spec)).toContain('"admin"');

    // The pod goes away and a new pod gets its address.
    const web1 = sink.get('Pod', 'shop/web-1')!;
    await change('pod web-1 deleted', 'Pod', 'remove', () => w.deletePod('shop', 'web-1'));
    expect(sink.get('Pod', 'shop/web-1')).toBeUndefined();
    await change('pod web-2 created', 'Pod', 'upsert', () => w.pod('shop', 'web-2', { app: 'web', v: '2' }));
    const moved = await change('pod web-2 running', 'Pod', 'upsert', () =>
      w.podRunning('shop', 'web-2', '10.244.1.5'),
    );
    expect(moved.object!.metadata.uid).not.toBe(web1.metadata.uid);
    const holders = [...(sink.state.get('Pod')?.values() ?? [])].filter(
      (p) => (p.status as { podIP?: string } | undefined)?.podIP === '10.244.1.5',
    );
    expect(holders.map((p) => p.metadata.name)).toEqual(['web-2']);
    await change('policy deleted', 'NetworkPolicy', 'remove', () =>
      w.delete('/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/allow-front'),
    );
    await change('node-2', 'Node', 'upsert', () => w.node('node-2', '172.18.0.3', '10.244.2.0/24'));

    const calls = sink.calls.slice(start);
    expect(calls.filter((c) => c.op === 'replace')).toEqual([]);
    expectNoDuplicateEvents(calls);
    // Times are when each change was received, so they never go backwards.
    for (let i = 1; i < calls.length; i++) expect(calls[i]!.at).toBeGreaterThanOrEqual(calls[i - 1]!.at);
  });

  it('resumes from the last resourceVersion when the server ends a watch: no relist, no gap, no repeat', async () => {
    const quickSink = new RecordingSink();
    // The server ends each watch after 1-2 s; the source must pick up exactly where it stopped.
    const quick = new KubeInventorySource({
      kubeConfig: srv.kubeConfig,
      sink: quickSink,
      kinds: ['Pod'],
      minWatchTimeoutSeconds: 1,
      backoff: { initialMs: 100, maxMs: 1000 },
      logger: logs.logger,
    });
    quick.start();
    await quick.ready();
    await w.namespace('churn');
    const written: K8sObject[] = [];
    try {
      for (let i = 0; i < 12; i++) {
        written.push(await w.runningPod('churn', `c-${i}`, { i: String(i) }, `10.244.3.${i + 1}`));
        written.push(await w.labelPod('churn', `c-${i}`, { i: String(i), seen: 'yes' }));
        // Spread the writes over several watch lifetimes.
        await new Promise((r) => setTimeout(r, 300));
      }
      const last = written[written.length - 1]!;
      await quickSink.waitFor(
        (c) => c.op === 'upsert' && c.object?.metadata.resourceVersion === last.metadata.resourceVersion,
        'the last label change',
      );
      const h = quick.healthReport().kinds[0]!;
      expect(h.watches).toBeGreaterThan(1);
      expect(h.lists).toBe(1);
      expect(h.relists).toBe(0);
      const events = quickSink.calls.filter(
        (c) => c.op !== 'replace' && c.object?.metadata.namespace === 'churn',
      );
      expectNoDuplicateEvents(events);
      // Every write this test made was delivered (create, status, label: 3 versions per pod).
      const delivered = new Set(events.map((c) => c.object!.metadata.resourceVersion));
      for (const o of written) expect(delivered.has(o.metadata.resourceVersion)).toBe(true);
      expect(events).toHaveLength(36);
    } finally {
      await quick.stop();
    }
  });

  it('rides out an API server restart and delivers every change made after it', async () => {
    const before = sink.calls.length;
    const watchesBefore = new Map(source.healthReport().kinds.map((h) => [h.kind, h.watches]));
    await srv.restart();
    console.info(`kube-apiserver restarted (etcd kept) in ${srv.startupMs.toFixed(0)} ms`);
    await waitUntil(
      () =>
        source
          .healthReport()
          .kinds.filter((h) => BUILTIN.includes(h.kind))
          .every((h) => h.state === 'watching' && h.watches > watchesBefore.get(h.kind)!),
      'all watches re-established',
    );
    const health = source.healthReport().kinds.filter((h) => BUILTIN.includes(h.kind));
    for (const h of health) expect(h.errors).toBeGreaterThan(0); // the outage was noticed...
    expect(source.isReady()).toBe(true); // ...and readiness, once reached, stays
    console.info(
      `after restart: ${health.map((h) => `${h.kind} relists=${h.relists} gone=${h.gone} errors=${h.errors}`).join('; ')}`,
    );

    await change('pod after-restart', 'Pod', 'upsert', () => w.pod('shop', 'after-restart', { app: 'late' }));
    await change('label after restart', 'Pod', 'upsert', () =>
      w.labelPod('shop', 'web-2', { app: 'web', v: '3' }),
    );
    const after = sink.calls.slice(before);
    expectNoDuplicateEvents(after);
    // Whether it resumed or had to relist, the sink's view equals the API server's.
    const pods = await listComplete(srv.kubeConfig, resourceOf('Pod'));
    expect(sink.keys('Pod')).toEqual(
      pods.items
        .map((p) => (p as unknown as K8sObject).metadata)
        .map((m) => `${m.namespace}/${m.name}`)
        .sort(),
    );
    expect(sink.get('Pod', 'shop/web-2')!.metadata.labels).toEqual({ app: 'web', v: '3' });
  });

  it('relists after 410 Gone: a pod deleted while the API server was down (and etcd compacted) disappears', async () => {
    const h0 = source.healthReport().kinds.find((h) => h.kind === 'Pod')!;
    await w.runningPod('shop', 'doomed', { app: 'doomed' }, '10.244.1.9');
    await sink.waitFor((c) => c.op === 'upsert' && c.object?.metadata.name === 'doomed', 'doomed pod');
    const from = sink.calls.length;
    await srv.stopApiServer();
    // Behind the API server's back: delete the pod's key in etcd, then compact so no watch can replay it.
    const key = Buffer.from('/registry/pods/shop/doomed').toString('base64');
    const del = await srv.etcd('/v3/kv/deleterange', { key });
    expect(del.deleted).toBe('1');
    await srv.compactEtcd();
    await srv.startApiServer();

    const relist = await sink.waitFor((c) => c.op === 'replace' && c.kind === 'Pod', 'Pod relist', from);
    expect(relist.objects!.map((p) => p.metadata.name)).not.toContain('doomed');
    expect(sink.get('Pod', 'shop/doomed')).toBeUndefined();
    expect(sink.get('Pod', 'shop/web-2')).toBeDefined();
    const h = source.healthReport().kinds.find((k) => k.kind === 'Pod')!;
    expect(h.gone).toBeGreaterThan(h0.gone);
    expect(h.relists).toBeGreaterThan(h0.relists);
    // No remove was ever sent for it: only the relist could tell.
    expect(
      sink.calls.slice(from).some((c) => c.op === 'remove' && c.object?.metadata.name === 'doomed'),
    ).toBe(false);
    await waitUntil(
      () => source.healthReport().kinds.every((k) => k.state === 'watching' || k.state === 'absent'),
      'watching again',
    );
    await change('pod after relist', 'Pod', 'upsert', () => w.pod('shop', 'after-relist', { app: 'late' }));
  });

  it('follows AdminNetworkPolicy, BaselineAdminNetworkPolicy and ClusterNetworkPolicy once their CRDs exist', async () => {
    await srv.installPolicyCrds();
    await waitUntil(
      () =>
        CRD_KINDS.every((k) => source.healthReport().kinds.find((h) => h.kind === k)!.state === 'watching'),
      'CRD kinds watched',
    );
    for (const kind of CRD_KINDS) {
      expect(sink.calls.some((c) => c.op === 'replace' && c.kind === kind && c.objects!.length === 0)).toBe(
        true,
      );
      expect(logs.lines.filter((l) => l.kind === kind && /served now/.test(l.msg))).toHaveLength(1);
    }
    const anp = await change('ANP', 'AdminNetworkPolicy', 'upsert', () =>
      w.create('/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies', ADMIN_NETWORK_POLICY),
    );
    expect(anp.object!.kind).toBe('AdminNetworkPolicy');
    expect(anp.object!.spec).toMatchObject({ priority: 10 });
    await change('BANP', 'BaselineAdminNetworkPolicy', 'upsert', () =>
      w.create(
        '/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies',
        BASELINE_ADMIN_NETWORK_POLICY,
      ),
    );
    const cnp = await change('CNP', 'ClusterNetworkPolicy', 'upsert', () =>
      w.create('/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies', CLUSTER_NETWORK_POLICY),
    );
    expect(cnp.object!.apiVersion).toBe('policy.networking.k8s.io/v1alpha2');
    await change('ANP deleted', 'AdminNetworkPolicy', 'remove', () =>
      w.delete('/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies/deny-to-vault'),
    );
    expect(sink.keys('AdminNetworkPolicy')).toEqual([]);
    expect(sink.keys('ClusterNetworkPolicy')).toEqual(['cluster-wide-deny']);
  });

  it('pages lists with limit/continue and returns them only complete', async () => {
    const r = resourceOf('Pod');
    const whole = await listComplete(srv.kubeConfig, r, { pageSize: 0 });
    const paged = await listComplete(srv.kubeConfig, r, { pageSize: 2 });
    expect(whole.pages).toBe(1);
    expect(paged.pages).toBe(Math.ceil(whole.items.length / 2));
    expect(paged.items.map((p) => (p.metadata as { uid: string }).uid)).toEqual(
      whole.items.map((p) => (p.metadata as { uid: string }).uid),
    );
    expect(whole.items.length).toBeGreaterThan(10);
    expect(paged.restarted).toBe(false);
  });

  it('never returns a list that broke off: an expired continue token restarts it unpaged', async () => {
    const r = resourceOf('Pod');
    let added: K8sObject | undefined;
    const list = await listComplete(srv.kubeConfig, r, {
      pageSize: 2,
      async onPage(page) {
        if (page !== 1) return;
        // Between pages: a new pod, then etcd compacted past the revision the continue token pins.
        added = await w.pod('shop', 'between-pages', { app: 'late' });
        await srv.compactEtcd();
      },
    });
    expect(list.restarted).toBe(true);
    expect(list.pages).toBe(1);
    // The result is one consistent state, read after the change: it has the new pod.
    expect(list.items.map((p) => (p as unknown as K8sObject).metadata.uid)).toContain(added!.metadata.uid);
    const now = await listComplete(srv.kubeConfig, r, { pageSize: 0 });
    expect(list.items.length).toBe(now.items.length);
  });
});

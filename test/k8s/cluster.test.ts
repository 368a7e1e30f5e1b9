// The ClusterRole's sufficiency, `netpol-audit snapshot` and the live source feeding ClusterTimeline,
// all against a real kube-apiserver + etcd (test/k8s/apiserver.sh). deploy/ as a whole (kustomize,
// server-side dry runs) is test/k8s/deploy.test.ts; the in-cluster paths are test/k8s/in-cluster.test.ts.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { ClusterChangeSink } from '../../processor/inventory/events.js';
import { parseSnapshot } from '../../processor/inventory/index.js';
import {
  KUBE_RESOURCES,
  KubeHttpError,
  KubeInventorySource,
  requestJson,
} from '../../processor/inventory/kube/index.js';
import { ClusterTimeline } from '../../processor/inventory/timeline.js';
import { flowAt } from '../../processor/judge/fixtures.js';
import { judgeFlow } from '../../processor/judge/index.js';
import { ROOT, runCli } from '../support/cli.js';
import { type RunningApiServer, startApiServer } from './apiserver.js';
import { ADMIN_NETWORK_POLICY, CLUSTER_NETWORK_POLICY, ClusterWriter } from './objects.js';
import { RecordingSink } from './recording-sink.js';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } } & Record<
  string,
  unknown
>;

const quiet = pino({ level: 'silent' });

function manifests(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(ROOT, 'deploy/base', file), 'utf8'))
    .map((d) => (Array.isArray(d) ? undefined : (d.toJS() as Obj | null)))
    .filter((o): o is Obj => !!o);
}

/** The collection path the API server serves a manifest's kind at. */
function collectionPath(o: Obj): string {
  const plural: Record<string, string> = {
    Namespace: 'namespaces',
    ServiceAccount: 'serviceaccounts',
    ClusterRole: 'clusterroles',
    ClusterRoleBinding: 'clusterrolebindings',
  };
  const resource = plural[o.kind];
  if (!resource) throw new Error(`test knows no path for kind ${o.kind}`);
  const base = o.apiVersion === 'v1' ? '/api/v1' : `/apis/${o.apiVersion}`;
  return o.metadata.namespace
    ? `${base}/namespaces/${o.metadata.namespace}/${resource}`
    : `${base}/${resource}`;
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

let srv: RunningApiServer;
let w: ClusterWriter;
const tmp = mkdtempSync(join(tmpdir(), 'netpol-audit-k8s-'));

describe('RBAC, snapshot and timeline against a real kube-apiserver', () => {
  beforeAll(async () => {
    srv = await startApiServer();
    w = new ClusterWriter(srv);
    await srv.installPolicyCrds();
    await w.namespace('shop', { team: 'shop' });
    await w.namespace('clients', { team: 'clients' });
    await w.node('node-1', '172.18.0.2', '10.244.1.0/24');
    await w.runningPod('shop', 'web-1', { app: 'web' }, '10.244.1.5');
    await w.runningPod('shop', 'web-2', { app: 'web', 'version-flag': 'true' }, '10.244.1.6');
    await w.runningPod('clients', 'client', { role: 'client' }, '10.244.1.7');
    await w.service('shop', 'web', { app: 'web' });
    await w.endpointSlice('shop', 'web', [
      { ip: '10.244.1.5', pod: 'web-1' },
      { ip: '10.244.1.6', pod: 'web-2' },
    ]);
    await w.create('/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies', {
      metadata: { name: 'web-from-clients' },
      spec: {
        podSelector: { matchLabels: { app: 'web' } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchLabels: { team: 'clients' } },
                podSelector: { matchLabels: { role: 'client' } },
              },
            ],
            ports: [{ protocol: 'TCP', port: 8080 }],
          },
        ],
      },
    });
    await w.create('/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies', ADMIN_NETWORK_POLICY);
    await w.create('/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies', CLUSTER_NETWORK_POLICY);
  }, 3_600_000);

  afterAll(async () => {
    await srv?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('the ClusterRole grants get/list/watch on exactly the kinds the watcher follows', () => {
    const role = manifests('rbac.yaml').find((o) => o.kind === 'ClusterRole') as unknown as {
      rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    };
    const granted = role.rules.flatMap((r) => {
      expect([...r.verbs].sort()).toEqual(['get', 'list', 'watch']);
      return r.apiGroups.flatMap((g) => r.resources.map((res) => `${g}/${res}`));
    });
    expect(granted.sort()).toEqual(KUBE_RESOURCES.map((r) => `${r.group}/${r.resource}`).sort());
  });

  it('a ServiceAccount token bound to that role suffices for the watcher and the snapshot, and no more', async () => {
    const [ns] = manifests('namespace.yaml');
    await srv.api('POST', collectionPath(ns!), ns);
    for (const o of manifests('rbac.yaml')) await srv.api('POST', collectionPath(o), o);
    const tr = (await srv.api('POST', '/api/v1/namespaces/netpol-audit/serviceaccounts/netpol-audit/token', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 3600 },
    })) as { status: { token: string } };
    const admin = srv.kubeConfig.getCurrentCluster()!;
    const kubeconfig = join(tmp, 'sa.kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 'c', cluster: { server: admin.server, 'certificate-authority-data': admin.caData } },
        ],
        users: [{ name: 'sa', user: { token: tr.status.token } }],
        contexts: [{ name: 'sa', context: { cluster: 'c', user: 'sa' } }],
        'current-context': 'sa',
      }),
    );
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    // The API server's RBAC authorizer learns of the new binding through its informers: wait for that.
    for (let i = 0; (await httpStatus(requestJson(kc, '/api/v1/pods?limit=1'))) !== 200; i++) {
      if (i > 100) throw new Error('the new ClusterRoleBinding never took effect');
      await new Promise((r) => setTimeout(r, 100));
    }

    const sink = new RecordingSink();
    const source = new KubeInventorySource({
      kubeConfig: kc,
      sink,
      logger: quiet,
      backoff: { initialMs: 100 },
    });
    source.start();
    try {
      await source.ready();
      const health = source.healthReport();
      expect(health.kinds.map((h) => [h.kind, h.lists, h.errors, h.lastError ?? ''])).toEqual(
        KUBE_RESOURCES.map((r) => [r.kind, 1, 0, '']),
      );
      expect(sink.keys('Pod')).toEqual(['clients/client', 'shop/web-1', 'shop/web-2']);
      expect(sink.keys('AdminNetworkPolicy')).toEqual(['deny-to-vault']);
    } finally {
      await source.stop();
    }
    // What the role does not grant.
    expect(await httpStatus(requestJson(kc, '/api/v1/secrets'))).toBe(403);
    expect(await httpStatus(requestJson(kc, '/api/v1/namespaces/shop/secrets/anything'))).toBe(403);
    expect(await httpStatus(requestJson(kc, '/api/v1/configmaps'))).toBe(403);
    expect(
      await httpStatus(
        requestJson(kc, '/api/v1/namespaces/shop/pods', {
          method: 'POST',
          body: { metadata: { name: 'x' } },
        }),
      ),
    ).toBe(403);
    expect(
      await httpStatus(requestJson(kc, '/api/v1/namespaces/shop/pods/web-1', { method: 'PATCH', body: {} })),
    ).toBe(403);

    const out = join(tmp, 'sa-snapshot.yaml');
    const res = await runCli(['snapshot', '--kubeconfig', kubeconfig, '--output', out]);
    expect(res.stderr).toContain('3 Pod');
    expect(res.code).toBe(0);
  });

  it('netpol-audit snapshot round-trips through parseSnapshot: pods, IPs, labels, services, policies', async () => {
    const out = join(tmp, 'cluster.yaml');
    const res = await runCli(['snapshot', '--kubeconfig', srv.kubeconfigPath, '--output', out]);
    expect(res.code).toBe(0);
    // No BaselineAdminNetworkPolicy exists, but its CRD does: listed, zero objects, not "absent".
    expect(res.stderr).toContain('0 BaselineAdminNetworkPolicy');
    const text = readFileSync(out, 'utf8');
    expect(text.startsWith('apiVersion: v1\nkind: List\n')).toBe(true);
    const parsed = parseSnapshot([{ source: out, text }]);
    expect(parsed.issues).toEqual([]);
    const c = parsed.cluster;

    const apiPods = (await srv.api('GET', '/api/v1/pods')) as {
      items: {
        metadata: { namespace: string; name: string; labels?: Record<string, string> };
        status: { podIP?: string };
      }[];
    };
    expect(
      c.pods
        .map((p) => ({ ref: `${p.namespace}/${p.name}`, ips: p.ips, labels: p.labels, phase: p.phase }))
        .sort((a, b) => a.ref.localeCompare(b.ref)),
    ).toEqual(
      apiPods.items
        .map((p) => ({
          ref: `${p.metadata.namespace}/${p.metadata.name}`,
          ips: p.status.podIP ? [p.status.podIP] : [],
          labels: p.metadata.labels ?? {},
          phase: 'Running',
        }))
        .sort((a, b) => a.ref.localeCompare(b.ref)),
    );
    // A label value that YAML would read as a boolean stays a string.
    expect(c.pods.find((p) => p.name === 'web-2')!.labels['version-flag']).toBe('true');
    expect(c.namespaces.find((n) => n.name === 'shop')!.labels).toMatchObject({ team: 'shop' });
    expect(c.nodes.map((n) => ({ name: n.name, addresses: n.addresses, podCIDRs: n.podCIDRs }))).toEqual([
      { name: 'node-1', addresses: ['172.18.0.2'], podCIDRs: ['10.244.1.0/24'] },
    ]);
    const web = c.services.find((s) => s.namespace === 'shop' && s.name === 'web')!;
    const apiWeb = (await srv.api('GET', '/api/v1/namespaces/shop/services/web')) as {
      spec: { clusterIP: string };
    };
    expect(web.clusterIPs).toEqual([apiWeb.spec.clusterIP]);
    expect(c.endpointSlices.find((s) => s.service === 'web')!.endpoints.map((e) => e.addresses[0])).toEqual([
      '10.244.1.5',
      '10.244.1.6',
    ]);
    expect(c.networkPolicies.map((p) => (p as Obj).metadata.name)).toEqual(['web-from-clients']);
    expect(
      (c.clusterNetworkPolicies ?? []).map((p) => `${(p as Obj).kind}/${(p as Obj).metadata.name}`).sort(),
    ).toEqual(['AdminNetworkPolicy/deny-to-vault', 'ClusterNetworkPolicy/cluster-wide-deny']);
  });

  it('snapshot names a missing context and an unreachable server clearly', async () => {
    const bad = await runCli(['snapshot', '--kubeconfig', srv.kubeconfigPath, '--context', 'nope']);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('kubeconfig has no context "nope" (contexts: admin)');
    const closed = join(tmp, 'closed.kubeconfig');
    writeFileSync(
      closed,
      readFileSync(srv.kubeconfigPath, 'utf8').replace(
        /server: https:\/\/127\.0\.0\.1:\d+/,
        'server: https://127.0.0.1:1',
      ),
    );
    const out = join(tmp, 'never.yaml');
    const down = await runCli(['snapshot', '--kubeconfig', closed, '--output', out]);
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/listing Namespace \(\/api\/v1\/namespaces\) failed: .*ECONNREFUSED/);
    expect(existsSync(out)).toBe(false);
  });

  it('verdicts follow live changes: source → ClusterTimeline → judgeFlow', async () => {
    const timeline = new ClusterTimeline({ source: 'watch' });
    const times: { label: string; at: number }[] = [];
    const recorder = new RecordingSink();
    // Both sinks see the same calls; the recorder tells the test when a change has arrived.
    const tee: ClusterChangeSink = {
      replace(k, o, at) {
        timeline.replace(k, o, at);
        recorder.replace(k, o, at);
      },
      upsert(k, o, at) {
        timeline.upsert(k, o, at);
        recorder.upsert(k, o, at);
      },
      remove(k, o, at) {
        timeline.remove(k, o, at);
        recorder.remove(k, o, at);
      },
    };
    const source = new KubeInventorySource({ kubeConfig: srv.kubeConfig, sink: tee, logger: quiet });
    source.start();
    try {
      await source.ready();
      times.push({ label: 'listed', at: Date.now() });
      const flow = (at: number) => flowAt(at, '10.244.1.7', '10.244.1.5', 8080);
      const verdictAt = (at: number) => {
        const { inventory, index } = timeline.at(at);
        const r = judgeFlow(flow(at), inventory, index);
        return { allowed: r.verdict.allowed, dstPod: (r.dst as { pod?: string }).pod };
      };
      const tListed = recorder.calls.at(-1)!.at;
      expect(verdictAt(tListed).allowed).toBe(true);

      // The client loses the label the policy admits.
      const relabel = (await w.labelPod('clients', 'client', { role: 'visitor' })).metadata.resourceVersion;
      const denied = await recorder.waitFor((c) => c.object?.metadata.resourceVersion === relabel, 'relabel');
      expect(verdictAt(denied.at).allowed).toBe(false);
      expect(verdictAt(tListed).allowed).toBe(true); // the past keeps its verdict

      // web-1 goes; web-3 takes its address and is not selected by the policy: allowed again.
      const gone = await w.deletePod('shop', 'web-1');
      const removed = await recorder.waitFor(
        (c) => c.op === 'remove' && c.object?.metadata.uid === gone.metadata.uid,
        'web-1 removed',
      );
      await w.pod('shop', 'web-3', { app: 'cache' });
      const running = (await w.podRunning('shop', 'web-3', '10.244.1.5')).metadata.resourceVersion;
      const moved = await recorder.waitFor(
        (c) => c.object?.metadata.resourceVersion === running,
        'web-3 running',
      );
      expect(verdictAt(moved.at)).toEqual({ allowed: true, dstPod: 'shop/web-3' });
      expect(verdictAt(denied.at).dstPod).toBe('shop/web-1');
      expect(moved.at).toBeGreaterThanOrEqual(removed.at);
    } finally {
      await source.stop();
    }
  });
});

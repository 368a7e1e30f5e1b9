import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../test/support/cli.js';
import { loadSnapshotFiles, parseSnapshot, SNAPSHOT_ISSUE } from './snapshot.js';

const FIXTURES = resolve(ROOT, 'test/fixtures/clusters');
const fixture = (name: string) => resolve(FIXTURES, name);

describe('parseSnapshot', () => {
  it('reads a kubectl List (YAML) with every kind the processor uses', async () => {
    const r = await loadSnapshotFiles([fixture('shop.yaml')]);
    expect(r.issues).toEqual([]);
    const { cluster } = r;
    expect(cluster.namespaces.map((n) => n.name).sort()).toEqual([
      'kube-system',
      'monitoring',
      'payments',
      'shop',
    ]);
    expect(cluster.nodes.map((n) => n.name)).toEqual(['node-a', 'node-b']);
    // Hostname addresses are not IPs and are left out.
    expect(cluster.nodes[0]).toEqual({
      name: 'node-a',
      addresses: ['192.168.10.11'],
      podCIDRs: ['10.244.0.0/24', 'fd00:10:244::/64'],
      // Labels are kept for the `nodes` peers of AdminNetworkPolicy and ClusterNetworkPolicy.
      labels: {
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': 'node-a',
        'kubernetes.io/os': 'linux',
      },
    });
    const web = cluster.pods.find((p) => p.name.startsWith('web-'))!;
    expect(web).toMatchObject({
      namespace: 'shop',
      ips: ['10.244.0.10', 'fd00:10:244::a'],
      nodeName: 'node-a',
      hostNetwork: false,
      phase: 'Running',
      ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
    });
    expect(web.labels).toMatchObject({ app: 'web' });
    // Init container ports count for named-port resolution too.
    const catalog = cluster.pods.find((p) => p.name.startsWith('catalog-'))!;
    expect(catalog.ports.map((p) => p.name)).toEqual(['grpc', 'warmup']);
    const proxy = cluster.pods.find((p) => p.name === 'kube-proxy-8xk2m')!;
    expect(proxy.hostNetwork).toBe(true);
    expect(cluster.pods.find((p) => p.name.startsWith('report-'))!.phase).toBe('Succeeded');

    const headless = cluster.services.find((s) => s.name === 'cart-headless')!;
    expect(headless.clusterIPs).toEqual([]);
    const webSvc = cluster.services.find((s) => s.name === 'web')!;
    expect(webSvc).toMatchObject({
      clusterIPs: ['10.96.10.10', 'fd00:10:96::a10'],
      selector: { app: 'web' },
      ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
    });
    const cartSlice = cluster.endpointSlices.find((s) => s.service === 'cart')!;
    // cart-1's slice entry has no ready condition: discovery.k8s.io/v1 says nil means ready.
    expect(cartSlice.endpoints).toEqual([
      { addresses: ['10.244.1.20'], ready: true, pod: 'shop/cart-0', nodeName: 'node-b' },
      { addresses: ['10.244.0.21'], ready: true, pod: 'shop/cart-1', nodeName: 'node-a' },
    ]);
    const paySlice = cluster.endpointSlices.find((s) => s.service === 'payments')!;
    expect(paySlice.endpoints.map((e) => e.ready)).toEqual([true, false]);
    // `endpoints: null` (a Service with no pods) is an empty list, not an error.
    expect(cluster.endpointSlices.find((s) => s.service === 'legacy')!.endpoints).toEqual([]);
    expect(cluster.networkPolicies).toHaveLength(8);
    expect(r.kinds).toMatchObject({
      Namespace: 4,
      Node: 2,
      Pod: 12,
      Service: 7,
      EndpointSlice: 5,
      NetworkPolicy: 8,
    });
  });

  it('reads multi-document YAML, a single object, and kubectl -o json, from several files', async () => {
    const r = await loadSnapshotFiles([
      fixture('docs-cluster.yaml'),
      fixture('docs-test-network-policy.yaml'),
      fixture('docs-default-policies.yaml'),
      fixture('docs-and-or.json'),
    ]);
    // kind-worker is in two files: the later copy wins and the repeat is only a warning.
    expect(r.issues.map((i) => [i.code, i.severity, i.object])).toEqual([
      [SNAPSHOT_ISSUE.duplicateObject, 'warning', 'kind-worker'],
    ]);
    const names = r.cluster.networkPolicies.map((p) => {
      const m = (p as { metadata: { namespace: string; name: string } }).metadata;
      return `${m.namespace}/${m.name}`;
    });
    expect(names).toEqual([
      'default/test-network-policy',
      'deny-ingress/default-deny-ingress',
      'allow-ingress/default-deny-ingress',
      'allow-ingress/allow-all-ingress',
      'deny-egress/default-deny-egress',
      'allow-egress/default-deny-egress',
      'allow-egress/allow-all-egress',
      'deny-all/default-deny-all',
      'and-demo/alice-clients-only',
      'or-demo/local-clients-or-alice',
    ]);
    expect(r.cluster.namespaces.find((n) => n.name === 'alice')!.labels).toEqual({
      'kubernetes.io/metadata.name': 'alice',
      user: 'alice',
    });
    expect(r.cluster.nodes.map((n) => n.name).sort()).toEqual([
      'kind-control-plane',
      'kind-worker',
      'kind-worker2',
    ]);
  });

  it('adds the kubernetes.io/metadata.name label when a namespace lacks it', () => {
    const r = parseSnapshot([
      {
        source: 'ns.yaml',
        text: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: old\n  labels:\n    team: a\n',
      },
    ]);
    expect(r.cluster.namespaces).toEqual([
      { name: 'old', labels: { team: 'a', 'kubernetes.io/metadata.name': 'old' } },
    ]);
  });

  it('applies the API defaults: TCP, targetPort = port, podIP without podIPs, namespace default', () => {
    const text = `
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  clusterIP: 10.96.0.5
  selector: {app: s}
  ports:
  - port: 80
  - port: 53
    protocol: UDP
    targetPort: "5353"
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: x}
spec:
  nodeName: n1
  containers:
  - name: c
    ports: [{containerPort: 80}]
status:
  phase: Running
  podIP: 10.1.0.7
`;
    const r = parseSnapshot([{ source: 'defaults.yaml', text }]);
    expect(r.cluster.services[0]).toEqual({
      namespace: 'default',
      name: 's',
      type: 'ClusterIP',
      clusterIPs: ['10.96.0.5'],
      selector: { app: 's' },
      ports: [
        { port: 80, targetPort: 80, protocol: 'TCP' },
        { port: 53, targetPort: 5353, protocol: 'UDP' },
      ],
    });
    expect(r.cluster.pods[0]).toMatchObject({
      ips: ['10.1.0.7'],
      ports: [{ containerPort: 80, protocol: 'TCP' }],
    });
    // The default namespace is used but absent: assumed, with a warning.
    expect(r.issues.map((i) => [i.code, i.severity, i.object]).sort()).toEqual([
      [SNAPSHOT_ISSUE.missingNamespace, 'warning', 'default'],
      [SNAPSHOT_ISSUE.missingNamespace, 'warning', 'x'],
    ]);
  });

  it('reports a malformed object with file, document, item, line, object and field, and keeps the rest', () => {
    const text = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: good, namespace: a}
  status: {phase: Running, podIP: 10.0.0.1}
- apiVersion: v1
  kind: Pod
  metadata: {name: bad, namespace: a}
  status:
    phase: Running
    podIPs:
    - ip: 10.0.0.300
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cm, namespace: a}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: a}
spec:
  ports:
  - port: 80
    protocol: HTTP
---
- not an object
---
kind: Namespace
metadata: {name: a}
`;
    const r = parseSnapshot([{ source: 'bad.yaml', text }]);
    expect(r.cluster.pods.map((p) => p.name)).toEqual(['good']);
    expect(r.cluster.services).toEqual([]);
    expect(r.cluster.namespaces.map((n) => n.name)).toEqual(['a']);
    expect(r.ignored).toEqual({ ConfigMap: 1 });
    const [podIssue, svcIssue, notObject] = r.issues;
    expect(podIssue).toMatchObject({
      code: SNAPSHOT_ISSUE.invalidField,
      source: 'bad.yaml',
      record: 0,
      line: 8,
      object: 'a/bad',
      field: 'items[1].status.podIPs[0].ip',
      severity: 'error',
    });
    expect(svcIssue).toMatchObject({
      code: SNAPSHOT_ISSUE.invalidField,
      record: 1,
      object: 'a/svc',
      field: 'spec.ports[0].protocol',
    });
    expect(svcIssue!.message).toContain('HTTP');
    expect(notObject).toMatchObject({ code: SNAPSHOT_ISSUE.notAnObject, record: 2 });
    expect(r.issues).toHaveLength(3);
  });

  it('reports a List whose items is not a sequence, in YAML (with its line) and in JSON, and reads the rest', () => {
    const yaml =
      'kind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: List\nitems: {kind: Pod}\n';
    const y = parseSnapshot([{ source: 'list.yaml', text: yaml }]);
    expect(y.cluster.namespaces.map((n) => n.name)).toEqual(['a']);
    expect(y.issues).toHaveLength(1);
    expect(y.issues[0]).toMatchObject({
      code: SNAPSHOT_ISSUE.notAnObject,
      source: 'list.yaml',
      record: 1,
      line: 4,
      field: 'items',
    });
    const j = parseSnapshot([{ source: 'list.json', text: '{"kind": "PodList", "items": 3}' }]);
    expect(j.issues).toHaveLength(1);
    expect(j.issues[0]).toMatchObject({
      code: SNAPSHOT_ISSUE.notAnObject,
      source: 'list.json',
      field: 'items',
    });
    expect(j.issues[0]!.line).toBeUndefined();
  });

  it('reports YAML syntax errors per document and reads the other documents', () => {
    const text = 'kind: Namespace\nmetadata: {name: ok}\n---\nkind: Pod\nmetadata: {name: [unclosed\n';
    const r = parseSnapshot([{ source: 'syntax.yaml', text }]);
    expect(r.cluster.namespaces.map((n) => n.name)).toEqual(['ok']);
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]).toMatchObject({ code: SNAPSHOT_ISSUE.syntax, source: 'syntax.yaml', record: 1 });
  });

  it('keeps policy.networking.k8s.io objects raw and unknown kinds counted', () => {
    const text = `apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: cluster-control}
spec: {priority: 10, subject: {namespaces: {}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: a}
`;
    const r = parseSnapshot([{ source: 'anp.yaml', text }]);
    expect(r.cluster.clusterNetworkPolicies).toHaveLength(1);
    expect((r.cluster.clusterNetworkPolicies![0] as { spec: { priority: number } }).spec.priority).toBe(10);
    expect(r.ignored).toEqual({ Deployment: 1 });
  });

  it('locates problems in kubectl -o json output by item, and reports broken JSON', () => {
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: { name: 'n1' },
          status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }] },
        },
        { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n2' }, spec: { podCIDRs: ['10.1.0.0/33'] } },
      ],
    };
    const r = parseSnapshot([{ source: 'nodes.json', text: JSON.stringify(list, null, 2) }]);
    expect(r.cluster.nodes.map((n) => n.name)).toEqual(['n1']);
    expect(r.issues).toEqual([
      expect.objectContaining({
        code: SNAPSHOT_ISSUE.invalidField,
        object: 'n2',
        field: 'items[1].spec.podCIDRs[0]',
      }),
    ]);
    const broken = parseSnapshot([{ source: 'broken.json', text: '{"kind": "List", "items": [' }]);
    expect(broken.issues[0]).toMatchObject({ code: SNAPSHOT_ISSUE.syntax, source: 'broken.json' });
  });

  it('turns an unreadable file into an issue', async () => {
    const r = await loadSnapshotFiles([fixture('does-not-exist.yaml')]);
    expect(r.issues[0]).toMatchObject({ code: SNAPSHOT_ISSUE.unreadable });
  });
});

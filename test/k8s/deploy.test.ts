// deploy/ as kustomize builds it (`kubectl kustomize`, kubectl's built-in kustomize) for the default
// install and every overlay, each object dry-run on a real kube-apiserver (`kubectl apply --server-side
// --dry-run=server`), and what the manifests promise: the image, the security contexts, one recorder
// sharing its claim with the report job, judges following the API server in-cluster, collectors on
// every node, and NetworkPolicies that select each component and allow what connections.yaml lists.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ROOT } from '../support/cli.js';
import { type RunningApiServer, startApiServer } from './apiserver.js';
import {
  buildKubectl,
  type K8sObject,
  type Kubectl,
  kubectlFor,
  monitoringCrdFiles,
  parseObjects,
} from './kubectl.js';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const TARGETS = [
  'deploy',
  'deploy/overlays/live-capture',
  'deploy/overlays/prometheus-operator',
  'deploy/overlays/example',
];

type Labels = Record<string, string>;
type Selector = {
  matchLabels?: Labels;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
};
type Container = {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { name: string; containerPort: number }[];
  securityContext?: {
    runAsUser?: number;
    runAsNonRoot?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
};
type PodSpec = {
  hostNetwork?: boolean;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  tolerations?: { operator?: string }[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; persistentVolumeClaim?: { claimName: string; readOnly?: boolean } }[];
  affinity?: {
    podAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: { labelSelector: Selector }[] };
  };
};
type Template = { metadata: { labels: Labels }; spec: PodSpec };
type NetworkPolicy = K8sObject & {
  spec: {
    podSelector: Selector;
    policyTypes: string[];
    ingress?: { from?: unknown[]; ports?: { protocol: string; port: number }[] }[];
    egress?: { to?: unknown[]; ports?: { protocol: string; port: number }[] }[];
  };
};

function selects(sel: Selector, labels: Labels): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = e.key in labels;
    if (e.operator === 'In' && !(has && e.values!.includes(labels[e.key]!))) return false;
    if (e.operator === 'NotIn' && has && e.values!.includes(labels[e.key]!)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

function template(o: K8sObject): Template {
  const spec = o.spec as { template?: Template; jobTemplate?: { spec: { template: Template } } };
  return o.kind === 'CronJob' ? spec.jobTemplate!.spec.template : spec.template!;
}

const WORKLOADS = new Set(['DaemonSet', 'Deployment', 'StatefulSet', 'CronJob']);

let srv: RunningApiServer;
let kubectl: Kubectl;
const built = new Map<string, { yaml: string; objects: K8sObject[] }>();

const find = (target: string, kind: string, name: string): K8sObject => {
  const o = built.get(target)!.objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${target} builds no ${kind}/${name}`);
  return o;
};

beforeAll(async () => {
  const [server, bin, crds] = await Promise.all([startApiServer(), buildKubectl(), monitoringCrdFiles()]);
  srv = server;
  kubectl = kubectlFor(bin, srv.kubeconfigPath);
  for (const target of TARGETS) {
    const r = await kubectl(['kustomize', join(ROOT, target)]);
    if (r.code !== 0) throw new Error(`kubectl kustomize ${target}: ${r.stderr}`);
    built.set(target, { yaml: r.stdout, objects: parseObjects(r.stdout) });
  }
  // The Prometheus Operator's CRDs, for real (they must be Established before a dry run can name them).
  for (const f of crds) {
    const r = await kubectl(['apply', '--server-side', '-f', f]);
    if (r.code !== 0) throw new Error(`installing ${f}: ${r.stderr}`);
  }
  const wait = await kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=120s',
    'crd/servicemonitors.monitoring.coreos.com',
    'crd/prometheusrules.monitoring.coreos.com',
  ]);
  if (wait.code !== 0) throw new Error(`CRDs not established: ${wait.stderr}`);
  // Namespaced objects can only be dry-run inside an existing namespace.
  const ns = await kubectl(['create', 'namespace', 'netpol-audit']);
  if (ns.code !== 0) throw new Error(ns.stderr);
}, 3_600_000);

afterAll(async () => {
  await srv?.stop();
});

describe('deploy/ with kustomize against a real kube-apiserver', () => {
  it('the default install and every overlay build, and every object passes a server-side dry run', async () => {
    // The generated ConfigMap's name ends in a hash of its data.
    const kinds = (t: string) =>
      built
        .get(t)!
        .objects.map((o) =>
          o.kind === 'ConfigMap'
            ? `ConfigMap/${o.metadata.name.replace(/-[a-z0-9]{10}$/, '-HASH')}`
            : `${o.kind}/${o.metadata.name}`,
        )
        .sort();
    const base = kinds('deploy');
    expect(base).toEqual(
      [
        'ClusterRole/netpol-audit-inventory',
        'ClusterRoleBinding/netpol-audit-inventory',
        'ConfigMap/netpol-audit-config-HASH',
        'CronJob/netpol-audit-weekly-report',
        'DaemonSet/netpol-audit-collector',
        'Deployment/netpol-audit-processor',
        'Namespace/netpol-audit',
        'NetworkPolicy/netpol-audit-default-deny',
        'NetworkPolicy/netpol-audit-dns',
        'NetworkPolicy/netpol-audit-metrics-from-prometheus',
        'NetworkPolicy/netpol-audit-to-apiserver',
        'NetworkPolicy/netpol-audit-to-kafka',
        'PersistentVolumeClaim/netpol-audit-evidence',
        'PersistentVolumeClaim/netpol-audit-store',
        'Service/netpol-audit-metrics',
        'ServiceAccount/netpol-audit',
        'StatefulSet/netpol-audit-recorder',
      ].sort(),
    );
    expect(kinds('deploy/overlays/live-capture')).toEqual(base);
    expect(kinds('deploy/overlays/prometheus-operator')).toEqual(
      [...base, 'PrometheusRule/netpol-audit', 'ServiceMonitor/netpol-audit'].sort(),
    );
    for (const t of TARGETS) {
      const { yaml, objects } = built.get(t)!;
      for (const o of objects)
        if (o.kind !== 'Namespace' && !o.kind.startsWith('ClusterRole'))
          expect(o.metadata.namespace, `${t} ${o.kind}/${o.metadata.name}`).toBe('netpol-audit');
      const r = await kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], yaml);
      expect(r.stderr, t).toBe('');
      expect(r.code, t).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines.length, t).toBe(objects.length);
      for (const line of lines) expect(line).toMatch(/ serverside-applied \(server dry run\)$/);
    }
    // A dry run persists nothing.
    const get = await kubectl(['get', '-n', 'netpol-audit', 'deployment/netpol-audit-processor']);
    expect(get.code).toBe(1);
    expect(get.stderr).toContain('NotFound');
  });

  it('the dry run validates for real: a broken manifest is refused', async () => {
    const broken = built
      .get('deploy')!
      .yaml.replace(
        /(kind: DaemonSet[\s\S]*?matchLabels:\n\s+app\.kubernetes\.io\/name: )netpol-audit-collector/,
        '$1something-else',
      );
    expect(broken).not.toBe(built.get('deploy')!.yaml);
    const r = await kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], broken);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/DaemonSet.*netpol-audit-collector.*is invalid.*selector/s);
  });

  it('every container runs the netpol-audit image of this version; an overlay sets the registry', () => {
    const images = (t: string) =>
      built
        .get(t)!
        .objects.filter((o) => WORKLOADS.has(o.kind))
        .flatMap((o) => [...template(o).spec.containers, ...(template(o).spec.initContainers ?? [])])
        .map((c) => c.image);
    for (const t of TARGETS.slice(0, 3)) {
      expect(images(t).length).toBe(4);
      expect(new Set(images(t))).toEqual(new Set([`netpol-audit:${VERSION}`]));
    }
    expect(new Set(images('deploy/overlays/example'))).toEqual(
      new Set([`registry.example.com/platform/netpol-audit:${VERSION}`]),
    );
  });

  it('security contexts: non-root, read-only root, no escalation, drop ALL; only the collector adds what its tool needs', () => {
    for (const t of TARGETS) {
      for (const o of built.get(t)!.objects.filter((x) => WORKLOADS.has(x.kind))) {
        const spec = template(o).spec;
        const what = `${t} ${o.kind}/${o.metadata.name}`;
        expect(spec.securityContext?.seccompProfile?.type, what).toBe('RuntimeDefault');
        for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
          const sc = c.securityContext!;
          expect(sc.allowPrivilegeEscalation, what).toBe(false);
          expect(sc.readOnlyRootFilesystem, what).toBe(true);
          expect(sc.capabilities?.drop, what).toEqual(['ALL']);
          expect(c.resources?.requests?.cpu, what).toBeDefined();
          expect(c.resources?.requests?.memory, what).toBeDefined();
          expect(c.resources?.limits?.memory, what).toBeDefined();
          if (o.kind === 'DaemonSet') {
            // Capabilities take effect for uid 0 only; everything else is dropped.
            expect(sc.runAsUser, what).toBe(0);
            expect(sc.capabilities?.add, what).toEqual(
              t.endsWith('live-capture') ? ['NET_RAW', 'SETUID', 'SETGID', 'KILL'] : ['NET_ADMIN'],
            );
          } else {
            expect(spec.securityContext?.runAsNonRoot, what).toBe(true);
            expect(spec.securityContext?.runAsUser, what).toBe(65532);
            expect(sc.runAsUser ?? 65532, what).toBe(65532);
            expect(sc.capabilities?.add, what).toBeUndefined();
          }
        }
        // Only what follows the API server gets a token.
        const talksToApi = o.kind === 'Deployment' || o.kind === 'StatefulSet';
        expect(spec.automountServiceAccountToken, what).toBe(talksToApi);
        expect(spec.serviceAccountName, what).toBe(talksToApi ? 'netpol-audit' : undefined);
      }
    }
  });

  it('Pod Security: every pod but the collector meets `restricted`; the collector needs `privileged`', async () => {
    // Pod Security admission enforces on pods, not on their templates: dry-run each template as a pod.
    for (const level of ['restricted', 'baseline']) {
      const r = await kubectl(['create', 'namespace', `psa-${level}`]);
      expect(r.code, r.stderr).toBe(0);
      const l = await kubectl([
        'label',
        'namespace',
        `psa-${level}`,
        `pod-security.kubernetes.io/enforce=${level}`,
      ]);
      expect(l.code, l.stderr).toBe(0);
    }
    const ns = find('deploy', 'Namespace', 'netpol-audit');
    expect(ns.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('privileged');
    const asPod = (o: K8sObject, namespace: string) =>
      stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `${o.metadata.name}-psa`, namespace, labels: template(o).metadata.labels },
        spec: template(o).spec,
      });
    for (const t of ['deploy', 'deploy/overlays/live-capture']) {
      for (const o of built.get(t)!.objects.filter((x) => WORKLOADS.has(x.kind))) {
        const restricted = await kubectl(
          ['apply', '--server-side', '--dry-run=server', '-f', '-'],
          asPod(o, 'psa-restricted'),
        );
        if (o.kind !== 'DaemonSet') {
          expect(restricted.code, `${t} ${o.metadata.name}: ${restricted.stderr}`).toBe(0);
          continue;
        }
        expect(restricted.code).not.toBe(0);
        expect(restricted.stderr).toContain('violates PodSecurity "restricted:latest"');
        const baseline = await kubectl(
          ['apply', '--server-side', '--dry-run=server', '-f', '-'],
          asPod(o, 'psa-baseline'),
        );
        expect(baseline.code).not.toBe(0);
        expect(baseline.stderr).toContain('violates PodSecurity "baseline:latest"');
        expect(baseline.stderr).toContain('host namespaces (hostNetwork=true)');
        const own = await kubectl(
          ['apply', '--server-side', '--dry-run=server', '-f', '-'],
          asPod(o, 'netpol-audit'),
        );
        expect(own.code, own.stderr).toBe(0);
      }
    }
  });

  it('collectors: every node, host network, node name from the downward API, conntrack or live capture', () => {
    for (const t of ['deploy', 'deploy/overlays/live-capture']) {
      const spec = template(find(t, 'DaemonSet', 'netpol-audit-collector')).spec;
      expect(spec.hostNetwork).toBe(true);
      expect(spec.tolerations).toEqual([{ operator: 'Exists' }]);
      const [c] = spec.containers;
      expect(c!.env!.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe(
        'spec.nodeName',
      );
      const args = c!.args!;
      expect(args.slice(0, 2)).toEqual(['collect', t.endsWith('live-capture') ? 'live' : 'conntrack']);
      expect(args[args.indexOf('--node') + 1]).toBe('$(NODE_NAME)');
      expect(args[args.indexOf('--kafka') + 1]).toBe('$(KAFKA_BROKERS)');
    }
    // The brokers come from the generated ConfigMap, which an overlay merges into.
    const cm = (t: string) => built.get(t)!.objects.find((o) => o.kind === 'ConfigMap')!;
    expect((cm('deploy').data as Labels).brokers).toBe('kafka.kafka.svc:9092');
    expect((cm('deploy/overlays/example').data as Labels).brokers).toBe(
      'my-cluster-kafka-bootstrap.streaming.svc:9092',
    );
    const ref = JSON.stringify(
      template(find('deploy/overlays/example', 'DaemonSet', 'netpol-audit-collector')),
    );
    expect(ref).toContain(`"name":"${cm('deploy/overlays/example').metadata.name}"`);
  });

  it('judges follow the API server in-cluster (2 replicas); exactly one recorder shares its claim with the report job', () => {
    const judge = find('deploy', 'Deployment', 'netpol-audit-processor');
    expect((judge.spec as { replicas: number }).replicas).toBe(2);
    const jargs = template(judge).spec.containers[0]!.args!;
    expect(jargs.slice(0, 3)).toEqual(['process', '--role', 'judge']);
    expect(jargs).toContain('--in-cluster');
    expect(jargs).not.toContain('--kubeconfig');
    expect(jargs).not.toContain('--cluster');
    expect(template(judge).spec.initContainers).toBeUndefined();

    const rec = find('deploy', 'StatefulSet', 'netpol-audit-recorder');
    const rspec = rec.spec as { replicas: number; volumeClaimTemplates?: unknown };
    expect(rspec.replicas).toBe(1);
    expect(rspec.volumeClaimTemplates).toBeUndefined();
    const rpod = template(rec);
    const rargs = rpod.spec.containers[0]!.args!;
    expect(rargs.slice(0, 3)).toEqual(['process', '--role', 'record']);
    expect(rargs[rargs.indexOf('--db') + 1]).toBe('/var/lib/netpol-audit/store.db');
    const storeVol = rpod.spec.volumes!.find((v) => v.persistentVolumeClaim)!;
    expect(storeVol.persistentVolumeClaim).toEqual({ claimName: 'netpol-audit-store' });
    expect(rpod.spec.containers[0]!.volumeMounts).toContainEqual({
      name: storeVol.name,
      mountPath: '/var/lib/netpol-audit',
    });
    const pvc = find('deploy', 'PersistentVolumeClaim', 'netpol-audit-store');
    expect((pvc.spec as { accessModes: string[] }).accessModes).toEqual(['ReadWriteOnce']);

    // The report job: the same claim on the recorder's node (ReadWriteOnce). Mounted writable: SQLite's
    // read-only open of a WAL store recreates -shm/-wal once the recorder stopped (and removed them).
    const report = template(find('deploy', 'CronJob', 'netpol-audit-weekly-report'));
    const claim = report.spec.volumes!.find(
      (v) => v.persistentVolumeClaim?.claimName === 'netpol-audit-store',
    );
    expect(claim?.persistentVolumeClaim?.readOnly).toBeUndefined();
    const mount = report.spec.containers[0]!.volumeMounts!.find((m) => m.name === claim!.name)!;
    expect(mount.readOnly).toBeUndefined();
    const script = report.spec.containers[0]!.command!.join(' ');
    expect(script).toContain(`--db ${mount.mountPath}/store.db`);
    const affinity = report.spec.affinity!.podAffinity!.requiredDuringSchedulingIgnoredDuringExecution!;
    expect(affinity).toHaveLength(1);
    expect(selects(affinity[0]!.labelSelector, rpod.metadata.labels)).toBe(true);
    expect(selects(affinity[0]!.labelSelector, template(judge).metadata.labels)).toBe(false);
  });

  it('metrics: the Service selects the pods that serve /metrics, the ServiceMonitor selects the Service', () => {
    const svc = find('deploy', 'Service', 'netpol-audit-metrics');
    const sel = (svc.spec as { selector: Labels }).selector;
    const serving = built
      .get('deploy')!
      .objects.filter(
        (o) => WORKLOADS.has(o.kind) && selects({ matchLabels: sel }, template(o).metadata.labels),
      )
      .map((o) => o.metadata.name)
      .sort();
    expect(serving).toEqual(['netpol-audit-collector', 'netpol-audit-processor', 'netpol-audit-recorder']);
    for (const name of serving) {
      const o = built.get('deploy')!.objects.find((x) => x.metadata.name === name)!;
      const c = template(o).spec.containers[0]!;
      expect(c.args![c.args!.indexOf('--metrics-listen') + 1]).toBe(':9464');
      expect(c.ports).toContainEqual(expect.objectContaining({ name: 'metrics', containerPort: 9464 }));
    }
    const sm = find('deploy/overlays/prometheus-operator', 'ServiceMonitor', 'netpol-audit');
    const smSpec = sm.spec as { selector: Selector; endpoints: { port: string }[] };
    expect(selects(smSpec.selector, svc.metadata.labels!)).toBe(true);
    expect(smSpec.endpoints.map((e) => e.port)).toEqual(['metrics']);
  });

  it('the NetworkPolicies select every component and allow exactly what connections.yaml lists', () => {
    const objects = built.get('deploy')!.objects;
    const policies = objects.filter((o): o is NetworkPolicy => o.kind === 'NetworkPolicy');
    const pods = new Map(
      objects
        .filter((o) => WORKLOADS.has(o.kind))
        .map((o) => [template(o).metadata.labels['app.kubernetes.io/name']!, template(o)]),
    );
    const selecting = (label: string) =>
      policies
        .filter((p) => selects(p.spec.podSelector, pods.get(label)!.metadata.labels))
        .map((p) => p.metadata.name)
        .sort();
    const both = ['netpol-audit-default-deny', 'netpol-audit-dns'];
    expect(selecting('netpol-audit-collector')).toEqual(
      [...both, 'netpol-audit-metrics-from-prometheus', 'netpol-audit-to-kafka'].sort(),
    );
    for (const l of ['netpol-audit-processor', 'netpol-audit-recorder'])
      expect(selecting(l)).toEqual(
        [
          ...both,
          'netpol-audit-metrics-from-prometheus',
          'netpol-audit-to-apiserver',
          'netpol-audit-to-kafka',
        ].sort(),
      );
    expect(selecting('netpol-audit-report')).toEqual(both);
    // The default deny isolates both directions; no policy admits ingress but from Prometheus.
    const deny = policies.find((p) => p.metadata.name === 'netpol-audit-default-deny')!;
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    expect(policies.filter((p) => p.spec.ingress).map((p) => p.metadata.name)).toEqual([
      'netpol-audit-metrics-from-prometheus',
    ]);

    const conn = parse(readFileSync(join(ROOT, 'deploy/base/connections.yaml'), 'utf8')) as {
      components: Record<string, { 'pod-label': string; kind: string }>;
      connections: { from: string; to: string; protocol: string; port: number; policy: string }[];
    };
    for (const [name, c] of Object.entries(conn.components))
      expect(pods.has(c['pod-label']), `component ${name}`).toBe(true);
    // Each connection: its policy selects the component's pods and allows the port, in the right direction.
    const allowed = new Set<string>();
    for (const c of conn.connections) {
      const p = policies.find((x) => x.metadata.name === c.policy);
      expect(p, c.policy).toBeDefined();
      const outgoing = c.from in conn.components;
      const component = conn.components[outgoing ? c.from : c.to]!;
      expect(
        selects(p!.spec.podSelector, pods.get(component['pod-label'])!.metadata.labels),
        JSON.stringify(c),
      ).toBe(true);
      const rules = outgoing ? p!.spec.egress : p!.spec.ingress;
      expect(
        rules?.some((r) => r.ports?.some((x) => x.protocol === c.protocol && x.port === c.port)),
        JSON.stringify(c),
      ).toBe(true);
      allowed.add(`${c.policy} ${outgoing ? 'egress' : 'ingress'} ${c.protocol}/${c.port}`);
    }
    // And the policies allow nothing connections.yaml does not list.
    const granted = policies.flatMap((p) => [
      ...(p.spec.egress ?? []).flatMap((r) =>
        (r.ports ?? []).map((x) => `${p.metadata.name} egress ${x.protocol}/${x.port}`),
      ),
      ...(p.spec.ingress ?? []).flatMap((r) =>
        (r.ports ?? []).map((x) => `${p.metadata.name} ingress ${x.protocol}/${x.port}`),
      ),
    ]);
    expect(new Set(granted)).toEqual(allowed);
  });
});

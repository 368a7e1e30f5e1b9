import type { ClusterModel, EndpointSliceModel, ServiceModel } from '../processor/inventory/model.js';

/** Kubernetes objects for benchmarks: the generated cluster with Services, and as kubectl prints it. */

export function addServices(c: ClusterModel): ClusterModel {
  const groups = new Map<string, typeof c.pods>();
  for (const p of c.pods) {
    const app = p.labels.app;
    if (!app) continue;
    const k = `${p.namespace}/${app}`;
    const l = groups.get(k) ?? [];
    l.push(p);
    groups.set(k, l);
  }
  const services: ServiceModel[] = [];
  const endpointSlices: EndpointSliceModel[] = [];
  let n = 0;
  for (const [k, members] of groups) {
    const [namespace, app] = k.split('/') as [string, string];
    const port = members[0]!.ports[0];
    if (!port) continue;
    n++;
    const clusterIP = `10.96.${(n >> 8) & 255}.${n & 255}`;
    services.push({
      namespace,
      name: app,
      type: 'ClusterIP',
      clusterIPs: [clusterIP],
      selector: { app },
      ports: [{ name: 'main', port: 80, targetPort: port.containerPort, protocol: port.protocol }],
    });
    endpointSlices.push({
      namespace,
      name: `${app}-abcde`,
      service: app,
      addressType: 'IPv4',
      endpoints: members.map((p) => ({
        addresses: [p.ips[0]!],
        ready: true,
        pod: `${p.namespace}/${p.name}`,
      })),
      ports: [{ name: 'main', port: port.containerPort, protocol: port.protocol }],
    });
  }
  return { ...c, services, endpointSlices };
}

export /** The cluster as kubectl prints it (the fields the parser reads, plus typical noise). */
function kubectlList(c: ClusterModel): unknown {
  const meta = (name: string, namespace?: string, labels?: Record<string, string>) => ({
    name,
    ...(namespace ? { namespace } : {}),
    ...(labels ? { labels } : {}),
    uid: '6f1c2b1e-0d2a-4d0e-9a57-3c1f0f6f4c11',
    resourceVersion: '123456',
    creationTimestamp: '2026-11-20T08:00:00Z',
  });
  const items: unknown[] = [];
  for (const ns of c.namespaces)
    items.push({ apiVersion: 'v1', kind: 'Namespace', metadata: meta(ns.name, undefined, { ...ns.labels }) });
  for (const n of c.nodes) {
    items.push({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: meta(n.name),
      spec: { podCIDRs: n.podCIDRs },
      status: { addresses: n.addresses.map((address) => ({ type: 'InternalIP', address })) },
    });
  }
  for (const p of c.pods) {
    items.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: meta(p.name, p.namespace, { ...p.labels }),
      spec: {
        nodeName: p.nodeName,
        hostNetwork: p.hostNetwork || undefined,
        containers: [{ name: 'main', image: 'registry.example.com/app:1.0', ports: p.ports }],
        restartPolicy: 'Always',
      },
      status: {
        phase: p.phase,
        podIP: p.ips[0],
        podIPs: p.ips.map((ip) => ({ ip })),
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    });
  }
  for (const s of c.services) {
    items.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(s.name, s.namespace),
      spec: {
        clusterIP: s.clusterIPs[0],
        clusterIPs: s.clusterIPs,
        selector: s.selector,
        ports: s.ports,
        type: s.type,
      },
    });
  }
  for (const e of c.endpointSlices) {
    items.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      addressType: e.addressType,
      metadata: meta(e.name, e.namespace, { 'kubernetes.io/service-name': e.service! }),
      endpoints: e.endpoints.map((x) => ({
        addresses: x.addresses,
        conditions: { ready: x.ready },
        targetRef: { kind: 'Pod', name: x.pod!.split('/')[1], namespace: e.namespace },
      })),
      ports: e.ports,
    });
  }
  for (const p of c.networkPolicies) items.push(p);
  return { apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion: '' } };
}

// Writes the objects the tests need through the real API server. There is no kubelet and no controller
// manager: pod IPs and phases are set through the status subresource, EndpointSlices are written by hand.
import type { RunningApiServer } from './apiserver.js';
import type { K8sObject } from './recording-sink.js';

type Labels = Record<string, string>;

export class ClusterWriter {
  constructor(private readonly srv: RunningApiServer) {}

  private async call(method: string, path: string, body?: unknown): Promise<K8sObject> {
    return (await this.srv.api(method, path, body)) as K8sObject;
  }

  namespace(name: string, labels: Labels = {}): Promise<K8sObject> {
    return this.call('POST', '/api/v1/namespaces', { metadata: { name, labels } });
  }

  node(name: string, internalIp: string, podCidr: string): Promise<K8sObject> {
    return this.call('POST', '/api/v1/nodes', {
      metadata: { name, labels: { 'kubernetes.io/hostname': name } },
      spec: { podCIDR: podCidr, podCIDRs: [podCidr] },
    }).then(() =>
      this.call('PATCH', `/api/v1/nodes/${name}/status`, {
        status: { addresses: [{ type: 'InternalIP', address: internalIp }] },
      }),
    );
  }

  /** Creates a pod bound to `node` (no scheduler runs), still Pending and without an IP. */
  pod(
    ns: string,
    name: string,
    labels: Labels,
    opts: { node?: string; port?: number } = {},
  ): Promise<K8sObject> {
    return this.call('POST', `/api/v1/namespaces/${ns}/pods`, {
      metadata: { name, labels },
      spec: {
        nodeName: opts.node ?? 'node-1',
        containers: [
          {
            name: 'app',
            image: 'registry.invalid/app:1',
            ports: [{ name: 'http', containerPort: opts.port ?? 8080, protocol: 'TCP' }],
          },
        ],
      },
    });
  }

  /** What the kubelet would report once the pod runs: phase and addresses. */
  podRunning(ns: string, name: string, ip: string): Promise<K8sObject> {
    return this.call('PATCH', `/api/v1/namespaces/${ns}/pods/${name}/status`, {
      status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP: '172.18.0.2' },
    });
  }

  async runningPod(ns: string, name: string, labels: Labels, ip: string): Promise<K8sObject> {
    await this.pod(ns, name, labels);
    return this.podRunning(ns, name, ip);
  }

  labelPod(ns: string, name: string, labels: Record<string, string | null>): Promise<K8sObject> {
    return this.call('PATCH', `/api/v1/namespaces/${ns}/pods/${name}`, { metadata: { labels } });
  }

  /** Deletes at once (grace period 0): without a kubelet a graceful delete would never finish. */
  deletePod(ns: string, name: string): Promise<K8sObject> {
    return this.call('DELETE', `/api/v1/namespaces/${ns}/pods/${name}?gracePeriodSeconds=0`);
  }

  service(ns: string, name: string, selector: Labels, port = 80, targetPort = 8080): Promise<K8sObject> {
    return this.call('POST', `/api/v1/namespaces/${ns}/services`, {
      metadata: { name },
      spec: { selector, ports: [{ name: 'http', port, targetPort, protocol: 'TCP' }] },
    });
  }

  endpointSlice(ns: string, service: string, endpoints: { ip: string; pod: string }[], port = 8080) {
    return this.call('POST', `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, {
      metadata: { name: `${service}-abc`, labels: { 'kubernetes.io/service-name': service } },
      addressType: 'IPv4',
      endpoints: endpoints.map((e) => ({
        addresses: [e.ip],
        conditions: { ready: true },
        nodeName: 'node-1',
        targetRef: { kind: 'Pod', namespace: ns, name: e.pod },
      })),
      ports: [{ name: 'http', port, protocol: 'TCP' }],
    });
  }

  networkPolicy(ns: string, name: string, podSelector: Labels, fromLabels: Labels, port = 8080) {
    return this.call('POST', `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`, {
      metadata: { name },
      spec: {
        podSelector: { matchLabels: podSelector },
        policyTypes: ['Ingress'],
        ingress: [
          { from: [{ podSelector: { matchLabels: fromLabels } }], ports: [{ protocol: 'TCP', port }] },
        ],
      },
    });
  }

  patch(path: string, body: unknown): Promise<K8sObject> {
    return this.call('PATCH', path, body);
  }

  delete(path: string): Promise<K8sObject> {
    return this.call('DELETE', path);
  }

  create(path: string, body: unknown): Promise<K8sObject> {
    return this.call('POST', path, body);
  }
}

export const ADMIN_NETWORK_POLICY = {
  apiVersion: 'policy.networking.k8s.io/v1alpha1',
  kind: 'AdminNetworkPolicy',
  metadata: { name: 'deny-to-vault' },
  spec: {
    priority: 10,
    subject: { namespaces: { matchLabels: { 'kubernetes.io/metadata.name': 'vault' } } },
    ingress: [{ name: 'deny-all', action: 'Deny', from: [{ namespaces: {} }] }],
  },
};

export const BASELINE_ADMIN_NETWORK_POLICY = {
  apiVersion: 'policy.networking.k8s.io/v1alpha1',
  kind: 'BaselineAdminNetworkPolicy',
  metadata: { name: 'default' },
  spec: {
    subject: { namespaces: {} },
    ingress: [{ name: 'default-deny', action: 'Deny', from: [{ namespaces: {} }] }],
  },
};

export const CLUSTER_NETWORK_POLICY = {
  apiVersion: 'policy.networking.k8s.io/v1alpha2',
  kind: 'ClusterNetworkPolicy',
  metadata: { name: 'cluster-wide-deny' },
  spec: {
    tier: 'Admin',
    priority: 0,
    subject: { namespaces: { matchLabels: { 'kubernetes.io/metadata.name': 'vault' } } },
    ingress: [
      {
        action: 'Deny',
        name: 'select-all-deny-all',
        from: [{ pods: { namespaceSelector: { matchLabels: {} }, podSelector: { matchLabels: {} } } }],
      },
    ],
  },
};

import type { ClusterModel, ContainerPortModel, NodeModel, PodModel } from '../processor/inventory/model.js';
import type { FlowQuery } from '../processor/policy/types.js';

/**
 * Deterministic synthetic clusters and flows for the policy benchmark (and for comparing evaluators):
 * the same (seed, sizes) always gives the same cluster. Shapes follow real clusters: namespaces per
 * team and environment, deployments with replicas (one label set per deployment), default-deny
 * policies, DNS egress, cross-namespace allows, ipBlocks for external traffic, named ports, endPort.
 */

export interface ClusterSizes {
  namespaces: number;
  pods: number;
  policies: number;
  nodes: number;
}

export const DEFAULT_SIZES: ClusterSizes = { namespaces: 200, pods: 5000, policies: 1000, nodes: 50 };

/** mulberry32: small, fast, and the same on every platform. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const APPS = [
  'web',
  'api',
  'db',
  'cache',
  'worker',
  'queue',
  'auth',
  'search',
  'frontend',
  'billing',
  'report',
  'gateway',
];
const TEAMS = Array.from({ length: 20 }, (_, i) => `team-${i}`);
const ENVS = ['prod', 'staging', 'dev'];
const PORT_SETS: Record<string, ContainerPortModel[]> = {
  web: [
    { name: 'http', containerPort: 8080, protocol: 'TCP' },
    { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
  ],
  api: [
    { name: 'http', containerPort: 8000, protocol: 'TCP' },
    { name: 'grpc', containerPort: 9000, protocol: 'TCP' },
    { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
  ],
  db: [{ name: 'postgres', containerPort: 5432, protocol: 'TCP' }],
  cache: [{ name: 'redis', containerPort: 6379, protocol: 'TCP' }],
  queue: [
    { name: 'amqp', containerPort: 5672, protocol: 'TCP' },
    { name: 'metrics', containerPort: 15692, protocol: 'TCP' },
  ],
  dns: [
    { name: 'dns', containerPort: 53, protocol: 'UDP' },
    { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
  ],
};

function ipv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function generateCluster(seed: number, sizes: ClusterSizes = DEFAULT_SIZES): ClusterModel {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const nodes: NodeModel[] = Array.from({ length: sizes.nodes }, (_, i) => ({
    name: `node-${i}`,
    addresses: [ipv4((192 << 24) | (168 << 16) | (1 << 8) | (i + 1)), `fd00:1::${(i + 1).toString(16)}`],
    podCIDRs: [`10.${64 + (i >> 2)}.${(i & 3) * 64}.0/18`],
  }));
  const nsNames = [
    'kube-system',
    'monitoring',
    ...Array.from({ length: sizes.namespaces - 2 }, (_, i) => `ns-${i}`),
  ];
  const namespaces = nsNames.map((name, i) => ({
    name,
    labels: {
      'kubernetes.io/metadata.name': name,
      ...(i < 2 ? { tier: 'platform' } : { team: pick(TEAMS), env: pick(ENVS) }),
    },
  }));
  const pods: PodModel[] = [];
  const perNs = Math.max(1, Math.floor(sizes.pods / namespaces.length));
  let podIndex = 0;
  for (const [ni, ns] of namespaces.entries()) {
    const count = ni === namespaces.length - 1 ? sizes.pods - pods.length : perNs;
    // Deployments of 1 to 6 replicas; replicas share labels (one identity per deployment).
    let made = 0;
    let d = 0;
    while (made < count) {
      const app = ns.name === 'kube-system' ? (d === 0 ? 'dns' : pick(['proxy', 'agent'])) : pick(APPS);
      const replicas = Math.min(count - made, 1 + Math.floor(r() * 6));
      const labels: Record<string, string> = {
        app,
        'app.kubernetes.io/instance': `${app}-${d}`,
        'pod-template-hash': Math.floor(r() * 0xffffff).toString(16),
      };
      if (r() < 0.5) labels.tier = pick(['frontend', 'backend', 'data']);
      if (r() < 0.3) labels.version = pick(['v1', 'v2']);
      const hostNetwork = ns.name === 'kube-system' && app === 'agent';
      for (let k = 0; k < replicas; k++) {
        const node = nodes[podIndex % nodes.length] as NodeModel;
        const ip = hostNetwork
          ? (node.addresses[0] as string)
          : ipv4((10 << 24) | (64 << 16) | (podIndex + 2));
        const ips = hostNetwork || r() > 0.1 ? [ip] : [ip, `fd00:10::${(podIndex + 2).toString(16)}`];
        pods.push({
          namespace: ns.name,
          name: `${app}-${d}-${k}`,
          labels,
          ips,
          nodeName: node.name,
          hostNetwork,
          phase: 'Running',
          ports: PORT_SETS[app] ?? [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
        });
        podIndex++;
      }
      made += replicas;
      d++;
    }
  }
  const policies: unknown[] = [];
  const userNs = namespaces.slice(2);
  const appsIn = new Map<string, string[]>();
  for (const p of pods) {
    const list = appsIn.get(p.namespace) ?? [];
    if (!list.includes(p.labels.app as string)) list.push(p.labels.app as string);
    appsIn.set(p.namespace, list);
  }
  let pi = 0;
  const add = (namespace: string, name: string, spec: Record<string, unknown>) => {
    policies.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { namespace, name },
      spec,
    });
    pi++;
  };
  const dnsEgress = {
    to: [
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
        podSelector: { matchLabels: { app: 'dns' } },
      },
    ],
    ports: [
      { protocol: 'UDP', port: 53 },
      { protocol: 'TCP', port: 53 },
    ],
  };
  for (let round = 0; pi < sizes.policies; round++) {
    for (const ns of userNs) {
      if (pi >= sizes.policies) break;
      const apps = appsIn.get(ns.name) ?? ['web'];
      const app = apps[round % apps.length] as string;
      const other = pick(apps);
      const n = ns.name;
      switch (round % 8) {
        case 0:
          add(n, `default-deny-ingress-${round}`, { podSelector: {}, policyTypes: ['Ingress'] });
          break;
        case 1:
          add(n, `allow-${other}-to-${app}-${round}`, {
            podSelector: { matchLabels: { app } },
            ingress: [
              {
                from: [{ podSelector: { matchLabels: { app: other } } }],
                ports: [{ port: 'http' }, { port: 8000, endPort: 8100 }],
              },
            ],
          });
          break;
        case 2:
          add(n, `allow-team-to-${app}-${round}`, {
            podSelector: { matchLabels: { app } },
            ingress: [
              {
                from: [
                  {
                    namespaceSelector: { matchLabels: { team: pick(TEAMS) } },
                    podSelector: {
                      matchExpressions: [{ key: 'tier', operator: 'In', values: ['frontend', 'backend'] }],
                    },
                  },
                  { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
                ],
                ports: [{ port: 'metrics' }, { port: 8080 }],
              },
            ],
          });
          break;
        case 3:
          add(n, `default-deny-egress-${round}`, {
            podSelector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['gateway'] }] },
            policyTypes: ['Egress'],
            egress: [dnsEgress, { to: [{ podSelector: {} }] }],
          });
          break;
        case 4:
          add(n, `allow-external-${app}-${round}`, {
            podSelector: { matchLabels: { app } },
            policyTypes: ['Egress'],
            egress: [
              {
                to: [
                  {
                    ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'] },
                  },
                ],
                ports: [{ port: 443 }, { port: 80 }],
              },
              {
                to: [
                  { ipBlock: { cidr: `203.0.${Math.floor(r() * 256)}.0/24` } },
                  { ipBlock: { cidr: '2001:db8::/32', except: ['2001:db8:dead::/48'] } },
                ],
              },
              dnsEgress,
            ],
          });
          break;
        case 5: {
          const b = [0, 64, 65, 100][Math.floor(r() * 4)];
          add(n, `allow-ingress-lb-${app}-${round}`, {
            podSelector: { matchLabels: { app } },
            ingress: [
              {
                from: [
                  { ipBlock: { cidr: `10.${b}.0.0/16`, except: [`10.${b}.${Math.floor(r() * 256)}.0/24`] } },
                ],
                ports: [{ protocol: 'TCP', port: 8080 }],
              },
              {
                from: [
                  {
                    namespaceSelector: {
                      matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'staging'] }],
                    },
                  },
                ],
                ports: [{ protocol: 'UDP' }],
              },
            ],
          });
          break;
        }
        case 6:
          add(n, `allow-same-ns-${app}-${round}`, {
            podSelector: {
              matchExpressions: [
                { key: 'app', operator: 'In', values: [app, other] },
                { key: 'version', operator: 'DoesNotExist' },
              ],
            },
            ingress: [{ from: [{ podSelector: {} }] }],
          });
          break;
        default:
          add(n, `allow-all-to-${app}-${round}`, { podSelector: { matchLabels: { app } }, ingress: [{}] });
      }
    }
  }
  return { namespaces, pods, nodes, services: [], endpointSlices: [], networkPolicies: policies };
}

/**
 * Flows shaped like observed traffic: mostly pod to pod within a namespace, some across namespaces, DNS,
 * kubelet probes from the node, egress to the internet and ingress from outside.
 */
export function generateFlows(cluster: ClusterModel, seed: number, count: number): FlowQuery[] {
  const r = rng(seed ^ 0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const byNs = new Map<string, PodModel[]>();
  for (const p of cluster.pods) {
    const l = byNs.get(p.namespace) ?? [];
    l.push(p);
    byNs.set(p.namespace, l);
  }
  const dns = cluster.pods.filter((p) => p.labels.app === 'dns');
  const externals = Array.from({ length: 2000 }, (_, i) =>
    i % 10 === 0
      ? `2001:db8:${(i % 0x10000).toString(16)}::1`
      : ipv4(((1 + (i % 220)) << 24) | Math.floor(r() * 0xffffff)),
  );
  const nodeByName = new Map(cluster.nodes.map((n) => [n.name, n]));
  const out: FlowQuery[] = [];
  for (let i = 0; i < count; i++) {
    const src = pick(cluster.pods);
    const roll = r();
    const srcRef = { ip: src.ips[0] as string, pod: src };
    if (roll < 0.5) {
      const dst = pick(byNs.get(src.namespace) ?? cluster.pods);
      const cp = dst.ports.length && r() < 0.8 ? pick(dst.ports) : undefined;
      out.push({
        src: srcRef,
        dst: { ip: dst.ips[0] as string, pod: dst },
        proto: cp?.protocol === 'UDP' ? 17 : 6,
        port: cp?.containerPort ?? 1024 + Math.floor(r() * 64000),
      });
    } else if (roll < 0.7) {
      const dst = pick(cluster.pods);
      const cp = dst.ports.length ? pick(dst.ports) : undefined;
      out.push({
        src: srcRef,
        dst: { ip: dst.ips[0] as string, pod: dst },
        proto: 6,
        port: cp?.containerPort ?? 8080,
      });
    } else if (roll < 0.8 && dns.length) {
      const d = pick(dns);
      out.push({ src: srcRef, dst: { ip: d.ips[0] as string, pod: d }, proto: r() < 0.9 ? 17 : 6, port: 53 });
    } else if (roll < 0.85) {
      const node = nodeByName.get(src.nodeName ?? '') ?? pick(cluster.nodes);
      out.push({
        src: { ip: node.addresses[0] as string, node },
        dst: srcRef,
        proto: 6,
        port: pick(src.ports)?.containerPort ?? 8080,
      });
    } else if (roll < 0.95) {
      const icmp = r() < 0.02;
      out.push({
        src: srcRef,
        dst: { ip: pick(externals) },
        proto: icmp ? 1 : 6,
        port: icmp ? undefined : pick([443, 443, 80, 8443]),
      });
    } else {
      out.push({
        src: { ip: pick(externals) },
        dst: srcRef,
        proto: 6,
        port: pick(src.ports)?.containerPort ?? 8080,
      });
    }
  }
  return out;
}

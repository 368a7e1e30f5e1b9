import fc from 'fast-check';
import type { ClusterModel, ContainerPortModel, PodModel } from '../inventory/model.js';
import type { FlowEndpointRef, FlowQuery } from './types.js';

/**
 * fast-check arbitraries for random clusters, policies and flows. Vocabularies are tiny on purpose:
 * label sets, addresses and port names collide often, so verdict-cache keys are shared by flows that
 * differ in what the key must (or must not) distinguish.
 */

const NAMESPACES = ['a', 'b', 'c'];
/** Pods in 'free' are never selected by any policy: the generator puts no policy there. */
export const FREE_NAMESPACE = 'free';
const POD_IPS = [
  '10.0.0.1',
  '10.0.0.2',
  '10.0.0.3',
  '10.0.0.4',
  '10.0.0.5',
  '10.0.1.7',
  'fd00::1',
  'fd00::2',
  'fd00::3',
];
const OTHER_IPS = [
  '10.0.0.3',
  '10.0.0.6',
  '8.8.8.8',
  '192.168.0.3',
  'fd00::2',
  'fd00::9',
  '2001:db8::1',
  'bogus',
];
const NODES = [
  { name: 'n1', addresses: ['192.168.0.1'], podCIDRs: [] },
  { name: 'n2', addresses: ['192.168.0.2', 'fd00::ff'], podCIDRs: [] },
];

const labelValue = fc.constantFrom('web', 'db', 'api');
const podLabels = fc.record(
  { app: labelValue, tier: fc.constantFrom('f', 'b'), x: fc.constantFrom('1', '2') },
  { requiredKeys: [] },
);
export const nsLabelsArb = fc.record(
  { team: fc.constantFrom('x', 'y'), env: fc.constantFrom('p', 'd') },
  { requiredKeys: [] },
);

const containerPort: fc.Arbitrary<ContainerPortModel> = fc.constantFrom<ContainerPortModel>(
  { name: 'http', containerPort: 80, protocol: 'TCP' },
  { name: 'http', containerPort: 8080, protocol: 'TCP' },
  { name: 'dns', containerPort: 53, protocol: 'UDP' },
  { name: 'http', containerPort: 8080, protocol: 'UDP' },
  { containerPort: 81, protocol: 'TCP' },
);

const podArb = fc.record({
  namespace: fc.constantFrom(...NAMESPACES, FREE_NAMESPACE),
  labels: podLabels,
  ip: fc.constantFrom(...POD_IPS),
  node: fc.constantFrom('n1', 'n2', undefined),
  hostNetwork: fc.constantFrom(false, false, false, true),
  ports: fc.uniqueArray(containerPort, { maxLength: 3 }),
});

const selectorArb = fc.record(
  {
    matchLabels: fc.record(
      { app: labelValue, tier: fc.constantFrom('f', 'b'), team: fc.constantFrom('x', 'y') },
      { requiredKeys: [] },
    ),
    matchExpressions: fc.array(
      fc.oneof(
        fc.record({
          key: fc.constantFrom('app', 'tier', 'team', 'env'),
          operator: fc.constantFrom('In', 'NotIn'),
          values: fc.uniqueArray(fc.constantFrom('web', 'db', 'f', 'x', 'p'), { minLength: 1, maxLength: 2 }),
        }),
        fc.record({
          key: fc.constantFrom('app', 'tier', 'x', 'env'),
          operator: fc.constantFrom('Exists', 'DoesNotExist'),
        }),
      ),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
);

const ipBlockArb = fc.constantFrom(
  { cidr: '10.0.0.0/30' },
  { cidr: '10.0.0.0/24', except: ['10.0.0.4/31'] },
  { cidr: '192.168.0.0/24' },
  { cidr: 'fd00::/120', except: ['fd00::2/127'] },
  { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] },
  { cidr: '10.0.0.3/32' },
);

const peerArb = fc.oneof(
  fc.record({ podSelector: selectorArb }),
  fc.record({ namespaceSelector: selectorArb }),
  fc.record({ podSelector: selectorArb, namespaceSelector: selectorArb }),
  fc.record({ ipBlock: ipBlockArb }),
);

const portArb = fc.oneof(
  fc.record({ protocol: fc.constantFrom('TCP', 'UDP', 'SCTP') }, { requiredKeys: [] }),
  fc.record(
    { protocol: fc.constantFrom('TCP', 'UDP', 'SCTP'), port: fc.constantFrom(53, 80, 8080) },
    { requiredKeys: ['port'] },
  ),
  fc.record({ port: fc.constantFrom(53, 80), endPort: fc.constantFrom(80, 8080, 9000) }),
  fc.record(
    { protocol: fc.constantFrom('TCP', 'UDP'), port: fc.constantFrom('http', 'dns') },
    { requiredKeys: ['port'] },
  ),
);

export const ruleArb = (dir: 'ingress' | 'egress') =>
  fc.record(
    {
      [dir === 'ingress' ? 'from' : 'to']: fc.array(peerArb, { maxLength: 3 }),
      ports: fc.array(portArb, { maxLength: 2 }),
    },
    { requiredKeys: [] },
  ) as fc.Arbitrary<Record<string, unknown>>;

export const policySpecArb = fc.record(
  {
    podSelector: selectorArb,
    policyTypes: fc.constantFrom(['Ingress'], ['Egress'], ['Ingress', 'Egress']),
    ingress: fc.array(ruleArb('ingress'), { maxLength: 3 }),
    egress: fc.array(ruleArb('egress'), { maxLength: 3 }),
  },
  { requiredKeys: ['podSelector'] },
);

export const policyArb = fc.record({ namespace: fc.constantFrom(...NAMESPACES), spec: policySpecArb });

export const clusterArb: fc.Arbitrary<ClusterModel> = fc
  .record({
    nsLabels: fc.tuple(nsLabelsArb, nsLabelsArb, nsLabelsArb, nsLabelsArb),
    pods: fc.array(podArb, { minLength: 1, maxLength: 10 }),
    policies: fc.array(policyArb, { maxLength: 7 }),
  })
  .map(({ nsLabels: nl, pods, policies }) => ({
    namespaces: [...NAMESPACES, FREE_NAMESPACE].map((name, i) => ({
      name,
      labels: { ...nl[i], 'kubernetes.io/metadata.name': name },
    })),
    pods: pods.map(
      (p, i): PodModel => ({
        namespace: p.namespace,
        name: `p${i}`,
        labels: p.labels,
        ips: [
          p.hostNetwork && p.node ? (NODES.find((n) => n.name === p.node)?.addresses[0] as string) : p.ip,
        ],
        nodeName: p.node,
        hostNetwork: p.hostNetwork && p.node !== undefined,
        phase: 'Running',
        ports: p.ports,
      }),
    ),
    nodes: NODES,
    services: [],
    endpointSlices: [],
    networkPolicies: policies.map((p, i) => ({
      metadata: { namespace: p.namespace, name: `np${i}` },
      spec: p.spec,
    })),
  }));

/**
 * Adds twins: pods with the namespace and labels of an existing pod but other addresses, nodes,
 * container ports and hostNetwork. Twins share an identity, so they stress everything else the verdict
 * cache key must hold (ipBlock class, named-port profile, node-locality, role).
 */
export const twinClusterArb: fc.Arbitrary<ClusterModel> = clusterArb.chain((c) =>
  fc
    .array(
      fc.record({
        of: fc.nat(20),
        ip: fc.constantFrom(...POD_IPS, ...OTHER_IPS.slice(0, 5)),
        node: fc.constantFrom('n1', 'n2', undefined),
        hostNetwork: fc.constantFrom(false, false, true),
        ports: fc.uniqueArray(containerPort, { maxLength: 3 }),
      }),
      { minLength: 1, maxLength: 8 },
    )
    .map((twins) => ({
      ...c,
      pods: [
        ...c.pods,
        ...twins.map((t, i): PodModel => {
          const orig = c.pods[t.of % c.pods.length] as PodModel;
          return {
            ...orig,
            name: `${orig.name}-twin${i}`,
            ips: [
              t.hostNetwork && t.node ? (NODES.find((n) => n.name === t.node)?.addresses[0] as string) : t.ip,
            ],
            nodeName: t.node,
            hostNetwork: t.hostNetwork && t.node !== undefined,
            ports: t.ports,
          };
        }),
      ],
    })),
);

/** A flow end: one of the cluster's pods (by index, wrapped) or a non-pod address, maybe a node. */
const endArb = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('pod' as const), i: fc.nat(20) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('ip' as const), ip: fc.constantFrom(...OTHER_IPS) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('node' as const), i: fc.nat(1), byRef: fc.boolean() }),
  },
);

export type EndSpec = typeof endArb extends fc.Arbitrary<infer T> ? T : never;

export const flowSpecArb = fc.record({
  src: endArb,
  dst: endArb,
  proto: fc.constantFrom(6, 6, 17, 132, 1),
  port: fc.constantFrom(53, 80, 81, 8080, 8081, undefined),
});

export type FlowSpec = typeof flowSpecArb extends fc.Arbitrary<infer T> ? T : never;

function endRef(c: ClusterModel, e: EndSpec): FlowEndpointRef {
  if (e.kind === 'pod') {
    const p = c.pods[e.i % c.pods.length] as PodModel;
    return { ip: p.ips[0] as string, pod: p };
  }
  if (e.kind === 'node') {
    const n = NODES[e.i] as (typeof NODES)[number];
    return e.byRef ? { ip: n.addresses[0] as string, node: n } : { ip: n.addresses[0] as string };
  }
  return { ip: e.ip };
}

export function toQuery(c: ClusterModel, f: FlowSpec): FlowQuery {
  return {
    src: endRef(c, f.src),
    dst: endRef(c, f.dst),
    proto: f.proto,
    port: f.proto === 1 ? undefined : f.port,
  };
}

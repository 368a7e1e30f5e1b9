/**
 * The cluster as the processor sees it: the parts of Kubernetes objects that naming and policy
 * evaluation need. Snapshots (kubectl output) and, later, the live watcher produce it; the policy
 * compiler consumes it. NetworkPolicies stay raw here because validating them is the compiler's job
 * (it names the policy and field of every problem).
 */

export type Labels = Readonly<Record<string, string>>;

export type L4Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface NamespaceModel {
  name: string;
  /** Includes `kubernetes.io/metadata.name: <name>` (the API server sets it; the parser adds it when absent). */
  labels: Labels;
}

export interface ContainerPortModel {
  name?: string;
  containerPort: number;
  protocol: L4Protocol;
}

export interface PodModel {
  namespace: string;
  name: string;
  uid?: string;
  labels: Labels;
  /** status.podIPs (or status.podIP); empty when unscheduled or not yet running. */
  ips: string[];
  nodeName?: string;
  hostNetwork: boolean;
  /** status.phase: Pending, Running, Succeeded, Failed, Unknown. */
  phase: string;
  /** Container ports of all containers (and init containers), for named-port resolution. */
  ports: ContainerPortModel[];
}

export interface NodeModel {
  name: string;
  /** metadata.labels, for the `nodes` peers of AdminNetworkPolicy and ClusterNetworkPolicy. */
  labels?: Labels;
  /** status.addresses of type InternalIP / ExternalIP (addresses only, no hostnames). */
  addresses: string[];
  podCIDRs: string[];
}

export interface ServicePortModel {
  name?: string;
  port: number;
  /** Number, or the name of a container port. Defaults to `port`. */
  targetPort: number | string;
  protocol: L4Protocol;
}

export interface ServiceModel {
  namespace: string;
  name: string;
  type: string;
  /** spec.clusterIPs (or spec.clusterIP); empty for headless services. */
  clusterIPs: string[];
  /** Absent for services without a selector (their endpoints are managed by hand). */
  selector?: Labels;
  ports: ServicePortModel[];
}

export interface EndpointModel {
  addresses: string[];
  ready: boolean;
  /** `namespace/name` of the pod behind this endpoint, when targetRef names one. */
  pod?: string;
  nodeName?: string;
}

export interface EndpointSliceModel {
  namespace: string;
  name: string;
  /** Label kubernetes.io/service-name. */
  service?: string;
  addressType: string;
  endpoints: EndpointModel[];
  ports: { name?: string; port?: number; protocol: L4Protocol }[];
}

export interface ClusterModel {
  namespaces: NamespaceModel[];
  pods: PodModel[];
  nodes: NodeModel[];
  services: ServiceModel[];
  endpointSlices: EndpointSliceModel[];
  /** Raw networking.k8s.io/v1 NetworkPolicy objects, as found in the snapshot. */
  networkPolicies: unknown[];
  /** Raw policy.networking.k8s.io objects (AdminNetworkPolicy & co.), when present. */
  clusterNetworkPolicies?: unknown[];
}

/** A cluster with nothing in it: the start of a timeline, and of test clusters. */
export function emptyCluster(): ClusterModel {
  return {
    namespaces: [],
    pods: [],
    nodes: [],
    services: [],
    endpointSlices: [],
    networkPolicies: [],
    clusterNetworkPolicies: [],
  };
}

/**
 * Adds the named ones of `ports` to `into` (as records keep them: what a policy's named port
 * resolves to), once each. A name can stand for one port number under
 * two protocols (http for TCP and UDP), so the protocol is part of what makes a port the same.
 */
export function addNamedPorts(
  into: { name: string; port: number; protocol: string }[],
  ports: readonly ContainerPortModel[],
): void {
  for (const p of ports)
    if (
      p.name &&
      !into.some((x) => x.name === p.name && x.port === p.containerPort && x.protocol === p.protocol)
    )
      into.push({ name: p.name, port: p.containerPort, protocol: p.protocol });
}

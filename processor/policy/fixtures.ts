import {
  type ClusterModel,
  type ContainerPortModel,
  emptyCluster,
  type Labels,
  type NodeModel,
  type PodModel,
} from '../inventory/model.js';
import type { FlowEndpointRef, FlowQuery } from './types.js';

/** Small builders for policy tests: clusters and queries written the way the tests read. */

export function ns(name: string, labels: Record<string, string> = {}) {
  return { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } };
}

export function pod(
  namespace: string,
  name: string,
  labels: Labels,
  ip: string,
  extra: Partial<PodModel> = {},
): PodModel {
  return {
    namespace,
    name,
    labels,
    ips: [ip],
    nodeName: 'node-a',
    hostNetwork: false,
    phase: 'Running',
    ports: [],
    ...extra,
  };
}

export function node(name: string, addresses: string[]): NodeModel {
  return { name, addresses, podCIDRs: [] };
}

export function cluster(parts: Partial<ClusterModel>): ClusterModel {
  return { ...emptyCluster(), ...parts };
}

export function netpol(namespace: string, name: string, spec: Record<string, unknown>): unknown {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace, name }, spec };
}

export function podRef(p: PodModel, ip = p.ips[0] as string): FlowEndpointRef {
  return { ip, pod: p };
}

export function ipRef(ip: string, n?: NodeModel): FlowEndpointRef {
  return n ? { ip, node: n } : { ip };
}

export function flow(
  src: FlowEndpointRef,
  dst: FlowEndpointRef,
  proto: number | 'TCP' | 'UDP' | 'SCTP',
  port?: number,
): FlowQuery {
  const p = proto === 'TCP' ? 6 : proto === 'UDP' ? 17 : proto === 'SCTP' ? 132 : proto;
  return { src, dst, proto: p, port };
}

export function ports(
  ...list: [string | undefined, number, ContainerPortModel['protocol']?][]
): ContainerPortModel[] {
  return list.map(([name, containerPort, protocol]) => ({
    name,
    containerPort,
    protocol: protocol ?? 'TCP',
  }));
}

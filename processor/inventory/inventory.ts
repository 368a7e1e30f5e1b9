import ipaddr from 'ipaddr.js';
import { type InputIssue, issue } from '../../lib/errors.js';
import type {
  ClusterModel,
  L4Protocol,
  Labels,
  NamespaceModel,
  NodeModel,
  PodModel,
  ServiceModel,
  ServicePortModel,
} from './model.js';

/**
 * The inventory answers "who had this IP": a pod, a node, a Service ClusterIP. It also names things the
 * way cluster DNS does and expands a Service into the pods behind it. Built from one ClusterModel; the
 * `atMs` parameters are there so a time-versioned inventory can keep this interface.
 */

export const INVENTORY_ISSUE = {
  /** Two live pods claim the same IP; the Running one (or the first seen) keeps it. */
  duplicateIp: 'INVENTORY_DUPLICATE_IP',
} as const;

export interface InventoryOptions {
  /** Cluster DNS domain, `cluster.local` unless the cluster was set up otherwise. */
  clusterDomain: string;
}

export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

export interface Resolution {
  /** The address in canonical form (IPv4-mapped IPv6 as IPv4, IPv6 compressed per RFC 5952). */
  ip: string;
  /** The (non-hostNetwork) pod holding the address. */
  pod?: PodModel;
  /** The node owning the address (one of its InternalIP / ExternalIP addresses). */
  node?: NodeModel;
  /** The Service whose ClusterIP this is. */
  service?: ServiceModel;
  /** hostNetwork pods sharing the node's address; the address alone cannot tell them apart. */
  hostNetworkPods?: PodModel[];
  /**
   * The node whose podCIDR contains the address, when no pod in the snapshot holds it: most likely a pod
   * that came or went around the snapshot, not a host outside the cluster.
   */
  podCidrOf?: NodeModel;
}

export interface ServiceBackend {
  /** `namespace/name` of the pod, when known (from the EndpointSlice's targetRef or by IP). */
  podRef?: string;
  pod?: PodModel;
  ip: string;
  /** The port the backend receives on; undefined when it cannot be known. */
  port?: number;
  from: 'endpointslice' | 'selector';
}

/** Canonical text of an address, or undefined when it is not one. */
export function normalizeIp(ip: string): string | undefined {
  try {
    // ipaddr.process maps IPv4-mapped IPv6 (::ffff:a.b.c.d) to IPv4; IPv6 toString is RFC 5952.
    return ipaddr.process(ip).toString();
  } catch {
    return undefined;
  }
}

export function ipFamily(ip: string): 4 | 6 | undefined {
  try {
    return ipaddr.process(ip).kind() === 'ipv4' ? 4 : 6;
  } catch {
    return undefined;
  }
}

/** Pods that stopped for good keep their status.podIPs in the API, but the address is free for reuse. */
export function isTerminal(pod: PodModel): boolean {
  return pod.phase === 'Succeeded' || pod.phase === 'Failed';
}

export function selectorMatches(selector: Labels, labels: Labels): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

export class Inventory {
  readonly cluster: ClusterModel;
  readonly clusterDomain: string;
  /** Problems found while indexing (address conflicts). */
  readonly issues: InputIssue[] = [];
  private readonly podByIp = new Map<string, PodModel>();
  private readonly nodeByIp = new Map<string, NodeModel>();
  private readonly serviceByIp = new Map<string, ServiceModel>();
  private readonly hostNetworkByNode = new Map<string, PodModel[]>();
  private readonly podByRef = new Map<string, PodModel>();
  private readonly serviceByRef = new Map<string, ServiceModel>();
  private readonly nodeByName = new Map<string, NodeModel>();
  private readonly namespaceByName = new Map<string, NamespaceModel>();
  private readonly canonical = new Map<string, string>();
  private readonly backendCache = new Map<string, ServiceBackend[]>();
  private readonly podCidrs: { cidr: [ipaddr.IPv4 | ipaddr.IPv6, number]; node: NodeModel }[] = [];
  private readonly podCidrMemo = new Map<string, NodeModel | null>();

  constructor(cluster: ClusterModel, options: Partial<InventoryOptions> = {}) {
    this.cluster = cluster;
    this.clusterDomain = (options.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN).replace(/^\.+|\.+$/g, '');
    for (const ns of cluster.namespaces) this.namespaceByName.set(ns.name, ns);
    for (const node of cluster.nodes) {
      for (const c of node.podCIDRs) {
        try {
          this.podCidrs.push({ cidr: ipaddr.parseCIDR(c), node });
        } catch {
          // The snapshot parser already reported it.
        }
      }
      this.nodeByName.set(node.name, node);
      for (const a of node.addresses) {
        const ip = normalizeIp(a);
        if (ip) this.nodeByIp.set(ip, node);
      }
    }
    for (const svc of cluster.services) {
      this.serviceByRef.set(`${svc.namespace}/${svc.name}`, svc);
      for (const a of svc.clusterIPs) {
        const ip = normalizeIp(a);
        if (ip) this.serviceByIp.set(ip, svc);
      }
    }
    for (const pod of cluster.pods) {
      const ref = `${pod.namespace}/${pod.name}`;
      this.podByRef.set(ref, pod);
      if (pod.hostNetwork) {
        if (pod.nodeName && !isTerminal(pod)) {
          const list = this.hostNetworkByNode.get(pod.nodeName) ?? [];
          list.push(pod);
          this.hostNetworkByNode.set(pod.nodeName, list);
        }
        continue;
      }
      if (isTerminal(pod)) continue;
      for (const a of pod.ips) {
        const ip = normalizeIp(a);
        if (!ip) continue;
        const holder = this.podByIp.get(ip);
        if (holder) {
          const keepNew = pod.phase === 'Running' && holder.phase !== 'Running';
          const kept = keepNew ? pod : holder;
          const other = keepNew ? holder : pod;
          this.issues.push(
            issue(
              INVENTORY_ISSUE.duplicateIp,
              `pods ${holder.namespace}/${holder.name} (${holder.phase}) and ${ref} (${pod.phase}) both claim ${ip}; ` +
                `using ${kept.namespace}/${kept.name}, ignoring ${other.namespace}/${other.name} for this address`,
              { object: `${other.namespace}/${other.name}`, field: 'status.podIPs' },
              'warning',
            ),
          );
          if (!keepNew) continue;
        }
        this.podByIp.set(ip, pod);
      }
    }
  }

  /** What held `ip` (at `atMs`, once the inventory is time-versioned; today the snapshot's moment). */
  /** normalizeIp, remembered: flows repeat the same few thousand addresses, and parsing dominated. */
  canonicalIp(ip: string): string {
    let canonical = this.canonical.get(ip);
    if (canonical === undefined) {
      canonical = normalizeIp(ip) ?? ip;
      if (this.canonical.size >= 100_000) this.canonical.clear();
      this.canonical.set(ip, canonical);
    }
    return canonical;
  }

  resolve(ip: string, _atMs?: number): Resolution {
    const canonical = this.canonicalIp(ip);
    const r: Resolution = { ip: canonical };
    const pod = this.podByIp.get(canonical);
    if (pod) r.pod = pod;
    const node = this.nodeByIp.get(canonical);
    if (node) {
      r.node = node;
      const hn = this.hostNetworkByNode.get(node.name);
      if (hn && hn.length > 0) r.hostNetworkPods = hn;
    }
    const svc = this.serviceByIp.get(canonical);
    if (svc) r.service = svc;
    if (!pod && !node && !svc && this.podCidrs.length > 0) {
      const owner = this.podCidrOwner(canonical);
      if (owner) r.podCidrOf = owner;
    }
    return r;
  }

  private podCidrOwner(ip: string): NodeModel | undefined {
    let owner = this.podCidrMemo.get(ip);
    if (owner === undefined) {
      owner = null;
      let addr: ipaddr.IPv4 | ipaddr.IPv6 | undefined;
      try {
        addr = ipaddr.parse(ip);
      } catch {
        addr = undefined;
      }
      if (addr) {
        for (const { cidr, node } of this.podCidrs) {
          if (cidr[0].kind() === addr.kind() && addr.match(cidr)) {
            owner = node;
            break;
          }
        }
      }
      if (this.podCidrMemo.size >= 100_000) this.podCidrMemo.clear();
      this.podCidrMemo.set(ip, owner);
    }
    return owner ?? undefined;
  }

  pod(ref: string, _atMs?: number): PodModel | undefined {
    return this.podByRef.get(ref);
  }

  service(ref: string, _atMs?: number): ServiceModel | undefined {
    return this.serviceByRef.get(ref);
  }

  node(name: string): NodeModel | undefined {
    return this.nodeByName.get(name);
  }

  namespace(name: string): NamespaceModel | undefined {
    return this.namespaceByName.get(name);
  }

  /** `10-244-1-5.shop.pod.cluster.local`; for IPv6 the RFC 5952 form with colons as dashes. */
  podDnsName(ip: string, namespace: string): string {
    const canonical = this.canonicalIp(ip);
    return `${canonical.replace(/[.:]/g, '-')}.${namespace}.pod.${this.clusterDomain}`;
  }

  serviceDnsName(svc: { name: string; namespace: string }): string {
    return `${svc.name}.${svc.namespace}.svc.${this.clusterDomain}`;
  }

  /** The DNS-style name of what a resolution found: pod, then service, then node. */
  dnsName(r: Resolution): string | undefined {
    if (r.pod) return this.podDnsName(r.ip, r.pod.namespace);
    if (r.service) return this.serviceDnsName(r.service);
    if (r.node) return r.node.name;
    return undefined;
  }

  /** The service port a client reaches at `port`/`protocol`, if the Service exposes it. */
  servicePort(
    svc: ServiceModel,
    port: number | undefined,
    protocol: L4Protocol,
  ): ServicePortModel | undefined {
    return svc.ports.find((p) => p.port === port && p.protocol === protocol);
  }

  /**
   * The pods a Service port forwards to: ready endpoints of its EndpointSlices (service port matched to
   * slice port by name and protocol); when the snapshot has no slice for the Service, its selector over
   * the Running pods of its namespace (a named targetPort resolved per pod through its container ports).
   * `family` keeps only addresses of that IP family (the family of the ClusterIP the client used).
   */
  backends(
    svc: ServiceModel,
    servicePort: ServicePortModel,
    family?: 4 | 6,
    _atMs?: number,
  ): readonly ServiceBackend[] {
    // The snapshot does not change, so neither do a port's backends; checks ask for them on every flow.
    const key = `${svc.namespace}/${svc.name}|${servicePort.port}|${servicePort.protocol}|${family ?? ''}`;
    let cached = this.backendCache.get(key);
    if (!cached) {
      cached = this.computeBackends(svc, servicePort, family);
      this.backendCache.set(key, cached);
    }
    return cached;
  }

  private computeBackends(
    svc: ServiceModel,
    servicePort: ServicePortModel,
    family?: 4 | 6,
  ): ServiceBackend[] {
    const slices = this.cluster.endpointSlices.filter(
      (s) => s.namespace === svc.namespace && s.service === svc.name,
    );
    const out: ServiceBackend[] = [];
    const seen = new Set<string>();
    const push = (b: ServiceBackend) => {
      const key = `${b.ip}|${b.port ?? ''}`;
      if (seen.has(key)) return;
      seen.add(key);
      out.push(b);
    };
    if (slices.length > 0) {
      for (const slice of slices) {
        const sp = slice.ports.find(
          (p) => (p.name ?? '') === (servicePort.name ?? '') && p.protocol === servicePort.protocol,
        );
        if (!sp) continue;
        for (const ep of slice.endpoints) {
          if (!ep.ready) continue;
          for (const a of ep.addresses) {
            const ip = normalizeIp(a);
            if (!ip || (family !== undefined && ipFamily(ip) !== family)) continue;
            const pod = ep.pod ? this.podByRef.get(ep.pod) : this.podByIp.get(ip);
            const b: ServiceBackend = { ip, from: 'endpointslice' };
            if (sp.port !== undefined) b.port = sp.port;
            if (ep.pod) b.podRef = ep.pod;
            else if (pod) b.podRef = `${pod.namespace}/${pod.name}`;
            if (pod) b.pod = pod;
            push(b);
          }
        }
      }
      return out;
    }
    if (!svc.selector || Object.keys(svc.selector).length === 0) return out;
    for (const pod of this.cluster.pods) {
      if (pod.namespace !== svc.namespace || pod.phase !== 'Running') continue;
      if (!selectorMatches(svc.selector, pod.labels)) continue;
      let port: number | undefined;
      if (typeof servicePort.targetPort === 'number') port = servicePort.targetPort;
      else {
        const named = pod.ports.find(
          (p) => p.name === servicePort.targetPort && p.protocol === servicePort.protocol,
        );
        // The endpoints controller leaves out pods that lack the named port.
        if (!named) continue;
        port = named.containerPort;
      }
      for (const a of pod.ips) {
        const ip = normalizeIp(a);
        if (!ip || (family !== undefined && ipFamily(ip) !== family)) continue;
        push({ ip, port, pod, podRef: `${pod.namespace}/${pod.name}`, from: 'selector' });
      }
    }
    return out;
  }
}

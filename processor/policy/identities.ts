import type { ClusterModel, Labels, PodModel } from '../inventory/model.js';
import { type AdminCompileResult, type AdminPolicy, subjectSelects } from './admin.js';
import type { CompiledPolicy, Direction, SelectorPeer } from './compile.js';
import type { ParsedIp } from './ip.js';
import { selectorMatches } from './selector.js';
import type { FlowEndpointRef, PolicyOptions } from './types.js';

/**
 * Identities and the selector cache (the counterpart of Cilium's pkg/policy/selectorcache.go). Pods
 * with equal (namespace, namespace labels, pod labels) share an identity: everything a selector can
 * read. Each identity carries its row of the selector cache and, once asked, the policies that select
 * it as a subject. Pods also get a named-port profile. The evaluator (evaluation.ts) builds on this.
 */

/** How an end takes part in policy: a policy subject and selector peer, a hostNetwork pod, or neither. */
export type Role = 0 | 1 | 2;
export const ROLE_POD: Role = 0;
export const ROLE_HOST: Role = 1;
export const ROLE_OTHER: Role = 2;

export interface Identity {
  id: number;
  namespace: string;
  nsLabels: Labels;
  podLabels: Labels;
  /** Selector cache row: per selector peer id, 1 match, 0 no match, -1 not computed yet. */
  selectorMatch: Int8Array;
  subjectOf?: { ingress: CompiledPolicy[]; egress: CompiledPolicy[] };
  /** Cluster-scoped policies whose subject selects this identity, per tier and direction, in order. */
  tiersOf?: TierSubjects;
}

export interface TierSubjects {
  admin: { ingress: AdminPolicy[]; egress: AdminPolicy[] };
  baseline: { ingress: AdminPolicy[]; egress: AdminPolicy[] };
}

export interface PodInfo {
  role: Role;
  identity: Identity;
  /** Named-port profile: pods with equal profiles resolve every policy's named ports identically. */
  profile: number;
  /** Endpoint class for the address last seen with this pod (pods have one or two addresses). */
  lastIp: string | undefined;
  lastEndpoint: number;
  /** Nodes owning lastIp (usually none), for node-locality. */
  lastIpNodes: readonly string[] | undefined;
}

export interface End {
  ref: FlowEndpointRef;
  role: Role;
  pod?: PodModel;
  identity?: Identity;
  ip?: ParsedIp;
}

function labelsKey(l: Labels): string {
  return Object.keys(l)
    .sort()
    .map((k) => `${k}=${l[k]}`)
    .join('\u0001');
}

/** The policies and cluster facts every layer reads, and the identities of the pods seen so far. */
export class IdentityCache {
  readonly options: PolicyOptions;
  readonly policies: readonly CompiledPolicy[];
  private readonly byNamespace = new Map<string, CompiledPolicy[]>();
  private readonly selectorPeers: SelectorPeer[];
  private readonly nsLabels = new Map<string, Labels>();
  /** Address -> names of the nodes that have it (normally one). */
  protected readonly nodesByAddress = new Map<string, string[]>();
  /** Port names some policy refers to; only these enter a pod's named-port profile. */
  private readonly namedPortNames = new Set<string>();
  /** Cluster-scoped policies (AdminNetworkPolicy & co.), per tier in evaluation order. */
  readonly adminPolicies: readonly AdminPolicy[];
  readonly baselinePolicies: readonly AdminPolicy[];
  /** networks/nodes peers match pod addresses too, so pods need their CIDR class in the cache key. */
  protected readonly podsNeedIpClass: boolean;
  protected readonly identities: Identity[] = [];
  private readonly identityByKey = new Map<string, Identity>();
  private readonly podInfo = new WeakMap<PodModel, PodInfo>();
  protected readonly profileIds = new Map<string, number>([['', 0]]);

  constructor(
    cluster: ClusterModel,
    policies: CompiledPolicy[],
    selectorPeers: SelectorPeer[],
    options: PolicyOptions,
    tiers?: Pick<AdminCompileResult, 'admin' | 'baseline' | 'namedPorts' | 'hasAddressPeers'>,
  ) {
    this.options = Object.freeze({ ...options });
    this.policies = policies;
    this.adminPolicies = tiers?.admin ?? [];
    this.baselinePolicies = tiers?.baseline ?? [];
    for (const n of tiers?.namedPorts ?? []) this.namedPortNames.add(n);
    this.podsNeedIpClass = options.ipBlockMatchesPods || tiers?.hasAddressPeers === true;
    this.selectorPeers = selectorPeers;
    for (const p of policies) {
      const list = this.byNamespace.get(p.namespace);
      if (list) list.push(p);
      else this.byNamespace.set(p.namespace, [p]);
      for (const r of [...p.ingress, ...p.egress])
        for (const port of r.ports ?? []) if (port.name !== undefined) this.namedPortNames.add(port.name);
    }
    for (const ns of cluster.namespaces ?? []) this.nsLabels.set(ns.name, ns.labels);
    for (const n of cluster.nodes ?? [])
      for (const a of n.addresses) {
        const list = this.nodesByAddress.get(a);
        if (!list) this.nodesByAddress.set(a, [n.name]);
        else if (!list.includes(n.name)) list.push(n.name);
      }
  }

  private namespaceLabels(ns: string): Labels {
    return this.nsLabels.get(ns) ?? { 'kubernetes.io/metadata.name': ns };
  }

  protected identityOf(pod: PodModel): PodInfo {
    return this.podInfo.get(pod) ?? this.newPodInfo(pod);
  }

  private newPodInfo(pod: PodModel): PodInfo {
    const nsLabels = this.namespaceLabels(pod.namespace);
    const key = `${pod.namespace}\u0000${labelsKey(nsLabels)}\u0000${labelsKey(pod.labels)}`;
    let identity = this.identityByKey.get(key);
    if (!identity) {
      identity = {
        id: this.identities.length,
        namespace: pod.namespace,
        nsLabels,
        podLabels: { ...pod.labels },
        selectorMatch: new Int8Array(this.selectorPeers.length).fill(-1),
      };
      this.identities.push(identity);
      this.identityByKey.set(key, identity);
    }
    const named: string[] = [];
    for (const p of pod.ports ?? [])
      if (p.name !== undefined && this.namedPortNames.has(p.name))
        named.push(`${p.name}/${p.protocol}/${p.containerPort}`);
    const profileKey = [...new Set(named)].sort().join(',');
    let profile = this.profileIds.get(profileKey);
    if (profile === undefined) {
      profile = this.profileIds.size;
      this.profileIds.set(profileKey, profile);
    }
    const role: Role = pod.hostNetwork && this.options.hostNetwork === 'node' ? ROLE_HOST : ROLE_POD;
    const info: PodInfo = {
      role,
      identity,
      profile,
      // Every field is present from the start so all PodInfo objects share one hidden class.
      lastIp: undefined,
      lastEndpoint: -1,
      lastIpNodes: undefined,
    };
    this.podInfo.set(pod, info);
    return info;
  }

  protected selectorPeerMatches(peer: SelectorPeer, id: Identity): boolean {
    const cached = id.selectorMatch[peer.selectorId];
    if (cached === 1) return true;
    if (cached === 0) return false;
    const m =
      (peer.namespaceSelector
        ? selectorMatches(peer.namespaceSelector, id.nsLabels)
        : id.namespace === peer.policyNamespace) &&
      (peer.podSelector === undefined || selectorMatches(peer.podSelector, id.podLabels));
    id.selectorMatch[peer.selectorId] = m ? 1 : 0;
    return m;
  }

  protected subjectPolicies(id: Identity): { ingress: CompiledPolicy[]; egress: CompiledPolicy[] } {
    if (id.subjectOf) return id.subjectOf;
    const ingress: CompiledPolicy[] = [];
    const egress: CompiledPolicy[] = [];
    for (const p of this.byNamespace.get(id.namespace) ?? []) {
      if (!selectorMatches(p.podSelector, id.podLabels)) continue;
      if (p.isolatesIngress) ingress.push(p);
      if (p.isolatesEgress) egress.push(p);
    }
    id.subjectOf = { ingress, egress };
    return id.subjectOf;
  }

  protected tierSubjects(id: Identity): TierSubjects {
    if (id.tiersOf) return id.tiersOf;
    const pick = (list: readonly AdminPolicy[], d: Direction) =>
      list.filter((p) => p[d].length > 0 && subjectSelects(p, id.nsLabels, id.podLabels));
    id.tiersOf = {
      admin: { ingress: pick(this.adminPolicies, 'ingress'), egress: pick(this.adminPolicies, 'egress') },
      baseline: {
        ingress: pick(this.baselinePolicies, 'ingress'),
        egress: pick(this.baselinePolicies, 'egress'),
      },
    };
    return id.tiersOf;
  }
}

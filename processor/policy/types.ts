import type { InputIssue } from '../../lib/errors.js';
import type { Verdict } from '../../schema/verdict.js';
import type { NodeModel, PodModel } from '../inventory/model.js';

/**
 * The policy engine's public surface. The inventory resolves each flow end to what it is (a pod, a
 * node, or neither); the engine judges the flow for those ends. Services are the inventory's and the
 * judge's business: the engine only ever sees the pod (or address) a packet really reached.
 */

/** Where upstream Kubernetes leaves behaviour to the implementation; defaults follow upstream. */
export interface PolicyOptions {
  /**
   * Whether ipBlock peers match pod IPs. Upstream's conformance tests expect it (true, the default);
   * Cilium never matches pod IPs with ipBlock (false).
   */
  ipBlockMatchesPods: boolean;
  /**
   * hostNetwork pods: 'node' (default) treats them as their node: policies do not select them and
   * peers match them only by ipBlock on the node's address; 'pod' treats them as ordinary pods.
   */
  hostNetwork: 'node' | 'pod';
}

export const DEFAULT_POLICY_OPTIONS: PolicyOptions = { ipBlockMatchesPods: true, hostNetwork: 'node' };

/** One end of a flow, as the inventory resolved it at the flow's time. */
export interface FlowEndpointRef {
  ip: string;
  /** The pod that held this IP, when one did. */
  pod?: PodModel;
  /** The node that owns this IP (a node address), when one does. */
  node?: NodeModel;
}

/** A flow as the engine needs it: the initiating direction only (replies are implicitly allowed). */
export interface FlowQuery {
  src: FlowEndpointRef;
  dst: FlowEndpointRef;
  /** IP protocol number (6 TCP, 17 UDP, 132 SCTP, 1 ICMP, 58 ICMPv6, ...). */
  proto: number;
  /** Destination port; undefined for protocols without ports (ICMP) or unknown. */
  port?: number;
}

export interface CompileResult {
  index: PolicyIndexApi;
  /** Invalid policies (rejected whole, with policy and field named) and other problems. */
  issues: InputIssue[];
}

export interface PolicyIndexApi {
  readonly options: PolicyOptions;
  /** Never throws. Amortized O(1) through the verdict cache. */
  evaluate(q: FlowQuery): Verdict;
  /** The same decision, with the reasoning a person needs (see explain.ts). */
  explain(q: FlowQuery): Explanation;
  /** Every rule of every accepted policy, so rules never hit can be listed. */
  rules(): RuleInfo[];
}

export interface RuleInfo {
  policy: string;
  kind: 'NetworkPolicy' | 'AdminNetworkPolicy' | 'BaselineAdminNetworkPolicy' | 'ClusterNetworkPolicy';
  direction: 'ingress' | 'egress';
  rule: number;
  /** Short human description, e.g. `from podSelector{app=web} ports TCP/80`. */
  summary: string;
}

export interface PeerExplanation {
  policy: string;
  direction: 'ingress' | 'egress';
  rule: number;
  summary: string;
  matched: boolean;
  /** Why the rule did or did not match: which peer matched, or e.g. `port 8080 not in [TCP/80]`. */
  why: string;
}

/** A rule of a cluster-scoped policy (admin or baseline tier) that was looked at, in evaluation order. */
export interface TierRuleExplanation extends PeerExplanation {
  kind: 'AdminNetworkPolicy' | 'BaselineAdminNetworkPolicy' | 'ClusterNetworkPolicy';
  tier: 'Admin' | 'Baseline';
  /** spec.priority (BaselineAdminNetworkPolicy has none). */
  priority?: number;
  action: 'Allow' | 'Deny' | 'Pass';
}

export interface SideExplanation {
  /** The pod/address this side is about. */
  subject: string;
  isolated: boolean;
  /** Policies selecting the pod that have this direction in policyTypes. */
  isolatedBy: string[];
  /** Every rule of those policies, with whether and why it matched. */
  rules: PeerExplanation[];
  allowed: boolean;
  reason: string;
  /**
   * Present when the cluster has AdminNetworkPolicies, BaselineAdminNetworkPolicies or
   * ClusterNetworkPolicies: their rules that were evaluated for this side, up to the deciding one.
   */
  tierRules?: TierRuleExplanation[];
  /** Which tier decided this side: admin, networkpolicy, baseline, or default (allowed, nothing decided). */
  decidedBy?: 'admin' | 'networkpolicy' | 'baseline' | 'default';
}

export interface Explanation {
  verdict: Verdict;
  egress: SideExplanation;
  ingress: SideExplanation;
}

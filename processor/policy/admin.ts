import { type InputIssue, issue } from '../../lib/errors.js';
import type { ClusterModel, L4Protocol } from '../inventory/model.js';
import {
  hostCidr,
  KIND_ORDER,
  type NodeAddresses,
  type ParsedPolicy,
  type PendingPeer,
  type PendingRule,
  parsePolicy,
  ruleSummary,
} from './admin-parse.js';
import type {
  AdminCompileResult,
  AdminPeer,
  AdminPolicy,
  AdminPort,
  AdminRule,
  AdminTier,
} from './admin-types.js';
import {
  type CompileRegistry,
  type IpBlockPeer,
  PROTOCOL_NUMBERS,
  registerPeer,
  type SelectorPeer,
} from './compile.js';
import type { Cidr } from './ip.js';
import { type Selector, selectorMatches } from './selector.js';

export * from './admin-types.js';

/**
 * Validation and lowering of the network-policy-api's cluster-scoped policies
 * (policy.networking.k8s.io): AdminNetworkPolicy and BaselineAdminNetworkPolicy (v1alpha1) and their
 * successor ClusterNetworkPolicy (v1alpha2, tiers Admin and Baseline). Field names and checks follow
 * the Go types and CRD validations of sigs.k8s.io/network-policy-api v0.2.0; docs/admin-network-policy.md
 * is the contract. A policy with any error is rejected whole (the API server would not have admitted
 * it); the others are compiled. Selector peers and CIDRs are registered in the NetworkPolicy compiler's
 * registry, so identities, the selector cache and the CIDR classes of the verdict cache cover them too.
 */

/**
 * Validates every raw policy.networking.k8s.io object and compiles the valid ones into the two tiers,
 * in evaluation order: priority ascending; equal priorities (upstream leaves their order to the
 * implementation) by kind (AdminNetworkPolicy, ClusterNetworkPolicy, BaselineAdminNetworkPolicy) then
 * name, so verdicts never depend on input order. Each equal-priority pair gets a warning.
 */
export function compileAdminPolicies(cluster: ClusterModel, reg: CompileRegistry): AdminCompileResult {
  const issues: InputIssue[] = [];
  const parsed = new Map<string, ParsedPolicy>();
  (cluster.clusterNetworkPolicies ?? []).forEach((raw, i) => {
    const p = parsePolicy(raw, i, issues);
    if (!p) return;
    const key = `${p.kind}/${p.name}`;
    if (parsed.has(key)) {
      issues.push(
        issue(
          'POLICY_DUPLICATE',
          'a policy with this kind/name came earlier; this one is ignored',
          { object: key, record: i },
          'warning',
        ),
      );
      return;
    }
    parsed.set(key, p);
  });
  const nodes: NodeAddresses[] = (cluster.nodes ?? []).map((n) => ({
    name: n.name,
    labels: { ...(n.labels ?? {}), 'kubernetes.io/hostname': n.labels?.['kubernetes.io/hostname'] ?? n.name },
    addresses: n.addresses,
  }));
  const namedPorts = new Set<string>();
  let hasAddressPeers = false;
  const lower = (pp: PendingPeer): AdminPeer => {
    if (pp.kind === 'selector')
      return registerPeer(
        reg,
        {
          kind: 'selector',
          namespaceSelector: pp.namespaceSelector,
          podSelector: pp.podSelector,
          text: pp.text,
        },
        '',
      ) as SelectorPeer;
    if (pp.kind === 'nothing') return { kind: 'nothing', text: pp.text };
    hasAddressPeers = true;
    const cidrs: Cidr[] =
      pp.kind === 'networks'
        ? (pp.cidrs ?? [])
        : nodes
            .filter((n) => selectorMatches(pp.nodeSelector as Selector, n.labels))
            .flatMap((n) => n.addresses.map(hostCidr).filter((c): c is Cidr => c !== undefined));
    const blocks = cidrs.map(
      (cidr) => registerPeer(reg, { kind: 'ipBlock', cidr, except: [], text: cidr.text }, '') as IpBlockPeer,
    );
    return { kind: 'addresses', blocks, text: pp.text };
  };
  const compiled: AdminPolicy[] = [...parsed.values()].map((p) => {
    const finish = (r: PendingRule): AdminRule => {
      const peers = r.peers?.map(lower);
      for (const port of r.ports ?? []) if (port.name !== undefined) namedPorts.add(port.name);
      const rule: AdminRule = {
        direction: r.direction,
        index: r.index,
        action: r.action,
        actionText: r.actionText,
        summary: ruleSummary(r, peers),
      };
      if (r.name !== undefined) rule.name = r.name;
      if (peers) rule.peers = peers;
      if (r.ports) rule.ports = r.ports;
      return rule;
    };
    const out: AdminPolicy = {
      kind: p.kind,
      name: p.name,
      key: `${p.kind}/${p.name}`,
      tier: p.tier,
      priority: p.priority,
      rank: 0,
      subjectNamespaces: p.subjectNamespaces,
      subjectText: p.subjectText,
      ingress: p.ingress.map(finish),
      egress: p.egress.map(finish),
    };
    if (p.subjectPods) out.subjectPods = p.subjectPods;
    return out;
  });
  const order = (a: AdminPolicy, b: AdminPolicy) =>
    a.priority - b.priority ||
    (KIND_ORDER[a.kind] ?? 9) - (KIND_ORDER[b.kind] ?? 9) ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const tier = (t: AdminTier) => {
    const list = compiled.filter((p) => p.tier === t).sort(order);
    list.forEach((p, i) => {
      p.rank = i;
      const prev = list[i - 1];
      if (prev && prev.priority === p.priority && p.priority <= 1000)
        issues.push(
          issue(
            'POLICY_SAME_PRIORITY',
            `${prev.key} and ${p.key} share priority ${p.priority} in the ${t} tier; upstream leaves their order undefined, ${prev.key} is evaluated first here`,
            { object: p.key, field: 'spec.priority' },
            'warning',
          ),
        );
    });
    return list;
  };
  return { admin: tier('Admin'), baseline: tier('Baseline'), namedPorts, hasAddressPeers, issues };
}

/** Whether the policy's subject selects a pod with these namespace and pod labels. */
export function subjectSelects(
  p: AdminPolicy,
  nsLabels: Record<string, string>,
  podLabels: Record<string, string>,
): boolean {
  return (
    selectorMatches(p.subjectNamespaces, nsLabels) &&
    (p.subjectPods === undefined || selectorMatches(p.subjectPods, podLabels))
  );
}

/** Port match of an admin rule's port entry: numbers and ranges by protocol, named ports on the destination pod. */
export function adminPortMatches(
  spec: AdminPort,
  proto: number,
  port: number | undefined,
  dstPodPorts: readonly { name?: string; protocol: L4Protocol; containerPort: number }[] | undefined,
): boolean {
  if (port === undefined) return false;
  if (spec.name !== undefined) {
    if (!dstPodPorts) return false;
    for (const cp of dstPodPorts)
      if (cp.name === spec.name && PROTOCOL_NUMBERS[cp.protocol] === proto && cp.containerPort === port)
        return true;
    return false;
  }
  if (proto !== PROTOCOL_NUMBERS[spec.protocol as L4Protocol]) return false;
  return port >= (spec.start as number) && port <= (spec.end as number);
}

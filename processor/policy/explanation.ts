import type { DirectionVerdictValue, RuleRefValue } from '../../schema/verdict.js';
import type { PodModel } from '../inventory/model.js';
import { type AdminPeer, type AdminRule, adminPortMatches } from './admin.js';
import type { CompiledRule, Direction, Peer, PortSpec } from './compile.js';
import { isSamePod, L4_PROTOCOLS, NODE_LOCAL_KIND, PolicyEvaluator, type SideResult } from './evaluation.js';
import { type End, type Identity, ROLE_HOST, ROLE_POD } from './identities.js';
import { cidrContains, type ParsedIp } from './ip.js';
import { firstFailure, selectorMatches } from './selector.js';
import type {
  Explanation,
  FlowQuery,
  PeerExplanation,
  RuleInfo,
  SideExplanation,
  TierRuleExplanation,
} from './types.js';

/**
 * Explanations: the same decision as `evaluate`, traced, with the reasoning a person needs (which peer
 * or port failed and why, which tier decided), and the list of every rule. Only `explain` and `rules`
 * come here; the hot path never does.
 */

const PROTOCOL_NAMES: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };

function protoName(p: number): string {
  return PROTOCOL_NAMES[p] ?? `proto ${p}`;
}

/** The trace wording the evaluator asks for (whyRule, whyAdminRule), explain() and rules(). */
export abstract class PolicyExplainer extends PolicyEvaluator {
  private describeEnd(end: End): string {
    const r = end.ref;
    if (r.pod) {
      const host = r.pod.hostNetwork ? ' hostNetwork' : '';
      return `pod ${r.pod.namespace}/${r.pod.name}${host} (${r.ip})`;
    }
    if (r.node) return `node ${r.node.name} (${r.ip})`;
    return r.ip;
  }

  private whyPeerMiss(peer: Peer, end: End): string {
    if (peer.kind === 'selector') {
      if (end.role !== ROLE_POD) {
        const what = end.role === ROLE_HOST ? 'a hostNetwork pod (treated as its node)' : 'not a pod';
        return `${this.describeEnd(end)} is ${what}: ${peer.text} matches pods only`;
      }
      const id = end.identity as Identity;
      if (peer.namespaceSelector) {
        if (!selectorMatches(peer.namespaceSelector, id.nsLabels))
          return `namespace '${id.namespace}' labels do not match namespaceSelector${peer.namespaceSelector.text} (fails ${firstFailure(peer.namespaceSelector, id.nsLabels)})`;
      } else if (id.namespace !== peer.policyNamespace) {
        return `pod is in namespace '${id.namespace}'; podSelector${peer.podSelector?.text ?? '{}'} without namespaceSelector applies to namespace '${peer.policyNamespace}' only`;
      }
      const pod = end.pod as PodModel;
      if (peer.podSelector && !selectorMatches(peer.podSelector, id.podLabels))
        return `pod '${pod.namespace}/${pod.name}' labels do not match podSelector${peer.podSelector.text} (fails ${firstFailure(peer.podSelector, id.podLabels)})`;
      return `${peer.text} matched`;
    }
    if (!end.ip) return `'${end.ref.ip}' is not an IP address`;
    if (end.role === ROLE_POD && !this.options.ipBlockMatchesPods)
      return `${peer.text} does not match pod IPs (ipBlockMatchesPods=false)`;
    if (!cidrContains(peer.cidr, end.ip)) return `${end.ref.ip} not in ${peer.cidr.text}`;
    const ex = peer.except.find((e) => cidrContains(e, end.ip as ParsedIp));
    if (ex) return `${end.ref.ip} is in except ${ex.text} of ${peer.cidr.text}`;
    return `${peer.text} matched`;
  }

  protected override whyRule(
    rule: CompiledRule,
    peerEnd: End,
    dst: End,
    q: FlowQuery,
    matched: boolean,
  ): string {
    const word = rule.direction === 'ingress' ? 'from' : 'to';
    const parts: string[] = [];
    if (rule.peers) {
      const i = rule.peers.findIndex((p) => this.peerMatches(p, peerEnd));
      if (i < 0) {
        const misses = rule.peers.map((p, j) => `${word}[${j}]: ${this.whyPeerMiss(p, peerEnd)}`);
        return `no peer matches ${this.describeEnd(peerEnd)}: ${misses.join('; ')}`;
      }
      parts.push(`${word}[${i}] ${(rule.peers[i] as Peer).text} matches ${this.describeEnd(peerEnd)}`);
    } else parts.push(`all peers (${word} empty)`);
    const flow = L4_PROTOCOLS.has(q.proto)
      ? `${protoName(q.proto)}/${q.port ?? '?'}`
      : `${protoName(q.proto)}`;
    if (rule.ports) {
      const i = rule.ports.findIndex((p) => this.portMatches(p, q, dst));
      const list = `[${rule.ports.map((p) => p.text).join(',')}]`;
      if (i < 0) {
        let extra = '';
        if (!L4_PROTOCOLS.has(q.proto)) extra = ' (a rule with ports matches only TCP, UDP and SCTP)';
        else if (rule.ports.some((p) => p.name !== undefined)) {
          extra =
            dst.role === ROLE_POD
              ? ` (named ports resolve against ${this.describeEnd(dst)}: ${((dst.pod as PodModel).ports ?? []).map((p) => `${p.name ?? ''}=${p.protocol}/${p.containerPort}`).join(',') || 'none'})`
              : ' (named ports match only pod destinations)';
        }
        return `${parts[0]}; but ${flow} not in ${list}${extra}`;
      }
      parts.push(`${flow} in ${list} (via ${(rule.ports[i] as PortSpec).text})`);
    } else parts.push('all ports (ports empty)');
    void matched;
    return parts.join('; ');
  }

  private whyAdminPeerMiss(peer: AdminPeer, end: End): string {
    if (peer.kind === 'nothing') return `${peer.text} matches no flow`;
    if (peer.kind === 'addresses') {
      if (!end.ip) return `'${end.ref.ip}' is not an IP address`;
      return `${end.ref.ip} is not in ${peer.text}${peer.blocks.length ? ` (${peer.blocks.map((b) => b.cidr.text).join(',')})` : ' (no address)'}`;
    }
    if (end.role !== ROLE_POD) {
      const what = end.role === ROLE_HOST ? 'a hostNetwork pod' : 'not a pod';
      return `${this.describeEnd(end)} is ${what}: ${peer.text} matches pods only`;
    }
    const id = end.identity as Identity;
    if (peer.namespaceSelector && !selectorMatches(peer.namespaceSelector, id.nsLabels))
      return `namespace '${id.namespace}' labels do not match ${peer.namespaceSelector.text} (fails ${firstFailure(peer.namespaceSelector, id.nsLabels)})`;
    if (peer.podSelector && !selectorMatches(peer.podSelector, id.podLabels))
      return `pod labels do not match ${peer.podSelector.text} (fails ${firstFailure(peer.podSelector, id.podLabels)})`;
    return `${peer.text} matched`;
  }

  protected override whyAdminRule(rule: AdminRule, peerEnd: End, dst: End, q: FlowQuery): string {
    const word = rule.direction === 'ingress' ? 'from' : 'to';
    let head: string;
    if (rule.peers) {
      const i = rule.peers.findIndex((p) => this.adminPeerMatches(p, peerEnd));
      if (i < 0) {
        const misses = rule.peers.map((p, j) => `${word}[${j}]: ${this.whyAdminPeerMiss(p, peerEnd)}`);
        return `no peer matches ${this.describeEnd(peerEnd)}: ${misses.join('; ')}`;
      }
      head = `${word}[${i}] ${(rule.peers[i] as AdminPeer).text} matches ${this.describeEnd(peerEnd)}`;
    } else head = 'all peers (deny-all: a peer failed closed)';
    if (!rule.ports) return `${head}; all ports`;
    const flow = L4_PROTOCOLS.has(q.proto) ? `${protoName(q.proto)}/${q.port ?? '?'}` : protoName(q.proto);
    const list = `[${rule.ports.map((p) => p.text).join(',')}]`;
    const dstPorts = dst.role === ROLE_POD ? (dst.pod as PodModel).ports : undefined;
    const i = L4_PROTOCOLS.has(q.proto)
      ? rule.ports.findIndex((p) => adminPortMatches(p, q.proto, q.port, dstPorts))
      : -1;
    if (i < 0) {
      const named = rule.ports.some((p) => p.name !== undefined)
        ? dstPorts
          ? ` (named ports resolve against ${this.describeEnd(dst)}: ${dstPorts.map((p) => `${p.name ?? ''}=${p.protocol}/${p.containerPort}`).join(',') || 'none'})`
          : ' (named ports match only pod destinations)'
        : '';
      return `${head}; but ${flow} not in ${list}${named}`;
    }
    return `${head}; ${flow} in ${list} (via ${(rule.ports[i] as { text: string }).text})`;
  }

  private explainSide(res: SideResult, subject: End, direction: Direction, self: boolean): SideExplanation {
    const v = res.verdict;
    const rules: PeerExplanation[] = (res.traces ?? []).map((t) => ({
      policy: t.policy.key,
      direction,
      rule: t.rule.index,
      summary: t.rule.summary,
      matched: t.matched,
      why: t.why,
    }));
    const tierRef = (r: RuleRefValue) => {
      const p = [...this.adminPolicies, ...this.baselinePolicies].find(
        (x) => x.kind === r.kind && x.name === r.policy,
      );
      const rule = p?.[direction][r.rule];
      const prio = p && p.kind !== 'BaselineAdminNetworkPolicy' ? `, priority ${p.priority}` : '';
      return `${r.kind} ${r.policy} ${direction}[${r.rule}]${rule?.name ? ` '${rule.name}'` : ''} (${rule?.actionText ?? r.action}${prio})`;
    };
    const passes = v.rules.filter((r) => r.action === 'Pass');
    const npRules = v.rules.filter((r) => r.kind === NODE_LOCAL_KIND);
    const decided = v.rules.find((r) => r.action === 'Allow' || r.action === 'Deny');
    const passText = passes.length ? `passed by ${passes.map(tierRef).join(' then ')}; ` : '';
    const reasonText: Record<DirectionVerdictValue['reason'], string> = {
      'not-isolated': passes.length
        ? `${passText}no NetworkPolicy isolates this pod and no baseline rule decided: allowed by default`
        : res.tierTraces?.length
          ? `no admin or baseline rule matches and no policy with ${direction} in policyTypes selects this pod`
          : `no policy with ${direction} in policyTypes selects this pod`,
      'rule-matched': `${passText}allowed by ${npRules.map((r) => `${r.policy} ${direction}[${r.rule}]`).join(', ')}`,
      'no-rule-matched': `isolated by ${v.isolatedBy.join(', ')} and no ${direction} rule matches`,
      'node-local': self
        ? 'traffic from a pod to itself is always allowed (a pod cannot block access to itself)'
        : `traffic between the pod and its own node (${(subject.pod as PodModel | undefined)?.nodeName ?? ''}) is always allowed`,
      'not-a-pod': 'not a pod: no NetworkPolicy applies on this side',
      'engine-error': 'the policy engine failed on this flow (a bug, logged): no verdict',
      'host-network':
        'hostNetwork pod treated as its node (option hostNetwork=node): no NetworkPolicy applies',
      'admin-allow': `allowed by admin tier: ${decided ? tierRef(decided) : ''} (NetworkPolicy and baseline not consulted)`,
      'admin-deny': `denied by admin tier: ${decided ? tierRef(decided) : ''} (NetworkPolicy and baseline not consulted)`,
      'baseline-allow': `${passText}no NetworkPolicy isolates this pod; allowed by baseline tier: ${decided ? tierRef(decided) : ''}`,
      'baseline-deny': `${passText}no NetworkPolicy isolates this pod; denied by baseline tier: ${decided ? tierRef(decided) : ''}`,
    };
    if (passText && (v.reason === 'no-rule-matched' || v.reason === 'node-local'))
      reasonText[v.reason] = `${passText}${reasonText[v.reason]}`;
    const out: SideExplanation = {
      subject: this.describeEnd(subject),
      isolated: v.isolated,
      isolatedBy: [...v.isolatedBy],
      rules,
      allowed: v.allowed,
      reason: reasonText[v.reason],
    };
    if (res.tierTraces) {
      out.tierRules = res.tierTraces.map(
        (t): TierRuleExplanation => ({
          policy: t.policy.name,
          kind: t.policy.kind,
          tier: t.policy.tier,
          priority: t.policy.priority <= 1000 ? t.policy.priority : undefined,
          action: t.rule.action,
          direction,
          rule: t.rule.index,
          summary: t.rule.summary,
          matched: t.matched,
          why: t.why,
        }),
      );
      out.decidedBy = res.decidedBy;
    }
    return out;
  }

  explain(q: FlowQuery): Explanation {
    try {
      const d = this.decide(q, true);
      const src = this.resolveEnd(q.src);
      const dst = this.resolveEnd(q.dst);
      return {
        verdict: d.verdict,
        egress: this.explainSide(d.egress, src, 'egress', isSamePod(q.src, q.dst)),
        ingress: this.explainSide(d.ingress, dst, 'ingress', isSamePod(q.src, q.dst)),
      };
    } catch (err) {
      const verdict = this.failure(err);
      const side = (subject: string): SideExplanation => ({
        subject,
        isolated: false,
        isolatedBy: [],
        rules: [],
        allowed: false,
        reason: `internal error: ${err instanceof Error ? err.message : String(err)}`,
      });
      return { verdict, egress: side(String(q?.src?.ip)), ingress: side(String(q?.dst?.ip)) };
    }
  }

  rules(): RuleInfo[] {
    const out: RuleInfo[] = [];
    for (const p of [...this.adminPolicies, ...this.baselinePolicies])
      for (const r of [...p.ingress, ...p.egress])
        out.push({ policy: p.name, kind: p.kind, direction: r.direction, rule: r.index, summary: r.summary });
    for (const p of this.policies)
      for (const r of [...p.ingress, ...p.egress])
        out.push({
          policy: p.key,
          kind: 'NetworkPolicy',
          direction: r.direction,
          rule: r.index,
          summary: r.summary,
        });
    return out;
  }
}

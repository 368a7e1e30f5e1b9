import { log } from '../../lib/log.js';
import type { DirectionVerdictValue, RuleRefValue, Verdict } from '../../schema/verdict.js';
import type { PodModel } from '../inventory/model.js';
import { type AdminPeer, type AdminPolicy, type AdminRule, adminPortMatches } from './admin.js';
import {
  type CompiledPolicy,
  type CompiledRule,
  type Direction,
  type Peer,
  type PortSpec,
  PROTOCOL_NUMBERS,
} from './compile.js';
import {
  type End,
  type Identity,
  IdentityCache,
  ROLE_HOST,
  ROLE_OTHER,
  ROLE_POD,
  type Role,
} from './identities.js';
import { cidrContains, type ParsedIp, parseIp } from './ip.js';
import type { FlowEndpointRef, FlowQuery } from './types.js';

/**
 * The direct evaluation (`decide`): a flow's two ends resolved to identities and addresses, then each
 * side judged through the admin tier, NetworkPolicy and the baseline tier. No caching beyond the
 * selector cache: the verdict cache (verdict-cache.ts) sits in front of this. When tracing (explain),
 * each rule looked at records why it did or did not match; the wording is explanation.ts's.
 */

export const NODE_LOCAL_KIND = 'NetworkPolicy' as const;

export interface TierTrace {
  policy: AdminPolicy;
  rule: AdminRule;
  matched: boolean;
  why: string;
}

export type DecidedBy = 'admin' | 'networkpolicy' | 'baseline' | 'default';

export interface RuleTrace {
  rule: CompiledRule;
  policy: CompiledPolicy;
  matched: boolean;
  why: string;
}

export interface SideResult {
  verdict: DirectionVerdictValue;
  traces?: RuleTrace[];
  /** Admin and baseline rules looked at, in evaluation order (explain only). */
  tierTraces?: TierTrace[];
  decidedBy?: DecidedBy;
}

function adminRef(p: AdminPolicy, r: AdminRule): RuleRefValue {
  return {
    policy: p.name,
    kind: p.kind,
    direction: r.direction,
    rule: r.index,
    action: r.action,
    tier: p.tier,
  };
}

export const L4_PROTOCOLS = new Set([6, 17, 132]);
export const MAX_IP_MEMO = 1 << 20;

export function isSamePod(a: FlowEndpointRef, b: FlowEndpointRef): boolean {
  const p = a.pod;
  const o = b.pod;
  return (
    p !== undefined && o !== undefined && (p === o || (p.namespace === o.namespace && p.name === o.name))
  );
}

/**
 * The layers form one class chain, IdentityCache -> PolicyEvaluator -> PolicyExplainer -> PolicyIndex,
 * rather than objects delegating to each other: the hot path then calls methods on a single object,
 * as it did when this was one file, with no extra hop per rule or peer.
 */
export abstract class PolicyEvaluator extends IdentityCache {
  private parsedIps = new Map<string, ParsedIp | null>();
  protected internalErrors = 0;

  /** Why a NetworkPolicy rule did or did not match (explain only). */
  protected abstract whyRule(
    rule: CompiledRule,
    peerEnd: End,
    dst: End,
    q: FlowQuery,
    matched: boolean,
  ): string;

  /** Why an admin or baseline rule did or did not match (explain only). */
  protected abstract whyAdminRule(rule: AdminRule, peerEnd: End, dst: End, q: FlowQuery): string;

  private roleOf(ref: FlowEndpointRef): Role {
    const pod = ref.pod;
    if (!pod) return ROLE_OTHER;
    if (pod.hostNetwork && this.options.hostNetwork === 'node') return ROLE_HOST;
    return ROLE_POD;
  }

  private parseIpMemo(ip: string): ParsedIp | undefined {
    let p = this.parsedIps.get(ip);
    if (p === undefined) {
      p = parseIp(ip) ?? null;
      if (this.parsedIps.size >= MAX_IP_MEMO) this.parsedIps = new Map();
      this.parsedIps.set(ip, p);
    }
    return p ?? undefined;
  }

  protected resolveEnd(ref: FlowEndpointRef): End {
    const role = this.roleOf(ref);
    const end: End = { ref, role, ip: this.parseIpMemo(ref.ip) };
    if (role !== ROLE_OTHER) end.pod = ref.pod;
    if (role === ROLE_POD) end.identity = this.identityOf(ref.pod as PodModel).identity;
    return end;
  }

  /** Traffic between a pod and the node it runs on is always allowed (kubelet probes and the like). */
  private isNodeLocal(pod: PodModel, other: FlowEndpointRef): boolean {
    return this.nodeLocal(pod.nodeName, other, this.nodesByAddress.get(other.ip));
  }

  /** `otherIpNodes`: the nodes owning other.ip (memoized by the caller on the hot path). */
  protected nodeLocal(
    node: string | undefined,
    other: FlowEndpointRef,
    otherIpNodes: readonly string[] | undefined,
  ): boolean {
    if (!node) return false;
    if (other.node?.name === node) return true;
    if (otherIpNodes?.includes(node)) return true;
    const op = other.pod;
    return op?.hostNetwork === true && this.options.hostNetwork === 'node' && op.nodeName === node;
  }

  protected peerMatches(peer: Peer, end: End): boolean {
    if (peer.kind === 'selector') {
      return end.identity !== undefined && this.selectorPeerMatches(peer, end.identity);
    }
    if (!end.ip) return false;
    if (end.role === ROLE_POD && !this.options.ipBlockMatchesPods) return false;
    if (!cidrContains(peer.cidr, end.ip)) return false;
    for (const e of peer.except) if (cidrContains(e, end.ip)) return false;
    return true;
  }

  protected portMatches(spec: PortSpec, q: FlowQuery, dst: End): boolean {
    if (q.proto !== PROTOCOL_NUMBERS[spec.protocol]) return false;
    if (spec.name !== undefined) {
      // Named ports resolve against the flow's destination pod, for ingress and egress alike.
      if (dst.role !== ROLE_POD || q.port === undefined) return false;
      for (const cp of (dst.pod as PodModel).ports ?? [])
        if (cp.name === spec.name && cp.protocol === spec.protocol && cp.containerPort === q.port)
          return true;
      return false;
    }
    if (spec.port === undefined) return true;
    if (q.port === undefined) return false;
    return q.port >= spec.port && q.port <= (spec.endPort ?? spec.port);
  }

  private ruleMatches(rule: CompiledRule, peerEnd: End, dst: End, q: FlowQuery): boolean {
    if (rule.peers) {
      let any = false;
      for (const p of rule.peers)
        if (this.peerMatches(p, peerEnd)) {
          any = true;
          break;
        }
      if (!any) return false;
    }
    if (rule.ports) {
      for (const p of rule.ports) if (this.portMatches(p, q, dst)) return true;
      return false;
    }
    return true;
  }

  private side(
    direction: Direction,
    subject: End,
    peer: End,
    dst: End,
    q: FlowQuery,
    trace: boolean,
  ): SideResult {
    if (subject.role !== ROLE_POD) {
      return {
        verdict: {
          allowed: true,
          isolated: false,
          rules: [],
          isolatedBy: [],
          reason: subject.role === ROLE_HOST ? 'host-network' : 'not-a-pod',
        },
        traces: trace ? [] : undefined,
      };
    }
    const id = subject.identity as Identity;
    const isolating = this.subjectPolicies(id)[direction];
    const hasTiers = this.adminPolicies.length > 0 || this.baselinePolicies.length > 0;
    const tiers = hasTiers ? this.tierSubjects(id) : undefined;
    const tierTraces: TierTrace[] | undefined = trace && hasTiers ? [] : undefined;
    // Admin tier: the first matching rule of the first policy (by priority) decides; Pass skips the
    // rest of the tier and hands the flow to NetworkPolicy.
    let passed: RuleRefValue[] | undefined;
    if (tiers && tiers.admin[direction].length > 0) {
      const hit = this.firstTierMatch(tiers.admin[direction], direction, peer, dst, q, tierTraces);
      if (hit) {
        const ref = adminRef(hit.policy, hit.rule);
        if (hit.rule.action !== 'Pass') {
          const allowed = hit.rule.action === 'Allow';
          return {
            verdict: {
              allowed,
              isolated: isolating.length > 0,
              rules: [ref],
              isolatedBy: isolating.map((p) => p.key),
              reason: allowed ? 'admin-allow' : 'admin-deny',
            },
            traces: trace ? [] : undefined,
            tierTraces,
            decidedBy: 'admin',
          };
        }
        passed = [ref];
      }
    }
    if (isolating.length === 0) {
      // Baseline tier only for pods no NetworkPolicy isolates in this direction.
      if (tiers && tiers.baseline[direction].length > 0) {
        const hit = this.firstTierMatch(tiers.baseline[direction], direction, peer, dst, q, tierTraces);
        if (hit) {
          const ref = adminRef(hit.policy, hit.rule);
          const rules = passed ? [...passed, ref] : [ref];
          if (hit.rule.action !== 'Pass') {
            const allowed = hit.rule.action === 'Allow';
            return {
              verdict: {
                allowed,
                isolated: false,
                rules,
                isolatedBy: [],
                reason: allowed ? 'baseline-allow' : 'baseline-deny',
              },
              traces: trace ? [] : undefined,
              tierTraces,
              decidedBy: 'baseline',
            };
          }
          passed = rules;
        }
      }
      return {
        verdict: {
          allowed: true,
          isolated: false,
          rules: passed ?? [],
          isolatedBy: [],
          reason: 'not-isolated',
        },
        traces: trace ? [] : undefined,
        tierTraces,
        decidedBy: 'default',
      };
    }
    const rules: RuleRefValue[] = passed ? [...passed] : [];
    const traces: RuleTrace[] | undefined = trace ? [] : undefined;
    let allowing = 0;
    for (const p of isolating) {
      for (const r of p[direction]) {
        const matched = this.ruleMatches(r, peer, dst, q);
        if (matched) {
          rules.push({ policy: p.key, kind: NODE_LOCAL_KIND, direction, rule: r.index });
          allowing++;
        }
        if (traces) traces.push({ rule: r, policy: p, matched, why: this.whyRule(r, peer, dst, q, matched) });
      }
    }
    // "A pod cannot block access to itself" (Network Policies concept page): same pod on both ends.
    const nodeLocal = isSamePod(subject.ref, peer.ref) || this.isNodeLocal(subject.pod as PodModel, peer.ref);
    const allowed = nodeLocal || allowing > 0;
    return {
      verdict: {
        allowed,
        isolated: true,
        rules,
        isolatedBy: isolating.map((p) => p.key),
        reason: nodeLocal ? 'node-local' : allowed ? 'rule-matched' : 'no-rule-matched',
      },
      traces,
      tierTraces,
      decidedBy: 'networkpolicy',
    };
  }

  // ---- cluster-scoped tiers -----------------------------------------------------------------------

  private firstTierMatch(
    policies: readonly AdminPolicy[],
    direction: Direction,
    peer: End,
    dst: End,
    q: FlowQuery,
    traces: TierTrace[] | undefined,
  ): { policy: AdminPolicy; rule: AdminRule } | undefined {
    for (const p of policies)
      for (const r of p[direction]) {
        const matched = this.adminRuleMatches(r, peer, dst, q);
        if (traces) traces.push({ policy: p, rule: r, matched, why: this.whyAdminRule(r, peer, dst, q) });
        if (matched) return { policy: p, rule: r };
      }
    return undefined;
  }

  protected adminPeerMatches(peer: AdminPeer, end: End): boolean {
    if (peer.kind === 'selector')
      return end.identity !== undefined && this.selectorPeerMatches(peer, end.identity);
    if (peer.kind === 'nothing' || !end.ip) return false;
    for (const b of peer.blocks) if (cidrContains(b.cidr, end.ip)) return true;
    return false;
  }

  private adminRuleMatches(rule: AdminRule, peerEnd: End, dst: End, q: FlowQuery): boolean {
    if (rule.peers) {
      let any = false;
      for (const p of rule.peers)
        if (this.adminPeerMatches(p, peerEnd)) {
          any = true;
          break;
        }
      if (!any) return false;
    }
    if (rule.ports) {
      if (!L4_PROTOCOLS.has(q.proto)) return false;
      const dstPorts = dst.role === ROLE_POD ? (dst.pod as PodModel).ports : undefined;
      for (const p of rule.ports) if (adminPortMatches(p, q.proto, q.port, dstPorts)) return true;
      return false;
    }
    return true;
  }

  protected decide(
    q: FlowQuery,
    trace: boolean,
  ): { verdict: Verdict; egress: SideResult; ingress: SideResult } {
    const src = this.resolveEnd(q.src);
    const dst = this.resolveEnd(q.dst);
    const egress = this.side('egress', src, dst, dst, q, trace);
    const ingress = this.side('ingress', dst, src, dst, q, trace);
    const allowed = egress.verdict.allowed && ingress.verdict.allowed;
    return {
      verdict: {
        allowed,
        result: allowed ? 'allowed' : 'denied',
        egress: egress.verdict,
        ingress: ingress.verdict,
      },
      egress,
      ingress,
    };
  }

  /** The direct evaluation without the verdict cache (for benchmarks and the exactness property). */
  evaluateUncached(q: FlowQuery): Verdict {
    try {
      return this.decide(q, false).verdict;
    } catch (err) {
      return this.failure(err);
    }
  }

  /**
   * An internal error must not stop an audit, nor pass for a finding: the flow is neither allowed nor
   * denied but `ambiguous`, with the reason `engine-error` on both sides (an unsettled verdict in the
   * report, never a violation), counted in stats().internalErrors and logged.
   */
  protected failure(err: unknown): Verdict {
    this.internalErrors++;
    if (this.internalErrors <= 10)
      log().error(
        { err: err instanceof Error ? err.message : String(err) },
        'policy engine failure: verdict unsettled',
      );
    const side: DirectionVerdictValue = {
      allowed: false,
      isolated: false,
      rules: [],
      isolatedBy: [],
      reason: 'engine-error',
    };
    return {
      allowed: false,
      result: 'ambiguous',
      egress: side,
      ingress: { ...side, rules: [], isolatedBy: [] },
    };
  }
}

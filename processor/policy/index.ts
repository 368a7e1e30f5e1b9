import type { InputIssue } from '../../lib/errors.js';
import { issue } from '../../lib/errors.js';
import { log } from '../../lib/log.js';
import type { DirectionVerdictValue, RuleRefValue, Verdict } from '../../schema/verdict.js';
import type { ClusterModel, Labels, PodModel } from '../inventory/model.js';
import {
  type AdminCompileResult,
  type AdminPeer,
  type AdminPolicy,
  type AdminRule,
  adminPortMatches,
  compileAdminPolicies,
  subjectSelects,
} from './admin.js';
import {
  type CompiledPolicy,
  type CompiledRule,
  compilePolicy,
  type Direction,
  type IpBlockPeer,
  newRegistry,
  type Peer,
  type PortSpec,
  PROTOCOL_NUMBERS,
  type SelectorPeer,
} from './compile.js';
import { CidrTrie, cidrContains, type ParsedIp, parseIp } from './ip.js';
import { firstFailure, selectorMatches } from './selector.js';
import {
  type CompileResult,
  DEFAULT_POLICY_OPTIONS,
  type Explanation,
  type FlowEndpointRef,
  type FlowQuery,
  type PeerExplanation,
  type PolicyIndexApi,
  type PolicyOptions,
  type RuleInfo,
  type SideExplanation,
  type TierRuleExplanation,
} from './types.js';
import { VerdictTable } from './verdict-table.js';

export type { CompiledPolicy, CompiledRule } from './compile.js';
export * from './types.js';

/**
 * The NetworkPolicy engine: a compiler (raw policies -> validated rules, selector peers and ipBlocks
 * registered once) and an evaluator. `evaluate` is the direct evaluation (`decide`) behind an exact
 * verdict cache: the key holds everything a verdict depends on, reduced to equivalence classes
 * (identity, ipBlock class, named-port profile, node-locality); docs/policy-engine.md argues why.
 */

const NODE_LOCAL_KIND = 'NetworkPolicy' as const;

/** How an end takes part in policy: a policy subject and selector peer, a hostNetwork pod, or neither. */
type Role = 0 | 1 | 2;
const ROLE_POD: Role = 0;
const ROLE_HOST: Role = 1;
const ROLE_OTHER: Role = 2;

interface Identity {
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

interface TierSubjects {
  admin: { ingress: AdminPolicy[]; egress: AdminPolicy[] };
  baseline: { ingress: AdminPolicy[]; egress: AdminPolicy[] };
}

interface TierTrace {
  policy: AdminPolicy;
  rule: AdminRule;
  matched: boolean;
  why: string;
}

type DecidedBy = 'admin' | 'networkpolicy' | 'baseline' | 'default';

interface PodInfo {
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

interface OtherEndpoint {
  endpoint: number;
  nodes?: readonly string[];
}

interface End {
  ref: FlowEndpointRef;
  role: Role;
  pod?: PodModel;
  identity?: Identity;
  ip?: ParsedIp;
}

interface RuleTrace {
  rule: CompiledRule;
  policy: CompiledPolicy;
  matched: boolean;
  why: string;
}

interface SideResult {
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

const L4_PROTOCOLS = new Set([6, 17, 132]);
const PROTOCOL_NAMES: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };
const MAX_VERDICTS = 1 << 21;
const MAX_IP_MEMO = 1 << 20;
const TWO_21 = 2 ** 21;

function isSamePod(a: FlowEndpointRef, b: FlowEndpointRef): boolean {
  const p = a.pod;
  const o = b.pod;
  return (
    p !== undefined && o !== undefined && (p === o || (p.namespace === o.namespace && p.name === o.name))
  );
}

function protoName(p: number): string {
  return PROTOCOL_NAMES[p] ?? `proto ${p}`;
}

function labelsKey(l: Labels): string {
  return Object.keys(l)
    .sort()
    .map((k) => `${k}=${l[k]}`)
    .join('\u0001');
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

const UNISOLATED: Partial<Record<DirectionVerdictValue['reason'], DirectionVerdictValue>> =
  Object.fromEntries(
    (['not-isolated', 'not-a-pod', 'host-network'] as const).map((reason) => [
      reason,
      deepFreeze({ allowed: true, isolated: false, rules: [], isolatedBy: [], reason }),
    ]),
  );

export interface PolicyIndexStats {
  policies: number;
  identities: number;
  ipClasses: number;
  profiles: number;
  verdictsCached: number;
  hits: number;
  misses: number;
  internalErrors: number;
}

export class PolicyIndex implements PolicyIndexApi {
  readonly options: PolicyOptions;
  readonly policies: readonly CompiledPolicy[];
  private readonly byNamespace = new Map<string, CompiledPolicy[]>();
  private readonly selectorPeers: SelectorPeer[];
  private readonly trie = new CidrTrie();
  private readonly nsLabels = new Map<string, Labels>();
  /** Address -> names of the nodes that have it (normally one). */
  private readonly nodesByAddress = new Map<string, string[]>();
  /** Port names some policy refers to; only these enter a pod's named-port profile. */
  private readonly namedPortNames = new Set<string>();
  /** Cluster-scoped policies (AdminNetworkPolicy & co.), per tier in evaluation order. */
  readonly adminPolicies: readonly AdminPolicy[];
  readonly baselinePolicies: readonly AdminPolicy[];
  /** networks/nodes peers match pod addresses too, so pods need their CIDR class in the cache key. */
  private readonly podsNeedIpClass: boolean;

  private readonly identities: Identity[] = [];
  private readonly identityByKey = new Map<string, Identity>();
  private readonly podInfo = new WeakMap<PodModel, PodInfo>();
  private readonly profileIds = new Map<string, number>([['', 0]]);
  private readonly ipClassIds = new Map<string, number>([['', 0]]);
  private ipClassByIp = new Map<string, number>();
  private parsedIps = new Map<string, ParsedIp | null>();
  private readonly endpointClasses = new Map<number, number>();
  /** Endpoint class of non-pod addresses (role 'other'), straight from the address. */
  private otherEndpoints = new Map<string, OtherEndpoint>();
  private directionVerdicts = new Map<string, DirectionVerdictValue>();
  /** The key computed by cacheKey, kept in fields to avoid an allocation per lookup. */
  private keySrc = 0;
  private keyDst = 0;
  private keyProfile = 0;
  private keyFlow = 0;
  private readonly verdicts = new VerdictTable<Verdict>();
  private verdictCount = 0;
  private hits = 0;
  private misses = 0;
  private internalErrors = 0;

  constructor(
    cluster: ClusterModel,
    policies: CompiledPolicy[],
    selectorPeers: SelectorPeer[],
    ipBlocks: IpBlockPeer[],
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
    for (const b of ipBlocks) {
      this.trie.addInclude(b.cidr, b.entryId);
      for (const e of b.except) this.trie.addExclude(e, b.entryId);
    }
    for (const ns of cluster.namespaces ?? []) this.nsLabels.set(ns.name, ns.labels);
    for (const n of cluster.nodes ?? [])
      for (const a of n.addresses) {
        const list = this.nodesByAddress.get(a);
        if (!list) this.nodesByAddress.set(a, [n.name]);
        else if (!list.includes(n.name)) list.push(n.name);
      }
  }

  // ---- identities and the selector cache -------------------------------------------------------

  private namespaceLabels(ns: string): Labels {
    return this.nsLabels.get(ns) ?? { 'kubernetes.io/metadata.name': ns };
  }

  private identityOf(pod: PodModel): PodInfo {
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

  private selectorPeerMatches(peer: SelectorPeer, id: Identity): boolean {
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

  private subjectPolicies(id: Identity): { ingress: CompiledPolicy[]; egress: CompiledPolicy[] } {
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

  private tierSubjects(id: Identity): TierSubjects {
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

  // ---- direct evaluation --------------------------------------------------------------------------

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

  private resolveEnd(ref: FlowEndpointRef): End {
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
  private nodeLocal(
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

  private peerMatches(peer: Peer, end: End): boolean {
    if (peer.kind === 'selector') {
      return end.identity !== undefined && this.selectorPeerMatches(peer, end.identity);
    }
    if (!end.ip) return false;
    if (end.role === ROLE_POD && !this.options.ipBlockMatchesPods) return false;
    if (!cidrContains(peer.cidr, end.ip)) return false;
    for (const e of peer.except) if (cidrContains(e, end.ip)) return false;
    return true;
  }

  private portMatches(spec: PortSpec, q: FlowQuery, dst: End): boolean {
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

  private adminPeerMatches(peer: AdminPeer, end: End): boolean {
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

  private whyAdminRule(rule: AdminRule, peerEnd: End, dst: End, q: FlowQuery): string {
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

  private decide(
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

  // ---- the verdict cache --------------------------------------------------------------------------

  private ipClassOf(ip: string): number {
    let c = this.ipClassByIp.get(ip);
    if (c !== undefined) return c;
    const parsed = parseIp(ip);
    const key = parsed ? this.trie.lookup(parsed).join(',') : '';
    c = this.ipClassIds.get(key);
    if (c === undefined) {
      c = this.ipClassIds.size;
      this.ipClassIds.set(key, c);
    }
    if (this.ipClassByIp.size >= MAX_IP_MEMO) this.ipClassByIp = new Map();
    this.ipClassByIp.set(ip, c);
    return c;
  }

  private endpointClass(role: Role, identity: number, ipClass: number): number {
    if (ipClass >= TWO_21) return -1;
    const k = (identity * 3 + role) * TWO_21 + ipClass;
    let c = this.endpointClasses.get(k);
    if (c === undefined) {
      c = this.endpointClasses.size;
      this.endpointClasses.set(k, c);
    }
    return c;
  }

  /**
   * The exact cache key, or undefined when the query is outside what the key can encode (then the
   * verdict is computed directly). Two queries with equal keys have equal direct verdicts because:
   * subject selection and selector peers read only (namespace, namespace labels, pod labels) = identity;
   * ipBlocks read only the set of ipBlock entries holding the address = ipBlock class (empty for pods
   * when ipBlockMatchesPods is false); named ports read only the destination's policy-named container
   * ports = profile; node-locality is a flag per direction; ports matter only for TCP/UDP/SCTP.
   */
  private cacheKey(q: FlowQuery): boolean {
    const proto = q.proto;
    if (!Number.isInteger(proto) || proto < 0 || proto > 255) return false;
    let port = 65536;
    if ((proto === 6 || proto === 17 || proto === 132) && q.port !== undefined) {
      if (!Number.isInteger(q.port) || q.port < 0 || q.port > 65535) return false;
      port = q.port;
    }
    const src = q.src;
    const dst = q.dst;
    let srcEp: number;
    let dstEp: number;
    let srcNodes: readonly string[] | undefined;
    let dstNodes: readonly string[] | undefined;
    let srcInfo: PodInfo | undefined;
    let dstInfo: PodInfo | undefined;
    const srcPod = src.pod;
    if (srcPod !== undefined) {
      srcInfo = this.identityOf(srcPod);
      srcEp = srcInfo.lastIp === src.ip ? srcInfo.lastEndpoint : this.podEndpoint(srcInfo, src.ip);
      srcNodes = srcInfo.lastIpNodes;
    } else {
      const o = this.otherEndpoint(src.ip);
      srcEp = o.endpoint;
      srcNodes = o.nodes;
    }
    const dstPod = dst.pod;
    if (dstPod !== undefined) {
      dstInfo = this.identityOf(dstPod);
      dstEp = dstInfo.lastIp === dst.ip ? dstInfo.lastEndpoint : this.podEndpoint(dstInfo, dst.ip);
      dstNodes = dstInfo.lastIpNodes;
    } else {
      const o = this.otherEndpoint(dst.ip);
      dstEp = o.endpoint;
      dstNodes = o.nodes;
    }
    if (srcEp < 0 || dstEp < 0) return false;
    let flags = 0;
    let profile = 0;
    if (
      srcInfo !== undefined &&
      srcInfo.role === ROLE_POD &&
      this.nodeLocal((srcPod as PodModel).nodeName, dst, dstNodes)
    )
      flags = 1;
    if (dstInfo !== undefined && dstInfo.role === ROLE_POD) {
      profile = dstInfo.profile;
      if (this.nodeLocal((dstPod as PodModel).nodeName, src, srcNodes)) flags |= 2;
    }
    if (isSamePod(src, dst)) flags |= 4;
    if (profile >= 2 ** 27) return false;
    this.keySrc = srcEp;
    this.keyDst = dstEp;
    this.keyProfile = profile * 8 + flags;
    this.keyFlow = proto * 65537 + port;
    return true;
  }

  private otherEndpoint(ip: string): OtherEndpoint {
    let o = this.otherEndpoints.get(ip);
    if (o === undefined) {
      o = {
        endpoint: this.endpointClass(ROLE_OTHER, 0, this.ipClassOf(ip)),
        nodes: this.nodesByAddress.get(ip),
      };
      if (this.otherEndpoints.size >= MAX_IP_MEMO) this.otherEndpoints = new Map();
      this.otherEndpoints.set(ip, o);
    }
    return o;
  }

  private podEndpoint(info: PodInfo, ip: string): number {
    let ep: number;
    if (info.role === ROLE_POD) {
      const ipClass = this.podsNeedIpClass ? this.ipClassOf(ip) : 0;
      ep = this.endpointClass(ROLE_POD, info.identity.id, ipClass);
    } else ep = this.endpointClass(ROLE_HOST, 0, this.ipClassOf(ip));
    if (ep < 0 || ep >= 2 ** 31) return -1;
    info.lastIp = ip;
    info.lastEndpoint = ep;
    info.lastIpNodes = this.nodesByAddress.get(ip);
    return ep;
  }

  /**
   * Equal direction verdicts are shared between cached verdicts (they are frozen): most flows' sides
   * are one of a few non-isolated forms, and isolated sides repeat per (policies, rules) combination.
   */
  private internDirection(d: DirectionVerdictValue): DirectionVerdictValue {
    if (!d.isolated && d.rules.length === 0) {
      const shared = UNISOLATED[d.reason];
      if (shared && d.allowed) return shared;
    }
    let k = `${d.allowed ? 1 : 0}${d.reason}|${d.isolatedBy.join(' ')}|`;
    for (const r of d.rules) k += `${r.direction} ${r.kind ?? ''} ${r.policy} ${r.rule} ${r.action ?? ''},`;
    const found = this.directionVerdicts.get(k);
    if (found) return found;
    this.directionVerdicts.set(k, deepFreeze(d));
    return d;
  }

  evaluate(q: FlowQuery): Verdict {
    try {
      if (!this.cacheKey(q)) return deepFreeze(this.decide(q, false).verdict);
      const a = this.keySrc;
      const b = this.keyDst;
      const c = this.keyProfile;
      const e = this.keyFlow;
      const hit = this.verdicts.get(a, b, c, e);
      if (hit !== undefined) {
        this.hits++;
        return hit;
      }
      this.misses++;
      const d = this.decide(q, false).verdict;
      if (this.verdictCount >= MAX_VERDICTS) {
        this.verdicts.clear();
        this.directionVerdicts = new Map();
        this.verdictCount = 0;
      }
      const v = Object.freeze({
        allowed: d.allowed,
        result: d.result,
        egress: this.internDirection(d.egress),
        ingress: this.internDirection(d.ingress),
      });
      this.verdicts.set(a, b, c, e, v);
      this.verdictCount++;
      return v;
    } catch (err) {
      return this.failure(err);
    }
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
  private failure(err: unknown): Verdict {
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

  stats(): PolicyIndexStats {
    return {
      policies: this.policies.length + this.adminPolicies.length + this.baselinePolicies.length,
      identities: this.identities.length,
      ipClasses: this.ipClassIds.size,
      profiles: this.profileIds.size,
      verdictsCached: this.verdictCount,
      hits: this.hits,
      misses: this.misses,
      internalErrors: this.internalErrors,
    };
  }

  // ---- explanations -------------------------------------------------------------------------------

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

  private whyRule(rule: CompiledRule, peerEnd: End, dst: End, q: FlowQuery, matched: boolean): string {
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

/**
 * Validates and compiles the cluster's NetworkPolicies. Invalid policies are rejected whole with an
 * issue each (object `namespace/name`, field path); the rest are compiled. Policies are ordered by
 * `namespace/name`, so verdicts do not depend on the order of the input.
 */
export function compilePolicyIndex(cluster: ClusterModel, options?: Partial<PolicyOptions>): CompileResult {
  return new PolicyCompiler().compile(cluster, options);
}

export interface PolicyCompilerStats {
  /** NetworkPolicy objects validated and lowered. */
  parsed: number;
  /** NetworkPolicy objects taken as compiled before (the same object, unchanged). */
  reused: number;
  /** Times the registry was started afresh because it had grown well beyond what is in use. */
  resets: number;
}

/** Past this many registry entries (and twice the live ones) the next compile starts afresh. */
const REGISTRY_SLACK = 1024;

/**
 * Compiles a cluster whose policies change a few at a time (a watched cluster): a NetworkPolicy object
 * seen before (the same object: the timeline keeps one per version of a policy) is not validated and
 * lowered again, and selector peers and ipBlocks keep their ids in one registry, so a policy edit costs
 * the edited policy and the index around it, not every policy. Compiled policies are immutable, and a
 * registry id never changes meaning, so indexes compiled earlier stay valid beside the new one.
 */
export class PolicyCompiler {
  private reg = newRegistry();
  private compiled = new WeakMap<object, { policy: CompiledPolicy; warnings: InputIssue[] }>();
  /** Registry entries after the last fresh start: what the policies in force needed then. */
  private baseline = 0;
  readonly stats: PolicyCompilerStats = { parsed: 0, reused: 0, resets: 0 };

  /** `registrySlack`: registry entries tolerated before a fresh start (tests set it low to force them). */
  constructor(private readonly registrySlack = REGISTRY_SLACK) {}

  compile(cluster: ClusterModel, options?: Partial<PolicyOptions>): CompileResult {
    const opts: PolicyOptions = { ...DEFAULT_POLICY_OPTIONS };
    if (options?.ipBlockMatchesPods !== undefined) opts.ipBlockMatchesPods = options.ipBlockMatchesPods;
    if (options?.hostNetwork !== undefined) opts.hostNetwork = options.hostNetwork;
    if (this.registrySize() > Math.max(this.registrySlack, 2 * this.baseline)) {
      // Edited and deleted policies leave their selectors behind; start afresh now and then.
      this.reg = newRegistry();
      this.compiled = new WeakMap();
      this.baseline = 0;
      this.stats.resets++;
    }
    const fresh = this.registrySize() === 0;
    const reg = this.reg;
    const issues: InputIssue[] = [];
    const accepted = new Map<string, CompiledPolicy>();
    (cluster.networkPolicies ?? []).forEach((raw, i) => {
      let r = typeof raw === 'object' && raw !== null ? this.compiled.get(raw) : undefined;
      if (r) this.stats.reused++;
      else {
        this.stats.parsed++;
        const parsed = compilePolicy(raw, i, reg);
        if (!parsed.ok) {
          issues.push(...parsed.issues);
          return;
        }
        r = { policy: parsed.policy, warnings: parsed.warnings };
        if (typeof raw === 'object' && raw !== null) this.compiled.set(raw, r);
      }
      issues.push(...r.warnings);
      if (accepted.has(r.policy.key)) {
        issues.push(
          issue(
            'POLICY_DUPLICATE',
            'a policy with this namespace/name came earlier; this one is ignored',
            { object: r.policy.key, record: i },
            'warning',
          ),
        );
        return;
      }
      accepted.set(r.policy.key, r.policy);
    });
    const policies = [...accepted.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const tiers = compileAdminPolicies(cluster, reg);
    issues.push(...tiers.issues);
    if (fresh) this.baseline = this.registrySize();
    const index = new PolicyIndex(cluster, policies, reg.selectorPeers, reg.ipBlocks, opts, tiers);
    return { index, issues };
  }

  private registrySize(): number {
    return this.reg.selectorPeers.length + this.reg.ipBlocks.length;
  }
}

import type { DirectionVerdictValue, Verdict } from '../../schema/verdict.js';
import type { ClusterModel, PodModel } from '../inventory/model.js';
import type { AdminCompileResult } from './admin.js';
import type { CompiledPolicy, IpBlockPeer, SelectorPeer } from './compile.js';
import { isSamePod, MAX_IP_MEMO } from './evaluation.js';
import { PolicyExplainer } from './explanation.js';
import { type PodInfo, ROLE_HOST, ROLE_OTHER, ROLE_POD, type Role } from './identities.js';
import { CidrTrie, parseIp } from './ip.js';
import type { FlowQuery, PolicyIndexApi, PolicyOptions } from './types.js';
import { VerdictTable } from './verdict-table.js';

/**
 * The NetworkPolicy engine's index: the direct evaluation (evaluation.ts) behind an exact verdict
 * cache (the counterpart of Cilium's policy cache in pkg/policy/distillery.go). The key holds
 * everything a verdict depends on, reduced to equivalence classes (identity, ipBlock class, named-port
 * profile, node-locality); docs/policy-engine.md argues why. Identities and the selector cache are in
 * identities.ts, explanations in explanation.ts, the compiler in compiler.ts.
 */

const MAX_VERDICTS = 1 << 21;
const TWO_21 = 2 ** 21;

interface OtherEndpoint {
  endpoint: number;
  nodes?: readonly string[];
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

export class PolicyIndex extends PolicyExplainer implements PolicyIndexApi {
  private readonly trie = new CidrTrie();
  private readonly ipClassIds = new Map<string, number>([['', 0]]);
  private ipClassByIp = new Map<string, number>();
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

  constructor(
    cluster: ClusterModel,
    policies: CompiledPolicy[],
    selectorPeers: SelectorPeer[],
    ipBlocks: IpBlockPeer[],
    options: PolicyOptions,
    tiers?: Pick<AdminCompileResult, 'admin' | 'baseline' | 'namedPorts' | 'hasAddressPeers'>,
  ) {
    super(cluster, policies, selectorPeers, options, tiers);
    for (const b of ipBlocks) {
      this.trie.addInclude(b.cidr, b.entryId);
      for (const e of b.except) this.trie.addExclude(e, b.entryId);
    }
  }

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
}

import { TupleMap } from '../../lib/tuple-map.js';
import {
  type FlowEndpoint,
  type FlowRecord,
  type ProtocolValue,
  protocolNumber,
} from '../../schema/flow-record.js';
import type {
  DirectionBasisValue,
  DirectionVerdictValue,
  RuleRefValue,
  Verdict,
} from '../../schema/verdict.js';
import type { Inventory, Resolution } from '../inventory/index.js';
import type { L4Protocol, PodModel, ServiceModel } from '../inventory/model.js';
import type { Explanation, FlowEndpointRef, FlowQuery, PolicyIndexApi } from '../policy/types.js';
import { type Oriented, observedDirection, orient, reversed } from './direction.js';
import { L4 } from './l4.js';

/**
 * The judge turns an observed flow into the question the policy engine answers, and the engine's answer
 * into the `check` output record. Its own business is what the engine deliberately leaves out: who the
 * addresses belong to, address translation, and Services (a ClusterIP is not a pod; the pods behind it
 * are). Rules, documented in docs/check.md:
 * - only the initiating direction (src → dst) is judged; replies ride on the connection;
 * - `nat.dst` (DNAT revealed by conntrack) is the real destination; the ClusterIP stays as `dst.service`;
 * - `nat.src` (SNAT) is what the destination sees: ingress is judged with it, egress with the original
 *   source, because the source pod's egress policy applies before masquerading;
 * - a ClusterIP without NAT information is judged against every ready backend (service port mapped to
 *   the backend's port); the result is ambiguous when the backends disagree;
 * - a ClusterIP with no backend for the port reaches no pod: only the source side can be judged, so
 *   the flow is judged against the ClusterIP as a plain address and marked with a `note`.
 */

export type EndpointKind = 'pod' | 'service' | 'node' | 'external';

export interface EndpointInfo {
  /** `namespace/name` of the pod (for dst with NAT: the pod the translated address belongs to). */
  pod?: string;
  /** DNS-style name: pod A record, service name, or node name. */
  name?: string;
  kind: EndpointKind;
  /** Node name, when the address is a node's. */
  node?: string;
  /** `namespace/name` of the Service whose ClusterIP the flow addressed. */
  service?: string;
  /** DNS name of that Service. */
  serviceName?: string;
  /** The pod is a hostNetwork pod, identified by its container port on the node's address. */
  hostNetwork?: boolean;
  /** For `external`: the node whose podCIDR holds the address (no pod held it in the snapshot). */
  podCidrOf?: string;
}

export type JudgeNote = 'service-without-endpoints' | 'service-port-not-exposed';

export type CheckRecord = Omit<FlowRecord, 'src' | 'dst'> & {
  src: FlowEndpoint & EndpointInfo;
  dst: FlowEndpoint & EndpointInfo;
  verdict: Verdict;
  /** Set when the flow addressed a Service that sends this port to no pod. */
  note?: JudgeNote;
};

/** One destination the flow may have reached, with the port it arrived on. */
export interface JudgeTarget {
  dst: FlowEndpointRef;
  port?: number;
  /** `namespace/name` of the pod, or the address when no pod is known. */
  label: string;
}

/** The engine's questions for one flow: one per possible destination. */
export interface FlowPlan {
  proto: number;
  /** Source as its own egress policies see it. */
  src: FlowEndpointRef;
  /** Source as the destination's ingress policies see it (differs under SNAT). */
  ingressSrc: FlowEndpointRef;
  targets: JudgeTarget[];
  /** The targets are the backends of this Service. */
  service?: ServiceModel;
  note?: JudgeNote;
  srcInfo: EndpointInfo;
  dstInfo: EndpointInfo;
}

/** The Service-port protocol of a flow, if it has one (Services only forward TCP, UDP and SCTP). */
function l4Name(proto: ProtocolValue): L4Protocol | undefined {
  return L4[proto];
}

function podRef(p: PodModel): string {
  return `${p.namespace}/${p.name}`;
}

/**
 * The FlowEndpointRef for an address. A node address shared by hostNetwork pods names one of them only
 * when the flow's destination port picks exactly one (a pod listening there); the source side of such
 * an address stays the node, since a source port tells nothing.
 */
function endpointRef(r: Resolution, port: number | undefined, l4: L4Protocol | undefined): FlowEndpointRef {
  const ref: FlowEndpointRef = { ip: r.ip };
  if (r.node) ref.node = r.node;
  if (r.pod) ref.pod = r.pod;
  else if (r.hostNetworkPods && port !== undefined && l4) {
    const listening = r.hostNetworkPods.filter((p) =>
      p.ports.some((cp) => cp.containerPort === port && cp.protocol === l4),
    );
    if (listening.length === 1) ref.pod = listening[0]!;
  }
  return ref;
}

function describeEndpoint(inventory: Inventory, r: Resolution, ref: FlowEndpointRef): EndpointInfo {
  if (ref.pod) {
    const info: EndpointInfo = { kind: 'pod', pod: podRef(ref.pod) };
    if (ref.pod.hostNetwork) {
      info.hostNetwork = true;
      if (r.node) info.node = r.node.name;
      info.name = r.node?.name ?? ref.ip;
    } else {
      info.name = inventory.podDnsName(r.ip, ref.pod.namespace);
    }
    return info;
  }
  if (r.service) {
    return {
      kind: 'service',
      service: `${r.service.namespace}/${r.service.name}`,
      name: inventory.serviceDnsName(r.service),
    };
  }
  if (r.node) return { kind: 'node', node: r.node.name, name: r.node.name };
  if (r.podCidrOf) return { kind: 'external', podCidrOf: r.podCidrOf.name };
  return { kind: 'external' };
}

/** Works out which questions to ask the engine about a flow; no policy is evaluated here. */
export function planFlow(
  inventory: Inventory,
  flow: Pick<FlowRecord, 'proto' | 'src' | 'dst' | 'nat' | 'start'>,
  serviceOverride?: ServiceModel,
): FlowPlan {
  const proto = protocolNumber(flow.proto);
  const l4 = l4Name(flow.proto);
  const at = flow.start;
  const srcRes = inventory.resolve(flow.src.ip, at);
  const src = endpointRef(srcRes, undefined, l4);
  const srcInfo = describeEndpoint(inventory, srcRes, src);
  let ingressSrc = src;
  const natSrc = flow.nat?.src;
  if (natSrc && natSrc.ip !== flow.src.ip) {
    ingressSrc = endpointRef(inventory.resolve(natSrc.ip, at), undefined, l4);
  }
  const dstRes = inventory.resolve(flow.dst.ip, at);
  const natDst = flow.nat?.dst;
  if (natDst) {
    const port = natDst.port ?? flow.dst.port;
    const realRes = inventory.resolve(natDst.ip, at);
    const dst = endpointRef(realRes, port, l4);
    const dstInfo = describeEndpoint(inventory, realRes, dst);
    if (dstRes.service) {
      dstInfo.service = `${dstRes.service.namespace}/${dstRes.service.name}`;
      dstInfo.serviceName = inventory.serviceDnsName(dstRes.service);
    }
    const plan: FlowPlan = {
      proto,
      src,
      ingressSrc,
      targets: [{ dst, port, label: dst.pod ? podRef(dst.pod) : dst.ip }],
      srcInfo,
      dstInfo,
    };
    return plan;
  }
  const service = serviceOverride ?? (dstRes.pod ? undefined : dstRes.service);
  if (service) {
    const dstInfo: EndpointInfo = {
      kind: 'service',
      service: `${service.namespace}/${service.name}`,
      name: inventory.serviceDnsName(service),
    };
    const svcPort =
      l4 && flow.dst.port !== undefined ? inventory.servicePort(service, flow.dst.port, l4) : undefined;
    const family = inventory.canonicalIp(flow.dst.ip).includes(':') ? 6 : 4;
    const backends = svcPort ? inventory.backends(service, svcPort, family, at) : [];
    if (backends.length > 0) {
      const targets = backends.map((b): JudgeTarget => {
        const res = inventory.resolve(b.ip, at);
        const dst: FlowEndpointRef = { ip: b.ip };
        if (res.node) dst.node = res.node;
        const pod = b.pod ?? res.pod;
        if (pod) dst.pod = pod;
        const port = b.port ?? (typeof svcPort!.targetPort === 'number' ? svcPort!.targetPort : undefined);
        return { dst, port, label: b.podRef ?? b.ip };
      });
      return { proto, src, ingressSrc, targets, service, srcInfo, dstInfo };
    }
    // No pod can receive this: judge what can be judged (the source's egress) against the bare address.
    const dst: FlowEndpointRef = { ip: dstRes.ip };
    return {
      proto,
      src,
      ingressSrc,
      targets: [{ dst, port: flow.dst.port, label: dstRes.ip }],
      service,
      note: svcPort ? 'service-without-endpoints' : 'service-port-not-exposed',
      srcInfo,
      dstInfo,
    };
  }
  const dst = endpointRef(dstRes, flow.dst.port, l4);
  return {
    proto,
    src,
    ingressSrc,
    targets: [{ dst, port: flow.dst.port, label: dst.pod ? podRef(dst.pod) : dst.ip }],
    srcInfo,
    dstInfo: describeEndpoint(inventory, dstRes, dst),
  };
}

function query(plan: FlowPlan, target: JudgeTarget, src: FlowEndpointRef): FlowQuery {
  const q: FlowQuery = { src, dst: target.dst, proto: plan.proto };
  if (target.port !== undefined) q.port = target.port;
  return q;
}

function resultOf(allowed: boolean): Verdict['result'] {
  return allowed ? 'allowed' : 'denied';
}

/** The verdict for one target, egress judged for the original source and ingress for the translated one. */
function judgeTarget(plan: FlowPlan, target: JudgeTarget, index: PolicyIndexApi): Verdict {
  const v = index.evaluate(query(plan, target, plan.src));
  if (plan.ingressSrc === plan.src) return v;
  const seen = index.evaluate(query(plan, target, plan.ingressSrc));
  const allowed = v.egress.allowed && seen.ingress.allowed;
  return { allowed, result: resultOf(allowed), egress: v.egress, ingress: seen.ingress };
}

function ruleKey(r: RuleRefValue): string {
  return `${r.kind ?? ''}|${r.policy}|${r.direction}|${r.rule}|${r.action ?? ''}`;
}

/**
 * One direction across several backends: allowed only when every backend allows; rules and isolating
 * policies are the union; the reason is that of the first backend that denies (else of the first).
 */
function mergeDirections(list: DirectionVerdictValue[]): DirectionVerdictValue {
  const rules: RuleRefValue[] = [];
  const ruleKeys = new Set<string>();
  const isolatedBy = new Set<string>();
  for (const d of list) {
    for (const r of d.rules) {
      const k = ruleKey(r);
      if (!ruleKeys.has(k)) {
        ruleKeys.add(k);
        rules.push(r);
      }
    }
    for (const p of d.isolatedBy) isolatedBy.add(p);
  }
  const denying = list.find((d) => !d.allowed);
  return {
    allowed: denying === undefined,
    isolated: list.some((d) => d.isolated),
    rules,
    isolatedBy: [...isolatedBy],
    reason: (denying ?? list[0]!).reason,
  };
}

/** The verdict for a plan: a single target's, or the combination over a Service's backends. */
function judgePlan(plan: FlowPlan, index: PolicyIndexApi): Verdict {
  if (!plan.service) return judgeTarget(plan, plan.targets[0]!, index);
  if (plan.note) {
    // No backend: the verdict is the source side's alone, and says so with an empty backend list.
    return { ...judgeTarget(plan, plan.targets[0]!, index), backends: [] };
  }
  const verdicts = plan.targets.map((t) => judgeTarget(plan, t, index));
  const allowedCount = verdicts.filter((v) => v.allowed).length;
  const result: Verdict['result'] =
    allowedCount === verdicts.length ? 'allowed' : allowedCount === 0 ? 'denied' : 'ambiguous';
  return {
    allowed: result === 'allowed',
    result,
    egress: mergeDirections(verdicts.map((v) => v.egress)),
    ingress: mergeDirections(verdicts.map((v) => v.ingress)),
    backends: plan.targets.map((t, i) => ({ pod: t.label, ip: t.dst.ip, allowed: verdicts[i]!.allowed })),
  };
}

/** The `check` output record for one flow. */
export interface JudgeOptions {
  /** Remember judgements per conversation (default true). Off, every flow is planned and judged afresh. */
  cache?: boolean;
}

interface Judged {
  srcInfo: EndpointInfo;
  dstInfo: EndpointInfo;
  verdict: Verdict;
  note?: JudgeNote;
  replay: ReplayQuery;
}

/**
 * The one engine question that decided a flow, or why there was more than one: what-if replay
 * (whatif/) asks it again under other policies. Kept under a symbol, so it never travels in JSON.
 */
export type ReplayQuery = { query: FlowQuery } | { skip: ReplaySkipReason };
export type ReplaySkipReason = 'service-backends' | 'snat' | 'direction-guessed';
export const REPLAY_QUERY: unique symbol = Symbol('replay query');

/** The decisive engine question of a judged record (undefined for records not made by judgeFlow). */
export function replayQueryOf(record: CheckRecord): ReplayQuery | undefined {
  return (record as { [REPLAY_QUERY]?: ReplayQuery })[REPLAY_QUERY];
}

function replayOf(plan: FlowPlan): ReplayQuery {
  if (plan.service && !plan.note) return { skip: 'service-backends' };
  if (plan.ingressSrc !== plan.src) return { skip: 'snat' };
  return { query: query(plan, plan.targets[0]!, plan.src) };
}

/**
 * Judgements per (inventory, index), by what decides them: addresses, destination port, protocol and
 * translation; never the source port or the counters. Observed traffic repeats the same conversations,
 * and naming plus Service expansion cost more than the engine's own cached verdict. An inventory that
 * answers differently by time (resolve(ip, atMs)) must add its version to the key.
 */
const judgedCache = new WeakMap<PolicyIndexApi, WeakMap<Inventory, JudgedCache>>();
const JUDGED_CACHE_LIMIT = 200_000;

/** Keyed by the flow's own values (no key text built per flow); emptied whole at the limit. */
class JudgedCache {
  private map = new TupleMap<Judged>();
  get(key: readonly unknown[]): Judged | undefined {
    return this.map.get(key);
  }
  set(key: readonly unknown[], judged: Judged): void {
    if (this.map.size >= JUDGED_CACHE_LIMIT) this.map = new TupleMap();
    this.map.set(key, judged);
  }
}

function cacheFor(inventory: Inventory, index: PolicyIndexApi): JudgedCache {
  let byInventory = judgedCache.get(index);
  if (!byInventory) {
    byInventory = new WeakMap();
    judgedCache.set(index, byInventory);
  }
  let cache = byInventory.get(inventory);
  if (!cache) {
    cache = new JudgedCache();
    byInventory.set(inventory, cache);
  }
  return cache;
}

function judgedKey(flow: FlowRecord): unknown[] {
  const n = flow.nat;
  const nat = n ? `${n.src?.ip ?? ''}|${n.dst?.ip ?? ''}|${n.dst?.port ?? ''}` : '';
  return [flow.proto, flow.dst.port ?? -1, flow.dst.ip, flow.src.ip, nat];
}

/**
 * The `check` output record for one flow. The verdict and the endpoint descriptions may be shared
 * between records of the same conversation: treat them as read-only.
 */
export function judgeFlow(
  observed: FlowRecord,
  inventory: Inventory,
  index: PolicyIndexApi,
  options: JudgeOptions = {},
): CheckRecord {
  const cache = options.cache === false ? undefined : cacheFor(inventory, index);
  const oriented = observedDirection(observed) ? undefined : orient(observed, inventory);
  const flow = oriented ? oriented.flow : observed;
  const judged = judgeOriented(flow, inventory, index, cache);
  // Object.assign, not `{ ...flow, verdict }`: spread clones get maps outside V8's transition tree,
  // and each property added after leaves the fast path. It also beat a for-in copy on Node 24
  // (bench/embedded.ts, docs/pipeline.md "Embedded throughput").
  const out = Object.assign({}, flow) as unknown as CheckRecord;
  out.src = Object.assign({}, flow.src, judged.srcInfo);
  out.dst = Object.assign({}, flow.dst, judged.dstInfo);
  out.verdict = judged.verdict;
  if (judged.note) out.note = judged.note;
  let replay = judged.replay;
  if (oriented) {
    out.verdict = withDirection(judged.verdict, oriented, inventory, index, cache);
    if (oriented.basis === 'guessed') replay = { skip: 'direction-guessed' };
  }
  (out as { [REPLAY_QUERY]?: ReplayQuery })[REPLAY_QUERY] = replay;
  return out;
}

function judgeOriented(
  flow: FlowRecord,
  inventory: Inventory,
  index: PolicyIndexApi,
  cache: JudgedCache | undefined,
): Judged {
  const key = cache ? judgedKey(flow) : [];
  let judged = cache?.get(key);
  if (!judged) {
    const plan = planFlow(inventory, flow);
    judged = {
      srcInfo: plan.srcInfo,
      dstInfo: plan.dstInfo,
      verdict: judgePlan(plan, index),
      replay: replayOf(plan),
    };
    if (plan.note) judged.note = plan.note;
    cache?.set(key, judged);
  }
  return judged;
}

/**
 * The verdict of a flow whose direction the collector did not see. Settled by a declared port, it is
 * the verdict of that direction. Still a guess, the flow is judged both ways: when the results agree
 * the guess does not matter; when they differ the result is `ambiguous`, never a plain violation (nor
 * a plain allow) resting on a guess.
 */
function withDirection(
  verdict: Verdict,
  oriented: Oriented,
  inventory: Inventory,
  index: PolicyIndexApi,
  cache: JudgedCache | undefined,
): Verdict {
  if (oriented.basis === 'declared-port')
    return { ...verdict, direction: { basis: 'declared-port', swapped: oriented.swapped } };
  const other = judgeOriented(reversed(oriented.flow), inventory, index, cache).verdict;
  const reverse = other.result;
  const direction: DirectionBasisValue = { basis: 'guessed', reverse };
  const reverseRules = [...other.egress.rules, ...other.ingress.rules];
  if (reverseRules.length > 0) direction.reverseRules = reverseRules;
  const out: Verdict = { ...verdict, direction };
  if (reverse !== verdict.result) {
    out.allowed = false;
    out.result = 'ambiguous';
  }
  return out;
}

export interface TargetExplanation {
  target: string;
  ip: string;
  port?: number;
  explanation: Explanation;
}

export interface FlowExplanation {
  verdict: Verdict;
  src: EndpointInfo & { ip: string };
  dst: EndpointInfo & { ip: string; port?: number };
  proto: number;
  note?: JudgeNote;
  /** One explanation per destination the flow may reach (several for a Service). */
  targets: TargetExplanation[];
}

/** The structured explanation behind `explain`: the combined verdict and the engine's reasoning per target. */
export function explainFlow(
  flow: Pick<FlowRecord, 'proto' | 'src' | 'dst' | 'nat' | 'start'>,
  inventory: Inventory,
  index: PolicyIndexApi,
  service?: ServiceModel,
): FlowExplanation {
  const plan = planFlow(inventory, flow, service);
  const verdict = judgePlan(plan, index);
  const dst: FlowExplanation['dst'] = { ip: flow.dst.ip, ...plan.dstInfo };
  if (flow.dst.port !== undefined) dst.port = flow.dst.port;
  const out: FlowExplanation = {
    verdict,
    src: { ip: flow.src.ip, ...plan.srcInfo },
    dst,
    proto: plan.proto,
    targets: plan.targets.map((t) => {
      const te: TargetExplanation = {
        target: t.label,
        ip: t.dst.ip,
        explanation: index.explain(query(plan, t, plan.src)),
      };
      if (t.port !== undefined) te.port = t.port;
      return te;
    }),
  };
  if (plan.note) out.note = plan.note;
  return out;
}

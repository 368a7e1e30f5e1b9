import type { FlowSink } from '../collectors/sink.js';
import type { FlowRecord } from '../schema/flow-record.js';
import type { ReplayEndpoint, ReplayFact, ReplayNode, ReplayPod } from '../schema/replay.js';
import type { RuleRefValue, Verdict } from '../schema/verdict.js';
import type { JudgedFlow, JudgedSink } from '../sinks/types.js';
import { type Classification, classify } from './classify.js';
import type { ClusterView } from './cluster-view.js';
import { coverageOf } from './coverage.js';
import type { Inventory } from './inventory/index.js';
import { addNamedPorts, type NodeModel, type PodModel } from './inventory/model.js';
import { type CheckRecord, judgeFlow, replayQueryOf } from './judge/index.js';
import type { FlowEndpointRef } from './policy/types.js';
import type { FlowFacts } from './store/facts.js';
import type { StoredFlow } from './store/index.js';
import { workloadOf } from './workload.js';

/**
 * The processor stage: judges each flow against the cluster as it was and classifies it. It is a
 * FlowSink, so a collector can feed it directly (embedded mode) or a Kafka consumer can (scale-out);
 * what it produces goes to a JudgedSink: the store's recorder, or a Kafka verdict topic.
 */

export type { JudgedFlow, JudgedSink } from '../sinks/types.js';
export { type ClusterView, StaticClusterView } from './cluster-view.js';

export interface ProcessorStats {
  flows: number;
  allowed: number;
  deniedButObserved: number;
  deniedAttempts: number;
  ambiguous: number;
  /** Flows whose direction the collector did not see and the cluster's declared ports settled. */
  directionFromCluster: number;
  /** Flows whose direction stayed a guess (docs/check.md, "Direction"). */
  directionGuessed: number;
  firstFlow?: number;
  lastFlow?: number;
}

export class FlowProcessor implements FlowSink {
  readonly stats: ProcessorStats = {
    flows: 0,
    allowed: 0,
    deniedButObserved: 0,
    deniedAttempts: 0,
    ambiguous: 0,
    directionFromCluster: 0,
    directionGuessed: 0,
  };

  constructor(
    private readonly cluster: ClusterView,
    private readonly out: JudgedSink,
  ) {}

  /** Days whose isolation coverage this processor has attached to a flow (the store keeps the first). */
  private readonly coveredDays = new Set<number>();

  judge(flow: FlowRecord): JudgedFlow {
    const { inventory, index } = this.cluster.at(flow.start);
    const record = judgeFlow(flow, inventory, index);
    const classification = classify(flow.state, record.verdict);
    const stored = toStoredFlow(record, classification, inventory);
    this.addReplay(stored.facts!, record, inventory);
    const day = Math.floor(flow.start / DAY) * DAY;
    if (!this.coveredDays.has(day)) {
      this.coveredDays.add(day);
      stored.facts!.coverage = coverageOf(inventory, index, flow.start);
    }
    return { record, classification, stored };
  }

  /** Replay identities per pod (and per node), made once: pods are immutable versions in the inventory. */
  private readonly replayPods = new WeakMap<PodModel, { nsLabels: unknown; pod: ReplayPod }>();
  private readonly replayNodes = new WeakMap<NodeModel, ReplayNode>();

  /**
   * Replay facts per engine question, unanswered and answered. The judge hands every flow of a
   * conversation the same question object, made against one inventory version, so the facts made
   * from it once hold for all of them. They are shared between stored flows, and frozen: the store
   * may remember what it derived from one by the object (processor/store/replay.ts).
   */
  private readonly replayFacts = new WeakMap<object, [ReplayFact | undefined, ReplayFact | undefined]>();

  private addReplay(facts: FlowFacts, record: CheckRecord, inventory: Inventory): void {
    const r = replayQueryOf(record);
    if (!r) return;
    if ('skip' in r) {
      facts.replaySkip = r.skip;
      return;
    }
    const answered = record.state === 'established' || record.state === 'closed';
    let known = this.replayFacts.get(r);
    if (!known) {
      known = [undefined, undefined];
      this.replayFacts.set(r, known);
    }
    const slot = answered ? 1 : 0;
    let fact = known[slot];
    if (!fact) {
      const q = r.query;
      fact = frozen({
        src: this.replayEndpoint(q.src, inventory),
        dst: this.replayEndpoint(q.dst, inventory),
        proto: q.proto,
        port: q.port ?? -1,
        answered,
      });
      known[slot] = fact;
    }
    facts.replay = fact;
  }

  private replayEndpoint(ref: FlowEndpointRef, inventory: Inventory): ReplayEndpoint {
    const e: ReplayEndpoint = { ip: ref.ip };
    if (ref.pod) {
      const nsLabels = inventory.namespace(ref.pod.namespace)?.labels ?? {
        'kubernetes.io/metadata.name': ref.pod.namespace,
      };
      let cached = this.replayPods.get(ref.pod);
      if (!cached || cached.nsLabels !== nsLabels) {
        const p = ref.pod;
        const namedPorts: ReplayPod['namedPorts'] = [];
        addNamedPorts(namedPorts, p.ports);
        cached = {
          nsLabels,
          pod: frozen({
            namespace: p.namespace,
            workload: podWorkload(p),
            labels: { ...p.labels },
            namespaceLabels: { ...nsLabels },
            namedPorts,
            hostNetwork: p.hostNetwork,
            ...(p.nodeName ? { nodeName: p.nodeName } : {}),
          }),
        };
        this.replayPods.set(ref.pod, cached);
      }
      e.pod = cached.pod;
    }
    if (ref.node) {
      let node = this.replayNodes.get(ref.node);
      if (!node) {
        const n = ref.node;
        node = frozen({
          name: n.name,
          labels: { ...(n.labels ?? {}) },
          addresses: [...n.addresses],
          podCIDRs: [...n.podCIDRs],
        });
        this.replayNodes.set(ref.node, node);
      }
      e.node = node;
    }
    return e;
  }

  write(flow: FlowRecord): void | Promise<void> {
    const judged = this.judge(flow);
    const s = this.stats;
    s.flows++;
    if (judged.classification === 'allowed') s.allowed++;
    else if (judged.classification === 'denied-but-observed') s.deniedButObserved++;
    else if (judged.classification === 'denied-attempt') s.deniedAttempts++;
    else s.ambiguous++;
    const direction = judged.record.verdict.direction;
    if (direction?.basis === 'declared-port') s.directionFromCluster++;
    else if (direction?.basis === 'guessed') s.directionGuessed++;
    s.firstFlow = s.firstFlow === undefined ? flow.start : Math.min(s.firstFlow, flow.start);
    s.lastFlow = s.lastFlow === undefined ? flow.end : Math.max(s.lastFlow, flow.end);
    return this.out.write(judged);
  }

  flush(): Promise<void> {
    return this.out.flush();
  }

  async close(): Promise<void> {
    await this.out.flush();
  }
}

const DAY = 86_400_000;

/** Freezes a value made of plain objects and arrays, and everything in it. */
function frozen<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) frozen(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Namespaces by `namespace/name`, and observers by source and file or interface: the same few
 * strings for every flow, made once, so the store's aggregation finds them already hashed.
 */
const podNamespaces = new Map<string, string>();
const observerNames = new Map<string, Map<string, string>>();
const NAMES_KEPT = 100_000;

function endpointNamespace(e: CheckRecord['src']): string {
  if (e.pod) {
    let ns = podNamespaces.get(e.pod);
    if (ns === undefined) {
      if (podNamespaces.size >= NAMES_KEPT) podNamespaces.clear();
      ns = e.pod.slice(0, e.pod.indexOf('/'));
      podNamespaces.set(e.pod, ns);
    }
    return ns;
  }
  if (e.kind === 'service') return '(service)';
  if (e.kind === 'node') return '(node)';
  return e.podCidrOf ? '(unattributed)' : '(external)';
}

function observerName(o: CheckRecord['observer']): string {
  const where = o.file || o.iface;
  if (!where) return o.source;
  let bySource = observerNames.get(o.source);
  if (!bySource) {
    if (observerNames.size >= NAMES_KEPT) observerNames.clear();
    bySource = new Map();
    observerNames.set(o.source, bySource);
  }
  let name = bySource.get(where);
  if (name === undefined) {
    if (bySource.size >= NAMES_KEPT) bySource.clear();
    name = `${o.source}:${where}`;
    bySource.set(where, name);
  }
  return name;
}

function podSide(d: Verdict['ingress']): boolean {
  return !d.isolated && d.reason !== 'not-a-pod' && d.reason !== 'host-network';
}

function factsOf(record: CheckRecord): FlowFacts {
  const v = record.verdict;
  const facts: FlowFacts = {
    srcNamespace: endpointNamespace(record.src),
    dstNamespace: endpointNamespace(record.dst),
    observer: observerName(record.observer),
    node: record.observer.node ?? '',
  };
  if (record.dst.kind === 'pod' && podSide(v.ingress)) facts.dstUnisolated = true;
  if (record.src.kind === 'pod' && podSide(v.egress)) facts.srcUnisolated = true;
  // Per flow: nothing is allocated for the common case of two attributed ends.
  addUnattributed(facts, record.src);
  addUnattributed(facts, record.dst);
  return facts;
}

function addUnattributed(facts: FlowFacts, e: CheckRecord['src']): void {
  if (e.kind !== 'external' || !e.podCidrOf) return;
  facts.unattributed ??= [];
  facts.unattributed.push({ ip: e.ip, node: e.podCidrOf });
}

function endpointWorkload(e: CheckRecord['src'], inventory: Inventory, at: number): string {
  if (e.pod) {
    const pod = inventory.pod(e.pod, at);
    if (pod) return podWorkload(pod);
    return e.pod;
  }
  if (e.kind === 'service' && e.service) return `${e.service} (service)`;
  if (e.kind === 'node' && e.node) return `node/${e.node}`;
  return e.ip;
}

/** Workloads per pod version: pods are immutable in the inventory, and the name rules are regexes. */
const workloads = new WeakMap<PodModel, string>();

function podWorkload(pod: PodModel): string {
  let w = workloads.get(pod);
  if (w === undefined) {
    w = workloadOf(pod);
    workloads.set(pod, w);
  }
  return w;
}

/**
 * The rules a verdict used, deduplicated, per verdict: the judge shares one verdict between the
 * flows of a conversation (read-only), so the list is made once and shared too.
 */
const verdictRules = new WeakMap<Verdict, RuleRefValue[]>();

function rulesOf(v: Verdict): RuleRefValue[] {
  let rules = verdictRules.get(v);
  if (!rules) {
    rules = dedupeRules([...v.egress.rules, ...v.ingress.rules, ...(v.direction?.reverseRules ?? [])]);
    verdictRules.set(v, rules);
  }
  return rules;
}

function toStoredFlow(record: CheckRecord, classification: Classification, inventory: Inventory): StoredFlow {
  const v = record.verdict;
  // With the DNAT known (conntrack), the destination is the pod behind the Service: its port, not the
  // Service's, so the node that saw the ClusterIP and the node that saw the pod store the same row.
  const port = (record.nat?.dst?.ip ? record.nat.dst.port : undefined) ?? record.dst.port ?? -1;
  return {
    start: record.start,
    end: record.end,
    proto: String(record.proto),
    port,
    srcWorkload: endpointWorkload(record.src, inventory, record.start),
    dstWorkload: endpointWorkload(record.dst, inventory, record.start),
    srcName: record.src.name ?? record.src.ip,
    dstName: record.dst.name ?? record.dst.ip,
    packets: record.packets.fwd + record.packets.rev,
    bytes: record.bytes.fwd + record.bytes.rev,
    result: record.verdict.result,
    classification,
    rules: rulesOf(v),
    evidence: record,
    directionGuessed: v.direction?.basis === 'guessed',
    facts: factsOf(record),
  };
}

function dedupeRules(rules: RuleRefValue[]): RuleRefValue[] {
  const seen = new Set<string>();
  const out: RuleRefValue[] = [];
  for (const r of rules) {
    const k = `${r.kind ?? ''}\u0000${r.policy}\u0000${r.direction}\u0000${r.rule}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(r);
  }
  return out;
}

import type { InputIssue } from '../lib/errors.js';
import { type Classification, classify } from '../processor/classify.js';
import type { ClusterModel, NamespaceModel, NodeModel, PodModel } from '../processor/inventory/model.js';
import { compilePolicyIndex } from '../processor/policy/compiler.js';
import type { FlowEndpointRef, PolicyIndexApi, PolicyOptions } from '../processor/policy/types.js';
import type { RecordedEdge, ReplayEndpoint, ReplayNode, ReplayPod } from '../schema/replay.js';
import type { Verdict } from '../schema/verdict.js';

/**
 * Replay: the recorded traffic judged again, by the same engine as `check`, under a set of policies.
 * Each recorded edge carries the engine's question as it was asked (who each end was: labels,
 * namespace labels, named ports, node), so the answer under the policies in force when it was
 * recorded is the recorded one, and under other policies is what they would have said.
 */

/** The policies replay judges with: raw objects, as a snapshot holds them. */
export interface PolicySet {
  networkPolicies: unknown[];
  clusterNetworkPolicies: unknown[];
}

export interface ReplayedEdge {
  verdict: Verdict;
  classification: Classification;
}

/**
 * Namespace labels live in the cluster, not the pod, for the engine: edges whose namespaces had
 * different labels (a namespace relabelled within the period) are judged in separate worlds.
 */
interface World {
  namespaces: Map<string, Record<string, string>>;
  nodes: Map<string, ReplayNode>;
  edges: number[];
}

function labelsEqual(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => a[k] === b[k]);
}

function fits(world: World, e: RecordedEdge): boolean {
  for (const end of [e.src, e.dst]) {
    const p = end.pod;
    if (p) {
      const have = world.namespaces.get(p.namespace);
      if (have && !labelsEqual(have, p.namespaceLabels)) return false;
    }
    const n = end.node;
    if (n) {
      const have = world.nodes.get(n.name);
      if (have && have !== n && !labelsEqual(have.labels, n.labels)) return false;
    }
  }
  return true;
}

function place(world: World, e: RecordedEdge, i: number): void {
  for (const end of [e.src, e.dst]) {
    if (end.pod && !world.namespaces.has(end.pod.namespace))
      world.namespaces.set(end.pod.namespace, end.pod.namespaceLabels);
    if (end.node) {
      const have = world.nodes.get(end.node.name);
      if (!have) world.nodes.set(end.node.name, end.node);
      else if (have !== end.node)
        // The same node recorded with more addresses over time: the engine needs them all.
        world.nodes.set(end.node.name, {
          ...have,
          addresses: [...new Set([...have.addresses, ...end.node.addresses])],
          podCIDRs: [...new Set([...have.podCIDRs, ...end.node.podCIDRs])],
        });
    }
  }
  world.edges.push(i);
}

function worldsOf(edges: readonly RecordedEdge[]): World[] {
  const worlds: World[] = [];
  edges.forEach((e, i) => {
    let w = worlds.find((x) => fits(x, e));
    if (!w) {
      w = { namespaces: new Map(), nodes: new Map(), edges: [] };
      worlds.push(w);
    }
    place(w, e, i);
  });
  return worlds;
}

function clusterOf(world: World, policies: PolicySet): ClusterModel {
  const namespaces: NamespaceModel[] = [...world.namespaces].map(([name, labels]) => ({ name, labels }));
  const nodes: NodeModel[] = [...world.nodes.values()].map((n) => ({
    name: n.name,
    labels: n.labels,
    addresses: n.addresses,
    podCIDRs: n.podCIDRs,
  }));
  return {
    namespaces,
    pods: [],
    nodes,
    services: [],
    endpointSlices: [],
    networkPolicies: policies.networkPolicies,
    clusterNetworkPolicies: policies.clusterNetworkPolicies,
  };
}

/** One synthetic pod per recorded identity and address: two addresses are two pods, as they were. */
class Endpoints {
  private readonly pods = new WeakMap<ReplayPod, Map<string, PodModel>>();
  private readonly nodes = new Map<string, NodeModel>();

  constructor(world: World) {
    for (const n of world.nodes.values())
      this.nodes.set(n.name, {
        name: n.name,
        labels: n.labels,
        addresses: n.addresses,
        podCIDRs: n.podCIDRs,
      });
  }

  ref(e: ReplayEndpoint): FlowEndpointRef {
    const ref: FlowEndpointRef = { ip: e.ip };
    if (e.pod) ref.pod = this.pod(e.pod, e.ip);
    if (e.node) ref.node = this.nodes.get(e.node.name);
    return ref;
  }

  private pod(p: ReplayPod, ip: string): PodModel {
    let byIp = this.pods.get(p);
    if (!byIp) {
      byIp = new Map();
      this.pods.set(p, byIp);
    }
    let pod = byIp.get(ip);
    if (!pod) {
      pod = {
        namespace: p.namespace,
        name: `${p.workload.slice(p.workload.indexOf('/') + 1)}@${ip}`,
        labels: p.labels,
        ips: [ip],
        hostNetwork: p.hostNetwork,
        phase: 'Running',
        ports: p.namedPorts.map((x) => ({ name: x.name, containerPort: x.port, protocol: x.protocol })),
      };
      if (p.nodeName) pod.nodeName = p.nodeName;
      byIp.set(ip, pod);
    }
    return pod;
  }
}

export interface ReplayRun {
  /** Per edge, in the order given. */
  results: ReplayedEdge[];
  /** Problems with the policies (an invalid draft is rejected whole, as the engine always does). */
  issues: InputIssue[];
  /** The compiled indexes, one per world, for the rules they hold. */
  indexes: PolicyIndexApi[];
}

/** Judges every recorded edge under `policies`, with the engine and options `check` uses. */
export function replay(
  edges: readonly RecordedEdge[],
  policies: PolicySet,
  options: PolicyOptions,
): ReplayRun {
  const results: ReplayedEdge[] = new Array(edges.length);
  const issues: InputIssue[] = [];
  const indexes: PolicyIndexApi[] = [];
  const worlds = worldsOf(edges);
  if (worlds.length === 0) worlds.push({ namespaces: new Map(), nodes: new Map(), edges: [] });
  worlds.forEach((world, wi) => {
    const compiled = compilePolicyIndex(clusterOf(world, policies), options);
    // The same policies give the same problems in every world: report them once.
    if (wi === 0) issues.push(...compiled.issues);
    indexes.push(compiled.index);
    const ends = new Endpoints(world);
    for (const i of world.edges) {
      const e = edges[i]!;
      const q = { src: ends.ref(e.src), dst: ends.ref(e.dst), proto: e.proto } as Parameters<
        PolicyIndexApi['evaluate']
      >[0];
      if (e.port >= 0) q.port = e.port;
      const verdict = compiled.index.evaluate(q);
      results[i] = { verdict, classification: classify(e.answered ? 'established' : 'attempted', verdict) };
    }
  });
  return { results, issues, indexes };
}

/** A person's name for an end: the workload, the node, or the address. */
export function endpointName(e: ReplayEndpoint): string {
  if (e.pod) return e.pod.workload;
  if (e.node) return `node/${e.node.name}`;
  return e.ip;
}

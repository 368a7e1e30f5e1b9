import ipaddr from 'ipaddr.js';
import { Document } from 'yaml';
import { parseIp } from '../processor/policy/ip.js';
import type { PolicyOptions } from '../processor/policy/types.js';
import type { RecordedEdge, ReplayEndpoint, ReplayPod } from '../schema/replay.js';
import { type WhatIfResult, whatIf } from './compare.js';
import { policyId } from './drafts.js';
import { portText } from './render.js';
import { endpointName, type PolicySet, replay } from './replay.js';

/**
 * Least-privilege NetworkPolicies from recorded traffic: per workload (or per namespace), ingress
 * and egress rules that allow exactly the traffic the policies in force allowed in the period, with
 * stable selectors, named ports where the pods declare them, DNS egress to the cluster DNS and
 * external peers folded into ipBlocks. Every suggestion is replayed before it is returned: no
 * recorded allowed flow may become denied.
 */

export type SuggestStyle = 'per-workload' | 'per-namespace';

/** Labels controllers stamp per revision or per pod: a selector on them breaks at the next rollout. */
const UNSTABLE = new Set([
  'pod-template-hash',
  'controller-revision-hash',
  'pod-template-generation',
  'statefulset.kubernetes.io/pod-name',
  'apps.kubernetes.io/pod-index',
  'job-name',
  'batch.kubernetes.io/job-name',
  'controller-uid',
  'batch.kubernetes.io/controller-uid',
]);
const PREFERRED = ['app.kubernetes.io/name', 'app', 'k8s-app', 'name'];
const REFINING = ['app.kubernetes.io/instance', 'app.kubernetes.io/component', 'component', 'tier'];

export interface ClusterDns {
  namespace: string;
  labels: Record<string, string>;
}

export interface SuggestInput {
  edges: readonly RecordedEdge[];
  baseline: PolicySet;
  options: PolicyOptions;
  style: SuggestStyle;
  /** Namespaces to write policies for (default: every namespace with a pod in the traffic). */
  namespaces?: readonly string[];
  /** Pods the cluster has now (who a selector would also pick), beyond those in the traffic. */
  knownPods?: readonly ReplayPod[];
  /** The cluster DNS pods; default kube-system k8s-app=kube-dns. */
  dns?: ClusterDns;
  since: number;
  until: number;
}

export interface Justification {
  peer: string;
  port: string;
  flows: number;
  lastSeen: number;
}

export interface Looseness {
  policy: string;
  direction: 'ingress' | 'egress';
  peer: string;
  port: string;
  why: string;
}

export interface Suggestion {
  policies: Record<string, unknown>[];
  yaml: string;
  /** The replay of the period with the suggestions applied over the policies in force. */
  check: WhatIfResult;
  /** Ports and peers the suggestions allow beyond what was observed (on the recorded endpoints). */
  beyond: Looseness[];
  /** Probes the tightness measure judged (recorded endpoints × subjects × ports). */
  probes: number;
}

interface Subject {
  key: string;
  namespace: string;
  name: string;
  selector: Record<string, string>;
  identities: ReplayPod[];
}

type PortKey = string; // `${proto}/${port}`

interface Side {
  /** peer key → port → flows/last seen */
  peers: Map<string, Map<PortKey, Justification>>;
  peerEnds: Map<string, ReplayEndpoint>;
}

const DEFAULT_DNS: ClusterDns = { namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } };

function stableLabels(ids: readonly ReplayPod[]): Record<string, string> {
  const first = ids[0]!.labels;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(first))
    if (!UNSTABLE.has(k) && ids.every((i) => i.labels[k] === v)) out[k] = v;
  return out;
}

function selects(sel: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(sel).every(([k, v]) => labels[k] === v);
}

/** The smallest stable selector that picks the workload's pods and no other workload's of its namespace. */
function selectorFor(ids: readonly ReplayPod[], others: readonly ReplayPod[]): Record<string, string> {
  const stable = stableLabels(ids);
  const keys = Object.keys(stable);
  const order = [
    ...PREFERRED.filter((k) => k in stable),
    ...REFINING.filter((k) => k in stable),
    ...keys.filter((k) => !PREFERRED.includes(k) && !REFINING.includes(k)).sort(),
  ];
  const sel: Record<string, string> = {};
  for (const k of order) {
    sel[k] = stable[k]!;
    if (!others.some((o) => selects(sel, o.labels))) return sel;
  }
  return sel;
}

function peerKey(e: ReplayEndpoint, options: PolicyOptions): string {
  if (e.pod && !(e.pod.hostNetwork && options.hostNetwork === 'node')) return `pod:${e.pod.workload}`;
  return `ip:${e.ip}`;
}

function portKey(proto: number, port: number): PortKey {
  return `${proto}/${port}`;
}

const PROTO_NAME: Record<number, 'TCP' | 'UDP' | 'SCTP'> = { 6: 'TCP', 17: 'UDP', 132: 'SCTP' };

/** Folds addresses into the fewest CIDRs that cover exactly them (complete sibling pairs merge). */
export function foldAddresses(ips: readonly string[]): string[] {
  const byFamily = new Map<4 | 6, Map<number, Set<bigint>>>();
  for (const text of ips) {
    const ip = parseIp(text);
    if (!ip) continue;
    const width = ip.family === 4 ? 32 : 128;
    let levels = byFamily.get(ip.family);
    if (!levels) {
      levels = new Map();
      byFamily.set(ip.family, levels);
    }
    let set = levels.get(width);
    if (!set) {
      set = new Set();
      levels.set(width, set);
    }
    set.add(ip.value);
  }
  const out: string[] = [];
  for (const [family, levels] of byFamily) {
    const width = family === 4 ? 32 : 128;
    for (let prefix = width; prefix > 0; prefix--) {
      const set = levels.get(prefix);
      if (!set) continue;
      const shift = BigInt(width - prefix);
      for (const net of [...set]) {
        const sibling = net ^ (1n << shift);
        if (net < sibling && set.has(sibling)) {
          set.delete(net);
          set.delete(sibling);
          let up = levels.get(prefix - 1);
          if (!up) {
            up = new Set();
            levels.set(prefix - 1, up);
          }
          up.add(net);
        }
      }
    }
    for (const [prefix, set] of levels)
      for (const net of set) {
        const bytes: number[] = [];
        for (let i = width / 8 - 1; i >= 0; i--) bytes.push(Number((net >> BigInt(i * 8)) & 0xffn));
        out.push(`${ipaddr.fromByteArray(bytes).toString()}/${prefix}`);
      }
  }
  return out.sort();
}

function namedPort(ids: readonly ReplayPod[] | undefined, proto: number, port: number): string | undefined {
  const protocol = PROTO_NAME[proto];
  if (!ids?.length || !protocol) return undefined;
  const names = ids.map((i) => i.namedPorts.find((p) => p.port === port && p.protocol === protocol)?.name);
  return names.every((n) => n !== undefined && n === names[0]) ? names[0] : undefined;
}

export function suggest(input: SuggestInput): Suggestion {
  const { edges, options } = input;
  const dns = input.dns ?? DEFAULT_DNS;
  // Who is who: every pod identity seen, per workload and namespace, and the cluster's pods now.
  const byWorkload = new Map<string, ReplayPod[]>();
  // hostNetwork pods are their node's unless the options make them pods (then policies select them).
  const asNode = (p: ReplayPod) => p.hostNetwork && options.hostNetwork === 'node';
  const addIdentity = (p: ReplayPod) => {
    if (asNode(p)) return;
    const list = byWorkload.get(p.workload) ?? [];
    if (!list.includes(p)) list.push(p);
    byWorkload.set(p.workload, list);
  };
  for (const e of edges) for (const end of [e.src, e.dst]) if (end.pod) addIdentity(end.pod);
  for (const p of input.knownPods ?? []) addIdentity(p);
  const scope = new Set(input.namespaces ?? [...byWorkload.values()].map((ids) => ids[0]!.namespace));
  const subjects = new Map<string, Subject>();
  for (const [workload, ids] of byWorkload) {
    const ns = ids[0]!.namespace;
    if (!scope.has(ns)) continue;
    if (input.style === 'per-namespace') {
      if (!subjects.has(ns))
        subjects.set(ns, { key: ns, namespace: ns, name: ns, selector: {}, identities: [] });
      subjects.get(ns)!.identities.push(...ids);
      continue;
    }
    const others = [...byWorkload]
      .filter(([w, o]) => w !== workload && o[0]!.namespace === ns)
      .flatMap(([, o]) => o);
    subjects.set(workload, {
      key: workload,
      namespace: ns,
      name: workload.slice(workload.indexOf('/') + 1),
      selector: selectorFor(ids, others),
      identities: ids,
    });
  }
  const subjectOf = (e: ReplayEndpoint): Subject | undefined => {
    if (!e.pod || asNode(e.pod)) return undefined;
    return subjects.get(input.style === 'per-namespace' ? e.pod.namespace : e.pod.workload);
  };

  // The traffic the policies in force allow, per subject and direction.
  const base = replay(edges, input.baseline, options);
  const sides = new Map<string, { ingress: Side; egress: Side }>();
  const sideOf = (s: Subject) => {
    let x = sides.get(s.key);
    if (!x) {
      x = {
        ingress: { peers: new Map(), peerEnds: new Map() },
        egress: { peers: new Map(), peerEnds: new Map() },
      };
      sides.set(s.key, x);
    }
    return x;
  };
  const note = (side: Side, peer: ReplayEndpoint, e: RecordedEdge) => {
    const key = peerKey(peer, options);
    side.peerEnds.set(key, peer);
    let ports = side.peers.get(key);
    if (!ports) {
      ports = new Map();
      side.peers.set(key, ports);
    }
    const pk = portKey(e.proto, e.port);
    const j = ports.get(pk);
    if (j) {
      j.flows += e.flows;
      j.lastSeen = Math.max(j.lastSeen, e.lastSeen);
    } else
      ports.set(pk, {
        peer: endpointName(peer),
        port: portText(e.proto, e.port),
        flows: e.flows,
        lastSeen: e.lastSeen,
      });
  };
  edges.forEach((e, i) => {
    if (base.results[i]!.classification !== 'allowed') return;
    const dst = subjectOf(e.dst);
    const src = subjectOf(e.src);
    if (dst) note(sideOf(dst).ingress, e.src, e);
    if (src) note(sideOf(src).egress, e.dst, e);
  });

  const docs: Document[] = [];
  const policies: Record<string, unknown>[] = [];
  const policyNames = new Map<string, string>();
  for (const s of [...subjects.values()].sort((a, b) => (a.key < b.key ? -1 : 1))) {
    const side = sides.get(s.key) ?? {
      ingress: { peers: new Map(), peerEnds: new Map() },
      egress: { peers: new Map(), peerEnds: new Map() },
    };
    const built = {
      ingress: rulesFor(side.ingress, s, 'ingress', byWorkload, dns),
      egress: rulesFor(side.egress, s, 'egress', byWorkload, dns),
    };
    const name = (input.style === 'per-namespace' ? 'netpol-audit-suggested' : `netpol-audit-${s.name}`)
      .slice(0, 63)
      .replace(/[^a-z0-9-.]/g, '-')
      .replace(/-+$/, '');
    policyNames.set(s.key, name);
    const policy: Record<string, unknown> = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        name,
        namespace: s.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'netpol-audit' },
        annotations: {
          'netpol-audit.io/observed': `${new Date(input.since).toISOString()}/${new Date(input.until).toISOString()}`,
        },
      },
      spec: {
        podSelector: Object.keys(s.selector).length ? { matchLabels: s.selector } : {},
        policyTypes: ['Ingress', 'Egress'],
        ingress: built.ingress.map((r) => r.rule),
        egress: built.egress.map((r) => r.rule),
      },
    };
    policies.push(policy);
    const doc = new Document(policy);
    const workloads = new Set(s.identities.map((i) => i.workload)).size;
    doc.commentBefore = ` ${s.key}: isolates ${workloads} workload${workloads === 1 ? '' : 's'}; from the traffic of ${new Date(input.since).toISOString()} to ${new Date(input.until).toISOString()}`;
    for (const d of ['ingress', 'egress'] as const)
      built[d].forEach((r, i) => {
        const node = doc.getIn(['spec', d, i], true) as { commentBefore?: string } | undefined;
        if (node) node.commentBefore = r.why.map((w) => ` ${w}`).join('\n');
      });
    docs.push(doc);
  }
  const yaml = docs.map((d) => d.toString({ lineWidth: 0 })).join('---\n');

  const applied = {
    policies: {
      networkPolicies: [...input.baseline.networkPolicies, ...policies],
      clusterNetworkPolicies: input.baseline.clusterNetworkPolicies,
    },
    added: policies.map(policyId),
    replaced: [],
    deleted: [],
  };
  const check = whatIf({
    edges,
    baseline: input.baseline,
    applied,
    draftIds: applied.added,
    options,
    since: input.since,
    until: input.until,
  });
  const { beyond, probes } = looseness(input, subjects, sides, policies, policyNames, dns);
  return { policies, yaml, check, beyond, probes };
}

interface BuiltRule {
  rule: Record<string, unknown>;
  why: string[];
}

function rulesFor(
  side: Side,
  s: Subject,
  direction: 'ingress' | 'egress',
  byWorkload: Map<string, ReplayPod[]>,
  dns: ClusterDns,
): BuiltRule[] {
  // Peers with the same ports share a rule; pods by selector, addresses folded into ipBlocks.
  const groups = new Map<string, { ports: string[]; pods: string[]; ips: string[]; why: Justification[] }>();
  for (const [peer, ports] of side.peers) {
    const portList = [...ports.keys()].sort();
    const key = portList.join(',');
    let g = groups.get(key);
    if (!g) {
      g = { ports: portList, pods: [], ips: [], why: [] };
      groups.set(key, g);
    }
    if (peer.startsWith('pod:')) g.pods.push(peer.slice(4));
    else g.ips.push(peer.slice(3));
    g.why.push(...ports.values());
  }
  const out: BuiltRule[] = [];
  const peerField = direction === 'ingress' ? 'from' : 'to';
  let dnsCovered = false;
  for (const g of [...groups.values()].sort((a, b) => (a.ports.join() < b.ports.join() ? -1 : 1))) {
    const peers: Record<string, unknown>[] = [];
    for (const w of g.pods.sort()) {
      const ids = byWorkload.get(w)!;
      const ns = ids[0]!.namespace;
      const others = [...byWorkload]
        .filter(([o, x]) => o !== w && x[0]!.namespace === ns)
        .flatMap(([, x]) => x);
      const podSelector = { matchLabels: selectorFor(ids, others) };
      if (ns === s.namespace) peers.push({ podSelector });
      else
        peers.push({
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
          podSelector,
        });
      if (
        direction === 'egress' &&
        ns === dns.namespace &&
        selects(dns.labels, ids[0]!.labels) &&
        g.ports.every((p) => p === '17/53' || p === '6/53')
      )
        dnsCovered = true;
    }
    for (const cidr of foldAddresses(g.ips)) peers.push({ ipBlock: { cidr } });
    const ports: Record<string, unknown>[] = [];
    let portless = false;
    for (const p of g.ports) {
      const [proto, port] = p.split('/').map(Number) as [number, number];
      const protocol = PROTO_NAME[proto];
      if (!protocol || port < 0) {
        portless = true; // ICMP and other protocols: a NetworkPolicy port cannot name them
        continue;
      }
      const target =
        direction === 'ingress'
          ? s.identities
          : g.pods.length === 1 && g.ips.length === 0
            ? byWorkload.get(g.pods[0]!)
            : undefined;
      const name = namedPort(target, proto, port);
      ports.push({ protocol, port: name ?? port });
    }
    const rule: Record<string, unknown> = { [peerField]: peers };
    if (!portless && ports.length) rule.ports = ports;
    out.push({
      rule,
      why: g.why
        .sort((a, b) => b.flows - a.flows)
        .map((j) => `${j.peer} ${j.port}: ${j.flows} flow(s), last ${new Date(j.lastSeen).toISOString()}`),
    });
  }
  if (direction === 'egress' && !dnsCovered)
    out.push({
      rule: {
        to: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': dns.namespace } },
            podSelector: { matchLabels: dns.labels },
          },
        ],
        ports: [
          { protocol: 'UDP', port: 53 },
          { protocol: 'TCP', port: 53 },
        ],
      },
      why: ['DNS to the cluster DNS (allowed whether or not the period recorded it)'],
    });
  return out;
}

/**
 * Tightness, measured by the engine: every recorded endpoint against every subject at every port
 * seen, judged under the suggestions alone; what they allow that the period did not show.
 */
function looseness(
  input: SuggestInput,
  subjects: Map<string, Subject>,
  sides: Map<string, { ingress: Side; egress: Side }>,
  policies: Record<string, unknown>[],
  policyNames: Map<string, string>,
  dns: ClusterDns,
): { beyond: Looseness[]; probes: number } {
  const ends = new Map<string, ReplayEndpoint>();
  for (const e of input.edges) for (const end of [e.src, e.dst]) ends.set(peerKey(end, input.options), end);
  const ports = new Set<string>();
  for (const e of input.edges) ports.add(portKey(e.proto, e.port));
  ports.add('17/53');
  ports.add('6/53');
  const subjectEnds = [...subjects.values()].flatMap((s) =>
    [...ends.values()]
      .filter(
        (e) =>
          e.pod &&
          !(e.pod.hostNetwork && input.options.hostNetwork === 'node') &&
          subjects.get(input.style === 'per-namespace' ? e.pod.namespace : e.pod.workload) === s,
      )
      .slice(0, 1)
      .map((e) => ({ s, e })),
  );
  const total = subjectEnds.length * ends.size * ports.size * 2;
  if (total > 2_000_000) return { beyond: [], probes: 0 };
  const probes: RecordedEdge[] = [];
  const meta: { s: Subject; direction: 'ingress' | 'egress'; peer: string; port: string }[] = [];
  for (const { s, e: self } of subjectEnds)
    for (const [pk, peer] of ends)
      for (const p of ports) {
        const [proto, port] = p.split('/').map(Number) as [number, number];
        for (const direction of ['ingress', 'egress'] as const) {
          const side = sides.get(s.key)?.[direction];
          if (side?.peers.get(pk)?.has(p)) continue; // observed
          const src = direction === 'ingress' ? peer : self;
          const dst = direction === 'ingress' ? self : peer;
          if (src === dst) continue;
          probes.push({
            day: 0,
            src,
            dst,
            proto,
            port,
            answered: true,
            classification: 'allowed',
            flows: 1,
            bytes: 0,
            firstSeen: 0,
            lastSeen: 0,
          });
          meta.push({ s, direction, peer: endpointName(peer), port: portText(proto, port) });
        }
      }
  const only: PolicySet = { networkPolicies: policies, clusterNetworkPolicies: [] };
  const judged = replay(probes, only, input.options);
  const beyond: Looseness[] = [];
  judged.results.forEach((r, i) => {
    const side = meta[i]!.direction === 'ingress' ? r.verdict.ingress : r.verdict.egress;
    if (!side.allowed || !side.isolated || side.reason === 'node-local') return;
    const m = meta[i]!;
    const isDns =
      m.direction === 'egress' &&
      (m.port === 'UDP/53' || m.port === 'TCP/53') &&
      probes[i]!.dst.pod?.namespace === dns.namespace &&
      selects(dns.labels, probes[i]!.dst.pod.labels);
    beyond.push({
      policy: `${m.s.namespace}/${policyNames.get(m.s.key) ?? m.s.name}`,
      direction: m.direction,
      peer: m.peer,
      port: m.port,
      why: isDns ? 'DNS to the cluster DNS' : 'a rule for other traffic also matches this peer and port',
    });
  });
  return { beyond, probes: probes.length };
}

import type { FlowRecord } from '../../schema/flow-record.js';

/**
 * Deterministic generator of random but realistic clusters and flows, for the differential test of
 * the policy engine against the Python reference. A scenario is a function of its seed alone, so a
 * failing seed can be replayed. Scenarios use address space and names derived from the seed (pods in
 * 10.<slot>.<node>.0/24, nodes 192.168.<slot>.x, namespaces `s<seed>-...`), so several scenarios can
 * share one snapshot without their pods colliding: policies select only pods of their own namespace,
 * and every flow of a scenario stays between its own pods, nodes and outside addresses.
 */

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are free-form JSON here.
export type KubeObject = Record<string, any>;

export interface Scenario {
  seed: number;
  items: KubeObject[];
  flows: FlowRecord[];
}

export interface GenerateOptions {
  /** Flows per scenario (default 50). */
  flows?: number;
  /** Upper bound on policies (default 15). */
  maxPolicies?: number;
}

/** mulberry32: tiny, fast and good enough to pick test cases. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = (seed * 0x9e3779b9) >>> 0 || 1;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  some<T>(xs: readonly T[], min: number, max: number): T[] {
    const pool = [...xs];
    const n = Math.min(pool.length, this.int(min, max));
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(pool.splice(Math.floor(this.next() * pool.length), 1)[0]!);
    return out;
  }
}

const NS_BASES = ['shop', 'payments', 'monitoring', 'kube-system', 'dev'];
const NS_LABELS: Record<string, string[]> = {
  team: ['alpha', 'beta', 'ops'],
  env: ['prod', 'staging', 'dev'],
};
const POD_LABELS: Record<string, string[]> = {
  app: ['web', 'api', 'db', 'cache', 'dns'],
  role: ['frontend', 'backend', 'monitoring'],
  tier: ['1', '2'],
};

interface PortDef {
  name?: string;
  containerPort: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

const CONTAINER_PORTS: PortDef[][] = [
  [{ name: 'http', containerPort: 80 }],
  [
    { name: 'http', containerPort: 8080, protocol: 'TCP' },
    { name: 'metrics', containerPort: 9090 },
  ],
  [
    { name: 'dns', containerPort: 53, protocol: 'UDP' },
    { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
  ],
  [{ name: 'pg', containerPort: 5432 }],
  [{ containerPort: 6379 }],
  [
    { name: 'diameter', containerPort: 3868, protocol: 'SCTP' },
    { name: 'http', containerPort: 80 },
  ],
  [{ name: 'metrics', containerPort: 9100, protocol: 'UDP' }],
  [],
];
const PORT_NAMES = ['http', 'metrics', 'dns', 'dns-tcp', 'pg', 'diameter', 'nope'];
const PORT_NUMBERS = [53, 80, 443, 3868, 5432, 6379, 8080, 9090, 9100, 32000, 32768];
const EXTERNAL_V4 = ['203.0.113.7', '198.51.100.20', '8.8.8.8', '172.17.1.5', '172.17.3.9'];
const EXTERNAL_V6 = ['2001:db8::7', '2001:db8:1::20'];

interface GenPod {
  ns: string;
  name: string;
  labels: Record<string, string>;
  node: number;
  ips: string[];
  hostNetwork: boolean;
  phase: string;
  ports: PortDef[];
}

export function generateScenario(seed: number, opts: GenerateOptions = {}): Scenario {
  const rng = new Rng(seed);
  const slot = seed % 250;
  const nodeNames = [`s${seed}-node-a`, `s${seed}-node-b`];
  const nodeV4 = [`192.168.${slot}.10`, `192.168.${slot}.11`];
  const nodeV6 = [`fd00:192:${slot}::10`, `fd00:192:${slot}::11`];
  const podV4 = (node: number, host: number) => `10.${slot}.${node + 1}.${host}`;
  const podV6 = (node: number, host: number) => `fd00:10:${slot}:${node + 1}::${host.toString(16)}`;

  const items: KubeObject[] = [];

  // Namespaces
  const namespaces = rng.some(NS_BASES, 2, 4).map((base) => {
    const labels: Record<string, string> = {};
    for (const [k, vs] of Object.entries(NS_LABELS)) if (rng.chance(0.6)) labels[k] = rng.pick(vs);
    return { name: `s${seed}-${base}`, labels };
  });
  for (const ns of namespaces) {
    const labels = { ...ns.labels };
    // The API server sets this label; leaving it out sometimes checks that readers add it.
    if (rng.chance(0.8)) labels['kubernetes.io/metadata.name'] = ns.name;
    items.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns.name, labels } });
  }

  // Nodes
  const dualStackNodes = rng.chance(0.5);
  nodeNames.forEach((name, i) => {
    const addresses = [{ type: 'InternalIP', address: nodeV4[i] }];
    if (dualStackNodes) addresses.push({ type: 'InternalIP', address: nodeV6[i] });
    addresses.push({ type: 'Hostname', address: name });
    items.push({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name } },
      spec: { podCIDR: `10.${slot}.${i + 1}.0/24`, podCIDRs: [`10.${slot}.${i + 1}.0/24`] },
      status: { addresses },
    });
  });

  // Pods
  const pods: GenPod[] = [];
  const nextHost = [10, 10];
  const podCount = rng.int(4, 10);
  for (let i = 0; i < podCount; i++) {
    const ns = rng.pick(namespaces).name;
    const labels: Record<string, string> = {};
    for (const [k, vs] of Object.entries(POD_LABELS)) if (rng.chance(0.55)) labels[k] = rng.pick(vs);
    const node = rng.int(0, 1);
    const hostNetwork = rng.chance(0.1);
    const roll = rng.next();
    const phase = roll < 0.12 ? rng.pick(['Succeeded', 'Failed']) : roll < 0.17 ? 'Pending' : 'Running';
    let ips: string[];
    if (phase === 'Pending') {
      ips = []; // not yet scheduled or sandboxed: no address, so nothing can reach it
    } else if (hostNetwork) {
      ips = dualStackNodes ? [nodeV4[node]!, nodeV6[node]!] : [nodeV4[node]!];
    } else if (
      phase !== 'Running' &&
      rng.chance(0.5) &&
      pods.some((p) => p.node === node && !p.hostNetwork)
    ) {
      // A finished pod still reporting the IP a running pod now holds: the IP must go to the live pod.
      ips = [...pods.find((p) => p.node === node && !p.hostNetwork)!.ips];
    } else {
      const host = nextHost[node]!++;
      ips = dualStackNodes && rng.chance(0.6) ? [podV4(node, host), podV6(node, host)] : [podV4(node, host)];
    }
    pods.push({
      ns,
      name: `${labels.app ?? 'pod'}-${i}`,
      labels,
      node,
      ips,
      hostNetwork,
      phase,
      ports: rng.pick(CONTAINER_PORTS),
    });
  }
  for (const p of pods) {
    // Named ports may sit in any container of the pod; a sidecar sometimes holds some of them.
    const split = p.ports.length > 1 && rng.chance(0.5) ? 1 : p.ports.length;
    const containers: KubeObject[] = [
      { name: 'main', image: 'registry.example/app:1', ...(split ? { ports: p.ports.slice(0, split) } : {}) },
    ];
    if (split < p.ports.length) {
      containers.push({ name: 'sidecar', image: 'registry.example/sidecar:1', ports: p.ports.slice(split) });
    }
    items.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: p.ns, labels: p.labels, uid: `uid-${seed}-${p.name}` },
      spec: { nodeName: nodeNames[p.node], containers, ...(p.hostNetwork ? { hostNetwork: true } : {}) },
      status: p.ips.length
        ? { phase: p.phase, hostIP: nodeV4[p.node], podIP: p.ips[0], podIPs: p.ips.map((ip) => ({ ip })) }
        : { phase: p.phase },
    });
  }

  // Policies
  const live = pods.filter((p) => !p.hostNetwork && p.phase === 'Running');
  const policyCount = rng.int(0, opts.maxPolicies ?? 15);
  for (let i = 0; i < policyCount; i++) {
    const ns = rng.pick(namespaces).name;
    items.push(generatePolicy(rng, `np-${i}`, ns, namespaces, { slot, live, nodeV4, nodeV6 }));
  }

  // Flows
  const flows: FlowRecord[] = [];
  const flowCount = opts.flows ?? 50;
  const v4Ends = [...pods.flatMap((p) => p.ips.filter((ip) => !ip.includes(':'))), ...nodeV4, ...EXTERNAL_V4];
  const v6Ends = [...pods.flatMap((p) => p.ips.filter((ip) => ip.includes(':'))), ...nodeV6, ...EXTERNAL_V6];
  const livePodIps = live.flatMap((p) => p.ips);
  for (let i = 0; i < flowCount; i++) {
    const v6 = v6Ends.length > 3 && rng.chance(0.2);
    const ends = v6 ? v6Ends : v4Ends;
    const pods6 = livePodIps.filter((ip) => ip.includes(':') === v6);
    // Most flows have a live pod on at least one end: that is where policies apply.
    const src = pods6.length && rng.chance(0.75) ? rng.pick(pods6) : rng.pick(ends);
    let dst = pods6.length && rng.chance(0.75) ? rng.pick(pods6) : rng.pick(ends);
    for (let tries = 0; dst === src && tries < 5; tries++) dst = rng.pick(ends);
    if (dst === src) continue;
    const dstPod = pods.find((p) => p.ips.includes(dst) && p.phase === 'Running' && !p.hostNetwork);
    const proto = rng.pick(['TCP', 'TCP', 'TCP', 'UDP', 'UDP', 'SCTP', 'ICMP', 6, 17] as const);
    const protoName = proto === 6 ? 'TCP' : proto === 17 ? 'UDP' : proto;
    let port: number | undefined;
    if (protoName !== 'ICMP') {
      const own = dstPod?.ports.filter((cp) => (cp.protocol ?? 'TCP') === protoName) ?? [];
      port =
        own.length && rng.chance(0.6)
          ? rng.pick(own).containerPort
          : rng.chance(0.2)
            ? rng.int(32000, 32800)
            : rng.pick(PORT_NUMBERS);
    }
    const start = 1_700_000_000_000 + seed * 100_000 + i * 1000;
    flows.push({
      v: 1,
      start,
      end: start + 20,
      proto,
      src: protoName === 'ICMP' ? { ip: src } : { ip: src, port: 40000 + i },
      dst: port === undefined ? { ip: dst } : { ip: dst, port },
      packets: { fwd: 1, rev: 1 },
      bytes: { fwd: 60, rev: 60 },
      state: 'established',
      observer: { source: 'generator' },
      id: `${seed}:${i}`,
      ...(protoName === 'ICMP' ? { icmp: { type: 8, code: 0 } } : {}),
    });
  }
  return { seed, items, flows };
}

interface PolicyContext {
  slot: number;
  live: GenPod[];
  nodeV4: string[];
  nodeV6: string[];
}

function labelSelector(rng: Rng, pool: Record<string, string[]>): KubeObject {
  const roll = rng.next();
  if (roll < 0.2) return {};
  const sel: KubeObject = {};
  if (roll < 0.7 || rng.chance(0.3)) {
    const matchLabels: Record<string, string> = {};
    for (const k of rng.some(Object.keys(pool), 1, 2)) matchLabels[k] = rng.pick(pool[k]!);
    sel.matchLabels = matchLabels;
  }
  if (roll >= 0.7 || rng.chance(0.15)) {
    const exprs: KubeObject[] = [];
    for (const key of rng.some(Object.keys(pool), 1, 2)) {
      const operator = rng.pick(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const);
      exprs.push(
        operator === 'In' || operator === 'NotIn'
          ? { key, operator, values: rng.some(pool[key]!, 1, 2) }
          : { key, operator },
      );
    }
    sel.matchExpressions = exprs;
  }
  return sel;
}

function ipBlock(rng: Rng, ctx: PolicyContext): KubeObject {
  const pod = ctx.live.length ? rng.pick(ctx.live) : undefined;
  const v4 = pod?.ips.find((ip) => !ip.includes(':'));
  const v6 = pod?.ips.find((ip) => ip.includes(':'));
  const choices: (() => KubeObject)[] = [
    // The pod network with holes: some pod IPs fall in the except list.
    () => ({ cidr: `10.${ctx.slot}.0.0/16`, except: [`10.${ctx.slot}.1.0/28`, `10.${ctx.slot}.2.16/28`] }),
    () => ({ cidr: `10.${ctx.slot}.1.0/24` }),
    () => (v4 ? { cidr: `${v4}/32` } : { cidr: '0.0.0.0/0' }),
    () => ({ cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '192.168.0.0/16'] }),
    () => ({ cidr: '0.0.0.0/0' }),
    () => ({ cidr: '172.17.0.0/16', except: ['172.17.1.0/24'] }),
    () => ({ cidr: '203.0.113.0/24' }),
    () => ({ cidr: `${ctx.nodeV4[rng.int(0, 1)]}/32` }),
    () => ({ cidr: `192.168.${ctx.slot}.0/24`, except: [`${ctx.nodeV4[1]}/32`] }),
    () => ({ cidr: '::/0', except: ['2001:db8:1::/48'] }),
    () => (v6 ? { cidr: `${v6}/128` } : { cidr: `fd00:10:${ctx.slot}::/48` }),
    () => ({ cidr: `fd00:10:${ctx.slot}::/48`, except: [`fd00:10:${ctx.slot}:1::/64`] }),
  ];
  return rng.pick(choices)();
}

function peer(rng: Rng, ctx: PolicyContext, namespaces: { name: string }[]): KubeObject {
  const kind = rng.int(0, 4);
  const nsPool: Record<string, string[]> = {
    ...NS_LABELS,
    'kubernetes.io/metadata.name': namespaces.map((n) => n.name),
  };
  if (kind === 0) return { podSelector: labelSelector(rng, POD_LABELS) };
  if (kind === 1) return { namespaceSelector: labelSelector(rng, nsPool) };
  if (kind === 2)
    return { namespaceSelector: labelSelector(rng, nsPool), podSelector: labelSelector(rng, POD_LABELS) };
  return { ipBlock: ipBlock(rng, ctx) };
}

function portEntry(rng: Rng): KubeObject {
  const protocol = rng.pick([undefined, undefined, 'TCP', 'UDP', 'SCTP'] as const);
  const entry: KubeObject = protocol ? { protocol } : {};
  const kind = rng.int(0, 5);
  if (kind <= 1) entry.port = rng.pick(PORT_NUMBERS);
  else if (kind === 2) entry.port = rng.pick(PORT_NAMES);
  else if (kind === 3) {
    const start = rng.pick([53, 80, 5000, 32000]);
    entry.port = start;
    entry.endPort = start + rng.pick([0, 10, 768, 4000]);
  } else if (kind === 4 && !protocol) entry.protocol = rng.pick(['TCP', 'UDP', 'SCTP']);
  // kind 5 (or 4 with a protocol): protocol only, or nothing at all: every port
  return entry;
}

function rules(rng: Rng, ctx: PolicyContext, namespaces: { name: string }[], peersKey: string): KubeObject[] {
  const out: KubeObject[] = [];
  const count = rng.int(1, 3);
  for (let i = 0; i < count; i++) {
    const rule: KubeObject = {};
    const peers = rng.next();
    if (peers < 0.15) {
      // no peers: every source or destination
    } else if (peers < 0.2) rule[peersKey] = [];
    else rule[peersKey] = Array.from({ length: rng.int(1, 3) }, () => peer(rng, ctx, namespaces));
    const ports = rng.next();
    if (ports < 0.4) {
      // no ports: every port
    } else if (ports < 0.45) rule.ports = [];
    else rule.ports = Array.from({ length: rng.int(1, 3) }, () => portEntry(rng));
    out.push(rule);
  }
  return out;
}

function generatePolicy(
  rng: Rng,
  name: string,
  ns: string,
  namespaces: { name: string }[],
  ctx: PolicyContext,
): KubeObject {
  const spec: KubeObject = { podSelector: labelSelector(rng, POD_LABELS) };
  const shape = rng.int(0, 9);
  if (shape === 0) {
    // default deny (ingress, or both)
    if (rng.chance(0.5)) spec.policyTypes = ['Ingress', 'Egress'];
    spec.podSelector = {};
  } else if (shape === 1) {
    // allow all in one direction
    spec.podSelector = rng.chance(0.5) ? {} : spec.podSelector;
    if (rng.chance(0.5)) {
      spec.policyTypes = ['Egress'];
      spec.egress = [{}];
    } else spec.ingress = [{}];
  } else {
    const types = rng.pick([
      undefined,
      ['Ingress'],
      ['Egress'],
      ['Ingress', 'Egress'],
      ['Egress', 'Ingress'],
    ]);
    if (types) spec.policyTypes = types;
    const withIngress = rng.chance(0.7);
    const withEgress = rng.chance(types?.includes('Egress') ? 0.85 : 0.4);
    if (withIngress) spec.ingress = rng.chance(0.1) ? [] : rules(rng, ctx, namespaces, 'from');
    if (withEgress) spec.egress = rng.chance(0.1) ? [] : rules(rng, ctx, namespaces, 'to');
  }
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: ns },
    spec,
  };
}

/** kubectl's `-o json` wrapper around several objects. */
export function kubeList(items: KubeObject[]): KubeObject {
  return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items };
}

export function toJsonl(flows: FlowRecord[]): string {
  return flows.map((f) => JSON.stringify(f)).join('\n') + (flows.length ? '\n' : '');
}

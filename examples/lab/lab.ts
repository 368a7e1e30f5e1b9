// The cluster in a box: two "nodes" (network namespaces with a bridge, their own pod CIDR, joined by
// a VXLAN tunnel over a veth underlay), nine pods over them in four Kubernetes namespaces, registered
// in a real kube-apiserver (+ etcd) with Services, EndpointSlices, NetworkPolicies and one
// ClusterNetworkPolicy; real traffic between the pods; a conntrack collector per node and a live
// capture on node-1's VXLAN uplink publishing to a real Kafka broker; the processor following the API
// server (a judge and the recorder); alerts to a real Alertmanager. See examples/lab/README.md.
//
//   npx tsx examples/lab/lab.ts [--minutes N] [--keep]      (root; after `npm run build`)
//
// Everything it creates is named npl-<pid>-*, lives in its own network namespaces or on loopback, and
// is removed on exit (also on failure, Ctrl-C, or, for namespaces left by a killed run, on the next run).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { Alertmanager, alertmanagerBinary } from '../../test/alerting/alertmanager.js';
import { type RunningApiServer, startApiServer } from '../../test/k8s/apiserver.js';
import { type RunningBroker, startBroker } from '../../test/kafka/broker.js';
import { freePort } from '../../test/support/net.js';
import { requirePrograms } from '../../test/support/programs.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(HERE, '../..');
const AGENT = join(HERE, 'agent.mjs');
const CLI = join(ROOT, 'dist/cli/index.js');
const execFileP = promisify(execFile);

async function sh(file: string, args: string[], input?: string): Promise<string> {
  if (input === undefined) {
    const { stdout } = await execFileP(file, args, { maxBuffer: 64 << 20 });
    return stdout;
  }
  return new Promise((res, rej) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', rej);
    child.on('close', (code) =>
      code === 0 ? res(out) : rej(new Error(`${file} ${args.join(' ')}: exit ${code}: ${err}`)),
    );
    child.stdin.end(input);
  });
}
const inNs = (ns: string, file: string, args: string[], input?: string) =>
  sh('ip', ['netns', 'exec', ns, file, ...args], input);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: () => string, cond: () => boolean | Promise<boolean>, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`lab: timed out waiting for ${what()}`);
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------------------
// The layout

export const UNDERLAY = { 1: '192.168.77.1', 2: '192.168.77.2' } as const;
export const SERVICE = { ns: 'shop', name: 'payments', ip: '10.96.100.20', port: 80, targetPort: 9000 };
export const NAMESPACES: Record<string, Record<string, string>> = {
  shop: { team: 'shop' },
  data: { team: 'data' },
  dev: { team: 'dev' },
};

export interface PodSpec {
  /** The lab's handle: the pod name (unique across the lab). */
  name: string;
  ns: string;
  node: 1 | 2;
  ip: string;
  labels: Record<string, string>;
  tcp: number[];
  udp: number[];
}

export const PODS: PodSpec[] = [
  { name: 'frontend', ns: 'shop', node: 1, ip: '10.244.1.10', labels: { app: 'frontend' }, tcp: [], udp: [] },
  { name: 'cart', ns: 'shop', node: 1, ip: '10.244.1.11', labels: { app: 'cart' }, tcp: [8080], udp: [] },
  { name: 'debug', ns: 'dev', node: 1, ip: '10.244.1.20', labels: { app: 'debug' }, tcp: [], udp: [] },
  {
    name: 'coredns',
    ns: 'kube-system',
    node: 1,
    ip: '10.244.1.2',
    labels: { 'k8s-app': 'kube-dns' },
    tcp: [],
    udp: [53],
  },
  {
    name: 'payments',
    ns: 'shop',
    node: 2,
    ip: '10.244.2.20',
    labels: { app: 'payments' },
    tcp: [9000],
    udp: [],
  },
  {
    name: 'postgres',
    ns: 'data',
    node: 2,
    ip: '10.244.2.30',
    labels: { app: 'postgres' },
    tcp: [5432],
    udp: [],
  },
  {
    name: 'reporting',
    ns: 'data',
    node: 2,
    ip: '10.244.2.31',
    labels: { app: 'reporting' },
    tcp: [8080],
    udp: [],
  },
  { name: 'scratch', ns: 'dev', node: 2, ip: '10.244.2.40', labels: { app: 'scratch' }, tcp: [], udp: [] },
];
/** The pod that takes scratch's address once scratch is deleted: another namespace, another verdict. */
export const REPLACEMENT: PodSpec = {
  name: 'etl',
  ns: 'data',
  node: 2,
  ip: '10.244.2.40',
  labels: { app: 'etl' },
  tcp: [],
  udp: [],
};
/** Pods whose ingress the stand-in CNI enforces (it drops what comes from the `dev` pods). */
const CNI_ENFORCED = ['postgres', 'reporting'];

const np = (ns: string, name: string, spec: unknown) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { namespace: ns, name },
  spec,
});
const tcpPort = (port: number) => [{ protocol: 'TCP', port }];

export const POLICIES = [
  np('shop', 'default-deny', { podSelector: {}, policyTypes: ['Ingress'] }),
  np('shop', 'cart-from-frontend', {
    podSelector: { matchLabels: { app: 'cart' } },
    policyTypes: ['Ingress'],
    ingress: [{ from: [{ podSelector: { matchLabels: { app: 'frontend' } } }], ports: tcpPort(8080) }],
  }),
  np('shop', 'payments-from-cart', {
    podSelector: { matchLabels: { app: 'payments' } },
    policyTypes: ['Ingress'],
    ingress: [
      { from: [{ podSelector: { matchLabels: { app: 'cart' } } }], ports: tcpPort(9000) },
      // Nothing in `data` calls payments: this rule stays unused.
      { from: [{ namespaceSelector: { matchLabels: { team: 'data' } } }], ports: tcpPort(9000) },
    ],
  }),
  np('data', 'postgres-ingress', {
    podSelector: { matchLabels: { app: 'postgres' } },
    policyTypes: ['Ingress'],
    ingress: [
      {
        from: [
          {
            namespaceSelector: { matchLabels: { team: 'shop' } },
            podSelector: { matchLabels: { app: 'payments' } },
          },
        ],
        ports: tcpPort(5432),
      },
      { from: [{ podSelector: { matchLabels: { app: 'etl' } } }], ports: tcpPort(5432) },
    ],
  }),
  np('kube-system', 'dns', {
    podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
    policyTypes: ['Ingress'],
    ingress: [
      { from: [{ namespaceSelector: {} }], ports: [{ protocol: 'UDP', port: 53 }] },
      // DNS over TCP: nothing in the lab uses it.
      { from: [{ namespaceSelector: {} }], ports: [{ protocol: 'TCP', port: 53 }] },
    ],
  }),
];

/** The mid-run policy edit: debug (namespace dev) may reach cart on 8080 from then on. */
export const CART_EDIT = {
  spec: {
    podSelector: { matchLabels: { app: 'cart' } },
    policyTypes: ['Ingress'],
    ingress: [
      { from: [{ podSelector: { matchLabels: { app: 'frontend' } } }], ports: tcpPort(8080) },
      {
        from: [
          {
            namespaceSelector: { matchLabels: { team: 'dev' } },
            podSelector: { matchLabels: { app: 'debug' } },
          },
        ],
        ports: tcpPort(8080),
      },
    ],
  },
};

export const CLUSTER_NETWORK_POLICY = {
  apiVersion: 'policy.networking.k8s.io/v1alpha2',
  kind: 'ClusterNetworkPolicy',
  metadata: { name: 'no-dev-into-data' },
  spec: {
    tier: 'Admin',
    priority: 10,
    subject: { namespaces: { matchLabels: { team: 'data' } } },
    ingress: [
      { name: 'deny-from-dev', action: 'Deny', from: [{ namespaces: { matchLabels: { team: 'dev' } } }] },
    ],
  },
};

// ---------------------------------------------------------------------------------------------------
// Processes

export interface LabProcess {
  name: string;
  /** What it is, for the memory table and connections list. */
  role: 'collector' | 'processor' | 'infrastructure';
  child: ChildProcess;
  pid: number;
  stderr(): string;
  stdout(): string;
  exited: Promise<number | null>;
  metricsUrl?: string;
  /** The connections it is meant to make (later: the NetworkPolicy of netpol-audit's own pods). */
  connects: Connection[];
}

export interface Connection {
  service: 'kafka' | 'kube-apiserver' | 'alertmanager';
  address: string;
}

function startProcess(
  name: string,
  role: LabProcess['role'],
  file: string,
  args: string[],
  connects: Connection[],
  logFile: string,
): LabProcess {
  const log = createWriteStream(logFile, { flags: 'a' });
  // Its own process group: a kill reaches the conntrack/tcpdump children too, as a container's end would.
  const child = spawn(file, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, NETPOL_AUDIT_LOG_PRETTY: '0' },
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    log.write(d);
    err += d;
    if (err.length > 4_000_000) err = err.slice(-2_000_000);
  });
  const exited = new Promise<number | null>((r) =>
    child.on('close', (code) => {
      log.end();
      r(code);
    }),
  );
  return {
    name,
    role,
    child,
    pid: child.pid!,
    stderr: () => err,
    stdout: () => out,
    exited,
    connects,
  };
}

function killGroup(p: LabProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-p.pid, signal);
  } catch {}
}

async function metricsOf(p: LabProcess): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (!p.metricsUrl) return out;
  const text = await (await fetch(p.metricsUrl)).text();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** RSS of a process in KiB, from /proc/PID/status (undefined once it is gone). */
export function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The TCP connections a process holds, from /proc: its socket inodes (/proc/PID/fd) matched against
 * the connection tables of its network namespace (/proc/PID/net/tcp, tcp6). Remote `ip:port` of
 * the established ones.
 */
export function tcpPeers(pid: number): string[] {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {}
    }
  } catch {
    return [];
  }
  const peers = new Set<string>();
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '01' || !inodes.has(f[9]!)) continue; // 01: ESTABLISHED
      peers.add(hexAddress(f[2]!));
    }
  }
  return [...peers].sort();
}

function hexAddress(hex: string): string {
  const [addr, port] = hex.split(':') as [string, string];
  let ip: string;
  if (addr.length === 8) {
    ip = [3, 2, 1, 0].map((i) => Number.parseInt(addr.slice(i * 2, i * 2 + 2), 16)).join('.');
  } else if (addr.startsWith('0000000000000000FFFF0000')) {
    const v4 = addr.slice(24);
    ip = [3, 2, 1, 0].map((i) => Number.parseInt(v4.slice(i * 2, i * 2 + 2), 16)).join('.');
  } else {
    ip = addr;
  }
  return `${ip}:${Number.parseInt(port, 16)}`;
}

// ---------------------------------------------------------------------------------------------------
// Pods' agents

class Agent {
  private next = 0;
  private readonly waiting = new Map<number, (r: AgentReply) => void>();
  private buf = '';
  readonly child: ChildProcess;
  readonly ready: Promise<void>;

  constructor(netns: string, spec: { tcp: number[]; udp: number[] }) {
    this.child = spawn('ip', ['netns', 'exec', netns, process.execPath, AGENT, JSON.stringify(spec)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let onReady: () => void = () => undefined;
    this.ready = new Promise((r) => (onReady = r));
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.buf += d;
      let nl = this.buf.indexOf('\n');
      while (nl >= 0) {
        const msg = JSON.parse(this.buf.slice(0, nl)) as AgentReply & { ready?: boolean };
        this.buf = this.buf.slice(nl + 1);
        if (msg.ready) onReady();
        else this.waiting.get(msg.id)?.(msg);
        this.waiting.delete(msg.id);
        nl = this.buf.indexOf('\n');
      }
    });
  }

  call(cmd: Record<string, unknown>): Promise<AgentReply> {
    const id = ++this.next;
    return new Promise((r) => {
      this.waiting.set(id, r);
      this.child.stdin!.write(`${JSON.stringify({ ...cmd, id })}\n`);
    });
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

interface AgentReply {
  id: number;
  result: 'ok' | 'refused' | 'timeout' | 'error';
  got?: string;
  port?: number;
  handle?: string;
}

// ---------------------------------------------------------------------------------------------------
// Traffic and what the lab expects of it

export type Expected = 'allowed' | 'violation' | 'denied-attempt';

export interface Action {
  src: string;
  dst: string;
  /** Where the client connects: the pod IP, or the Service ClusterIP. */
  host: string;
  port: number;
  proto: 'TCP' | 'UDP';
  /** What the client should see: answered, refused (RST / ICMP), or no answer (dropped). */
  outcome: 'ok' | 'refused' | 'timeout';
  expect: Expected;
}

export interface ActionRecord extends Action {
  srcWorkload: string;
  dstWorkload: string;
  /** The port the store counts: the destination pod's port (a Service's target port). */
  dstPort: number;
  result: string;
  startedAt: number;
  phase: string;
  /** The client's port (0 when it could not be read): with the pod's IP, the flow in the store. */
  srcPort: number;
}

// ---------------------------------------------------------------------------------------------------

export interface LabOptions {
  /** Where the store, the logs and the spools go; default a fresh temporary directory. */
  dir?: string;
  log?: (line: string) => void;
  /** Alertmanager's port on 127.0.0.1 (default: a free one). */
  alertmanagerPort?: number;
}

export class Lab {
  readonly prefix = `npl-${process.pid}`;
  readonly dir: string;
  readonly db: string;
  readonly log: (line: string) => void;
  srv?: RunningApiServer;
  broker?: RunningBroker;
  am?: Alertmanager;
  readonly procs = new Map<string, LabProcess>();
  /** Processes that ended (a killed collector), kept for the memory table and the connections list. */
  readonly ended: LabProcess[] = [];
  readonly agents = new Map<string, Agent>();
  readonly pods = new Map<string, PodSpec>();
  readonly records: ActionRecord[] = [];
  readonly holds = new Map<
    string,
    { agent: Agent; handle: string; action: Action; startedAt: number; phase: string; srcPort: number }
  >();
  phase = 'start';
  /** Memory samples: time, process name, pid, RSS KiB. */
  readonly samples: { t: number; name: string; pid: number; kib: number }[] = [];
  private sampler?: NodeJS.Timeout;
  private stopped = false;
  private nodeNs: Record<1 | 2, string>;
  private podIdx = 0;

  constructor(opts: LabOptions = {}) {
    this.dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'netpol-lab-'));
    this.db = join(this.dir, 'lab.db');
    this.log = opts.log ?? ((l) => process.stderr.write(`lab: ${l}\n`));
    this.nodeNs = { 1: `${this.prefix}-n1`, 2: `${this.prefix}-n2` };
  }

  nodeNamespace(node: 1 | 2): string {
    return this.nodeNs[node];
  }

  podNamespace(pod: string): string {
    return `${this.prefix}-${pod}`;
  }

  // ----- building

  async start(amPort?: number): Promise<void> {
    requirePrograms('the lab', ['ip', 'nft', 'conntrack', 'tcpdump', 'sysctl', 'java', 'etcd']);
    if (process.getuid?.() !== 0) throw new Error('the lab must run as root (it creates network namespaces)');
    if (!existsSync(CLI)) throw new Error(`the lab runs the built CLI: run \`npm run build\` first (${CLI})`);
    await removeStaleLabs();
    const t0 = Date.now();
    const amBin = alertmanagerBinary();
    this.log('starting etcd + kube-apiserver, Kafka, Alertmanager');
    const [srv, broker] = await Promise.all([startApiServer(), startBroker({ heap: '512m' })]);
    this.srv = srv;
    this.broker = broker;
    this.am = new Alertmanager(amBin, amPort ?? (await freePort()));
    await this.am.start();
    this.log(`infrastructure up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await this.buildNetwork();
    await this.registerCluster();
    await this.startPipeline();
    this.sampler = setInterval(() => this.sample(), 5000);
    this.sample();
    this.log(
      `lab up in ${((Date.now() - t0) / 1000).toFixed(1)} s; store ${this.db}; Alertmanager ${this.am.url}`,
    );
  }

  private async buildNetwork(): Promise<void> {
    for (const node of [1, 2] as const) {
      const ns = this.nodeNs[node];
      await sh('ip', ['netns', 'add', ns]);
      // Before any interface exists, so every interface inherits "no redirects" (routed pod-to-pod
      // traffic leaves by the interface it came in by: the bridge).
      await inNs(ns, 'sysctl', [
        '-qw',
        // IPv4 only: no router solicitations or other IPv6 chatter between the lab's namespaces.
        'net.ipv6.conf.all.disable_ipv6=1',
        'net.ipv6.conf.default.disable_ipv6=1',
        'net.ipv4.conf.all.send_redirects=0',
        'net.ipv4.conf.default.send_redirects=0',
        'net.ipv4.ip_forward=1',
        'net.netfilter.nf_conntrack_acct=1',
        'net.netfilter.nf_conntrack_timestamp=1',
        'net.netfilter.nf_conntrack_tcp_timeout_time_wait=1',
        'net.netfilter.nf_conntrack_tcp_timeout_close=1',
        'net.netfilter.nf_conntrack_tcp_timeout_close_wait=1',
        'net.netfilter.nf_conntrack_tcp_timeout_fin_wait=1',
        'net.netfilter.nf_conntrack_tcp_timeout_last_ack=1',
        'net.netfilter.nf_conntrack_tcp_timeout_syn_sent=3',
        'net.netfilter.nf_conntrack_udp_timeout=1',
        'net.netfilter.nf_conntrack_udp_timeout_stream=1',
      ]);
      const n = (args: string[]) => sh('ip', ['-n', ns, ...args]);
      await n(['link', 'set', 'lo', 'up']);
      await n(['link', 'add', 'br0', 'type', 'bridge']);
      await n(['addr', 'add', `10.244.${node}.1/24`, 'dev', 'br0']);
      await n(['link', 'set', 'br0', 'up']);
    }
    const [n1, n2] = [this.nodeNs[1], this.nodeNs[2]];
    // The underlay: a veth between the two nodes; the overlay: VXLAN (VNI 77) over it.
    await sh('ip', ['-n', n1, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', n2]);
    for (const node of [1, 2] as const) {
      const other = node === 1 ? 2 : 1;
      const n = (args: string[]) => sh('ip', ['-n', this.nodeNs[node], ...args]);
      await n(['addr', 'add', `${UNDERLAY[node]}/24`, 'dev', 'ul0']);
      await n(['link', 'set', 'ul0', 'up']);
      await n([
        'link',
        'add',
        'vx0',
        'type',
        'vxlan',
        'id',
        '77',
        'local',
        UNDERLAY[node],
        'remote',
        UNDERLAY[other],
        'dstport',
        '4789',
        'dev',
        'ul0',
      ]);
      await n(['addr', 'add', `10.250.0.${node}/24`, 'dev', 'vx0']);
      await n(['link', 'set', 'vx0', 'up']);
      await n(['route', 'add', `10.244.${other}.0/24`, 'via', `10.250.0.${other}`, 'dev', 'vx0', 'onlink']);
      // kube-proxy's part (the Service DNAT) and a conntrack-using filter, so the node tracks what
      // it routes. The tunnel's own UDP packets and multicast (IGMP
      // reports) are not tracked: they are not pod traffic.
      await inNs(
        this.nodeNs[node],
        'nft',
        ['-f', '-'],
        `
table ip lab_node {
  chain raw_prerouting {
    type filter hook prerouting priority -300;
    udp dport 4789 notrack
    ip daddr 224.0.0.0/4 notrack
  }
  chain raw_output {
    type filter hook output priority -300;
    udp dport 4789 notrack
    ip daddr 224.0.0.0/4 notrack
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    ct state established,related accept
  }
  chain services {
    type nat hook prerouting priority -100;
    ip daddr ${SERVICE.ip} tcp dport ${SERVICE.port} dnat to ${PODS.find((p) => p.name === SERVICE.name)!.ip}:${SERVICE.targetPort}
  }
}
`,
      );
    }
    for (const pod of PODS) await this.addPodNetwork(pod);
    await Promise.all([...this.agents.values()].map((a) => a.ready));
    this.log(`network: 2 nodes, ${PODS.length} pods, VXLAN between the nodes`);
  }

  private async addPodNetwork(pod: PodSpec): Promise<void> {
    const ns = this.podNamespace(pod.name);
    const node = this.nodeNs[pod.node];
    const veth = `vp${++this.podIdx}`;
    await sh('ip', ['netns', 'add', ns]);
    await inNs(ns, 'sysctl', [
      '-qw',
      'net.ipv6.conf.all.disable_ipv6=1',
      'net.ipv6.conf.default.disable_ipv6=1',
    ]);
    await sh('ip', ['-n', node, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await sh('ip', ['-n', node, 'link', 'set', veth, 'master', 'br0', 'up']);
    const p = (args: string[]) => sh('ip', ['-n', ns, ...args]);
    await p(['link', 'set', 'lo', 'up']);
    await p(['link', 'set', 'eth0', 'mtu', '1400', 'up']);
    await p(['addr', 'add', `${pod.ip}/32`, 'dev', 'eth0']);
    // A /32 and the node's bridge as gateway: every packet, also to a pod on the same node, is routed
    // by the node (and so tracked by its conntrack), as with Calico's or Cilium's routed pod networks.
    await p(['route', 'add', `10.244.${pod.node}.1`, 'dev', 'eth0', 'scope', 'link']);
    await p(['route', 'add', 'default', 'via', `10.244.${pod.node}.1`, 'dev', 'eth0']);
    if (CNI_ENFORCED.includes(pod.name)) {
      // The stand-in CNI: enforces part of the policies (the ClusterNetworkPolicy keeping `dev` out of
      // `data`) at the pod's interface by dropping; the NetworkPolicies it leaves to the audit.
      const blocked = [...PODS, REPLACEMENT].filter((q) => q.ns === 'dev').map((q) => q.ip);
      await inNs(
        ns,
        'nft',
        ['-f', '-'],
        `
table inet lab_cni {
  set dev_pods {
    type ipv4_addr;
    elements = { ${blocked.join(', ')} }
  }
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr @dev_pods drop
  }
}
`,
      );
    }
    this.pods.set(pod.name, pod);
    this.agents.set(pod.name, new Agent(ns, { tcp: pod.tcp, udp: pod.udp }));
  }

  private async removePodNetwork(name: string): Promise<void> {
    this.agents.get(name)?.stop();
    this.agents.delete(name);
    await killNetnsProcesses(this.podNamespace(name));
    await sh('ip', ['netns', 'del', this.podNamespace(name)]);
    this.pods.delete(name);
  }

  private api(method: string, path: string, body?: unknown) {
    return this.srv!.api(method, path, body);
  }

  private async createPod(pod: PodSpec): Promise<void> {
    await this.api('POST', `/api/v1/namespaces/${pod.ns}/pods`, {
      metadata: { name: pod.name, labels: pod.labels },
      spec: {
        nodeName: `node-${pod.node}`,
        containers: [
          {
            name: 'app',
            image: 'registry.invalid/lab:1',
            ports: [
              ...pod.tcp.map((p) => ({ containerPort: p, protocol: 'TCP' })),
              ...pod.udp.map((p) => ({ containerPort: p, protocol: 'UDP' })),
            ],
          },
        ],
      },
    });
    // What the kubelet would report: there is none, so the lab writes the status.
    await this.api('PATCH', `/api/v1/namespaces/${pod.ns}/pods/${pod.name}/status`, {
      status: {
        phase: 'Running',
        podIP: pod.ip,
        podIPs: [{ ip: pod.ip }],
        hostIP: UNDERLAY[pod.node],
        hostIPs: [{ ip: UNDERLAY[pod.node] }],
      },
    });
  }

  private async registerCluster(): Promise<void> {
    await this.srv!.installPolicyCrds();
    for (const [name, labels] of Object.entries(NAMESPACES))
      await this.api('POST', '/api/v1/namespaces', { metadata: { name, labels } });
    for (const node of [1, 2] as const) {
      await this.api('POST', '/api/v1/nodes', {
        metadata: { name: `node-${node}`, labels: { 'kubernetes.io/hostname': `node-${node}` } },
        spec: { podCIDR: `10.244.${node}.0/24`, podCIDRs: [`10.244.${node}.0/24`] },
      });
      await this.api('PATCH', `/api/v1/nodes/node-${node}/status`, {
        status: { addresses: [{ type: 'InternalIP', address: UNDERLAY[node] }] },
      });
    }
    for (const pod of PODS) await this.createPod(pod);
    const backend = PODS.find((p) => p.name === SERVICE.name)!;
    await this.api('POST', `/api/v1/namespaces/${SERVICE.ns}/services`, {
      metadata: { name: SERVICE.name },
      spec: {
        clusterIP: SERVICE.ip,
        selector: backend.labels,
        ports: [{ name: 'http', port: SERVICE.port, targetPort: SERVICE.targetPort, protocol: 'TCP' }],
      },
    });
    await this.api('POST', `/apis/discovery.k8s.io/v1/namespaces/${SERVICE.ns}/endpointslices`, {
      metadata: { name: `${SERVICE.name}-lab`, labels: { 'kubernetes.io/service-name': SERVICE.name } },
      addressType: 'IPv4',
      endpoints: [
        {
          addresses: [backend.ip],
          conditions: { ready: true },
          nodeName: `node-${backend.node}`,
          targetRef: { kind: 'Pod', namespace: backend.ns, name: backend.name },
        },
      ],
      ports: [{ name: 'http', port: SERVICE.targetPort, protocol: 'TCP' }],
    });
    for (const p of POLICIES)
      await this.api(
        'POST',
        `/apis/networking.k8s.io/v1/namespaces/${p.metadata.namespace}/networkpolicies`,
        p,
      );
    await this.api(
      'POST',
      '/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies',
      CLUSTER_NETWORK_POLICY,
    );
    this.log(
      `cluster: ${Object.keys(NAMESPACES).length + 1} namespaces, 2 nodes, ${PODS.length} pods, 1 Service, ${POLICIES.length} NetworkPolicies, 1 ClusterNetworkPolicy`,
    );
  }

  private cliProcess(name: string, role: LabProcess['role'], args: string[], connects: Connection[]) {
    const p = startProcess(
      name,
      role,
      process.execPath,
      [CLI, ...args, '--metrics-listen', '127.0.0.1:0'],
      connects,
      join(this.dir, `${name}.log`),
    );
    this.procs.set(name, p);
    return p;
  }

  private async metricsReady(p: LabProcess): Promise<void> {
    await waitFor(
      () => `${p.name}'s metrics address; stderr:\n${p.stderr().slice(-2000)}`,
      () => {
        const m = /metrics at (http:\/\/\S+)/.exec(p.stderr());
        if (m) p.metricsUrl = m[1]!.endsWith('/metrics') ? m[1]! : `${m[1]!.replace(/\/$/, '')}/metrics`;
        return m !== null;
      },
      60_000,
    );
  }

  private kafkaArgs(): string[] {
    return ['--kafka', this.broker!.brokers.join(','), '--topic-prefix', 'lab.'];
  }

  private kafkaConnections(): Connection[] {
    return this.broker!.brokers.map((address) => ({ service: 'kafka' as const, address }));
  }

  private apiConnection(): Connection {
    return { service: 'kube-apiserver', address: this.srv!.server.replace(/^https:\/\//, '') };
  }

  private async startPipeline(): Promise<void> {
    const common = [
      '--kubeconfig',
      this.srv!.kubeconfigPath,
      '--brokers',
      this.broker!.brokers.join(','),
      '--topic-prefix',
      'lab.',
      '--group',
      'lab',
      '--partitions',
      '3',
    ];
    const alerts = join(this.dir, 'alerts.yaml');
    writeFileSync(
      alerts,
      `receivers:\n  - name: oncall\n    type: alertmanager\n    urls: ["${this.am!.url}"]\n    timeout: 5s\n`,
    );
    const judge = this.cliProcess(
      'judge',
      'processor',
      ['process', '--role', 'judge', ...common],
      [...this.kafkaConnections(), this.apiConnection()],
    );
    const recorder = this.cliProcess(
      'recorder',
      'processor',
      ['process', '--role', 'record', ...common, '--db', this.db, '--alerts', alerts, '--format', 'json'],
      [
        ...this.kafkaConnections(),
        this.apiConnection(),
        { service: 'alertmanager', address: this.am!.url.slice(7) },
      ],
    );
    for (const p of [judge, recorder]) {
      await this.metricsReady(p);
      await waitFor(
        () => `${p.name} to be assigned its partitions; stderr:\n${p.stderr().slice(-3000)}`,
        () => p.stderr().includes('"assigned partitions"'),
        180_000,
      );
    }
    for (const node of [1, 2] as const) await this.startConntrackCollector(node);
    const live = this.cliProcess(
      'live-node-1',
      'collector',
      [
        'collect',
        'live',
        '--iface',
        'vx0',
        '--netns',
        this.nodeNs[1],
        '--node',
        'node-1',
        '--snaplen',
        '128',
        '--idle-timeout',
        '5',
        ...this.kafkaArgs(),
        '--spool',
        join(this.dir, 'spool-live-node-1'),
      ],
      this.kafkaConnections(),
    );
    await this.metricsReady(live);
    await waitFor(
      () => `collect live to listen; stderr:\n${live.stderr().slice(-2000)}`,
      () => live.stderr().includes('collect live: listening'),
      60_000,
    );
    this.writeConnections();
    this.log('pipeline: 2 conntrack collectors, 1 live capture, a judge and the recorder');
  }

  async startConntrackCollector(node: 1 | 2): Promise<LabProcess> {
    const p = this.cliProcess(
      `conntrack-node-${node}`,
      'collector',
      [
        'collect',
        'conntrack',
        '--netns',
        this.nodeNs[node],
        '--node',
        `node-${node}`,
        ...this.kafkaArgs(),
        '--spool',
        join(this.dir, `spool-conntrack-node-${node}`),
        // Beside the spool, as in the DaemonSet: a restarted collector goes on with the open flows.
        '--state',
        join(this.dir, `spool-conntrack-node-${node}`, 'conntrack.state'),
        // The lines behind the records, to tell a flow conntrack never reported from one lost after.
        '--save-events',
        join(this.dir, `conntrack-node-${node}.events`),
      ],
      this.kafkaConnections(),
    );
    await this.metricsReady(p);
    await waitFor(
      () => `collect conntrack on node-${node} to listen; stderr:\n${p.stderr().slice(-2000)}`,
      () => p.stderr().includes('collect conntrack: listening'),
      60_000,
    );
    this.writeConnections();
    return p;
  }

  /** SIGKILL to the collector's whole process group (the collector and its conntrack children). */
  async killCollector(node: 1 | 2): Promise<void> {
    const p = this.procs.get(`conntrack-node-${node}`)!;
    killGroup(p, 'SIGKILL');
    await p.exited;
    this.procs.delete(p.name);
    this.ended.push(p);
  }

  /** The lab's own processes and the connections each is meant to make: connections.json. */
  connections(): { name: string; pid: number; netns: string; connects: Connection[] }[] {
    return [...this.procs.values()].map((p) => ({
      name: p.name,
      pid: p.pid,
      netns: 'host',
      connects: p.connects,
    }));
  }

  private writeConnections(): void {
    writeFileSync(join(this.dir, 'connections.json'), `${JSON.stringify(this.connections(), null, 2)}\n`);
  }

  // ----- traffic

  workloadOf(pod: string): string {
    const p = this.pods.get(pod)!;
    return `${p.ns}/${p.name}`;
  }

  async act(a: Action): Promise<ActionRecord> {
    const agent = this.agents.get(a.src);
    if (!agent) throw new Error(`lab: no pod ${a.src}`);
    const startedAt = Date.now();
    const reply = await agent.call({
      op: a.proto === 'TCP' ? 'tcp' : 'udp',
      host: a.host,
      port: a.port,
      data: `${a.src}->${a.dst}`,
      timeoutMs: a.outcome === 'timeout' ? 1500 : 5000,
    });
    const rec: ActionRecord = {
      ...a,
      srcWorkload: this.workloadOf(a.src),
      dstWorkload: this.workloadOf(a.dst),
      dstPort: a.host === SERVICE.ip ? SERVICE.targetPort : a.port,
      result: reply.result,
      startedAt,
      phase: this.phase,
      srcPort: reply.port ?? 0,
    };
    this.records.push(rec);
    return rec;
  }

  /** A TCP connection left open (ESTABLISHED in conntrack) until release(). */
  async hold(key: string, a: Action): Promise<void> {
    const agent = this.agents.get(a.src)!;
    const startedAt = Date.now();
    const reply = await agent.call({ op: 'hold', host: a.host, port: a.port });
    if (reply.result !== 'ok') throw new Error(`lab: hold ${key} failed: ${JSON.stringify(reply)}`);
    this.holds.set(key, {
      agent,
      handle: reply.handle!,
      action: a,
      startedAt,
      phase: this.phase,
      srcPort: reply.port ?? 0,
    });
  }

  async release(key: string): Promise<void> {
    const h = this.holds.get(key)!;
    const reply = await h.agent.call({ op: 'release', handle: h.handle });
    this.holds.delete(key);
    this.records.push({
      ...h.action,
      srcWorkload: this.workloadOf(h.action.src),
      dstWorkload: this.workloadOf(h.action.dst),
      dstPort: h.action.port,
      result: reply.result,
      startedAt: h.startedAt,
      phase: h.phase,
      srcPort: h.srcPort,
    });
  }

  /** The mix of one round, as the lab expects each flow to be judged in the current state. */
  roundActions(opts: { burst?: number; crossNodeOnly?: boolean } = {}): Action[] {
    const ip = (name: string) => this.pods.get(name)!.ip;
    const edited = this.cartEdited;
    const replaced = this.pods.has('etl');
    const list: (Action & { crossNode: boolean })[] = [];
    const add = (a: Omit<Action, 'host'> & { host?: string }, crossNode: boolean) =>
      list.push({ ...a, host: a.host ?? ip(a.dst), crossNode });
    for (let i = 0; i < (opts.burst ?? 1); i++)
      add(
        { src: 'frontend', dst: 'cart', port: 8080, proto: 'TCP', outcome: 'ok', expect: 'allowed' },
        false,
      );
    // Through the Service ClusterIP, DNATed by node-1, across the tunnel.
    add(
      {
        src: 'cart',
        dst: 'payments',
        host: SERVICE.ip,
        port: SERVICE.port,
        proto: 'TCP',
        outcome: 'ok',
        expect: 'allowed',
      },
      true,
    );
    add(
      { src: 'frontend', dst: 'payments', port: 9000, proto: 'TCP', outcome: 'ok', expect: 'violation' },
      true,
    );
    add(
      { src: 'payments', dst: 'postgres', port: 5432, proto: 'TCP', outcome: 'ok', expect: 'allowed' },
      false,
    );
    add({ src: 'payments', dst: 'coredns', port: 53, proto: 'UDP', outcome: 'ok', expect: 'allowed' }, true);
    add(
      {
        src: 'debug',
        dst: 'cart',
        port: 8080,
        proto: 'TCP',
        outcome: 'ok',
        expect: edited ? 'allowed' : 'violation',
      },
      false,
    );
    // Denied by the ClusterNetworkPolicy and dropped by the stand-in CNI: a denied attempt.
    add(
      {
        src: 'debug',
        dst: 'postgres',
        port: 5432,
        proto: 'TCP',
        outcome: 'timeout',
        expect: 'denied-attempt',
      },
      true,
    );
    // Refused by cart (nothing listens on 9999) and denied by its policy: a denied attempt.
    add(
      {
        src: 'frontend',
        dst: 'cart',
        port: 9999,
        proto: 'TCP',
        outcome: 'refused',
        expect: 'denied-attempt',
      },
      false,
    );
    // UDP to a closed port: ICMP port unreachable; conntrack sees no answer; denied by the dns policy.
    add(
      {
        src: 'frontend',
        dst: 'coredns',
        port: 5353,
        proto: 'UDP',
        outcome: 'refused',
        expect: 'denied-attempt',
      },
      false,
    );
    if (!replaced) {
      add(
        { src: 'scratch', dst: 'cart', port: 8080, proto: 'TCP', outcome: 'ok', expect: 'violation' },
        true,
      );
      add(
        {
          src: 'scratch',
          dst: 'postgres',
          port: 5432,
          proto: 'TCP',
          outcome: 'timeout',
          expect: 'denied-attempt',
        },
        false,
      );
    } else {
      add({ src: 'etl', dst: 'cart', port: 8080, proto: 'TCP', outcome: 'ok', expect: 'violation' }, true);
      add({ src: 'etl', dst: 'postgres', port: 5432, proto: 'TCP', outcome: 'ok', expect: 'allowed' }, false);
    }
    return list.filter((a) => !opts.crossNodeOnly || a.crossNode).map(({ crossNode: _c, ...a }) => a);
  }

  cartEdited = false;

  async round(opts: { burst?: number; crossNodeOnly?: boolean } = {}): Promise<ActionRecord[]> {
    return Promise.all(this.roundActions(opts).map((a) => this.act(a)));
  }

  /** Flows the store must hold once everything the lab did so far is exported (held ones count once released). */
  expectedFlows(): number {
    return this.records.length;
  }

  // ----- changes

  async editCartPolicy(): Promise<number> {
    const t = Date.now();
    await this.api('PUT', '/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/cart-from-frontend', {
      ...POLICIES[1],
      ...CART_EDIT,
    });
    this.cartEdited = true;
    await this.judgeSaw('NetworkPolicy', t);
    return t;
  }

  /** Deletes dev/scratch (and its network), then gives its address to data/etl. */
  async replaceScratch(): Promise<{ deletedAt: number; createdAt: number }> {
    const deletedAt = Date.now();
    await this.api('DELETE', '/api/v1/namespaces/dev/pods/scratch?gracePeriodSeconds=0');
    await this.removePodNetwork('scratch');
    // The CNI forgets the address of the pod that is gone.
    for (const name of CNI_ENFORCED)
      await inNs(this.podNamespace(name), 'nft', [
        'delete',
        'element',
        'inet',
        'lab_cni',
        'dev_pods',
        `{ ${REPLACEMENT.ip} }`,
      ]);
    await this.judgeSaw('Pod', deletedAt);
    const createdAt = Date.now();
    await this.addPodNetwork(REPLACEMENT);
    await this.agents.get(REPLACEMENT.name)!.ready;
    await this.createPod(REPLACEMENT);
    await this.judgeSaw('Pod', createdAt);
    return { deletedAt, createdAt };
  }

  /** Waits until the judge has received an event of `kind` at or after `since` (its metrics say when). */
  async judgeSaw(kind: string, since: number): Promise<void> {
    const judge = this.procs.get('judge')!;
    await waitFor(
      () => `the judge to see a ${kind} change`,
      async () => {
        const m = await metricsOf(judge);
        const age = m.get(`netpol_audit_inventory_last_event_age_seconds{kind="${kind}"}`);
        return age !== undefined && Date.now() - age * 1000 >= since;
      },
      60_000,
    );
  }

  async relists(name: 'judge' | 'recorder', kind: string): Promise<number> {
    return (
      (await metricsOf(this.procs.get(name)!)).get(`netpol_audit_inventory_relists_total{kind="${kind}"}`) ??
      0
    );
  }

  // ----- settling and reading the store

  /** Conntrack entries of pod traffic still in the nodes' tables, not counting ESTABLISHED (held) ones. */
  async pendingConntrack(): Promise<string[]> {
    const pending: string[] = [];
    for (const node of [1, 2] as const) {
      // Listing also reaps expired entries at once (the kernel's collector may take a while).
      const out = await inNs(this.nodeNs[node], 'conntrack', ['-L']).catch(() => '');
      for (const line of out.split('\n'))
        if (/src=10\.244\./.test(line) && !/ESTABLISHED/.test(line)) pending.push(`node-${node}: ${line}`);
    }
    return pending;
  }

  /** Until the nodes' conntrack tables hold no finished (or unanswered) pod connection. */
  async forgetFinished(timeoutMs = 180_000): Promise<void> {
    let pending: string[] = [];
    await waitFor(
      () => `conntrack to forget finished connections; left:\n${pending.join('\n')}`,
      async () => {
        pending = await this.pendingConntrack();
        return pending.length === 0;
      },
      timeoutMs,
    );
  }

  storedFlows(): number {
    return storedFlows(this.db);
  }

  /** Waits until the nodes forgot every finished connection and the store holds exactly `expectedFlows()`. */
  /**
   * With `allowLoss` (the steady traffic): when the store stays short of what was made for `lossAfterMs`
   * after the nodes forgot every connection, settle anyway; the caller accounts for the loss (the
   * kernel drops conntrack events under load, ENOBUFS; see the README). More than made always fails.
   */
  async settle(timeoutMs = 180_000, opts: { allowLoss?: boolean; lossAfterMs?: number } = {}): Promise<void> {
    const expected = this.expectedFlows();
    await this.forgetFinished(timeoutMs);
    if (opts.allowLoss) {
      let last = -1;
      let since = Date.now();
      await waitFor(
        () => `the store to hold ${expected} flows or stop growing (has ${this.storedFlows()})`,
        () => {
          const n = this.storedFlows();
          if (n !== last) {
            last = n;
            since = Date.now();
          }
          return n >= expected || Date.now() - since > (opts.lossAfterMs ?? 30_000);
        },
        timeoutMs,
      );
      if (this.storedFlows() > expected)
        throw new Error(
          `lab: the store holds ${this.storedFlows()} flows, more than the ${expected} made; conversations counted twice (tuple: starts):\n${this.twiceCounted().join('\n')}`,
        );
      return;
    }
    await waitFor(
      () =>
        `the store to hold ${expected} flows (has ${this.storedFlows()}); judge:\n${this.procs.get('judge')?.stderr().slice(-1500)}\nrecorder:\n${this.procs.get('recorder')?.stderr().slice(-1500)}`,
      () => this.storedFlows() === expected,
      timeoutMs,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nnot in the store:\n${this.missingFlows().slice(0, 40).join('\n')}`);
    });
  }

  /** What the lab made that the store has no flow for (by the client's address and port). */
  missingFlows(): string[] {
    return this.missingRecords().map(
      (r) =>
        `${new Date(r.startedAt).toISOString()} ${r.phase} ${r.src}:${r.srcPort} > ${r.dst} ${r.proto}/${r.port} (${r.result})`,
    );
  }

  /** The conntrack lines the nodes' collectors read for a record's connection (by its client port). */
  conntrackLines(r: ActionRecord): string[] {
    const out: string[] = [];
    for (const node of [1, 2]) {
      const file = join(this.dir, `conntrack-node-${node}.events`);
      if (!existsSync(file)) continue;
      const needle = `sport=${r.srcPort} dport=${r.port} `;
      for (const line of readFileSync(file, 'utf8').split('\n'))
        if (line.includes(needle)) out.push(`node-${node}: ${line}`);
    }
    return out;
  }

  /** The records the store has no flow for, by the client's address and port (agent.mjs reads it for every attempt). */
  missingRecords(): ActionRecord[] {
    const db = new Database(this.db, { readonly: true, fileMustExist: true });
    try {
      const ends = new Set<string>();
      for (const r of db.prepare('SELECT tuple FROM flow_identities').all() as { tuple: string }[]) {
        const [proto, a, b] = r.tuple.split('|');
        ends.add(`${proto}|${a}`);
        ends.add(`${proto}|${b}`);
      }
      return this.records.filter(
        (r) => r.srcPort !== 0 && !ends.has(`${r.proto === 'TCP' ? 6 : 17}|${this.ipOf(r)}#${r.srcPort}`),
      );
    } finally {
      db.close();
    }
  }

  /** Conversations whose first record the store counted twice (two identities of one tuple with seq 0). */
  twiceCounted(): string[] {
    const db = new Database(this.db, { readonly: true, fileMustExist: true });
    try {
      return (
        db
          .prepare(
            `SELECT tuple, group_concat(start, ' ') AS starts, group_concat(run, ' ') AS runs FROM flow_identities
             WHERE seq = 0 GROUP BY tuple HAVING count(*) > 1 LIMIT 40`,
          )
          .all() as { tuple: string; starts: string; runs: string }[]
      ).map((r) => `${r.tuple}: ${r.starts} (runs ${r.runs})`);
    } finally {
      db.close();
    }
  }

  private ipOf(r: ActionRecord): string {
    return [...PODS, REPLACEMENT].find((p) => p.name === r.src)!.ip;
  }

  /** Flows in the store per source, destination, protocol, port and classification. */
  storeTable(): Record<string, number> {
    const db = new Database(this.db, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      const out: Record<string, number> = {};
      const add = (rows: unknown[], cls: string) => {
        for (const r of rows as { s: string; d: string; p: string; port: number; n: number }[])
          out[`${r.s} > ${r.d} ${r.p}/${r.port} ${cls}`] =
            (out[`${r.s} > ${r.d} ${r.p}/${r.port} ${cls}`] ?? 0) + r.n;
      };
      const q = (table: string, where = '') =>
        db
          .prepare(
            `SELECT src_workload s, dst_workload d, proto p, port, sum(flows) n FROM ${table} ${where} GROUP BY 1,2,3,4`,
          )
          .all();
      add(q('edges_hourly', "WHERE result = 'allowed'"), 'allowed');
      add(q('violations'), 'violation');
      add(q('denied_attempts'), 'denied-attempt');
      return out;
    } finally {
      db.close();
    }
  }

  /** The same table from what the lab did and expected. */
  expectedTable(records: ActionRecord[] = this.records): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of records) {
      const k = `${r.srcWorkload} > ${r.dstWorkload} ${r.proto}/${r.dstPort} ${r.expect}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  // ----- memory

  private sample(): void {
    const t = Date.now();
    for (const p of this.procs.values()) {
      const kib = rssKiB(p.pid);
      if (kib !== undefined) this.samples.push({ t, name: p.name, pid: p.pid, kib });
    }
  }

  // ----- tear-down

  /** SIGTERM to the collectors (they flush what is open), then to the processors; exit codes. */
  async stopPipeline(): Promise<Record<string, number | null>> {
    const codes: Record<string, number | null> = {};
    const stop = async (p: LabProcess) => {
      p.child.kill('SIGTERM');
      codes[p.name] = await Promise.race([p.exited, sleep(60_000).then(() => -999)]);
      if (codes[p.name] === -999) killGroup(p, 'SIGKILL');
      this.procs.delete(p.name);
      this.ended.push(p);
    };
    const collectors = [...this.procs.values()].filter((p) => p.role === 'collector');
    await Promise.all(collectors.map(stop));
    for (const name of ['judge', 'recorder']) {
      const p = this.procs.get(name);
      if (!p) continue;
      // Let the processors take in what the collectors flushed at exit.
      if (name === 'judge') await this.drained();
      await stop(p);
    }
    return codes;
  }

  /** Until the judge consumed every record the collectors sent, and the recorder every verdict. */
  private async drained(): Promise<void> {
    const sent = () =>
      this.ended
        .filter((p) => p.role === 'collector')
        .reduce((n, p) => {
          const m = /(\d+) records, (\d+) sent/.exec(p.stderr());
          return n + (m ? Number(m[2]) : 0);
        }, 0);
    let previous = -1;
    await waitFor(
      () => 'the processors to take in the collectors’ last records',
      async () => {
        const j = await metricsOf(this.procs.get('judge')!);
        const r = await metricsOf(this.procs.get('recorder')!);
        const judged = j.get('netpol_audit_messages_consumed_total') ?? 0;
        const recorded = r.get('netpol_audit_messages_consumed_total') ?? 0;
        const done = judged === recorded && judged === previous && sent() > 0;
        previous = judged;
        return done;
      },
      120_000,
    );
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.sampler);
    for (const p of this.procs.values()) killGroup(p, 'SIGKILL');
    await Promise.all([...this.procs.values()].map((p) => Promise.race([p.exited, sleep(5000)])));
    for (const a of this.agents.values()) a.stop();
    await removeLab(this.prefix);
    await Promise.allSettled([this.am?.stop(), this.srv?.stop(), this.broker?.stop()]);
    this.am?.cleanup();
  }
}

export function storedFlows(dbPath: string): number {
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      return (db.prepare('SELECT coalesce(sum(flows), 0) AS n FROM edges_hourly').get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}

async function killNetnsProcesses(ns: string): Promise<void> {
  try {
    for (const pid of (await sh('ip', ['netns', 'pids', ns])).split('\n').filter((l) => l.trim() !== ''))
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {}
  } catch {}
}

/** Removes every network namespace named `prefix-*` (the nodes' links and tunnel go with them). */
async function removeLab(prefix: string): Promise<void> {
  const names = (await sh('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0] ?? '');
  // Pods first, nodes last: a veth goes with either end.
  const ours = names
    .filter((n) => n.startsWith(`${prefix}-`))
    .sort((a, b) => Number(/-n\d$/.test(a)) - Number(/-n\d$/.test(b)));
  for (const ns of ours) {
    await killNetnsProcesses(ns);
    await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}

/** Namespaces of a lab whose process is gone (killed before its clean-up). Only npl-<pid>-* is touched. */
export async function removeStaleLabs(): Promise<string[]> {
  const names = (await sh('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0] ?? '');
  const stale = new Set<string>();
  for (const name of names) {
    const m = /^npl-(\d+)-/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      stale.add(`npl-${m[1]}`);
    }
  }
  for (const prefix of stale) await removeLab(prefix);
  return [...stale];
}

// ---------------------------------------------------------------------------------------------------
// The scenario: what the system test asserts and what `lab.ts` shows a user

export interface Checkpoint {
  name: string;
  expected: number;
  stored: number;
  at: number;
  /** The flows made that the store did not hold then (only the steady traffic may have some). */
  missing: ActionRecord[];
}

export interface ScenarioResult {
  checkpoints: Checkpoint[];
  policyEditAt: number;
  replaced: { deletedAt: number; createdAt: number };
  apiRestartMs: number;
  relistsAfterRestart: number;
  steady: { rounds: number; flows: number; ms: number };
  durations: Record<string, number>;
}

export async function runScenario(
  lab: Lab,
  opts: { steadyMs: number; burst?: number },
): Promise<ScenarioResult> {
  const checkpoints: Checkpoint[] = [];
  const durations: Record<string, number> = {};
  const checkpoint = async (name: string, allowLoss = false) => {
    const t0 = Date.now();
    // After the steady traffic the pipeline may still be working off a backlog on a loaded machine:
    // the wait ends as soon as the store holds everything or stops growing for 30 s.
    await lab.settle(allowLoss ? 600_000 : 180_000, { allowLoss });
    durations[`settle ${name}`] = Date.now() - t0;
    const c = {
      name,
      expected: lab.expectedFlows(),
      stored: lab.storedFlows(),
      at: Date.now(),
      missing: allowLoss ? lab.missingRecords() : [],
    };
    checkpoints.push(c);
    lab.log(
      c.stored === c.expected
        ? `${name}: ${c.stored} flows stored, as expected`
        : `${name}: ${c.stored} of ${c.expected} flows stored (${c.expected - c.stored} lost)`,
    );
  };
  let t = Date.now();

  // 1. The cluster as built.
  lab.phase = 'baseline';
  await lab.round();
  await lab.round();
  await checkpoint('baseline');

  // 2. A policy edit: debug may now reach cart. A round just before the edit is exported (conntrack
  //    DESTROY) and judged after it, yet must be judged as of its own time.
  lab.phase = 'before-edit';
  await lab.round();
  lab.phase = 'after-edit';
  const policyEditAt = await lab.editCartPolicy();
  await lab.round();
  await checkpoint('policy edit');

  // 3. A collector SIGKILLed and restarted. Connections open across the kill are reported by the new
  //    collector (its table dump, then their end); traffic while it is down crosses the tunnel, so
  //    node-1 sees it. (Traffic that starts and ends on node-2 while its only collector is down is
  //    lost: conntrack keeps no history; see the README.)
  lab.phase = 'collector-kill';
  const pg = { src: 'payments', dst: 'postgres', host: lab.pods.get('postgres')!.ip, port: 5432 };
  await lab.hold('before-kill', { ...pg, proto: 'TCP', outcome: 'ok', expect: 'allowed' });
  await lab.round({ crossNodeOnly: true });
  await lab.settle();
  t = Date.now();
  await lab.killCollector(2);
  await lab.round({ crossNodeOnly: true });
  await lab.hold('during-kill', { ...pg, proto: 'TCP', outcome: 'ok', expect: 'allowed' });
  // Only the held connections are open when the collector comes back.
  await lab.forgetFinished();
  await lab.startConntrackCollector(2);
  durations['collector down'] = Date.now() - t;
  await lab.round();
  // Open across the restart: the new collector reports each from its table dump at once (seq 0),
  // then its end (seq 1); one flow each in the store.
  await lab.release('before-kill');
  await lab.release('during-kill');
  await checkpoint('collector kill');

  // 4. The API server restarted: the processors keep judging, and follow it again afterwards.
  lab.phase = 'apiserver-restart';
  const relistsBefore = await lab.relists('judge', 'Pod');
  t = Date.now();
  const restarting = lab.srv!.restart();
  await lab.round();
  await restarting;
  const apiRestartMs = Date.now() - t;
  await waitFor(
    () => 'the judge to relist pods from the restarted API server',
    async () => (await lab.relists('judge', 'Pod')) > relistsBefore,
  );
  const relistsAfterRestart = (await lab.relists('judge', 'Pod')) - relistsBefore;
  await lab.round();
  await checkpoint('apiserver restart');

  // 5. dev/scratch deleted; its address given to data/etl.
  lab.phase = 'before-replace';
  await lab.round();
  lab.phase = 'after-replace';
  const replaced = await lab.replaceScratch();
  await lab.round();
  await checkpoint('pod replaced');

  // 6. Steady traffic.
  lab.phase = 'steady';
  t = Date.now();
  const before = lab.records.length;
  let rounds = 0;
  while (Date.now() - t < opts.steadyMs) {
    await lab.round({ burst: opts.burst ?? 10 });
    rounds++;
    await sleep(500);
  }
  const steadyMs = Date.now() - t;
  await checkpoint('steady', true);
  return {
    checkpoints,
    policyEditAt,
    replaced,
    apiRestartMs,
    relistsAfterRestart,
    steady: { rounds, flows: lab.records.length - before, ms: steadyMs },
    durations,
  };
}

/** RSS over time per process: one row per tenth of the run (mean of the samples in it), in MiB. */
export function memoryTable(samples: Lab['samples'], from: number, to: number, rows = 10): string {
  const names = [...new Set(samples.map((s) => s.name))];
  const width = (to - from) / rows;
  const lines = [['minute', ...names].map((c) => c.padStart(18)).join('')];
  for (let i = 0; i < rows; i++) {
    const a = from + i * width;
    const b = a + width;
    const cells = names.map((n) => {
      const xs = samples.filter((s) => s.name === n && s.t >= a && s.t < b).map((s) => s.kib);
      return xs.length ? (xs.reduce((x, y) => x + y, 0) / xs.length / 1024).toFixed(1) : '-';
    });
    if (cells.every((c) => c === '-')) continue;
    lines.push([((a - from) / 60_000).toFixed(1), ...cells].map((c) => c.padStart(18)).join(''));
  }
  return lines.join('\n');
}

/** Mean RSS of the first and last third of [from, to), per process (processes alive throughout). */
export function memoryGrowth(samples: Lab['samples'], from: number, to: number) {
  const third = (to - from) / 3;
  const out: Record<string, { first: number; last: number; ratio: number; samples: number }> = {};
  for (const name of new Set(samples.map((s) => s.name))) {
    const xs = samples.filter((s) => s.name === name && s.t >= from && s.t < to);
    const mean = (ys: typeof xs) => ys.reduce((x, y) => x + y.kib, 0) / Math.max(1, ys.length);
    const first = mean(xs.filter((s) => s.t < from + third));
    const last = mean(xs.filter((s) => s.t >= to - third));
    out[name] = { first, last, ratio: last / first, samples: xs.length };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// As a program

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const minutes = Number(args[args.indexOf('--minutes') + 1] ?? 1);
  const steadyMs = (args.includes('--minutes') ? minutes : Number(process.env.LAB_MINUTES ?? 1)) * 60_000;
  const keep = args.includes('--keep');
  const lab = new Lab();
  let stopping = false;
  const bail = () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write('lab: stopping, cleaning up\n');
    void lab.stop().then(() => process.exit(130));
  };
  process.on('SIGINT', bail);
  process.on('SIGTERM', bail);
  try {
    await lab.start(args.includes('--am-port') ? Number(args[args.indexOf('--am-port') + 1]) : undefined);
    const r = await runScenario(lab, { steadyMs });
    const start = r.checkpoints[r.checkpoints.length - 2]!.at;
    const end = r.checkpoints[r.checkpoints.length - 1]!.at;
    console.log(`\nflows per source, destination, port and verdict (store = expected):`);
    const table = lab.storeTable();
    for (const k of Object.keys(table).sort()) console.log(`  ${String(table[k]).padStart(6)}  ${k}`);
    console.log(
      `\nsteady traffic: ${r.steady.flows} flows in ${r.steady.rounds} rounds, ${(r.steady.ms / 1000).toFixed(0)} s`,
    );
    console.log(`memory (RSS, MiB) during the steady traffic:\n${memoryTable(lab.samples, start, end)}`);
    console.log(
      `\nAlertmanager: ${lab.am!.url}   store: ${lab.db}   connections: ${join(lab.dir, 'connections.json')}`,
    );
    console.log(`  node ${CLI} violations --db ${lab.db}`);
    console.log(`  node ${CLI} violations --attempts --db ${lab.db}`);
    if (keep) {
      console.log('\n--keep: the lab keeps running; Ctrl-C tears it down.');
      await new Promise(() => undefined);
    }
    const codes = await lab.stopPipeline();
    console.log(`\nexit codes: ${JSON.stringify(codes)}`);
    console.log(
      `after the collectors flushed and the processors stopped: ${lab.storedFlows()} flows stored (expected ${lab.expectedFlows()})`,
    );
    console.log(`  node ${CLI} rules --unused --db ${lab.db}`);
  } finally {
    await lab.stop();
    if (!keep) console.log(`lab torn down; the store stays in ${lab.dir}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`lab: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ROOT } from '../support/cli.js';
import { requirePrograms } from '../support/programs.js';

/**
 * A tiny "node" built from network namespaces: pods A and B on their own subnets, routed through
 * a node namespace (ip_forward) whose nftables ruleset uses conntrack, so conntrack tracks the
 * pod-to-pod traffic there (conntrack hooks are only registered when a ruleset needs them). A
 * "Service" 10.96.0.10:80 is DNATed to pod B's 8080, as kube-proxy would. Nothing is created
 * outside these namespaces: the veth pairs are made inside the node namespace.
 */

const run = promisify(execFile);

export interface Topology {
  node: string;
  podA: string;
  podB: string;
  ip: { a: string; b: string; nodeA: string; nodeB: string; service: string };
  /** Interface names inside the node namespace. */
  iface: { a: string; b: string };
}

export async function sh(file: string, args: string[]): Promise<string> {
  const { stdout } = await run(file, args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

export const inNs = (ns: string, file: string, args: string[]) =>
  sh('ip', ['netns', 'exec', ns, file, ...args]);

/** The tools the test drives; a missing one fails the test with what to install. */
export async function checkTools(): Promise<void> {
  requirePrograms('the network-namespace test', ['ip', 'nft', 'conntrack', 'tcpdump', 'sysctl']);
  if (process.getuid?.() !== 0)
    throw new Error('the network-namespace test must run as root (it creates namespaces)');
}

export async function createTopology(prefix: string): Promise<Topology> {
  const t: Topology = {
    node: `${prefix}-node`,
    podA: `${prefix}-a`,
    podB: `${prefix}-b`,
    ip: { a: '10.240.1.2', b: '10.240.2.2', nodeA: '10.240.1.1', nodeB: '10.240.2.1', service: '10.96.0.10' },
    iface: { a: 'vpa', b: 'vpb' },
  };
  for (const ns of [t.node, t.podA, t.podB]) await sh('ip', ['netns', 'add', ns]);
  const n = (args: string[]) => sh('ip', ['-n', t.node, ...args]);
  await n(['link', 'set', 'lo', 'up']);
  for (const [pod, iface, podIp, nodeIp] of [
    [t.podA, t.iface.a, t.ip.a, t.ip.nodeA],
    [t.podB, t.iface.b, t.ip.b, t.ip.nodeB],
  ] as const) {
    await n(['link', 'add', iface, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod]);
    await n(['addr', 'add', `${nodeIp}/24`, 'dev', iface]);
    await n(['link', 'set', iface, 'up']);
    const p = (args: string[]) => sh('ip', ['-n', pod, ...args]);
    await p(['link', 'set', 'lo', 'up']);
    await p(['addr', 'add', `${podIp}/24`, 'dev', 'eth0']);
    await p(['link', 'set', 'eth0', 'up']);
    await p(['route', 'add', 'default', 'via', nodeIp]);
  }
  await inNs(t.node, 'sysctl', [
    '-qw',
    'net.ipv4.ip_forward=1',
    // Packet and byte counts in the events (at DESTROY).
    'net.netfilter.nf_conntrack_acct=1',
    // Short timeouts so closed and answered flows are destroyed within the test.
    'net.netfilter.nf_conntrack_tcp_timeout_time_wait=1',
    'net.netfilter.nf_conntrack_tcp_timeout_close=1',
    'net.netfilter.nf_conntrack_udp_timeout=1',
    'net.netfilter.nf_conntrack_udp_timeout_stream=1',
  ]);
  const ruleset = `
table inet npa_filter {
  chain forward_pods {
    type filter hook forward priority 0; policy accept;
    ct state established,related accept
  }
}
table ip npa_nat {
  chain service_dnat {
    type nat hook prerouting priority -100;
    ip daddr ${t.ip.service} tcp dport 80 dnat to ${t.ip.b}:8080
  }
}
`;
  await new Promise<void>((resolve, reject) => {
    const nft = spawn('ip', ['netns', 'exec', t.node, 'nft', '-f', '-'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let err = '';
    nft.stderr.on('data', (d) => {
      err += d;
    });
    nft.on('error', reject);
    nft.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`nft -f failed: ${err}`))));
    nft.stdin.end(ruleset);
  });
  return t;
}

export async function destroyTopology(t: Pick<Topology, 'node' | 'podA' | 'podB'>): Promise<void> {
  for (const ns of [t.podA, t.podB, t.node]) {
    // Whatever still runs inside (a server whose kill was missed) would keep the namespace alive.
    try {
      const pids = (await sh('ip', ['netns', 'pids', ns])).split('\n').filter((p) => p.trim() !== '');
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {}
      }
    } catch {}
    try {
      await sh('ip', ['netns', 'del', ns]);
    } catch {}
  }
}

/** A long-running child; `ready` resolves when its output matches. */
export interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  waitFor(re: RegExp, where: 'stdout' | 'stderr', timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function start(
  file: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Proc {
  const child = spawn(file, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: opts.cwd,
    env: opts.env ?? process.env,
  });
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    for (const w of waiters) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(re, where, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (re.test(where === 'stdout' ? out : err)) {
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(
          () =>
            reject(new Error(`timed out waiting for ${re} from ${file} ${args.join(' ')}; stderr: ${err}`)),
          timeoutMs,
        );
        waiters.push(check);
        child.on('close', () => {
          if (!re.test(where === 'stdout' ? out : err)) {
            clearTimeout(timer);
            reject(new Error(`${file} ${args.join(' ')} ended before ${re}; stderr: ${err}`));
          }
        });
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * Namespaces left by an earlier run that was killed before its clean-up (`npa-<pid>-*` whose
 * process is gone). Only this test's naming scheme is touched.
 */
export async function removeStaleTopologies(): Promise<string[]> {
  const names = (await sh('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0] ?? '');
  const stale = new Set<string>();
  for (const name of names) {
    const m = /^npa-(\d+)-(node|a|b)$/.exec(name);
    if (!m) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      alive = false;
    }
    if (!alive) stale.add(`npa-${m[1]}`);
  }
  for (const prefix of stale) {
    await destroyTopology({ node: `${prefix}-node`, podA: `${prefix}-a`, podB: `${prefix}-b` });
  }
  return [...stale];
}

/** The traffic ends (peer.mjs), run inside a pod namespace with `ip netns exec NS node PEER MODE ...`. */
export const PEER = resolve(dirname(fileURLToPath(import.meta.url)), 'peer.mjs');

/**
 * What one namespace test holds: its topology (named after this process), a scratch directory and
 * the processes it started. `up` builds them, after removing what a killed earlier run left;
 * `down` stops every tracked process and removes the namespaces and the directory.
 */
export class NamespaceTest {
  readonly prefix = `npa-${process.pid}`;
  readonly procs: Proc[] = [];
  dir = '';

  async up(dirPrefix: string): Promise<Topology> {
    await checkTools();
    await removeStaleTopologies();
    this.dir = mkdtempSync(join(tmpdir(), dirPrefix));
    return createTopology(this.prefix);
  }

  track(p: Proc): Proc {
    this.procs.push(p);
    return p;
  }

  /** `netpol-audit ARGS` from the sources, tracked. */
  cli(args: string[]): Proc {
    return this.track(
      start(process.execPath, ['--import', 'tsx', resolve(ROOT, 'cli/index.ts'), ...args], {
        cwd: ROOT,
        env: { ...process.env, NETPOL_AUDIT_LOG_PRETTY: '0' },
      }),
    );
  }

  async down(): Promise<void> {
    for (const p of this.procs)
      await Promise.race([p.stop('SIGKILL'), new Promise((r) => setTimeout(r, 2000))]);
    const x = this.prefix;
    await destroyTopology({ node: `${x}-node`, podA: `${x}-a`, podB: `${x}-b` });
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

import { CLUSTER_OPTIONS, clusterOptionsFrom, openCluster } from '../../pipeline/cluster.js';
import { ipFamily, normalizeIp } from '../../processor/inventory/index.js';
import type { PodModel, ServiceModel } from '../../processor/inventory/model.js';
import { explainFlow, type FlowExplanation } from '../../processor/judge/index.js';
import type { SideExplanation } from '../../processor/policy/types.js';
import type { FlowRecord } from '../../schema/flow-record.js';
import { parse } from '../args.js';
import { type Command, EXIT_INPUT_PROBLEMS, EXIT_OK, UsageError } from '../command.js';
import { reportIssues } from './check.js';

const USAGE = `usage: netpol-audit explain --cluster SNAPSHOT --from WHO --to WHO [--port N] [--protocol P] [--json]

Explains what the NetworkPolicies of a cluster snapshot say about one connection: the verdict, then for
the source (egress) and the destination (ingress) the policies that select the pod, every rule of them
with whether and why it matched, and the conclusion.

  --cluster FILE         kubectl get ... -o yaml|json output; repeat to combine files (required)
  --from WHO             namespace/pod or an IP address
  --to WHO               namespace/pod, namespace/service, svc:namespace/service, or an IP address
                         (a Service is explained for each of its ready backends)
  --port N               destination port (required for TCP, UDP and SCTP)
  --protocol P           TCP (default), UDP, SCTP, ICMP or ICMPv6
  --json                 print the structured explanation
  --cluster-domain D, --ipblock-matches-pods B, --host-network M   as for check`;

/** Stands for the missing ClusterIP of a headless Service: clients reach its pods directly, and each is explained. */
const HEADLESS = '0.0.0.0';

const PROTOCOLS = ['TCP', 'UDP', 'SCTP', 'ICMP', 'ICMPv6'] as const;
type ProtocolArg = (typeof PROTOCOLS)[number];

type Party =
  | { kind: 'ip'; ip: string }
  | { kind: 'pod'; pod: PodModel }
  | { kind: 'service'; service: ServiceModel };

function pickIp(ips: string[], family: 4 | 6 | undefined, what: string): string {
  const ip = family === undefined ? ips[0] : ips.find((a) => ipFamily(a) === family);
  if (!ip) {
    throw new UsageError(
      family === undefined
        ? `${what} has no IP address in the snapshot`
        : `${what} has no IPv${family} address`,
    );
  }
  return ip;
}

export const explainCommand: Command = {
  path: ['explain'],
  summary: 'explain the policy verdict for one connection, rule by rule',
  usage: USAGE,
  async run(argv) {
    const { values } = parse(argv, {
      ...CLUSTER_OPTIONS,
      from: { type: 'string' },
      to: { type: 'string' },
      port: { type: 'string' },
      protocol: { type: 'string' },
      json: { type: 'boolean' },
    });
    const options = clusterOptionsFrom(values, false);
    if (!values.from) throw new UsageError('--from is required');
    if (!values.to) throw new UsageError('--to is required');
    const protocol = (values.protocol ?? 'TCP') as ProtocolArg;
    if (!PROTOCOLS.includes(protocol))
      throw new UsageError(`--protocol must be one of ${PROTOCOLS.join(', ')}`);
    let port: number | undefined;
    if (values.port !== undefined) {
      port = Number(values.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port must be 1-65535`);
    } else if (protocol === 'TCP' || protocol === 'UDP' || protocol === 'SCTP') {
      throw new UsageError(`--port is required for ${protocol}`);
    }
    const cluster = await openCluster(options);
    const problems = reportIssues('explain', cluster.issues);
    const ctx = cluster.snapshot!;
    const inv = ctx.inventory;

    const party = (who: string, allowService: boolean): Party => {
      const ip = normalizeIp(who);
      if (ip) return { kind: 'ip', ip };
      let ref = who;
      let serviceOnly = false;
      if (ref.startsWith('svc:')) {
        ref = ref.slice(4);
        serviceOnly = true;
      }
      if (!/^[^/]+\/[^/]+$/.test(ref))
        throw new UsageError(`'${who}' is neither an IP address nor namespace/name`);
      const pod = serviceOnly ? undefined : inv.pod(ref);
      if (pod) return { kind: 'pod', pod };
      const service = allowService ? inv.service(ref) : undefined;
      if (service) return { kind: 'service', service };
      throw new UsageError(`no ${allowService ? 'pod or service' : 'pod'} '${ref}' in the snapshot`);
    };
    const from = party(values.from, false);
    const to = party(values.to, true);

    // Pick addresses of one family, as a real connection would have.
    const toFamily = to.kind === 'ip' ? ipFamily(to.ip) : undefined;
    let srcIp: string;
    let dstIp: string;
    let service: ServiceModel | undefined;
    const toIps = (f: 4 | 6 | undefined): string =>
      to.kind === 'ip'
        ? to.ip
        : to.kind === 'pod'
          ? pickIp(to.pod.ips, f, `pod ${values.to}`)
          : to.service.clusterIPs.length > 0
            ? pickIp(to.service.clusterIPs, f, `service ${values.to}`)
            : HEADLESS;
    if (from.kind === 'ip') {
      srcIp = from.ip;
      dstIp = toIps(ipFamily(from.ip));
    } else if (from.kind === 'pod') {
      srcIp = pickIp(from.pod.ips, toFamily, `pod ${values.from}`);
      dstIp = toIps(ipFamily(srcIp));
    } else {
      throw new UsageError('--from must be a pod or an IP address');
    }
    if (to.kind === 'service') service = to.service;
    const flow: Pick<FlowRecord, 'proto' | 'src' | 'dst' | 'start'> = {
      proto: protocol,
      src: { ip: srcIp },
      dst: port === undefined ? { ip: dstIp } : { ip: dstIp, port },
      start: 0,
    };
    const explanation = explainFlow(flow, inv, ctx.index, service);
    if (values.json) process.stdout.write(`${JSON.stringify(explanation, null, 2)}\n`);
    else process.stdout.write(renderExplanation(explanation, protocol));
    return problems ? EXIT_INPUT_PROBLEMS : EXIT_OK;
  },
};

function who(e: { ip: string; pod?: string; name?: string; service?: string; kind: string }): string {
  if (e.pod) return `${e.pod} (${e.ip})`;
  if (e.service) return `service ${e.service} (${e.ip === HEADLESS ? 'headless' : e.ip})`;
  if (e.kind === 'node') return `node ${e.name} (${e.ip})`;
  return `${e.ip} (outside the cluster's pods)`;
}

function renderTier(tier: 'Admin' | 'Baseline', side: SideExplanation, lines: string[]): void {
  for (const r of side.tierRules ?? []) {
    if (r.tier !== tier) continue;
    const prio = r.priority !== undefined ? ` (priority ${r.priority})` : '';
    lines.push(
      `    [${tier.toLowerCase()}: ${r.matched ? 'matched' : 'no match'}] ${r.kind} ${r.policy}${prio} ${r.direction}[${r.rule}]: ${r.summary}`,
    );
    lines.push(`        ${r.why}`);
  }
}

function renderSide(title: string, side: SideExplanation, lines: string[]): void {
  lines.push(`  ${title} — ${side.subject}`);
  renderTier('Admin', side, lines);
  if (side.decidedBy === 'admin') {
    lines.push(`    => ${side.allowed ? 'allowed' : 'DENIED'} (${side.reason})`);
    return;
  }
  if (!side.isolated) {
    lines.push(`    no ${side.tierRules ? 'NetworkPolicy' : 'policy'} isolates it for ${title}`);
  } else {
    lines.push(`    isolated by: ${side.isolatedBy.join(', ')}`);
    if (side.rules.length === 0) lines.push('    (the isolating policies have no rules for this direction)');
    for (const r of side.rules) {
      lines.push(
        `    [${r.matched ? 'matched' : 'no match'}] ${r.policy} ${r.direction}[${r.rule}]: ${r.summary}`,
      );
      lines.push(`        ${r.why}`);
    }
  }
  if (!side.isolated) renderTier('Baseline', side, lines);
  lines.push(`    => ${side.allowed ? 'allowed' : 'DENIED'} (${side.reason})`);
}

function renderExplanation(x: FlowExplanation, protocol: string): string {
  const lines: string[] = [];
  const port = x.dst.port !== undefined ? `:${x.dst.port}` : '';
  lines.push(`${protocol} ${who(x.src)} -> ${who(x.dst)}${port}`);
  lines.push(`verdict: ${x.verdict.result.toUpperCase()}`);
  if (x.note === 'service-without-endpoints') {
    lines.push('note: the service has no ready backend for this port; only the source side can be judged');
  } else if (x.note === 'service-port-not-exposed') {
    lines.push('note: the service does not expose this port; only the source side can be judged');
  }
  for (const t of x.targets) {
    lines.push('');
    const tport = t.port !== undefined ? `:${t.port}` : '';
    lines.push(
      `to ${t.target}${t.target === t.ip ? '' : ` (${t.ip})`}${tport}: ${t.explanation.verdict.allowed ? 'allowed' : 'DENIED'}`,
    );
    renderSide('egress', t.explanation.egress, lines);
    renderSide('ingress', t.explanation.ingress, lines);
  }
  return `${lines.join('\n')}\n`;
}

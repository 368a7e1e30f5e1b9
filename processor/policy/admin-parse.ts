import { type ErrorCode, type InputIssue, issue } from '../../lib/errors.js';
import { isJsonObject } from '../../lib/json.js';
import type { L4Protocol } from '../inventory/model.js';
import type { AdminAction, AdminKind, AdminPeer, AdminPort, AdminTier } from './admin-types.js';
import { type Direction, portNameProblem } from './compile.js';
import { type Cidr, cidrHasHostBits, parseCidr, parseIp } from './ip.js';
import { parseSelector, type Selector, type SelectorProblem } from './selector.js';

/**
 * Validation of one cluster-scoped policy object (AdminNetworkPolicy, BaselineAdminNetworkPolicy,
 * ClusterNetworkPolicy): its subject, peers, ports and rules, each problem with its field (admin.ts
 * compiles what passes).
 */

const GROUP = 'policy.networking.k8s.io/';
export const KIND_ORDER: Record<string, number> = {
  AdminNetworkPolicy: 0,
  ClusterNetworkPolicy: 1,
  BaselineAdminNetworkPolicy: 2,
};

interface Ctx {
  object: string;
  problems: InputIssue[];
  record: number;
}

function problem(
  ctx: Ctx,
  code: ErrorCode,
  field: string,
  message: string,
  severity: 'error' | 'warning' = 'error',
) {
  ctx.problems.push(issue(code, message, { object: ctx.object, field, record: ctx.record }, severity));
}

function selector(ctx: Ctx, raw: unknown, field: string): Selector | undefined {
  const sp: SelectorProblem[] = [];
  const s = parseSelector(raw, field, sp);
  for (const p of sp) problem(ctx, p.code, p.field, p.message);
  return sp.length ? undefined : s;
}

/** The one field of a "exactly one field must be set" union, or undefined (problem reported). */
function oneOf(
  ctx: Ctx,
  raw: Record<string, unknown>,
  known: readonly string[],
  field: string,
  what: string,
): { key: string | undefined; unknown: string[] } | undefined {
  const present = Object.keys(raw).filter((k) => raw[k] !== undefined && raw[k] !== null);
  const set = present.filter((k) => known.includes(k));
  const unknown = present.filter((k) => !known.includes(k));
  if (set.length > 1 || (set.length === 1 && unknown.length > 0)) {
    problem(
      ctx,
      'POLICY_INVALID_PEER',
      field,
      `${what}: exactly one of ${known.join(', ')} may be set, found ${present.join(', ')}`,
    );
    return undefined;
  }
  return { key: set[0], unknown };
}

interface Dialect {
  kind: AdminKind;
  /** v1alpha2 ClusterNetworkPolicy spells ports as `protocols` and Allow as `Accept`. */
  v2: boolean;
  actions: readonly string[];
  maxRules: number;
  egressPeers: readonly string[];
}

const ANP: Dialect = {
  kind: 'AdminNetworkPolicy',
  v2: false,
  actions: ['Allow', 'Deny', 'Pass'],
  maxRules: 100,
  egressPeers: ['namespaces', 'pods', 'nodes', 'networks', 'domainNames'],
};
const BANP: Dialect = {
  kind: 'BaselineAdminNetworkPolicy',
  v2: false,
  actions: ['Allow', 'Deny'],
  maxRules: 100,
  egressPeers: ['namespaces', 'pods', 'nodes', 'networks'],
};
const CNP: Dialect = {
  kind: 'ClusterNetworkPolicy',
  v2: true,
  actions: ['Accept', 'Deny', 'Pass'],
  maxRules: 25,
  egressPeers: ['namespaces', 'pods', 'nodes', 'networks', 'domainNames'],
};

export interface NodeAddresses {
  labels: Record<string, string>;
  addresses: string[];
  name: string;
}

export interface PendingPeer {
  kind: 'selector' | 'networks' | 'nodes' | 'nothing';
  namespaceSelector?: Selector;
  podSelector?: Selector;
  cidrs?: Cidr[];
  nodeSelector?: Selector;
  text: string;
  /** A peer with no field this version knows: upstream says "fail closed". */
  failClosed?: boolean;
}

function parseNamespacedPod(ctx: Ctx, raw: unknown, field: string, d: Dialect): PendingPeer | undefined {
  if (!isJsonObject(raw)) {
    problem(ctx, 'POLICY_INVALID_TYPE', field, 'expected an object with namespaceSelector and podSelector');
    return undefined;
  }
  let ns: Selector | undefined;
  if (raw.namespaceSelector === undefined || raw.namespaceSelector === null) {
    if (!d.v2) {
      problem(
        ctx,
        'POLICY_MISSING_FIELD',
        `${field}.namespaceSelector`,
        'namespaceSelector is required (use {} for all namespaces)',
      );
      return undefined;
    }
    ns = selector(ctx, {}, `${field}.namespaceSelector`);
  } else ns = selector(ctx, raw.namespaceSelector, `${field}.namespaceSelector`);
  if (raw.podSelector === undefined || raw.podSelector === null) {
    problem(
      ctx,
      'POLICY_MISSING_FIELD',
      `${field}.podSelector`,
      'podSelector is required (use {} for all pods)',
    );
    return undefined;
  }
  const pod = selector(ctx, raw.podSelector, `${field}.podSelector`);
  if (!ns || !pod) return undefined;
  return {
    kind: 'selector',
    namespaceSelector: ns,
    podSelector: pod,
    text: `pods{namespaces${ns.text} pods${pod.text}}`,
  };
}

function parsePeer(
  ctx: Ctx,
  raw: unknown,
  field: string,
  allowed: readonly string[],
  d: Dialect,
): PendingPeer | undefined {
  if (!isJsonObject(raw)) {
    problem(ctx, 'POLICY_INVALID_TYPE', field, 'expected a peer object');
    return undefined;
  }
  const which = oneOf(ctx, raw, allowed, field, 'peer');
  if (!which) return undefined;
  const key = which.key;
  if (key === undefined) {
    const what = which.unknown.length ? `only unknown fields (${which.unknown.join(', ')})` : 'no field';
    problem(
      ctx,
      'POLICY_UNKNOWN_PEER',
      field,
      `peer has ${what}; failing closed as upstream asks: an ${d.v2 ? 'Accept' : 'Allow'} rule matches nothing through it, a Deny or Pass rule becomes deny-all`,
      'warning',
    );
    return { kind: 'nothing', text: 'unknown peer', failClosed: true };
  }
  const v = raw[key];
  switch (key) {
    case 'namespaces': {
      const ns = selector(ctx, v, `${field}.namespaces`);
      return ns ? { kind: 'selector', namespaceSelector: ns, text: `namespaces${ns.text}` } : undefined;
    }
    case 'pods':
      return parseNamespacedPod(ctx, v, `${field}.pods`, d);
    case 'nodes': {
      const s = selector(ctx, v, `${field}.nodes`);
      return s ? { kind: 'nodes', nodeSelector: s, text: `nodes${s.text}` } : undefined;
    }
    case 'networks': {
      if (!Array.isArray(v) || v.length === 0) {
        problem(ctx, 'POLICY_INVALID_TYPE', `${field}.networks`, 'expected a non-empty list of CIDRs');
        return undefined;
      }
      const cidrs: Cidr[] = [];
      let ok = true;
      v.forEach((c, i) => {
        const f = `${field}.networks[${i}]`;
        const cidr = typeof c === 'string' ? parseCidr(c) : undefined;
        if (!cidr) {
          problem(
            ctx,
            'POLICY_INVALID_CIDR',
            f,
            `${JSON.stringify(c)} is not a valid CIDR (e.g. 10.0.0.0/8 or fd00::/8)`,
          );
          ok = false;
          return;
        }
        if (cidrHasHostBits(cidr))
          problem(
            ctx,
            'POLICY_CIDR_HOST_BITS',
            f,
            `'${c}' has host bits set; treated as the network`,
            'warning',
          );
        cidrs.push(cidr);
      });
      if (!ok) return undefined;
      return { kind: 'networks', cidrs, text: `networks[${cidrs.map((c) => c.text).join(',')}]` };
    }
    case 'domainNames':
      problem(
        ctx,
        'POLICY_UNSUPPORTED_PEER',
        `${field}.domainNames`,
        'domainNames peers cannot be judged from addresses: this peer matches no flow',
        'warning',
      );
      return { kind: 'nothing', text: `domainNames[${Array.isArray(v) ? v.join(',') : ''}]` };
  }
  return undefined;
}

function portNumber(ctx: Ctx, v: unknown, field: string): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    problem(ctx, 'POLICY_INVALID_PORT', field, `${JSON.stringify(v)}: expected an integer from 1 to 65535`);
    return undefined;
  }
  return v;
}

function protocolOf(ctx: Ctx, v: unknown, field: string): L4Protocol | undefined {
  if (v === undefined || v === null) return 'TCP';
  if (v === 'TCP' || v === 'UDP' || v === 'SCTP') return v;
  problem(ctx, 'POLICY_INVALID_PROTOCOL', field, `${JSON.stringify(v)}: expected TCP, UDP or SCTP`);
  return undefined;
}

function namedPort(ctx: Ctx, v: unknown, field: string): AdminPort | undefined {
  const np = typeof v === 'string' ? portNameProblem(v) : 'must be a string';
  if (np) {
    problem(ctx, 'POLICY_INVALID_PORT', field, `${JSON.stringify(v)} is not a valid port name: ${np}`);
    return undefined;
  }
  return { name: v as string, text: `named:${v as string}` };
}

function range(
  ctx: Ctx,
  protocol: L4Protocol,
  start: number,
  end: number,
  field: string,
  strict: boolean,
): AdminPort | undefined {
  if (end < start) {
    problem(ctx, 'POLICY_INVALID_PORT_RANGE', `${field}.end`, `end ${end} is less than start ${start}`);
    return undefined;
  }
  if (end === start) {
    // v1alpha2 enforces start < end in the CRD; v1alpha1 only documents it.
    if (strict) {
      problem(
        ctx,
        'POLICY_INVALID_PORT_RANGE',
        `${field}.end`,
        `end ${end} must be greater than start ${start}`,
      );
      return undefined;
    }
    problem(
      ctx,
      'POLICY_INVALID_PORT_RANGE',
      `${field}.end`,
      `start and end are both ${start}; the range is that one port`,
      'warning',
    );
  }
  return { protocol, start, end, text: `${protocol}/${start}-${end}` };
}

/** v1alpha1 AdminNetworkPolicyPort: exactly one of portNumber, portRange, namedPort. */
function parsePortV1(ctx: Ctx, raw: unknown, field: string): AdminPort | undefined {
  if (!isJsonObject(raw)) {
    problem(ctx, 'POLICY_INVALID_TYPE', field, 'expected a port object');
    return undefined;
  }
  const which = oneOf(ctx, raw, ['portNumber', 'portRange', 'namedPort'], field, 'port');
  if (!which) return undefined;
  if (which.key === undefined) {
    problem(ctx, 'POLICY_INVALID_PORT', field, 'exactly one of portNumber, portRange, namedPort must be set');
    return undefined;
  }
  const v = raw[which.key];
  const f = `${field}.${which.key}`;
  if (which.key === 'namedPort') return namedPort(ctx, v, f);
  if (!isJsonObject(v)) {
    problem(ctx, 'POLICY_INVALID_TYPE', f, 'expected an object');
    return undefined;
  }
  const protocol = protocolOf(ctx, v.protocol, `${f}.protocol`);
  if (which.key === 'portNumber') {
    const port = portNumber(ctx, v.port, `${f}.port`);
    if (protocol === undefined || port === undefined) return undefined;
    return { protocol, start: port, end: port, text: `${protocol}/${port}` };
  }
  const start = portNumber(ctx, v.start, `${f}.start`);
  const end = portNumber(ctx, v.end, `${f}.end`);
  if (protocol === undefined || start === undefined || end === undefined) return undefined;
  return range(ctx, protocol, start, end, f, false);
}

/** v1alpha2 ClusterNetworkPolicyProtocol: exactly one of tcp, udp, sctp, destinationNamedPort. */
function parseProtocolV2(ctx: Ctx, raw: unknown, field: string): AdminPort | undefined {
  if (!isJsonObject(raw)) {
    problem(ctx, 'POLICY_INVALID_TYPE', field, 'expected a protocol object');
    return undefined;
  }
  const which = oneOf(ctx, raw, ['tcp', 'udp', 'sctp', 'destinationNamedPort'], field, 'protocol');
  if (!which) return undefined;
  if (which.key === undefined) {
    problem(
      ctx,
      'POLICY_INVALID_PORT',
      field,
      'exactly one of tcp, udp, sctp, destinationNamedPort must be set',
    );
    return undefined;
  }
  const f = `${field}.${which.key}`;
  const v = raw[which.key];
  if (which.key === 'destinationNamedPort') return namedPort(ctx, v, f);
  const protocol = which.key.toUpperCase() as L4Protocol;
  if (!isJsonObject(v) || !isJsonObject(v.destinationPort)) {
    problem(
      ctx,
      'POLICY_INVALID_PORT',
      `${f}.destinationPort`,
      'destinationPort is required (with number or range)',
    );
    return undefined;
  }
  const dp = v.destinationPort;
  const pf = `${f}.destinationPort`;
  const hasNumber = dp.number !== undefined && dp.number !== null;
  const hasRange = dp.range !== undefined && dp.range !== null;
  if (hasNumber === hasRange) {
    problem(ctx, 'POLICY_INVALID_PORT', pf, 'exactly one of number and range must be set');
    return undefined;
  }
  if (hasNumber) {
    const port = portNumber(ctx, dp.number, `${pf}.number`);
    return port === undefined ? undefined : { protocol, start: port, end: port, text: `${protocol}/${port}` };
  }
  if (!isJsonObject(dp.range)) {
    problem(ctx, 'POLICY_INVALID_TYPE', `${pf}.range`, 'expected an object with start and end');
    return undefined;
  }
  const start = portNumber(ctx, dp.range.start, `${pf}.range.start`);
  const end = portNumber(ctx, dp.range.end, `${pf}.range.end`);
  if (start === undefined || end === undefined) return undefined;
  return range(ctx, protocol, start, end, `${pf}.range`, true);
}

export interface PendingRule {
  direction: Direction;
  index: number;
  name?: string;
  action: AdminAction;
  actionText: string;
  peers?: PendingPeer[];
  ports?: AdminPort[];
}

function parseRule(
  ctx: Ctx,
  raw: unknown,
  direction: Direction,
  index: number,
  d: Dialect,
): PendingRule | undefined {
  const field = `spec.${direction}[${index}]`;
  if (!isJsonObject(raw)) {
    problem(ctx, 'POLICY_INVALID_TYPE', field, 'expected a rule object');
    return undefined;
  }
  const errorsBefore = ctx.problems.filter((p) => p.severity === 'error').length;
  let name: string | undefined;
  if (raw.name !== undefined && raw.name !== null) {
    if (typeof raw.name !== 'string' || raw.name.length > 100)
      problem(ctx, 'POLICY_INVALID_TYPE', `${field}.name`, 'expected a string of at most 100 characters');
    else name = raw.name;
  }
  const actionText = raw.action;
  if (typeof actionText !== 'string' || !d.actions.includes(actionText)) {
    const got = actionText === undefined ? 'missing' : JSON.stringify(actionText);
    problem(ctx, 'POLICY_INVALID_ACTION', `${field}.action`, `${got}: expected ${d.actions.join(', ')}`);
  }
  const peerKey = direction === 'ingress' ? 'from' : 'to';
  const rawPeers = raw[peerKey];
  let peers: (PendingPeer | undefined)[] = [];
  if (!Array.isArray(rawPeers) || rawPeers.length === 0) {
    problem(
      ctx,
      'POLICY_MISSING_FIELD',
      `${field}.${peerKey}`,
      `${peerKey} is required and must list at least one peer`,
    );
  } else {
    const allowed = direction === 'ingress' ? ['namespaces', 'pods'] : d.egressPeers;
    peers = rawPeers.map((p, i) => parsePeer(ctx, p, `${field}.${peerKey}[${i}]`, allowed, d));
  }
  const portsKey = d.v2 ? 'protocols' : 'ports';
  let ports: AdminPort[] | undefined;
  const rawPorts = raw[portsKey];
  if (rawPorts !== undefined && rawPorts !== null) {
    if (!Array.isArray(rawPorts) || rawPorts.length === 0) {
      problem(
        ctx,
        'POLICY_INVALID_TYPE',
        `${field}.${portsKey}`,
        'expected a non-empty list (omit it to match every port)',
      );
    } else {
      const parsed = rawPorts.map((p, i) =>
        d.v2
          ? parseProtocolV2(ctx, p, `${field}.${portsKey}[${i}]`)
          : parsePortV1(ctx, p, `${field}.${portsKey}[${i}]`),
      );
      ports = parsed as AdminPort[];
      if (
        ports.some((p) => p?.name !== undefined) &&
        peers.some((p) => p?.kind === 'networks' || p?.kind === 'nodes')
      )
        problem(
          ctx,
          'POLICY_INVALID_PORT',
          `${field}.${portsKey}`,
          'named ports cannot be used with networks or nodes peers (they have no named ports)',
        );
    }
  }
  if (ctx.problems.filter((p) => p.severity === 'error').length > errorsBefore) return undefined;
  const action: AdminAction = actionText === 'Accept' ? 'Allow' : (actionText as AdminAction);
  const rule: PendingRule = {
    direction,
    index,
    action,
    actionText: actionText as string,
    peers: peers as PendingPeer[],
  };
  if (name !== undefined) rule.name = name;
  if (ports) rule.ports = ports;
  return rule;
}

/**
 * Upstream's "fail closed" for a peer with no known field: an Allow (Accept) rule then matches no
 * traffic at all, a Deny or Pass rule becomes a deny-all rule.
 */
function failClosed(r: PendingRule): PendingRule {
  if (!r.peers?.some((p) => p.failClosed)) return r;
  if (r.action === 'Allow')
    return { ...r, peers: [{ kind: 'nothing', text: 'unknown peer (failed closed: matches nothing)' }] };
  return {
    ...r,
    action: 'Deny',
    actionText: `${r.actionText} (failed closed: Deny all)`,
    peers: undefined,
    ports: undefined,
  };
}

export interface ParsedPolicy {
  kind: AdminKind;
  name: string;
  tier: AdminTier;
  priority: number;
  subjectNamespaces: Selector;
  subjectPods?: Selector;
  subjectText: string;
  ingress: PendingRule[];
  egress: PendingRule[];
}

function dialectOf(kind: string, apiVersion: string): Dialect | string {
  const version = apiVersion.slice(GROUP.length);
  if (kind === 'AdminNetworkPolicy' || kind === 'BaselineAdminNetworkPolicy') {
    if (version !== 'v1alpha1') return `${kind} ${apiVersion} is not supported (expected ${GROUP}v1alpha1)`;
    return kind === 'AdminNetworkPolicy' ? ANP : BANP;
  }
  if (kind === 'ClusterNetworkPolicy') {
    if (version !== 'v1alpha2') return `${kind} ${apiVersion} is not supported (expected ${GROUP}v1alpha2)`;
    return CNP;
  }
  return `kind ${JSON.stringify(kind)} of ${GROUP} is not a policy this tool evaluates`;
}

export function parsePolicy(
  raw: unknown,
  position: number,
  problems: InputIssue[],
): ParsedPolicy | undefined {
  const obj = isJsonObject(raw) ? raw : {};
  const kind = typeof obj.kind === 'string' ? obj.kind : '';
  const apiVersion = typeof obj.apiVersion === 'string' ? obj.apiVersion : '';
  const meta = isJsonObject(obj.metadata) ? obj.metadata : undefined;
  const name = typeof meta?.name === 'string' && meta.name !== '' ? meta.name : undefined;
  const ctx: Ctx = {
    object: name !== undefined ? `${kind || 'policy'}/${name}` : `clusterNetworkPolicies[${position}]`,
    problems,
    record: position,
  };
  if (!isJsonObject(raw)) {
    problem(ctx, 'POLICY_INVALID_TYPE', '', 'expected a policy object');
    return undefined;
  }
  const d = dialectOf(kind, apiVersion);
  if (typeof d === 'string') {
    problem(ctx, 'POLICY_UNSUPPORTED_KIND', 'kind', `${d}; ignored`, 'warning');
    return undefined;
  }
  const errorsBefore = problems.filter((p) => p.severity === 'error').length;
  if (name === undefined) problem(ctx, 'POLICY_MISSING_FIELD', 'metadata.name', 'name is required');
  if (d === BANP && name !== undefined && name !== 'default')
    problem(
      ctx,
      'POLICY_BASELINE_NOT_DEFAULT',
      'metadata.name',
      `'${name}': only one BaselineAdminNetworkPolicy, named 'default', can exist in a cluster`,
    );
  const spec = obj.spec;
  if (!isJsonObject(spec)) {
    problem(ctx, 'POLICY_MISSING_FIELD', 'spec', 'spec is required');
    return undefined;
  }
  let tier: AdminTier = d === BANP ? 'Baseline' : 'Admin';
  if (d === CNP) {
    if (spec.tier === 'Admin' || spec.tier === 'Baseline') tier = spec.tier;
    else
      problem(
        ctx,
        'POLICY_INVALID_TIER',
        'spec.tier',
        `${spec.tier === undefined ? 'missing' : JSON.stringify(spec.tier)}: expected Admin or Baseline`,
      );
  }
  let priority = 1001;
  if (d !== BANP) {
    const p = spec.priority;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > 1000)
      problem(
        ctx,
        'POLICY_INVALID_PRIORITY',
        'spec.priority',
        `${p === undefined ? 'missing' : JSON.stringify(p)}: expected an integer from 0 to 1000`,
      );
    else priority = p;
  }
  let subjectNamespaces: Selector | undefined;
  let subjectPods: Selector | undefined;
  let subjectText = '';
  if (!isJsonObject(spec.subject)) {
    problem(ctx, 'POLICY_INVALID_SUBJECT', 'spec.subject', 'subject is required: set namespaces or pods');
  } else {
    const which = oneOf(ctx, spec.subject, ['namespaces', 'pods'], 'spec.subject', 'subject');
    if (which && which.key === undefined)
      problem(
        ctx,
        'POLICY_INVALID_SUBJECT',
        'spec.subject',
        'exactly one of namespaces and pods must be set',
      );
    else if (which?.key === 'namespaces') {
      subjectNamespaces = selector(ctx, spec.subject.namespaces, 'spec.subject.namespaces');
      if (subjectNamespaces) subjectText = `namespaces${subjectNamespaces.text}`;
    } else if (which?.key === 'pods') {
      const p = parseNamespacedPod(ctx, spec.subject.pods, 'spec.subject.pods', d);
      subjectNamespaces = p?.namespaceSelector;
      subjectPods = p?.podSelector;
      if (p) subjectText = p.text;
    }
  }
  const rules = (direction: Direction): PendingRule[] => {
    const rawRules = spec[direction];
    if (rawRules === undefined || rawRules === null) return [];
    if (!Array.isArray(rawRules)) {
      problem(ctx, 'POLICY_INVALID_TYPE', `spec.${direction}`, 'expected a list');
      return [];
    }
    if (rawRules.length > d.maxRules)
      problem(
        ctx,
        'POLICY_TOO_MANY_RULES',
        `spec.${direction}`,
        `${rawRules.length} rules; at most ${d.maxRules} allowed`,
      );
    return rawRules.map((r, i) => parseRule(ctx, r, direction, i, d)) as PendingRule[];
  };
  const ingress = rules('ingress');
  const egress = rules('egress');
  if (
    problems.filter((p) => p.severity === 'error').length > errorsBefore ||
    !subjectNamespaces ||
    name === undefined
  )
    return undefined;
  const out: ParsedPolicy = {
    kind: d.kind,
    name,
    tier,
    priority,
    subjectNamespaces,
    subjectText,
    ingress: ingress.map(failClosed),
    egress: egress.map(failClosed),
  };
  if (subjectPods) out.subjectPods = subjectPods;
  return out;
}

export function hostCidr(ip: string): Cidr | undefined {
  const p = parseIp(ip);
  return p ? parseCidr(`${ip}/${p.family === 4 ? 32 : 128}`) : undefined;
}

function portText(p: AdminPort): string {
  return p.text;
}

export function ruleSummary(r: PendingRule, peers: AdminPeer[] | undefined): string {
  const word = r.direction === 'ingress' ? 'from' : 'to';
  const who = peers ? peers.map((p) => p.text).join(' | ') : 'all peers';
  const what = r.ports ? r.ports.map(portText).join(',') : 'all ports';
  const named = r.name ? ` '${r.name}'` : '';
  return `${r.actionText}${named} ${word} ${who} ports ${what}`;
}

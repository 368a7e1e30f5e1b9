import { type ErrorCode, type InputIssue, issue } from '../../lib/errors.js';
import { isJsonObject } from '../../lib/json.js';
import type { L4Protocol } from '../inventory/model.js';
import { type Cidr, cidrHasHostBits, cidrStrictlyInside, parseCidr } from './ip.js';
import { parseSelector, type Selector, type SelectorProblem } from './selector.js';

/**
 * Validation and lowering of raw networking.k8s.io/v1 NetworkPolicy objects into the engine's
 * intermediate form. Checks follow upstream's pkg/apis/networking/validation; a policy with any error
 * is rejected whole (the API server would never have admitted it), and every problem is reported.
 */

export type Direction = 'ingress' | 'egress';

export interface SelectorPeer {
  kind: 'selector';
  /** Namespace selector; undefined means "the policy's own namespace". */
  namespaceSelector?: Selector;
  podSelector?: Selector;
  /** The policy's namespace, used when namespaceSelector is absent. */
  policyNamespace: string;
  /** Index into the selector cache (equal peers share it). */
  selectorId: number;
  text: string;
}

export interface IpBlockPeer {
  kind: 'ipBlock';
  cidr: Cidr;
  except: Cidr[];
  /** Entry id in the CIDR trie. */
  entryId: number;
  text: string;
}

export type Peer = SelectorPeer | IpBlockPeer;

export interface PortSpec {
  protocol: L4Protocol;
  port?: number;
  endPort?: number;
  name?: string;
  text: string;
}

export interface CompiledRule {
  direction: Direction;
  index: number;
  /** undefined: all peers (from/to missing or empty). */
  peers?: Peer[];
  /** undefined: all ports and protocols (ports missing or empty). */
  ports?: PortSpec[];
  summary: string;
}

export interface CompiledPolicy {
  key: string;
  namespace: string;
  name: string;
  podSelector: Selector;
  /** Effective policyTypes. */
  isolatesIngress: boolean;
  isolatesEgress: boolean;
  ingress: CompiledRule[];
  egress: CompiledRule[];
}

export const PROTOCOL_NUMBERS: Record<L4Protocol, number> = { TCP: 6, UDP: 17, SCTP: 132 };

const PORT_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** IANA_SVC_NAME, as container port names and named policy ports must be. */
export function portNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > 15) return 'must be 1 to 15 characters';
  if (!PORT_NAME.test(name))
    return 'must be lowercase alphanumerics and -, starting and ending with an alphanumeric';
  if (name.includes('--')) return 'must not contain consecutive hyphens';
  if (!/[a-z]/.test(name)) return 'must contain at least one letter';
  return undefined;
}

/**
 * Registry shared by all policies so equal selector peers and ipBlocks get one id each. It may outlive
 * one compilation (PolicyCompiler keeps it while policies change), so it only ever grows: an id keeps
 * its meaning for as long as the registry lives.
 */
export interface CompileRegistry {
  selectorIds: Map<string, number>;
  selectorPeers: SelectorPeer[];
  ipBlockIds: Map<string, number>;
  ipBlocks: IpBlockPeer[];
}

export function newRegistry(): CompileRegistry {
  return { selectorIds: new Map(), selectorPeers: [], ipBlockIds: new Map(), ipBlocks: [] };
}

interface Ctx {
  object: string;
  problems: InputIssue[];
  namespace: string;
}

function problem(
  ctx: Ctx,
  code: ErrorCode,
  field: string,
  message: string,
  severity: 'error' | 'warning' = 'error',
) {
  ctx.problems.push(issue(code, message, { object: ctx.object, field }, severity));
}

function selectorProblems(ctx: Ctx, list: SelectorProblem[]) {
  for (const p of list) problem(ctx, p.code, p.field, p.message);
}

function listOrUndefined(ctx: Ctx, v: unknown, field: string): unknown[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) {
    problem(ctx, 'POLICY_INVALID_TYPE', field, 'expected a list');
    return undefined;
  }
  return v;
}

export interface PendingPeer {
  kind: 'selector' | 'ipBlock';
  namespaceSelector?: Selector;
  podSelector?: Selector;
  cidr?: Cidr;
  except?: Cidr[];
  text: string;
}

function parsePeer(ctx: Ctx, raw: unknown, field: string): PendingPeer | undefined {
  if (!isJsonObject(raw)) {
    problem(ctx, 'POLICY_INVALID_TYPE', field, 'expected a peer object');
    return undefined;
  }
  const hasNs = raw.namespaceSelector !== undefined && raw.namespaceSelector !== null;
  const hasPod = raw.podSelector !== undefined && raw.podSelector !== null;
  const hasIp = raw.ipBlock !== undefined && raw.ipBlock !== null;
  if (!hasNs && !hasPod && !hasIp) {
    problem(
      ctx,
      'POLICY_INVALID_PEER',
      field,
      'must specify a peer: podSelector, namespaceSelector or ipBlock',
    );
    return undefined;
  }
  if (hasIp && (hasNs || hasPod)) {
    problem(
      ctx,
      'POLICY_INVALID_PEER',
      field,
      'may not specify both ipBlock and another peer (podSelector/namespaceSelector)',
    );
    return undefined;
  }
  if (hasIp) {
    const ib = raw.ipBlock;
    if (!isJsonObject(ib)) {
      problem(ctx, 'POLICY_INVALID_TYPE', `${field}.ipBlock`, 'expected an object');
      return undefined;
    }
    if (typeof ib.cidr !== 'string' || ib.cidr === '') {
      problem(ctx, 'POLICY_MISSING_FIELD', `${field}.ipBlock.cidr`, 'cidr is required');
      return undefined;
    }
    const cidr = parseCidr(ib.cidr);
    if (!cidr) {
      problem(
        ctx,
        'POLICY_INVALID_CIDR',
        `${field}.ipBlock.cidr`,
        `'${ib.cidr}' is not a valid CIDR (e.g. 10.0.0.0/16 or fd00::/64)`,
      );
      return undefined;
    }
    if (cidrHasHostBits(cidr))
      problem(
        ctx,
        'POLICY_CIDR_HOST_BITS',
        `${field}.ipBlock.cidr`,
        `'${ib.cidr}' has host bits set; treated as the network`,
        'warning',
      );
    const except: Cidr[] = [];
    const rawExcept = listOrUndefined(ctx, ib.except, `${field}.ipBlock.except`) ?? [];
    let ok = true;
    rawExcept.forEach((e, i) => {
      const ef = `${field}.ipBlock.except[${i}]`;
      const c = typeof e === 'string' ? parseCidr(e) : undefined;
      if (!c) {
        problem(ctx, 'POLICY_INVALID_CIDR', ef, `${JSON.stringify(e)} is not a valid CIDR`);
        ok = false;
        return;
      }
      if (!cidrStrictlyInside(c, cidr)) {
        problem(
          ctx,
          'POLICY_EXCEPT_OUTSIDE_CIDR',
          ef,
          `'${e}' must be a strict subset of cidr '${ib.cidr}' (same family, inside it, longer prefix)`,
        );
        ok = false;
        return;
      }
      except.push(c);
    });
    if (!ok) return undefined;
    const text = `ipBlock ${cidr.text}${except.length ? ` except ${except.map((c) => c.text).join(',')}` : ''}`;
    return { kind: 'ipBlock', cidr, except, text };
  }
  const sp: SelectorProblem[] = [];
  const ns = hasNs ? parseSelector(raw.namespaceSelector, `${field}.namespaceSelector`, sp) : undefined;
  const pod = hasPod ? parseSelector(raw.podSelector, `${field}.podSelector`, sp) : undefined;
  if (sp.length) {
    selectorProblems(ctx, sp);
    return undefined;
  }
  const parts: string[] = [];
  if (ns) parts.push(`namespaceSelector${ns.text}`);
  if (pod) parts.push(`podSelector${pod.text}`);
  return { kind: 'selector', namespaceSelector: ns, podSelector: pod, text: parts.join(' & ') };
}

function parsePort(ctx: Ctx, raw: unknown, field: string): PortSpec | undefined {
  if (!isJsonObject(raw)) {
    problem(ctx, 'POLICY_INVALID_TYPE', field, 'expected a port object');
    return undefined;
  }
  let protocol: L4Protocol = 'TCP';
  let ok = true;
  if (raw.protocol !== undefined && raw.protocol !== null) {
    if (raw.protocol === 'TCP' || raw.protocol === 'UDP' || raw.protocol === 'SCTP') protocol = raw.protocol;
    else {
      problem(
        ctx,
        'POLICY_INVALID_PROTOCOL',
        `${field}.protocol`,
        `${JSON.stringify(raw.protocol)}: expected TCP, UDP or SCTP`,
      );
      ok = false;
    }
  }
  let port: number | undefined;
  let name: string | undefined;
  const rp = raw.port;
  if (rp !== undefined && rp !== null) {
    if (typeof rp === 'number') {
      if (!Number.isInteger(rp) || rp < 1 || rp > 65535) {
        problem(ctx, 'POLICY_INVALID_PORT', `${field}.port`, `${rp}: expected an integer from 1 to 65535`);
        ok = false;
      } else port = rp;
    } else if (typeof rp === 'string') {
      const np = portNameProblem(rp);
      if (np) {
        problem(ctx, 'POLICY_INVALID_PORT', `${field}.port`, `'${rp}' is not a valid port name: ${np}`);
        ok = false;
      } else name = rp;
    } else {
      problem(ctx, 'POLICY_INVALID_PORT', `${field}.port`, 'expected a port number or name');
      ok = false;
    }
  }
  let endPort: number | undefined;
  const re = raw.endPort;
  if (re !== undefined && re !== null) {
    if (typeof re !== 'number' || !Number.isInteger(re) || re < 1 || re > 65535) {
      problem(
        ctx,
        'POLICY_INVALID_END_PORT',
        `${field}.endPort`,
        `${JSON.stringify(re)}: expected an integer from 1 to 65535`,
      );
      ok = false;
    } else if (rp === undefined || rp === null) {
      problem(ctx, 'POLICY_INVALID_END_PORT', `${field}.endPort`, 'endPort requires port to be set');
      ok = false;
    } else if (typeof rp === 'string') {
      problem(
        ctx,
        'POLICY_INVALID_END_PORT',
        `${field}.endPort`,
        'endPort may not be used with a named port',
      );
      ok = false;
    } else if (port !== undefined && re < port) {
      problem(
        ctx,
        'POLICY_INVALID_END_PORT',
        `${field}.endPort`,
        `${re} must be greater than or equal to port ${port}`,
      );
      ok = false;
    } else endPort = re;
  }
  if (!ok) return undefined;
  const what =
    name ??
    (port === undefined ? '*' : endPort !== undefined && endPort !== port ? `${port}-${endPort}` : `${port}`);
  return { protocol, port, endPort, name, text: `${protocol}/${what}` };
}

function parseRule(
  ctx: Ctx,
  raw: unknown,
  direction: Direction,
  index: number,
): CompiledRulePending | undefined {
  const field = `spec.${direction}[${index}]`;
  if (!isJsonObject(raw)) {
    problem(ctx, 'POLICY_INVALID_TYPE', field, 'expected a rule object');
    return undefined;
  }
  const peerKey = direction === 'ingress' ? 'from' : 'to';
  const before = ctx.problems.filter((p) => p.severity === 'error').length;
  const rawPeers = listOrUndefined(ctx, raw[peerKey], `${field}.${peerKey}`);
  const rawPorts = listOrUndefined(ctx, raw.ports, `${field}.ports`);
  const peers = rawPeers?.map((p, i) => parsePeer(ctx, p, `${field}.${peerKey}[${i}]`));
  const ports = rawPorts?.map((p, i) => parsePort(ctx, p, `${field}.ports[${i}]`));
  if (ctx.problems.filter((p) => p.severity === 'error').length > before) return undefined;
  return {
    direction,
    index,
    peers: peers?.length ? (peers as PendingPeer[]) : undefined,
    ports: ports?.length ? (ports as PortSpec[]) : undefined,
  };
}

interface CompiledRulePending {
  direction: Direction;
  index: number;
  peers?: PendingPeer[];
  ports?: PortSpec[];
}

function ruleSummary(direction: Direction, peers: Peer[] | undefined, ports: PortSpec[] | undefined): string {
  const dirWord = direction === 'ingress' ? 'from' : 'to';
  const who = peers ? peers.map((p) => p.text).join(' | ') : 'all peers';
  const what = ports ? ports.map((p) => p.text).join(',') : 'all ports';
  return `${dirWord} ${who} ports ${what}`;
}

export type PolicyParse =
  | { ok: true; policy: CompiledPolicy; warnings: InputIssue[] }
  | { ok: false; issues: InputIssue[] };

/**
 * Validates one raw policy. Selector peers and ipBlocks are registered only when the whole policy is
 * valid, so a rejected policy leaves no trace in the shared registry.
 */
export function compilePolicy(raw: unknown, position: number, reg: CompileRegistry): PolicyParse {
  const meta = isJsonObject(raw) && isJsonObject(raw.metadata) ? raw.metadata : undefined;
  const ns = typeof meta?.namespace === 'string' ? meta.namespace : undefined;
  const name = typeof meta?.name === 'string' ? meta.name : undefined;
  const object = ns !== undefined && name !== undefined ? `${ns}/${name}` : `networkPolicies[${position}]`;
  const ctx: Ctx = { object, problems: [], namespace: ns ?? '' };
  if (!isJsonObject(raw)) {
    problem(ctx, 'POLICY_INVALID_TYPE', '', 'expected a NetworkPolicy object');
    return { ok: false, issues: ctx.problems };
  }
  if (name === undefined || name === '')
    problem(ctx, 'POLICY_MISSING_FIELD', 'metadata.name', 'name is required');
  if (ns === undefined || ns === '')
    problem(ctx, 'POLICY_MISSING_FIELD', 'metadata.namespace', 'namespace is required');
  const spec = raw.spec;
  if (!isJsonObject(spec)) {
    problem(ctx, 'POLICY_MISSING_FIELD', 'spec', 'spec is required');
    return { ok: false, issues: ctx.problems };
  }
  let podSelector: Selector | undefined;
  if (spec.podSelector === undefined || spec.podSelector === null) {
    problem(
      ctx,
      'POLICY_MISSING_FIELD',
      'spec.podSelector',
      'podSelector is required (use {} to select all pods)',
    );
  } else {
    const sp: SelectorProblem[] = [];
    podSelector = parseSelector(spec.podSelector, 'spec.podSelector', sp);
    selectorProblems(ctx, sp);
  }
  const rawTypes = listOrUndefined(ctx, spec.policyTypes, 'spec.policyTypes');
  const ingressRaw = listOrUndefined(ctx, spec.ingress, 'spec.ingress');
  const egressRaw = listOrUndefined(ctx, spec.egress, 'spec.egress');
  let isolatesIngress = true;
  let isolatesEgress = false;
  if (rawTypes && rawTypes.length > 0) {
    isolatesIngress = false;
    rawTypes.forEach((t, i) => {
      if (t === 'Ingress') isolatesIngress = true;
      else if (t === 'Egress') isolatesEgress = true;
      else
        problem(
          ctx,
          'POLICY_INVALID_POLICY_TYPE',
          `spec.policyTypes[${i}]`,
          `${JSON.stringify(t)}: expected Ingress or Egress`,
        );
    });
    if (rawTypes.length > 2)
      problem(ctx, 'POLICY_INVALID_POLICY_TYPE', 'spec.policyTypes', 'at most 2 entries (Ingress, Egress)');
  } else {
    // Upstream SetDefaults_NetworkPolicy: Ingress always; Egress only when len(spec.egress) != 0, so an
    // empty `egress: []` without policyTypes does not isolate for egress.
    isolatesEgress = (egressRaw?.length ?? 0) > 0;
  }
  const ingress = (ingressRaw ?? []).map((r, i) => parseRule(ctx, r, 'ingress', i));
  const egress = (egressRaw ?? []).map((r, i) => parseRule(ctx, r, 'egress', i));
  const errors = ctx.problems.filter((p) => p.severity === 'error');
  if (errors.length > 0 || !podSelector || ns === undefined || name === undefined) {
    return { ok: false, issues: ctx.problems };
  }
  const finish = (r: CompiledRulePending | undefined): CompiledRule => {
    const pending = r as CompiledRulePending;
    const peers = pending.peers?.map((p) => registerPeer(reg, p, ns));
    return {
      direction: pending.direction,
      index: pending.index,
      peers,
      ports: pending.ports,
      summary: ruleSummary(pending.direction, peers, pending.ports),
    };
  };
  const policy: CompiledPolicy = {
    key: object,
    namespace: ns,
    name,
    podSelector,
    isolatesIngress,
    isolatesEgress,
    ingress: ingress.map(finish),
    egress: egress.map(finish),
  };
  return { ok: true, policy, warnings: ctx.problems };
}

export function registerPeer(reg: CompileRegistry, p: PendingPeer, policyNamespace: string): Peer {
  if (p.kind === 'ipBlock') {
    const cidr = p.cidr as Cidr;
    const except = p.except ?? [];
    const key = `${p.text}|${cidr.text}|${except.map((e) => e.text).join(',')}`;
    const existing = reg.ipBlockIds.get(key);
    if (existing !== undefined) return reg.ipBlocks[existing] as IpBlockPeer;
    const peer: IpBlockPeer = { kind: 'ipBlock', cidr, except, entryId: reg.ipBlocks.length, text: p.text };
    reg.ipBlockIds.set(key, peer.entryId);
    reg.ipBlocks.push(peer);
    return peer;
  }
  // Without a namespaceSelector the peer is bound to the policy's namespace, so that is part of its key.
  const key = `${p.namespaceSelector ? `ns${p.namespaceSelector.text}` : `in:${policyNamespace}`}|pod${p.podSelector?.text ?? '*'}`;
  const existing = reg.selectorIds.get(key);
  if (existing !== undefined) return reg.selectorPeers[existing] as SelectorPeer;
  const peer: SelectorPeer = {
    kind: 'selector',
    namespaceSelector: p.namespaceSelector,
    podSelector: p.podSelector,
    policyNamespace,
    selectorId: reg.selectorPeers.length,
    text: p.text,
  };
  reg.selectorIds.set(key, peer.selectorId);
  reg.selectorPeers.push(peer);
  return peer;
}

import type { InputIssue } from '../lib/errors.js';
import type { Classification } from '../processor/classify.js';
import type { PolicyOptions, RuleInfo } from '../processor/policy/types.js';
import type { RecordedEdge } from '../schema/replay.js';
import type { RuleRefValue, Verdict } from '../schema/verdict.js';
import { type Applied, policyId, ruleOwner } from './drafts.js';
import { endpointName, type PolicySet, replay } from './replay.js';

/**
 * What-if: the recorded traffic replayed under the policies in force (the baseline) and under the
 * same policies with the drafts applied; the differences, per workload pair and port, and what the
 * drafts' own rules would do. Pure: the store and the cluster are read by the command.
 */

export interface PairChange {
  src: string;
  dst: string;
  proto: number;
  /** -1: none. */
  port: number;
  flows: number;
  bytes: number;
  firstSeen: number;
  lastSeen: number;
  before: Classification;
  after: Classification;
  /** The rules that decided before (for a breakage: the rules that allowed it). */
  rulesBefore: string[];
  rulesAfter: string[];
}

export interface DraftRule {
  /** `Kind namespace/name` or `Kind name`. */
  policy: string;
  direction: 'ingress' | 'egress';
  rule: number;
  summary: string;
}

export interface ShadowedRule extends DraftRule {
  /** What decided the recorded flows this rule matches, in its place. */
  by: string[];
  /** Recorded flows the rule matches, alone. */
  flows: number;
}

export interface WhatIfResult {
  since: number;
  until: number;
  added: string[];
  replaced: string[];
  deleted: string[];
  replayed: { edges: number; flows: number };
  /** Flows no single engine question decided, per reason (not replayed, not assumed unaffected). */
  notReplayable: { reason: string; flows: number }[];
  /** Days with traffic but no replay data (recorded before the store kept it). */
  daysWithoutReplay: { day: number; flows: number }[];
  /** Recorded flows the baseline classifies differently from the record: the policies changed since. */
  drift: { flows: number; edges: number };
  becomeDenied: PairChange[];
  becomeAllowed: PairChange[];
  /** Other changes (to or from ambiguous; a violation that becomes a denied attempt cannot happen). */
  otherChanges: PairChange[];
  /** Rules the drafts bring, in all. */
  draftRules: number;
  unusedRules: DraftRule[];
  shadowedRules: ShadowedRule[];
  issues: InputIssue[];
}

export interface WhatIfInput {
  edges: readonly RecordedEdge[];
  baseline: PolicySet;
  applied: Applied;
  /** Ids of the policies the drafts bring (policyId). */
  draftIds: readonly string[];
  options: PolicyOptions;
  since: number;
  until: number;
  notReplayable?: { reason: string; flows: number }[];
  daysWithoutReplay?: { day: number; flows: number }[];
}

export function ruleText(r: RuleRefValue): string {
  const action = r.action ? ` ${r.action}` : '';
  return `${r.kind ?? 'NetworkPolicy'} ${r.policy} ${r.direction}[${r.rule}]${action}`;
}

function rulesOf(v: Verdict): string[] {
  return [...v.egress.rules, ...v.ingress.rules].map(ruleText);
}

function refKey(kind: string | undefined, policy: string, direction: string, rule: number): string {
  return `${kind ?? 'NetworkPolicy'}|${policy}|${direction}|${rule}`;
}

const isAllowed = (c: Classification) => c === 'allowed';
const isDenied = (c: Classification) => c === 'denied-but-observed' || c === 'denied-attempt';

export function whatIf(input: WhatIfInput): WhatIfResult {
  const { edges, options } = input;
  const before = replay(edges, input.baseline, options);
  const after = replay(edges, input.applied.policies, options);
  const changes = new Map<string, PairChange>();
  let driftFlows = 0;
  let driftEdges = 0;
  let flows = 0;
  edges.forEach((e, i) => {
    flows += e.flows;
    const b = before.results[i]!;
    const a = after.results[i]!;
    if (b.classification !== e.classification) {
      driftFlows += e.flows;
      driftEdges++;
    }
    if (a.classification === b.classification) return;
    const src = endpointName(e.src);
    const dst = endpointName(e.dst);
    const k = [src, dst, e.proto, e.port, b.classification, a.classification].join('\u0000');
    const cur = changes.get(k);
    if (cur) {
      cur.flows += e.flows;
      cur.bytes += e.bytes;
      cur.firstSeen = Math.min(cur.firstSeen, e.firstSeen);
      cur.lastSeen = Math.max(cur.lastSeen, e.lastSeen);
      for (const r of rulesOf(b.verdict)) if (!cur.rulesBefore.includes(r)) cur.rulesBefore.push(r);
      for (const r of rulesOf(a.verdict)) if (!cur.rulesAfter.includes(r)) cur.rulesAfter.push(r);
    } else
      changes.set(k, {
        src,
        dst,
        proto: e.proto,
        port: e.port,
        flows: e.flows,
        bytes: e.bytes,
        firstSeen: e.firstSeen,
        lastSeen: e.lastSeen,
        before: b.classification,
        after: a.classification,
        rulesBefore: rulesOf(b.verdict),
        rulesAfter: rulesOf(a.verdict),
      });
  });
  const order = (x: PairChange, y: PairChange) =>
    y.flows - x.flows ||
    (x.src < y.src ? -1 : x.src > y.src ? 1 : x.dst < y.dst ? -1 : x.dst > y.dst ? 1 : x.port - y.port);
  const all = [...changes.values()].sort(order);
  const { unused, shadowed, total } = draftRuleUse(
    input,
    after.results.map((r) => r.verdict),
    after.indexes[0]?.rules() ?? [],
  );
  return {
    since: input.since,
    until: input.until,
    added: input.applied.added,
    replaced: input.applied.replaced,
    deleted: input.applied.deleted,
    replayed: { edges: edges.length, flows },
    notReplayable: input.notReplayable ?? [],
    daysWithoutReplay: input.daysWithoutReplay ?? [],
    drift: { flows: driftFlows, edges: driftEdges },
    becomeDenied: all.filter((c) => isAllowed(c.before) && !isAllowed(c.after)),
    becomeAllowed: all.filter((c) => isDenied(c.before) && isAllowed(c.after)),
    otherChanges: all.filter(
      (c) => !(isAllowed(c.before) && !isAllowed(c.after)) && !(isDenied(c.before) && isAllowed(c.after)),
    ),
    draftRules: total,
    unusedRules: unused,
    shadowedRules: shadowed,
    issues: [
      ...before.issues,
      ...after.issues.filter((x) => !before.issues.some((y) => y.message === x.message)),
    ],
  };
}

/**
 * The drafts' rules no replayed flow would use, and among them those shadowed by precedence: a rule
 * that, alone, decides some recorded flows, but that with every policy in place never decides one
 * (an admin-tier Deny, Allow or Pass, an earlier rule or a higher-priority policy decides first).
 */
function draftRuleUse(
  input: WhatIfInput,
  verdicts: Verdict[],
  rules: RuleInfo[],
): { unused: DraftRule[]; shadowed: ShadowedRule[]; total: number } {
  const owners = new Set(input.draftIds.map(ruleOwner));
  const draftRules = rules.filter((r) => owners.has(`${r.kind}|${r.policy}`));
  const used = new Set<string>();
  for (const v of verdicts)
    for (const r of [...v.egress.rules, ...v.ingress.rules])
      used.add(refKey(r.kind, r.policy, r.direction, r.rule));
  const unused: DraftRule[] = [];
  const shadowed: ShadowedRule[] = [];
  const draftsById = new Map<string, unknown>();
  for (const raw of [
    ...input.applied.policies.networkPolicies,
    ...input.applied.policies.clusterNetworkPolicies,
  ])
    draftsById.set(ruleOwner(policyId(raw)), raw);
  for (const r of draftRules) {
    if (used.has(refKey(r.kind, r.policy, r.direction, r.rule))) continue;
    const rule: DraftRule = {
      policy: `${r.kind} ${r.policy}`,
      direction: r.direction,
      rule: r.rule,
      summary: r.summary,
    };
    // Alone (its policy reduced to this one rule), which recorded flows would it decide?
    const raw = draftsById.get(`${r.kind}|${r.policy}`);
    const alone = raw ? onlyRule(raw, r.direction, r.rule) : undefined;
    if (!alone) {
      unused.push(rule);
      continue;
    }
    const solo = replay(input.edges, alone, input.options);
    const by = new Set<string>();
    let matched = 0;
    solo.results.forEach((res, i) => {
      const side = r.direction === 'ingress' ? res.verdict.ingress : res.verdict.egress;
      if (!side.rules.some((x) => x.policy === r.policy && x.direction === r.direction)) return;
      matched += input.edges[i]!.flows;
      const full = verdicts[i]!;
      const fullSide = r.direction === 'ingress' ? full.ingress : full.egress;
      const deciders = fullSide.rules.map(ruleText);
      for (const d of deciders.length > 0 ? deciders : [fullSide.reason]) by.add(d);
    });
    if (matched > 0) shadowed.push({ ...rule, by: [...by].sort(), flows: matched });
    else unused.push(rule);
  }
  return { unused, shadowed, total: draftRules.length };
}

/** A policy reduced to one rule of one direction (the other direction not in force), as a PolicySet. */
function onlyRule(raw: unknown, direction: 'ingress' | 'egress', index: number): PolicySet | undefined {
  const o = raw as { kind?: string; spec?: Record<string, unknown> };
  const spec = o.spec ?? {};
  const list = spec[direction];
  if (!Array.isArray(list) || list[index] === undefined) return undefined;
  const other = direction === 'ingress' ? 'egress' : 'ingress';
  const reduced: Record<string, unknown> = { ...spec, [direction]: [list[index]], [other]: [] };
  if (o.kind === 'NetworkPolicy') reduced.policyTypes = [direction === 'ingress' ? 'Ingress' : 'Egress'];
  delete reduced[other];
  const copy = { ...(raw as object), spec: reduced };
  return o.kind === 'NetworkPolicy'
    ? { networkPolicies: [copy], clusterNetworkPolicies: [] }
    : { networkPolicies: [], clusterNetworkPolicies: [copy] };
}

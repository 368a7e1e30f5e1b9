import { type Static, Type } from '@sinclair/typebox';

/**
 * Verdict: what the policies in force say about one flow, and which rules decided. Per-rule usage
 * statistics are built on `rules`, so every allowing rule is named, not only the first.
 */

export const PolicyKind = Type.Union([
  Type.Literal('NetworkPolicy'),
  Type.Literal('AdminNetworkPolicy'),
  Type.Literal('BaselineAdminNetworkPolicy'),
  Type.Literal('ClusterNetworkPolicy'),
]);

export const RuleRef = Type.Object({
  /** `namespace/name` for NetworkPolicy, `name` for cluster-scoped kinds. */
  policy: Type.String(),
  kind: Type.Optional(PolicyKind),
  direction: Type.Union([Type.Literal('ingress'), Type.Literal('egress')]),
  /** Index of the rule in `spec.ingress` / `spec.egress`. */
  rule: Type.Integer({ minimum: 0 }),
  /** For tiered kinds: Allow, Deny or Pass. NetworkPolicy rules always allow. */
  action: Type.Optional(Type.Union([Type.Literal('Allow'), Type.Literal('Deny'), Type.Literal('Pass')])),
  /** For tiered kinds: the tier the rule's policy belongs to (ClusterNetworkPolicy has both). */
  tier: Type.Optional(Type.Union([Type.Literal('Admin'), Type.Literal('Baseline')])),
});

export const DirectionReason = Type.Union(
  [
    Type.Literal('not-isolated'), // no policy of this type selects the pod: allowed
    Type.Literal('rule-matched'), // isolated, at least one rule allowed it
    Type.Literal('no-rule-matched'), // isolated, no rule allowed it: denied
    Type.Literal('node-local'), // traffic to or from the pod's own node: always allowed
    Type.Literal('not-a-pod'), // this end is not a (non-hostNetwork) pod: policies do not apply on this side
    Type.Literal('host-network'), // hostNetwork pod: per option, treated as its node
    Type.Literal('admin-allow'),
    Type.Literal('admin-deny'),
    Type.Literal('baseline-allow'),
    Type.Literal('baseline-deny'),
    Type.Literal('engine-error'), // the engine failed on this flow (a bug, logged): the verdict is unsettled
  ],
  { description: 'Why this direction decided as it did.' },
);

export const DirectionVerdict = Type.Object({
  allowed: Type.Boolean(),
  /** Some policy with this direction in its policyTypes selects the pod. */
  isolated: Type.Boolean(),
  /** Every rule that allowed the flow in this direction (or the deciding tiered rule). */
  rules: Type.Array(RuleRef),
  /** Policies that isolate the pod for this direction (`namespace/name`); filled when isolated. */
  isolatedBy: Type.Array(Type.String()),
  reason: DirectionReason,
});

export const BackendVerdict = Type.Object({
  pod: Type.String(),
  ip: Type.String(),
  allowed: Type.Boolean(),
});

/**
 * How the initiating side was known, when the collector did not see it (docs/check.md, "Direction").
 * Absent: the collector observed it (handshake, ICMP type, conntrack, a flow that began in view).
 */
export const DirectionBasis = Type.Object({
  /** declared-port: the responder declares the port in the cluster; guessed: nothing settled it. */
  basis: Type.Union([Type.Literal('declared-port'), Type.Literal('guessed')]),
  /** The cluster showed the collector had it the wrong way round; sides and counters were swapped. */
  swapped: Type.Optional(Type.Boolean()),
  /** For a guessed direction: the result had the other side initiated. */
  reverse: Type.Optional(
    Type.Union([Type.Literal('allowed'), Type.Literal('denied'), Type.Literal('ambiguous')]),
  ),
  /**
   * For a guessed direction: the rules that allow the other way round. Rule usage counts them too, so
   * a rule the flow may have used is never reported unused on the strength of a guess.
   */
  reverseRules: Type.Optional(Type.Array(RuleRef)),
});

export const VerdictSchema = Type.Object({
  /** True only when the flow is allowed (for a Service: by every backend). */
  allowed: Type.Boolean(),
  /**
   * allowed, denied, or ambiguous: a Service whose backends disagree, or a flow whose direction was
   * guessed and whose result depends on it.
   */
  result: Type.Union([Type.Literal('allowed'), Type.Literal('denied'), Type.Literal('ambiguous')]),
  egress: DirectionVerdict,
  ingress: DirectionVerdict,
  /** For a flow to a Service ClusterIP without NAT information: the verdict per backend pod. */
  backends: Type.Optional(Type.Array(BackendVerdict)),
  direction: Type.Optional(DirectionBasis),
});

export type Verdict = Static<typeof VerdictSchema>;
export type DirectionBasisValue = Static<typeof DirectionBasis>;
export type DirectionVerdictValue = Static<typeof DirectionVerdict>;
export type RuleRefValue = Static<typeof RuleRef>;
export type PolicyKindName = Static<typeof PolicyKind>;

import { type Static, Type } from '@sinclair/typebox';

/**
 * The compliance report model (docs/report.md): what a report says about a period, computed from the
 * store once and rendered as text, Markdown, JSON, CSV, HTML or PDF. The JSON output is this model,
 * so it is a contract: `reportVersion` changes when a field changes meaning or goes away. Times are
 * epoch milliseconds of data time (when flows happened), except `generatedAt` (wall clock).
 *
 * Also here: the isolation coverage the processor records per day (CoverageSnapshot), because a
 * report for a past week must be reproducible from the store alone.
 */

export const REPORT_VERSION = 1;

const Count = Type.Integer({ minimum: 0 });
const Time = Type.Number({ description: 'Epoch milliseconds (data time).' });

export const Assessment = Type.Union(
  [
    Type.Literal('compliant'),
    Type.Literal('not-compliant'),
    Type.Literal('no-data'),
    Type.Literal('incomplete'),
    Type.Literal('unsettled'),
  ],
  {
    description:
      'compliant: data for the period, every run finished, no violation, nothing unsettled; not-compliant: a violation; no-data: nothing stored; incomplete: an audit run bearing on the period did not finish; unsettled: no violation, but verdicts that depend on what was not observed.',
  },
);

/** One end of a flow as the evidence shows it. */
const EvidenceEnd = Type.Object({
  ip: Type.String(),
  port: Type.Optional(Type.Integer()),
  name: Type.Optional(Type.String({ description: 'DNS-style name at flow time.' })),
  kind: Type.Optional(Type.String({ description: 'pod, service, node or external.' })),
});

/** One judged flow, in full: what an auditor needs to check a finding. */
export const EvidenceFlowSchema = Type.Object({
  start: Time,
  end: Time,
  proto: Type.String(),
  src: EvidenceEnd,
  dst: EvidenceEnd,
  packets: Type.Object({ fwd: Count, rev: Count }),
  bytes: Type.Object({ fwd: Count, rev: Count }),
  state: Type.String(),
  observer: Type.Optional(Type.String()),
  node: Type.Optional(Type.String()),
  /** Policies that isolated the destination for ingress (and the source for egress). */
  isolatedBy: Type.Object({ ingress: Type.Array(Type.String()), egress: Type.Array(Type.String()) }),
  /** The verdict's reasoning per direction (`no-rule-matched`, `admin-deny`, ...). */
  reasons: Type.Object({ ingress: Type.String(), egress: Type.String() }),
  /** Rules that allowed one direction (a violation can be allowed on one side and denied on the other). */
  rules: Type.Array(Type.String()),
});

export const FindingSchema = Type.Object({
  src: Type.String({ description: 'Source workload (`namespace/name`), or an address.' }),
  dst: Type.String(),
  proto: Type.String(),
  port: Type.Integer({ description: '-1 when the protocol has no ports.' }),
  flows: Count,
  packets: Count,
  bytes: Count,
  firstSeen: Time,
  lastSeen: Time,
  srcNames: Type.Array(Type.String()),
  dstNames: Type.Array(Type.String()),
  directionGuessed: Count,
  /** The same source, destination and port seen after the period (the store's newest data). */
  since: Type.Object({
    lastSeen: Time,
    stillOccurring: Type.Boolean({
      description: 'Seen after the period ended (in the data the store holds now).',
    }),
    flowsAfter: Count,
  }),
  evidence: Type.Array(EvidenceFlowSchema),
});

export const KeyFigureSchema = Type.Object({
  name: Type.String(),
  label: Type.String(),
  value: Type.Union([Count, Type.Null()], { description: 'null: the store cannot say (no data).' }),
  previous: Type.Union([Count, Type.Null()]),
  /** Whether more is better (flows judged, isolated workloads) or worse (violations). */
  better: Type.Union([Type.Literal('more'), Type.Literal('less'), Type.Literal('neither')]),
});

export const DayTrafficSchema = Type.Object({
  day: Time,
  allowed: Count,
  violations: Count,
  deniedAttempts: Count,
  unsettled: Count,
  /** Flows the policies would allow to or from an address no pod held: not counted as allowed. */
  unattributed: Count,
});

export const MatrixCellSchema = Type.Object({
  src: Type.String(),
  dst: Type.String(),
  allowed: Count,
  violations: Count,
  deniedAttempts: Count,
  unsettled: Count,
  /** Allowed by the policies, but an end's address was in a pod CIDR and no pod held it. */
  unattributed: Count,
});

/** Isolation of one workload, from the cluster in force when its day's flows were judged. */
export const WorkloadCoverageSchema = Type.Object({
  workload: Type.String(),
  namespace: Type.String(),
  pods: Count,
  ingressIsolated: Count,
  egressIsolated: Count,
  /**
   * Labels every pod of the workload carries (so not pod-template-hash), and the named container
   * ports of its pods: who the workload was, for replaying recorded traffic (issue #16).
   */
  labels: Type.Optional(Type.Record(Type.String(), Type.String())),
  namedPorts: Type.Optional(
    Type.Array(Type.Object({ name: Type.String(), port: Type.Integer(), protocol: Type.String() })),
  ),
});

export const NamespaceCoverageSchema = Type.Object({
  namespace: Type.String(),
  labels: Type.Optional(Type.Record(Type.String(), Type.String())),
  /** A policy selecting every pod of the namespace, isolating it for ingress, with no ingress rule. */
  defaultDenyIngress: Type.Boolean(),
  defaultDenyEgress: Type.Boolean(),
});

/** What the processor records per day: the cluster's isolation as in force at the day's first flow. */
export const CoverageSnapshotSchema = Type.Object({
  day: Time,
  asOf: Time,
  workloads: Type.Array(WorkloadCoverageSchema),
  namespaces: Type.Array(NamespaceCoverageSchema),
});

export const UnisolatedTrafficSchema = Type.Object({
  workload: Type.String(),
  direction: Type.Union([Type.Literal('ingress'), Type.Literal('egress')]),
  flows: Count,
  bytes: Count,
  peers: Count,
  peerNamespaces: Count,
  /** A sentence for people: "db/postgres is not isolated for ingress and received ...". */
  sentence: Type.String(),
});

export const CoverageSchema = Type.Object({
  /** False when the store holds no coverage for the period (written by a version before reports). */
  available: Type.Boolean(),
  asOf: Type.Union([Time, Type.Null()]),
  workloads: Count,
  ingressIsolated: Count,
  egressIsolated: Count,
  pods: Count,
  podsIngressIsolated: Count,
  podsEgressIsolated: Count,
  notIsolated: Type.Array(WorkloadCoverageSchema),
  namespacesWithoutDefaultDeny: Type.Array(NamespaceCoverageSchema),
  unisolatedTraffic: Type.Array(UnisolatedTrafficSchema),
});

export const UnusedRuleSchema = Type.Object({
  kind: Type.String(),
  policy: Type.String(),
  direction: Type.Union([Type.Literal('ingress'), Type.Literal('egress')]),
  rule: Type.Integer(),
  summary: Type.String(),
  definedFirst: Time,
  lastHit: Type.Union([Time, Type.Null()], { description: 'null: never hit since defined.' }),
  /** Unused since: the last hit, or the definition when never hit. */
  unusedSince: Time,
});

export const PolicyChangeSchema = Type.Object({
  kind: Type.String(),
  policy: Type.String(),
  at: Time,
  change: Type.Union([Type.Literal('first-seen'), Type.Literal('changed')], {
    description: 'first-seen: the store holds no earlier version (created then, or first audited then).',
  }),
  fromHash: Type.Union([Type.String(), Type.Null()]),
  toHash: Type.String(),
  /** Unified-style diff of the policy as YAML: lines starting with '-', '+' or ' '. */
  diff: Type.Array(Type.String()),
});

export const ObserverCoverageSchema = Type.Object({
  observer: Type.String(),
  node: Type.String(),
  flows: Count,
  hoursReporting: Count,
  /** Hours of the period (or of the span the observer reported in) without a flow from it. */
  gaps: Type.Array(Type.Object({ from: Time, until: Time })),
});

export const IssueCountSchema = Type.Object({
  code: Type.String(),
  severity: Type.String(),
  count: Count,
  example: Type.String(),
});

export const RunSummarySchema = Type.Object({
  id: Type.Integer(),
  mode: Type.String(),
  finished: Type.Boolean(),
  inputs: Type.Array(Type.String()),
  packets: Type.Union([Count, Type.Null()]),
  flows: Type.Union([Count, Type.Null()]),
  deadLetters: Count,
});

export const CompletenessSchema = Type.Object({
  hours: Count,
  hoursWithData: Count,
  observers: Type.Array(ObserverCoverageSchema),
  /** Flows whose address lay in a node's pod CIDR but that no pod held at flow time. */
  unattributed: Type.Object({
    flows: Count,
    addresses: Type.Array(Type.Object({ ip: Type.String(), node: Type.String(), flows: Count })),
  }),
  skipped: Type.Array(IssueCountSchema),
  runs: Type.Array(RunSummarySchema),
  unfinishedRuns: Count,
  deadLetters: Count,
  /**
   * Records a collector dropped because its Kafka spool was full: the collectors count them
   * (metrics, exit status 5), the store cannot see them; null says so.
   */
  spoolDrops: Type.Union([Count, Type.Null()]),
  /** False when the store predates these facts (written by an older version): then nothing is known. */
  observersKnown: Type.Boolean(),
});

export const ReportModelSchema = Type.Object(
  {
    reportVersion: Type.Literal(REPORT_VERSION),
    generatedBy: Type.String(),
    generatedAt: Type.String({ description: 'Wall clock, ISO 8601.' }),
    storeSchemaVersion: Type.Integer(),
    period: Type.Object({ since: Time, until: Time, label: Type.String() }),
    previousPeriod: Type.Object({ since: Time, until: Time }),
    assessment: Assessment,
    compliant: Type.Boolean(),
    /** One sentence: compliant or not, and why. */
    summary: Type.String(),
    keyFigures: Type.Array(KeyFigureSchema),
    traffic: Type.Object({
      flows: Count,
      packets: Count,
      bytes: Count,
      byResult: Type.Record(Type.String(), Count),
    }),
    daily: Type.Array(DayTrafficSchema),
    topViolatingPairs: Type.Array(Type.Object({ src: Type.String(), dst: Type.String(), flows: Count })),
    namespaceMatrix: Type.Array(MatrixCellSchema),
    violations: Type.Array(FindingSchema),
    deniedAttempts: Type.Array(FindingSchema),
    unsettled: Type.Array(FindingSchema),
    coverage: CoverageSchema,
    rules: Type.Object({ total: Count, used: Count, unused: Type.Array(UnusedRuleSchema) }),
    policyChanges: Type.Array(PolicyChangeSchema),
    policyVersions: Type.Array(
      Type.Object({
        kind: Type.String(),
        policy: Type.String(),
        hash: Type.String(),
        firstSeen: Time,
        lastSeen: Time,
      }),
    ),
    completeness: CompletenessSchema,
    unfinishedRuns: Count,
    inputProblems: Type.Array(
      Type.Object(
        { code: Type.String(), severity: Type.String(), message: Type.String() },
        {
          additionalProperties: true,
          description: 'InputIssue (docs/errors.md): where, and what was expected.',
        },
      ),
    ),
  },
  { $id: 'https://netpol-audit.dev/schema/report.json', title: 'ReportModel' },
);

export type ReportModel = Static<typeof ReportModelSchema>;
export type Finding = Static<typeof FindingSchema>;
export type EvidenceFlow = Static<typeof EvidenceFlowSchema>;
export type KeyFigure = Static<typeof KeyFigureSchema>;
export type CoverageSnapshot = Static<typeof CoverageSnapshotSchema>;
export type WorkloadCoverage = Static<typeof WorkloadCoverageSchema>;
export type NamespaceCoverage = Static<typeof NamespaceCoverageSchema>;
export type Coverage = Static<typeof CoverageSchema>;
export type Completeness = Static<typeof CompletenessSchema>;
export type UnusedRule = Static<typeof UnusedRuleSchema>;
export type PolicyChange = Static<typeof PolicyChangeSchema>;
export type ReportAssessment = Static<typeof Assessment>;

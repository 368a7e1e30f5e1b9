import { type Static, Type } from '@sinclair/typebox';

/**
 * The alert: what netpol-audit tells people about denied traffic (docs/alerts.md). One definition:
 * the generic webhook sends it as JSON (schema/alert.schema.json), and the Alertmanager and Slack
 * receivers are built from it. Times are ISO 8601 UTC; `startsAt`/`lastSeen` are data times (when the
 * flows happened), `sentAt` is when this notification was made.
 */

export const ALERT_VERSION = 1;

export const AlertKind = Type.Union(
  [Type.Literal('violation'), Type.Literal('denied-attempt'), Type.Literal('scan'), Type.Literal('report')],
  {
    description:
      'violation: traffic the policies deny was observed to flow; denied-attempt: it was attempted and stopped; scan: one source tried many denied destinations or ports in a short window; report: the summary of a compliance report (`report --notify`), keyed by its period.',
  },
);

export const AlertStatus = Type.Union([Type.Literal('firing'), Type.Literal('resolved')]);

export const AlertSeverity = Type.Union([
  Type.Literal('critical'),
  Type.Literal('warning'),
  Type.Literal('info'),
]);

export const AlertPayloadSchema = Type.Object(
  {
    v: Type.Literal(ALERT_VERSION),
    /** Stable identifier of this notification: a receiver that sees it twice drops the second. */
    id: Type.String(),
    /** Stable identifier of the alert across its notifications (firing, repeats, resolved). */
    alert: Type.String(),
    kind: AlertKind,
    status: AlertStatus,
    severity: AlertSeverity,
    /** What the alert is keyed by (the violations table's key; a scan is keyed by its source). */
    key: Type.Object({
      src: Type.String({ description: 'Source workload, `namespace/name` (or an address).' }),
      dst: Type.Optional(Type.String({ description: 'Destination workload.' })),
      proto: Type.Optional(Type.String()),
      port: Type.Optional(Type.Integer({ description: '-1 when the protocol has no ports.' })),
    }),
    startsAt: Type.String({ description: 'Data time of the first flow of the alert.' }),
    lastSeen: Type.String({ description: 'Data time of the latest flow counted.' }),
    endsAt: Type.Optional(
      Type.String({ description: 'Resolved: when the quiet period began (lastSeen + resolve timeout).' }),
    ),
    sentAt: Type.String({ description: 'When this notification was made (wall clock).' }),
    counts: Type.Object({
      flows: Type.Integer({ minimum: 0 }),
      packets: Type.Integer({ minimum: 0 }),
      bytes: Type.Integer({ minimum: 0 }),
      /** For a scan: distinct denied destinations (workload and port) in its window. */
      targets: Type.Optional(Type.Integer({ minimum: 0 })),
    }),
    names: Type.Object({
      src: Type.Array(Type.String(), { description: 'DNS-style names seen for the source.' }),
      dst: Type.Array(Type.String()),
    }),
    /** Policies that isolated the destination (or the source, for egress), `namespace/name`. */
    policies: Type.Array(Type.String()),
    summary: Type.String(),
    /** Where the evidence is (`--external-url`), when configured. */
    url: Type.Optional(Type.String()),
  },
  { $id: 'https://netpol-audit.dev/schema/alert.json', title: 'Alert' },
);

export type AlertPayload = Static<typeof AlertPayloadSchema>;
export type AlertKindName = Static<typeof AlertKind>;
export type AlertSeverityName = Static<typeof AlertSeverity>;

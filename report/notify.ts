import type { AlertsConfig } from '../alerts/config.js';
import { routeAlert } from '../alerts/config.js';
import { makeReceivers } from '../alerts/receivers/index.js';
import type { AlertPayload, AlertSeverityName } from '../schema/alert.js';
import type { ReportModel } from '../schema/report.js';

/**
 * The report's summary through the alert receivers (`report --notify ALERTS.yaml`): one
 * notification of kind `report`, keyed by the period, to the receivers the routes give kind
 * `report` (every receiver when there are no routes). A compliant period is sent at the route's
 * severity (default info); a violation is critical, a period that cannot be assessed a warning.
 * Sent once, now: a weekly job that fails to deliver fails (exit 1) and runs again.
 */

export function reportPayload(
  r: ReportModel,
  severity: AlertSeverityName,
  now: Date,
  url?: string,
): AlertPayload {
  const sent = now.toISOString();
  return {
    v: 1,
    id: `report|${r.period.label}|${r.assessment}`,
    alert: `report|${r.period.label}`,
    kind: 'report',
    // Alertmanager keeps a firing alert until endsAt: the summary is news for a day.
    status: 'firing',
    severity,
    key: { src: r.period.label },
    startsAt: new Date(r.period.since).toISOString(),
    lastSeen: new Date(r.period.until).toISOString(),
    endsAt: new Date(now.getTime() + 86_400_000).toISOString(),
    sentAt: sent,
    counts: { flows: r.traffic.flows, packets: r.traffic.packets, bytes: r.traffic.bytes },
    names: { src: [], dst: [] },
    policies: [],
    summary: r.summary,
    ...(url ? { url } : {}),
  };
}

export interface NotifyResult {
  receiver: string;
  outcome: 'sent' | 'retry' | 'failed';
  status?: number;
  error?: string;
}

export async function notifyReport(
  r: ReportModel,
  config: AlertsConfig,
  now = new Date(),
): Promise<NotifyResult[]> {
  const routed = routeAlert(config, { kind: 'report', src: r.period.label });
  const receivers = makeReceivers(config.receivers.filter((c) => routed.some((x) => x.receiver === c.name)));
  const out: NotifyResult[] = [];
  for (const rec of receivers) {
    const base = routed.find(
      (x) => rec.name === x.receiver || rec.name.startsWith(`${x.receiver}[`),
    )?.severity;
    const severity: AlertSeverityName =
      r.assessment === 'not-compliant'
        ? 'critical'
        : r.assessment === 'compliant'
          ? (base ?? 'info')
          : 'warning';
    const payload = reportPayload(r, severity, now, config.externalUrl);
    const d = await rec.deliver(payload, payload.id);
    out.push({ receiver: rec.name, outcome: d.outcome, status: d.status, error: d.error });
  }
  return out;
}

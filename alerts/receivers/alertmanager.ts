import type { AlertPayload } from '../../schema/alert.js';
import type { ReceiverConfig } from '../config.js';
import { post } from './http.js';
import type { AlertReceiver } from './index.js';

/**
 * Alertmanager's API v2 (`POST /api/v2/alerts`). Labels identify the alert (Alertmanager's
 * fingerprint), so a notification sent twice is one alert there; grouping, silences, inhibition and
 * on-call routing are Alertmanager's. Labels carry no unbounded values: namespaces, workloads,
 * protocol and port; names and policies go to annotations. With several URLs (an HA cluster) each
 * gets every alert, as Prometheus does.
 */

function split(workload: string | undefined): { ns: string; name: string } {
  if (!workload) return { ns: '', name: '' };
  const i = workload.indexOf('/');
  return i > 0 ? { ns: workload.slice(0, i), name: workload.slice(i + 1) } : { ns: '', name: workload };
}

const ALERT_NAMES: Record<AlertPayload['kind'], string> = {
  violation: 'NetworkPolicyViolation',
  'denied-attempt': 'NetworkPolicyDeniedAttempt',
  scan: 'NetworkPolicyScan',
  report: 'NetworkPolicyComplianceReport',
};

function alertmanagerAlert(p: AlertPayload): Record<string, unknown> {
  // A report is keyed by its period (a bounded value: one per week), not by a workload.
  const src = p.kind === 'report' ? { ns: '', name: '' } : split(p.key.src);
  const labels: Record<string, string> = {
    alertname: ALERT_NAMES[p.kind],
    severity: p.severity,
    source: 'netpol-audit',
    src_namespace: src.ns,
    src_workload: src.name,
  };
  if (p.kind === 'report') labels.period = p.key.src;
  if (p.key.dst !== undefined) {
    const dst = split(p.key.dst);
    labels.dst_namespace = dst.ns;
    labels.dst_workload = dst.name;
  }
  if (p.key.proto !== undefined) labels.protocol = p.key.proto;
  if (p.key.port !== undefined) labels.port = String(p.key.port);
  const annotations: Record<string, string> = {
    summary: p.summary,
    src_names: p.names.src.join(' '),
    dst_names: p.names.dst.join(' '),
    policies: p.policies.join(' '),
    flows: String(p.counts.flows),
    bytes: String(p.counts.bytes),
    first_seen: p.startsAt,
    last_seen: p.lastSeen,
  };
  const out: Record<string, unknown> = { labels, annotations, startsAt: p.startsAt };
  if (p.endsAt) out.endsAt = p.endsAt;
  if (p.url) out.generatorURL = p.url;
  return out;
}

export function alertmanagerReceivers(c: ReceiverConfig): AlertReceiver[] {
  return c.urls.map((u, i) => ({
    name: c.urls.length > 1 ? `${c.name}[${i}]` : c.name,
    deliver: (p: AlertPayload, key: string) =>
      post(
        `${u.reveal().replace(/\/$/, '')}/api/v2/alerts`,
        JSON.stringify([alertmanagerAlert(p)]),
        { 'idempotency-key': key },
        c.timeoutMs,
      ),
  }));
}

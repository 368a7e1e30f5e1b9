import { createHash } from 'node:crypto';
import { ALERT_VERSION, type AlertPayload, type AlertSeverityName } from '../schema/alert.js';
import type { AlertEvent } from './engine.js';

/** An engine event as the payload every receiver is built from (schema/alert.ts). */

const iso = (ms: number) => new Date(ms).toISOString();

/** The notification's identity: the same on every retry and every rerun, different per notification. */
export function idempotencyKey(e: Pick<AlertEvent, 'alert' | 'seq' | 'type'>): string {
  return createHash('sha256')
    .update(
      `${e.alert.id}\u0000${e.alert.startsAt}\u0000${e.seq}\u0000${e.type === 'resolved' ? 'resolved' : 'firing'}`,
    )
    .digest('hex')
    .slice(0, 32);
}

function alertKey(e: Pick<AlertEvent, 'alert'>): string {
  return createHash('sha256').update(`${e.alert.id}\u0000${e.alert.startsAt}`).digest('hex').slice(0, 32);
}

function portText(proto?: string, port?: number): string {
  if (!proto) return '';
  return port === undefined || port < 0 ? proto : `${proto}/${port}`;
}

function summaryOf(e: AlertEvent): string {
  const a = e.alert;
  const what =
    a.kind === 'scan'
      ? `${a.src} was denied on ${a.targets ?? 0} destinations or ports within the scan window`
      : a.kind === 'violation'
        ? `${a.src} -> ${a.dst} ${portText(a.proto, a.port)}: traffic the NetworkPolicies deny was observed to flow`
        : `${a.src} -> ${a.dst} ${portText(a.proto, a.port)}: denied attempts`;
  const counts = `${a.flows} flow(s), ${a.bytes} bytes`;
  return e.type === 'resolved'
    ? `Resolved: ${what} (${counts}; quiet since ${iso(a.lastSeen)})`
    : `${what} (${counts})`;
}

export function toPayload(
  e: AlertEvent,
  severity: AlertSeverityName,
  sentAtWall: number,
  externalUrl?: string,
): AlertPayload {
  const a = e.alert;
  const p: AlertPayload = {
    v: ALERT_VERSION,
    id: idempotencyKey(e),
    alert: alertKey(e),
    kind: a.kind,
    status: e.type === 'resolved' ? 'resolved' : 'firing',
    severity,
    key: { src: a.src },
    startsAt: iso(a.startsAt),
    lastSeen: iso(a.lastSeen),
    sentAt: iso(sentAtWall),
    counts: { flows: a.flows, packets: a.packets, bytes: a.bytes },
    names: { src: [...a.srcNames], dst: [...a.dstNames] },
    policies: [...a.policies],
    summary: summaryOf(e),
  };
  if (a.dst !== undefined) p.key.dst = a.dst;
  if (a.proto !== undefined) p.key.proto = a.proto;
  if (a.port !== undefined) p.key.port = a.port;
  if (a.targets !== undefined) p.counts.targets = a.targets;
  if (e.type === 'resolved') p.endsAt = iso(e.at);
  if (externalUrl) p.url = `${externalUrl.replace(/\/$/, '')}/alerts/${p.alert}`;
  return p;
}

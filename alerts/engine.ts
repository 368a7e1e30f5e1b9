import type { AlertKindName, AlertSeverityName } from '../schema/alert.js';

/**
 * The alert engine: which judged flows raise, update, repeat or resolve an alert. Pure: a function
 * of the flows it is shown and of the times it is given (data time for a capture, wall time for a
 * live pipeline: the caller decides, docs/alerts.md), so the same data always alerts the same way.
 * It only ever sees flows the store counted for the first time (the recorder hands it those), so the
 * same data fed twice does not alert twice.
 *
 * - violation (denied, observed to flow), and denied-attempt when enabled: keyed by (source
 *   workload, destination workload, protocol, port), the violations table's key. The first flow
 *   raises it; later flows update it and notify again only once `repeatMs` has passed since the
 *   last notification; it resolves once `resolveMs` passes without a flow of the key.
 * - scan: one source with denied flows (attempts or violations) to at least `scan.targets` distinct
 *   (destination, port) pairs within `scan.windowMs`. Keyed by the source; resolves like the others.
 */

export interface AlertFlow {
  start: number;
  end: number;
  proto: string;
  port: number;
  srcWorkload: string;
  dstWorkload: string;
  srcName: string;
  dstName: string;
  packets: number;
  bytes: number;
  classification: 'allowed' | 'denied-but-observed' | 'denied-attempt' | 'ambiguous';
  /** Policies that isolated the pod the flow was denied by. */
  policies: string[];
  /**
   * Flows this record adds: 0 for a later slice of a flow already reported (processor/store
   * identity.ts flowsIn); default 1. An alert a later slice raises still counts that flow once.
   */
  flows?: 0 | 1;
}

export interface EngineOptions {
  repeatMs: number;
  resolveMs: number;
  deniedAttempts: boolean;
  scan: { enabled: boolean; windowMs: number; targets: number };
  severity: Record<AlertKindName, AlertSeverityName>;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  repeatMs: 4 * 3_600_000,
  resolveMs: 3_600_000,
  deniedAttempts: false,
  scan: { enabled: true, windowMs: 5 * 60_000, targets: 10 },
  severity: { violation: 'critical', 'denied-attempt': 'warning', scan: 'warning', report: 'info' },
};

/** An alert as the engine keeps it (and the store persists it between runs). */
export interface AlertState {
  /** Stable across the alert's notifications: kind and key. */
  id: string;
  kind: AlertKindName;
  src: string;
  dst?: string;
  proto?: string;
  port?: number;
  startsAt: number;
  lastSeen: number;
  lastNotified: number;
  /** Notifications made so far (0-based number of the next one). */
  notifications: number;
  flows: number;
  packets: number;
  bytes: number;
  targets?: number;
  srcNames: string[];
  dstNames: string[];
  policies: string[];
}

export type AlertEventType = 'firing' | 'repeat' | 'resolved';

export interface AlertEvent {
  type: AlertEventType;
  /** A copy of the alert as it was when the event happened. */
  alert: AlertState;
  /** Number of this notification of the alert: with the alert id, the notification's identity. */
  seq: number;
  /** The time the event happened at (data or wall time, per the caller). */
  at: number;
}

const NAMES_CAP = 5;

function addCapped(list: string[], v: string): void {
  if (v && list.length < NAMES_CAP && !list.includes(v)) list.push(v);
}

export function alertId(
  kind: AlertKindName,
  src: string,
  dst?: string,
  proto?: string,
  port?: number,
): string {
  return kind === 'scan' ? `scan|${src}` : `${kind}|${src}|${dst}|${proto}|${port}`;
}

interface ScanWindow {
  /** (dst|port) -> last time seen, within the window. */
  targets: Map<string, number>;
}

export class AlertEngine {
  private readonly active = new Map<string, AlertState>();
  private readonly scans = new Map<string, ScanWindow>();

  constructor(
    private readonly opts: EngineOptions = DEFAULT_ENGINE_OPTIONS,
    restored: Iterable<AlertState> = [],
  ) {
    for (const a of restored) this.active.set(a.id, { ...a });
  }

  /** Alerts firing now. */
  get firing(): AlertState[] {
    return [...this.active.values()];
  }

  /** A flow the store counted for the first time; returns the notifications it causes. */
  observe(f: AlertFlow): AlertEvent[] {
    const events: AlertEvent[] = [];
    const denied = f.classification === 'denied-but-observed' || f.classification === 'denied-attempt';
    if (!denied) return events;
    if (f.classification === 'denied-but-observed' || this.opts.deniedAttempts) {
      const kind: AlertKindName = f.classification === 'denied-but-observed' ? 'violation' : 'denied-attempt';
      const id = alertId(kind, f.srcWorkload, f.dstWorkload, f.proto, f.port);
      this.bump(events, id, f.start, f, () => ({
        id,
        kind,
        src: f.srcWorkload,
        dst: f.dstWorkload,
        proto: f.proto,
        port: f.port,
      }));
    }
    if (this.opts.scan.enabled) this.scan(events, f);
    return events;
  }

  /** Resolves the alerts quiet since `now - resolveMs`; `now` is data time or wall time (caller's). */
  tick(now: number): AlertEvent[] {
    const events: AlertEvent[] = [];
    for (const [id, a] of this.active) {
      if (a.lastSeen + this.opts.resolveMs <= now) {
        events.push({
          type: 'resolved',
          alert: { ...a },
          seq: a.notifications,
          at: a.lastSeen + this.opts.resolveMs,
        });
        this.active.delete(id);
        this.scans.delete(a.src);
      }
    }
    return events;
  }

  private bump(
    events: AlertEvent[],
    id: string,
    at: number,
    f: AlertFlow,
    make: () => Pick<AlertState, 'id' | 'kind' | 'src' | 'dst' | 'proto' | 'port'>,
    targets?: number,
  ): void {
    let a = this.active.get(id);
    if (a && a.lastSeen + this.opts.resolveMs <= at) {
      // Quiet long enough before this flow: the old alert resolved, this one is new.
      events.push({
        type: 'resolved',
        alert: { ...a },
        seq: a.notifications,
        at: a.lastSeen + this.opts.resolveMs,
      });
      this.active.delete(id);
      a = undefined;
    }
    if (!a) {
      a = {
        ...make(),
        startsAt: at,
        lastSeen: Math.max(at, f.end),
        lastNotified: at,
        notifications: 1,
        flows: 1,
        packets: f.packets,
        bytes: f.bytes,
        srcNames: [],
        dstNames: [],
        policies: [],
      };
      if (targets !== undefined) a.targets = targets;
      this.fill(a, f);
      this.active.set(id, a);
      events.push({ type: 'firing', alert: { ...a }, seq: 0, at });
      return;
    }
    a.flows += f.flows ?? 1;
    a.packets += f.packets;
    a.bytes += f.bytes;
    a.lastSeen = Math.max(a.lastSeen, f.end, at);
    if (targets !== undefined) a.targets = Math.max(a.targets ?? 0, targets);
    this.fill(a, f);
    if (at - a.lastNotified >= this.opts.repeatMs) {
      a.lastNotified = at;
      events.push({ type: 'repeat', alert: { ...a }, seq: a.notifications, at });
      a.notifications++;
    }
  }

  private fill(a: AlertState, f: AlertFlow): void {
    addCapped(a.srcNames, f.srcName);
    if (a.kind !== 'scan') addCapped(a.dstNames, f.dstName);
    else addCapped(a.dstNames, f.dstWorkload);
    for (const p of f.policies) addCapped(a.policies, p);
  }

  private scan(events: AlertEvent[], f: AlertFlow): void {
    const { windowMs, targets } = this.opts.scan;
    let w = this.scans.get(f.srcWorkload);
    if (!w) {
      w = { targets: new Map() };
      this.scans.set(f.srcWorkload, w);
    }
    for (const [t, last] of w.targets) if (last < f.start - windowMs) w.targets.delete(t);
    w.targets.set(`${f.dstWorkload}|${f.proto}/${f.port}`, f.start);
    const id = alertId('scan', f.srcWorkload);
    if (w.targets.size >= targets || this.active.has(id))
      this.bump(events, id, f.start, f, () => ({ id, kind: 'scan', src: f.srcWorkload }), w.targets.size);
  }
}

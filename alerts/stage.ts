import { flowsIn } from '../processor/store/identity.js';
import type { StoredFlow } from '../processor/store/index.js';
import type { AlertOutbox } from '../processor/store/outbox.js';
import type { AlertPayload } from '../schema/alert.js';
import { type AlertsConfig, routeAlert } from './config.js';
import { AlertEngine, type AlertEvent, type AlertFlow, type AlertState } from './engine.js';
import { idempotencyKey, toPayload } from './payload.js';
import { deliveryNames } from './receivers/index.js';

/**
 * The alert stage: between the store and the outbox. The recorder calls `counted` inside each
 * batch's transaction with the flows counted for the first time, so an alert is written exactly
 * when the flows that raised it are (the same data twice alerts once). Resolution (`tick`) runs in
 * its own transaction, with data time after a capture and wall time in a live pipeline.
 */
export class AlertStage {
  private readonly engine: AlertEngine;
  readonly counts = { firing: 0, repeat: 0, resolved: 0, notifications: 0 };
  /** Called when a notification was written (a running dispatcher wakes up). */
  onNotification: (() => void) | undefined;

  constructor(
    private readonly config: AlertsConfig,
    private readonly outbox: AlertOutbox,
    private readonly wall: () => number = Date.now,
    /** The labels of a namespace at a time (the cluster's), for routes that match namespace labels. */
    private readonly namespaceLabels: (
      namespace: string,
      atMs: number,
    ) => Record<string, string> | undefined = () => undefined,
  ) {
    this.engine = new AlertEngine(config.engine, outbox.alerts<AlertState>());
  }

  /** Inside the store's transaction: the flows just counted. */
  counted(fresh: readonly StoredFlow[]): void {
    const touched = new Set<string>();
    for (const f of fresh) {
      if (f.classification !== 'denied-but-observed' && f.classification !== 'denied-attempt') continue;
      for (const e of this.engine.observe(toAlertFlow(f))) {
        this.enqueue(e);
        touched.add(e.alert.id);
      }
    }
    this.persist(touched);
  }

  /** Resolves alerts quiet since `now - resolveTimeout`; in a transaction of its own. */
  tick(now: number, transaction: <T>(fn: () => T) => T): number {
    return transaction(() => {
      const events = this.engine.tick(now);
      for (const e of events) this.enqueue(e);
      this.persist(new Set(events.map((e) => e.alert.id)));
      return events.length;
    });
  }

  get firing(): AlertState[] {
    return this.engine.firing;
  }

  /**
   * The firing alerts as Alertmanager wants them re-sent (as Prometheus re-sends on every
   * evaluation): an alert not heard of for its resolve_timeout resolves there. Not stored: a refresh
   * carries nothing new, and Alertmanager keys it by its labels.
   */
  refreshes(): { receiver: string; payload: AlertPayload; key: string }[] {
    const receivers = new Map(this.config.receivers.map((r) => [r.name, r]));
    const out: { receiver: string; payload: AlertPayload; key: string }[] = [];
    for (const alert of this.engine.firing) {
      const e: AlertEvent = { type: 'repeat', alert, seq: alert.notifications, at: alert.lastSeen };
      for (const { receiver, severity } of routeAlert(this.config, alert, (ns) =>
        this.namespaceLabels(ns, alert.lastSeen),
      )) {
        const rc = receivers.get(receiver)!;
        if (rc.type !== 'alertmanager') continue;
        const payload = toPayload(e, severity, this.wall(), this.config.externalUrl);
        for (const name of deliveryNames(rc)) out.push({ receiver: name, payload, key: idempotencyKey(e) });
      }
    }
    return out;
  }

  private enqueue(e: AlertEvent): void {
    this.counts[e.type]++;
    const key = idempotencyKey(e);
    const receivers = new Map(this.config.receivers.map((r) => [r.name, r]));
    const at = e.alert.lastSeen;
    for (const { receiver, severity } of routeAlert(this.config, e.alert, (ns) =>
      this.namespaceLabels(ns, at),
    )) {
      const payload = JSON.stringify(toPayload(e, severity, this.wall(), this.config.externalUrl));
      for (const name of deliveryNames(receivers.get(receiver)!)) {
        if (
          this.outbox.enqueue(
            { receiver: name, idempotencyKey: key, alertId: e.alert.id, event: e.type, payload },
            this.wall(),
          )
        ) {
          this.counts.notifications++;
          this.onNotification?.();
        }
      }
    }
  }

  private persist(ids: Set<string>): void {
    const firing = new Map(this.engine.firing.map((a) => [a.id, a]));
    for (const id of ids) {
      const a = firing.get(id);
      if (a) this.outbox.saveAlert(id, a);
      else this.outbox.deleteAlert(id);
    }
  }
}

function toAlertFlow(f: StoredFlow): AlertFlow {
  const ev = f.evidence as {
    verdict?: { egress?: { isolatedBy?: string[] }; ingress?: { isolatedBy?: string[] } };
  };
  const policies = [...(ev?.verdict?.ingress?.isolatedBy ?? []), ...(ev?.verdict?.egress?.isolatedBy ?? [])];
  return {
    start: f.start,
    end: f.end,
    proto: f.proto,
    port: f.port,
    srcWorkload: f.srcWorkload,
    dstWorkload: f.dstWorkload,
    srcName: f.srcName,
    dstName: f.dstName,
    packets: f.packets,
    bytes: f.bytes,
    classification: f.classification,
    policies,
    flows: flowsIn(f),
  };
}

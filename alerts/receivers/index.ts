import type { AlertPayload } from '../../schema/alert.js';
import type { ReceiverConfig } from '../config.js';
import { alertmanagerReceivers } from './alertmanager.js';
import type { DeliveryResult } from './http.js';
import { slackReceiver } from './slack.js';
import { webhookReceiver } from './webhook.js';

/**
 * Alert receivers: one small interface, one module per kind. A new receiver is a module here and a
 * case in makeReceivers; the outbox and the dispatcher do not change.
 */
export interface AlertReceiver {
  /** The outbox's receiver column: the configured name (with `[i]` per Alertmanager URL). */
  readonly name: string;
  deliver(payload: AlertPayload, idempotencyKey: string): Promise<DeliveryResult>;
}

export type { DeliveryResult } from './http.js';

export function makeReceivers(configs: readonly ReceiverConfig[]): AlertReceiver[] {
  return configs.flatMap((c) => {
    switch (c.type) {
      case 'alertmanager':
        return alertmanagerReceivers(c);
      case 'webhook':
        return [webhookReceiver(c)];
      default:
        return [slackReceiver(c)];
    }
  });
}

/** The outbox receiver names a configured receiver delivers through. */
export function deliveryNames(c: ReceiverConfig): string[] {
  return c.type === 'alertmanager' && c.urls.length > 1 ? c.urls.map((_, i) => `${c.name}[${i}]`) : [c.name];
}

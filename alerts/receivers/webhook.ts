import { createHmac } from 'node:crypto';
import type { AlertPayload } from '../../schema/alert.js';
import type { ReceiverConfig } from '../config.js';
import { post } from './http.js';
import type { AlertReceiver } from './index.js';

/**
 * The generic webhook: the payload as JSON (schema/alert.schema.json), signed the way GitHub and
 * Stripe sign theirs. `X-Netpol-Audit-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`:
 * a receiver recomputes it with the shared secret, compares in constant time, and rejects a
 * timestamp too old (a replay). `Idempotency-Key` (also the payload's `id`) is the same on retries.
 */

export const SIGNATURE_HEADER = 'x-netpol-audit-signature';

export function sign(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

export function webhookReceiver(c: ReceiverConfig, nowWall: () => number = Date.now): AlertReceiver {
  const url = c.urls[0]!;
  const secret = c.secret!;
  return {
    name: c.name,
    deliver: (p: AlertPayload, key: string) => {
      const body = JSON.stringify(p);
      const t = Math.floor(nowWall() / 1000);
      return post(
        url.reveal(),
        body,
        { [SIGNATURE_HEADER]: sign(secret.reveal(), t, body), 'idempotency-key': key },
        c.timeoutMs,
        nowWall,
      );
    },
  };
}

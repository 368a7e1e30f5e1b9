/**
 * One HTTP POST with a timeout, and what its answer means for the outbox: delivered, worth retrying
 * (network errors, timeouts, 408, 429, 5xx; Retry-After honoured), or failed for good (other 4xx:
 * the receiver refuses this notification and will refuse it again).
 */

export interface DeliveryResult {
  outcome: 'sent' | 'retry' | 'failed';
  status?: number;
  /** The receiver asked to wait this long (Retry-After). */
  retryAfterMs?: number;
  /** What went wrong, for the outbox (never holds a secret: URLs are not included). */
  error?: string;
}

export function retryAfterMs(value: string | null, nowWall: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - nowWall);
}

export async function post(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  nowWall: () => number = Date.now,
): Promise<DeliveryResult> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const what =
      e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message);
    return { outcome: 'retry', error: what };
  }
  const text = await res.text().catch(() => '');
  const status = res.status;
  if (status >= 200 && status < 300) return { outcome: 'sent', status };
  const error = `HTTP ${status}${text ? `: ${text.slice(0, 500)}` : ''}`;
  if (status === 408 || status === 429 || status >= 500) {
    const r: DeliveryResult = { outcome: 'retry', status, error };
    const after = retryAfterMs(res.headers.get('retry-after'), nowWall());
    if (after !== undefined) r.retryAfterMs = after;
    return r;
  }
  return { outcome: 'failed', status, error };
}

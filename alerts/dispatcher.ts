import type { AlertOutbox, OutboxRow } from '../processor/store/outbox.js';
import type { AlertPayload } from '../schema/alert.js';
import type { AlertReceiver } from './receivers/index.js';

/**
 * Delivers the outbox: due rows in order, each to its receiver, each attempt recorded. A retriable
 * failure waits with exponential backoff and full jitter (or the receiver's Retry-After, if longer);
 * a permanent one (4xx other than 408/429) is kept as `failed` with the receiver's answer. Nothing
 * is held in memory between rounds: a restart resumes from the outbox.
 */

export interface DispatcherOptions {
  /** First retry delay (default 1 s); doubles per attempt up to maxDelayMs (default 5 min). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  now?: () => number;
  random?: () => number;
}

export interface DispatchStats {
  sent: number;
  retried: number;
  failed: number;
  /** Attempts by receiver and outcome (sent, retry, failed), for metrics. */
  byReceiver: Map<string, { sent: number; retry: number; failed: number }>;
}

export class AlertDispatcher {
  readonly stats: DispatchStats = { sent: 0, retried: 0, failed: 0, byReceiver: new Map() };
  private readonly receivers: Map<string, AlertReceiver>;
  private readonly base: number;
  private readonly max: number;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(
    private readonly outbox: AlertOutbox,
    receivers: readonly AlertReceiver[],
    opts: DispatcherOptions = {},
  ) {
    this.receivers = new Map(receivers.map((r) => [r.name, r]));
    this.base = opts.baseDelayMs ?? 1000;
    this.max = opts.maxDelayMs ?? 300_000;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  /** The wait before attempt `attempts + 1`: full jitter over an exponential ceiling. */
  backoff(attempts: number): number {
    const ceiling = Math.min(this.max, this.base * 2 ** Math.min(attempts, 30));
    return Math.max(this.base / 2, Math.floor(this.random() * ceiling));
  }

  /** Delivers what is due now; returns how many rows were attempted. */
  async runOnce(limit = 100): Promise<number> {
    const rows = this.outbox.due(this.now(), limit);
    for (const row of rows) await this.deliver(row);
    return rows.length;
  }

  private async deliver(row: OutboxRow): Promise<void> {
    const receiver = this.receivers.get(row.receiver);
    const now = this.now();
    if (!receiver) {
      // Configured away since the row was written: kept, visible, and retried if it comes back.
      this.outbox.recordAttempt(
        row.id,
        {
          state: 'pending',
          error: `no receiver named ${row.receiver} is configured`,
          nextAttemptWall: now + this.max,
        },
        now,
      );
      return;
    }
    const result = await receiver.deliver(JSON.parse(row.payload) as AlertPayload, row.idempotencyKey);
    const after = this.now();
    let per = this.stats.byReceiver.get(row.receiver);
    if (!per) {
      per = { sent: 0, retry: 0, failed: 0 };
      this.stats.byReceiver.set(row.receiver, per);
    }
    per[result.outcome]++;
    if (result.outcome === 'sent') {
      this.stats.sent++;
      this.outbox.recordAttempt(
        row.id,
        { state: 'sent', status: result.status, nextAttemptWall: after },
        after,
      );
    } else if (result.outcome === 'failed') {
      this.stats.failed++;
      this.outbox.recordAttempt(
        row.id,
        { state: 'failed', status: result.status, error: result.error, nextAttemptWall: after },
        after,
      );
    } else {
      this.stats.retried++;
      const wait = Math.max(this.backoff(row.attempts), result.retryAfterMs ?? 0);
      this.outbox.recordAttempt(
        row.id,
        { state: 'pending', status: result.status, error: result.error, nextAttemptWall: after + wait },
        after,
      );
    }
  }

  /**
   * Delivers until nothing is pending, `deadlineWall` passes, or `signal` aborts; sleeps until the
   * next row is due. Returns the number still pending.
   */
  async drain(deadlineWall: number, signal?: AbortSignal): Promise<number> {
    for (;;) {
      if (signal?.aborted) break;
      await this.runOnce();
      const next = this.outbox.nextDue();
      if (next === undefined) return 0;
      const now = this.now();
      if (next > deadlineWall || now >= deadlineWall) break;
      await sleep(Math.max(0, Math.min(next - now, deadlineWall - now)), signal);
    }
    return this.outbox.counts().pending;
  }
}

/**
 * A long-running process (process): delivers as rows fall due until `signal` aborts, polling every
 * `pollMs` for rows other transactions added.
 */
export async function dispatchUntil(
  dispatcher: AlertDispatcher,
  outbox: AlertOutbox,
  signal: AbortSignal,
  wakeup?: Wakeup,
  pollMs = 1000,
): Promise<void> {
  while (!signal.aborted) {
    await dispatcher.runOnce();
    const next = outbox.nextDue();
    const wait = next === undefined ? pollMs : Math.min(pollMs, Math.max(0, next - Date.now()));
    await (wakeup ? wakeup.wait(wait, signal) : sleep(wait, signal));
  }
}

/** Lets the stage wake the dispatcher as soon as it wrote a notification, instead of the next poll. */
export class Wakeup {
  private resolve: (() => void) | undefined;
  private pending = false;

  wake(): void {
    if (this.resolve) this.resolve();
    else this.pending = true;
  }

  wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        this.resolve = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.resolve = done;
    });
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

import type Database from 'better-sqlite3';

/**
 * The alert outbox and the alerts' state, in the store's SQLite file (migration 4). Writes made
 * while the store applies a batch are part of its transaction: an alert exists exactly when the
 * flows that raised it were counted. The dispatcher takes due rows, and records each attempt.
 */

export type OutboxState = 'pending' | 'sent' | 'failed';

export interface OutboxRow {
  id: number;
  receiver: string;
  idempotencyKey: string;
  alertId: string;
  event: 'firing' | 'repeat' | 'resolved';
  payload: string;
  state: OutboxState;
  attempts: number;
  createdWall: number;
  nextAttemptWall: number;
  lastAttemptWall: number | null;
  lastStatus: number | null;
  lastError: string | null;
}

export interface NewOutboxRow {
  receiver: string;
  idempotencyKey: string;
  alertId: string;
  event: OutboxRow['event'];
  payload: string;
}

const ERROR_CAP = 2000;

function row(r: Record<string, unknown>): OutboxRow {
  return {
    id: r.id as number,
    receiver: r.receiver as string,
    idempotencyKey: r.idempotency_key as string,
    alertId: r.alert_id as string,
    event: r.event as OutboxRow['event'],
    payload: r.payload as string,
    state: r.state as OutboxState,
    attempts: r.attempts as number,
    createdWall: r.created_wall as number,
    nextAttemptWall: r.next_attempt_wall as number,
    lastAttemptWall: (r.last_attempt_wall as number | null) ?? null,
    lastStatus: (r.last_status as number | null) ?? null,
    lastError: (r.last_error as string | null) ?? null,
  };
}

export class AlertOutbox {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      enqueue:
        db.prepare(`INSERT INTO alert_outbox (receiver, idempotency_key, alert_id, event, payload, created_wall, next_attempt_wall)
        VALUES (@receiver, @idempotencyKey, @alertId, @event, @payload, @now, @now)
        ON CONFLICT (receiver, idempotency_key) DO NOTHING`),
      due: db.prepare(
        "SELECT * FROM alert_outbox WHERE state = 'pending' AND next_attempt_wall <= ? ORDER BY id LIMIT ?",
      ),
      nextDue: db.prepare("SELECT min(next_attempt_wall) AS t FROM alert_outbox WHERE state = 'pending'"),
      attempt:
        db.prepare(`UPDATE alert_outbox SET state = @state, attempts = attempts + 1, last_attempt_wall = @now,
        next_attempt_wall = @next, last_status = @status, last_error = @error WHERE id = @id`),
      saveAlert: db.prepare(
        'INSERT INTO alerts (id, state) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state',
      ),
      deleteAlert: db.prepare('DELETE FROM alerts WHERE id = ?'),
      alerts: db.prepare('SELECT state FROM alerts ORDER BY id'),
      list: db.prepare('SELECT * FROM alert_outbox WHERE (@state IS NULL OR state = @state) ORDER BY id'),
      counts: db.prepare('SELECT state, count(*) AS n FROM alert_outbox GROUP BY state'),
    };
  }

  /** Adds a notification for a receiver; the same (receiver, idempotency key) twice is one row. */
  enqueue(r: NewOutboxRow, nowWall: number): boolean {
    return this.stmts.enqueue.run({ ...r, now: nowWall }).changes === 1;
  }

  due(nowWall: number, limit = 100): OutboxRow[] {
    return (this.stmts.due.all(nowWall, limit) as Record<string, unknown>[]).map(row);
  }

  /** When the next pending row is due (wall ms), if any is pending. */
  nextDue(): number | undefined {
    const r = this.stmts.nextDue.get() as { t: number | null };
    return r.t ?? undefined;
  }

  recordAttempt(
    id: number,
    outcome: { state: OutboxState; status?: number; error?: string; nextAttemptWall: number },
    nowWall: number,
  ): void {
    this.stmts.attempt.run({
      id,
      state: outcome.state,
      now: nowWall,
      next: outcome.nextAttemptWall,
      status: outcome.status ?? null,
      error: outcome.error === undefined ? null : outcome.error.slice(0, ERROR_CAP),
    });
  }

  saveAlert(id: string, state: unknown): void {
    this.stmts.saveAlert.run(id, JSON.stringify(state));
  }

  deleteAlert(id: string): void {
    this.stmts.deleteAlert.run(id);
  }

  /** The alerts firing when the last run stopped. */
  alerts<T>(): T[] {
    return (this.stmts.alerts.all() as { state: string }[]).map((r) => JSON.parse(r.state) as T);
  }

  list(state?: OutboxState): OutboxRow[] {
    return (this.stmts.list.all({ state: state ?? null }) as Record<string, unknown>[]).map(row);
  }

  counts(): Record<OutboxState, number> {
    const out: Record<OutboxState, number> = { pending: 0, sent: 0, failed: 0 };
    for (const r of this.stmts.counts.all() as { state: OutboxState; n: number }[]) out[r.state] = r.n;
    return out;
  }
}

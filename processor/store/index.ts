import { type Stats, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { AuditError } from '../../lib/errors.js';
import type { PolicyVersion } from '../policy/versions.js';
import { type DedupeStatements, prepareDedupe, unseen } from './dedupe.js';
import { ReportFacts } from './facts.js';
import { DEFAULT_DEDUPE_TOLERANCE_MS } from './identity.js';
import { AlertOutbox } from './outbox.js';
import * as queries from './queries.js';
import { ReplayFacts } from './replay.js';
import * as runs from './runs.js';
import { HOUR, IDENTITY_BUCKET_MS, migrate, refuseForeign, storeError } from './schema.js';
import type {
  AggregateRow,
  BatchResult,
  OffsetPosition,
  RuleDefinition,
  RuleRow,
  RunRow,
  StoredFlow,
  StoreOptions,
  TimeRange,
} from './types.js';
import { prepareStatements, prune, type StoreStatements, writeAggregates } from './writes.js';

/**
 * The audit store: one SQLite file (WAL), one writer. Everything a batch produced, and the Kafka
 * offsets that batch came from, are written in one transaction, so a crash never loses or doubles
 * a flow. Batches are aggregated in memory first, so the number of statements grows with distinct
 * keys (workload pairs, rules), not with flows.
 *
 * This file is the store object; the schema and opening checks are schema.ts, writing batches
 * writes.ts, reading back queries.ts, the runs table runs.ts, the alert outbox outbox.ts.
 */

export type { PolicyVersion } from '../policy/versions.js';
export { storeError } from './schema.js';
export type {
  AggregateRow,
  BatchResult,
  OffsetPosition,
  RuleDefinition,
  RuleRow,
  RunRow,
  StoredFlow,
  StoreOptions,
  TimeRange,
} from './types.js';
export { keepsEvidence } from './types.js';

export class AuditStore {
  readonly db: Database.Database;
  /** The store's file, named in every error. */
  readonly path: string;
  readonly windowMs: number;
  readonly dedupeToleranceMs: number;
  /** The run that flow identities written from now on are credited to (beginRun sets it). */
  runId: number | null;
  private readonly stmts: StoreStatements;
  private readonly dedupe: DedupeStatements;

  private constructor(db: Database.Database, path: string, opts: StoreOptions) {
    this.db = db;
    this.path = path;
    this.windowMs = opts.windowMs ?? HOUR;
    // A lookup searches the start's bucket and its neighbours: complete while tolerance <= bucket width.
    this.dedupeToleranceMs = Math.min(
      opts.dedupeToleranceMs ?? DEFAULT_DEDUPE_TOLERANCE_MS,
      IDENTITY_BUCKET_MS,
    );
    this.runId = opts.runId ?? null;
    this.stmts = prepareStatements(db);
    this.dedupe = prepareDedupe(db);
  }

  static open(path: string, opts: StoreOptions = {}): AuditStore {
    const readonly = opts.readonly === true;
    let st: Stats | undefined;
    try {
      st = statSync(path);
    } catch {
      if (readonly)
        throw new AuditError('STORE_NOT_FOUND', 'no such store (run audit or process first)', {
          source: path,
        });
    }
    if (st?.isDirectory())
      throw new AuditError('STORE_NOT_A_FILE', 'is a directory, not a store file', { source: path });
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { readonly, fileMustExist: readonly });
      if (!readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
      }
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      refuseForeign(db, path);
      migrate(db, path, readonly);
      return new AuditStore(db, path, opts);
    } catch (err) {
      db?.close();
      throw storeError(err, path, 'open');
    }
  }

  /**
   * Closes the store. A writer leaves the file in rollback-journal mode, so that a reader who may
   * read the file but not write its directory can still open it (WAL needs a -shm file beside it).
   */
  close(): void {
    if (!this.db.readonly && this.db.open) {
      try {
        this.db.pragma('busy_timeout = 0');
        this.db.pragma('wal_checkpoint(TRUNCATE)');
        this.db.pragma('journal_mode = DELETE');
      } catch {
        // Another connection still has the file open in WAL mode: it stays WAL, nothing is lost.
      }
    }
    this.db.close();
  }

  /** Records the policies and rules in force at data time `atMs` (every rule, used or not). */
  recordPolicies(policies: PolicyVersion[], rules: RuleDefinition[], atMs: number): void {
    this.guard('write to', () => this.recordPoliciesUnguarded(policies, rules, atMs));
  }

  private recordPoliciesUnguarded(policies: PolicyVersion[], rules: RuleDefinition[], atMs: number): void {
    this.db.transaction(() => {
      for (const p of policies)
        this.stmts.policyVersion.run({ ...p, spec: JSON.stringify(p.spec), at: atMs });
      for (const r of rules) this.stmts.ruleDefine.run({ ...r, at: atMs });
    })();
  }

  /**
   * Writes one batch of judged flows, and (when given) the consumer positions it came from, in one
   * transaction: either all of it is stored, or none of it. Flows the store has already counted
   * (same identity, start within the tolerance; also twice within the batch) are skipped: the first
   * observation counted stays, later ones are not added (docs/store.md, "Ingestion identity"). The
   * identities are written in the same transaction as the aggregates they fed, so a crash leaves
   * both or neither, and a rerun skips exactly what was committed.
   */
  applyBatch(
    flows: readonly StoredFlow[],
    offsets: readonly OffsetPosition[] = [],
    onCounted?: (fresh: readonly StoredFlow[]) => void,
  ): BatchResult {
    let result: BatchResult = { stored: 0, duplicates: 0, largerThanStored: 0 };
    this.guard('write to', () =>
      this.dedupeTransaction(() => {
        const { fresh, larger } = unseen(this.dedupe, flows, this.dedupeToleranceMs, this.runId);
        result = { stored: fresh.length, duplicates: flows.length - fresh.length, largerThanStored: larger };
        writeAggregates(this.stmts, fresh, this.windowMs);
        this.facts.record(flows, fresh);
        this.replay.record(fresh);
        for (const o of offsets) this.stmts.offset.run(o.consumer, o.topic, o.partition, o.nextOffset);
        // What the flows counted for the first time cause (alerts into the outbox), in this transaction.
        onCounted?.(fresh);
      }),
    );
    return result;
  }

  /** A transaction that may add identities: the identities in memory are dropped if it fails. */
  private dedupeTransaction(fn: () => void): void {
    try {
      this.db.transaction(fn)();
    } catch (err) {
      this.dedupe.cache.forget();
      throw err;
    }
  }

  private factsCache: ReportFacts | undefined;
  private replayCache: ReplayFacts | undefined;

  /** What-if replay's facts: who each end was, and the traffic between them per day (replay.ts). */
  get replay(): ReplayFacts {
    this.replayCache ??= new ReplayFacts(this.db);
    return this.replayCache;
  }

  /** The report's facts kept in this store: coverage, namespaces, collectors (see facts.ts). */
  get facts(): ReportFacts {
    this.factsCache ??= new ReportFacts(this.db);
    return this.factsCache;
  }

  private outboxCache: AlertOutbox | undefined;

  /** The alert outbox and alert state kept in this store (see outbox.ts). */
  get outbox(): AlertOutbox {
    this.outboxCache ??= new AlertOutbox(this.db);
    return this.outboxCache;
  }

  /** Runs `fn` in one transaction (alert resolutions, outbox bookkeeping). */
  transaction<T>(fn: () => T): T {
    return this.guard('write to', () => this.db.transaction(fn)());
  }

  /** A failure of SQLite while `doing` becomes the store error with its code and the path. */
  private guard<T>(doing: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw storeError(err, this.path, doing);
    }
  }

  /** Where consumer `consumer` should resume: the positions stored with the data. */
  offsets(consumer: string): OffsetPosition[] {
    return queries.offsets(this.db, consumer);
  }

  violations(range: TimeRange = {}, limit = 1000): AggregateRow[] {
    return queries.aggregates(this.db, 'violations', range, limit);
  }

  deniedAttempts(range: TimeRange = {}, limit = 1000): AggregateRow[] {
    return queries.aggregates(this.db, 'denied_attempts', range, limit);
  }

  /**
   * Flows whose verdict could not be settled: a Service whose backends disagree, or a guessed
   * direction the result depends on (directionGuessed counts those).
   */
  ambiguous(range: TimeRange = {}, limit = 1000): AggregateRow[] {
    return queries.aggregates(this.db, 'ambiguous_flows', range, limit);
  }

  /** Every rule with its all-time usage, or only those not hit since `since` (data time). */
  rules(opts: { unusedSince?: number } = {}): RuleRow[] {
    return queries.rules(this.db, opts);
  }

  /**
   * Every rule in force at some point of [since, until) with its usage within that period (from the
   * daily table: day granularity at the edges of the period), for reports on past periods.
   */
  ruleUsage(range: TimeRange = {}): RuleRow[] {
    return queries.ruleUsage(this.db, range);
  }

  /** Each policy version seen in force during [since, until). */
  policyVersions(
    range: TimeRange = {},
  ): { kind: string; policy: string; hash: string; firstSeen: number; lastSeen: number }[] {
    return queries.policyVersions(this.db, range);
  }

  /** Hits of one rule within [since, until), from the daily usage table. */
  ruleHits(
    ref: { kind?: string; policy: string; direction: string; rule: number },
    range: TimeRange = {},
  ): number {
    return queries.ruleHits(this.db, ref, range);
  }

  /** The newest data time in the store: relative periods ("7d") count back from it. */
  latestDataTime(): number | undefined {
    return queries.latestDataTime(this.db);
  }

  /** Totals over [since, until) of the hourly edge table, by result. */
  totals(range: TimeRange = {}): {
    flows: number;
    packets: number;
    bytes: number;
    byResult: Record<string, number>;
  } {
    return queries.totals(this.db, range);
  }

  beginRun(mode: string, inputs: unknown[], wallMs: number): number {
    return this.guard('write to', () => this.beginRunUnguarded(mode, inputs, wallMs));
  }

  private beginRunUnguarded(mode: string, inputs: unknown[], wallMs: number): number {
    const id = runs.insertRun(this.db, mode, inputs, wallMs);
    this.runId = id;
    return id;
  }

  finishRun(id: number, stats: unknown, wallMs: number): void {
    this.guard('write to', () => runs.finishRun(this.db, id, stats, wallMs));
  }

  /**
   * Records a run's stats but leaves it unfinished: it stopped before reading its inputs whole (a
   * signal in the middle of a file), so its data is incomplete until a run of the same inputs
   * completes it (markResumed). Reports say so meanwhile.
   */
  leaveRunUnfinished(id: number, stats: unknown): void {
    this.guard('write to', () => runs.leaveUnfinished(this.db, id, stats));
  }

  /**
   * Marks earlier unfinished runs (interrupted: Ctrl-C, SIGKILL, full disk) with exactly the inputs
   * of run `id`, which has just finished, as resumed by it: ingestion identity made the rerun skip
   * what they had committed and add the rest, so their data is complete. Runs that read standard
   * input are never matched (a stream read again is not the same data). Returns the runs marked.
   */
  markResumed(id: number): number[] {
    return this.guard('write to', () => runs.markResumed(this.db, id));
  }

  /**
   * The embedded runs that bear on a data period: finished runs whose recorded data span overlaps
   * it, and every unfinished one (interrupted or still going: what it stored is unknown, so it may
   * bear on any period). Kafka processor runs stay open while they serve, so only embedded runs count.
   */
  runsFor(since: number, until: number): RunRow[] {
    return runs.runsFor(this.db, since, until);
  }

  /** Deletes aggregated data older than `beforeMs` (data time). Rule definitions stay; their daily usage goes. */
  prune(beforeMs: number): { deleted: number } {
    // The identities it deletes may be in memory.
    this.dedupe.cache.forget();
    return this.guard('write to', () => {
      const result = prune(this.db, beforeMs);
      result.deleted += this.facts.prune(beforeMs);
      result.deleted += this.replay.prune(beforeMs);
      return result;
    });
  }
}

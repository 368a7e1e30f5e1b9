import { type Stats, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { AuditError, type InputIssue } from '../../lib/errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../schema/migrations.js';
import type { RuleRefValue } from '../../schema/verdict.js';
import type { Classification } from '../classify.js';
import type { PolicyVersion } from '../policy/versions.js';
import { type FlowFacts, ReportFacts } from './facts.js';
import { DEFAULT_DEDUPE_TOLERANCE_MS, type FlowIdentity } from './identity.js';
import { AlertOutbox } from './outbox.js';

/**
 * The audit store: one SQLite file (WAL), one writer. Everything a batch produced, and the Kafka
 * offsets that batch came from, are written in one transaction, so a crash never loses or doubles
 * a flow. Batches are aggregated in memory first, so the number of statements grows with distinct
 * keys (workload pairs, rules), not with flows.
 */

const HOUR = 3_600_000;
const DAY = 86_400_000;
const EVIDENCE_CAP = 5;
const NAMES_CAP = 10;
/** Width of flow_identities.bucket (schema/migrations.ts); the dedupe tolerance may not exceed it. */
const IDENTITY_BUCKET_MS = 5000;

/** One judged flow, reduced to what the store keeps. */
export interface StoredFlow {
  start: number;
  end: number;
  proto: string;
  /** Destination port; -1 when the protocol has none. */
  port: number;
  srcWorkload: string;
  dstWorkload: string;
  srcName: string;
  dstName: string;
  packets: number;
  bytes: number;
  result: 'allowed' | 'denied' | 'ambiguous';
  classification: Classification;
  /** Every rule that allowed the flow, in either direction. */
  rules: RuleRefValue[];
  /** The judged record, kept as evidence for violations and denied attempts. */
  evidence: unknown;
  /** The direction was guessed: the collector did not see who initiated and the cluster did not say. */
  directionGuessed?: boolean;
  /**
   * Who the flow is (see identity.ts). A flow whose identity the store already holds, within the
   * start-time tolerance, is not counted again. Without one, the flow is always counted.
   */
  identity?: FlowIdentity;
  /** What the report needs beyond the aggregates (facts.ts). */
  facts?: FlowFacts;
}

/** What one applyBatch did. */
export interface BatchResult {
  /** Flows counted in the aggregates. */
  stored: number;
  /** Flows the store had already counted (same identity), skipped. */
  duplicates: number;
  /**
   * Of the duplicates, those observed here with more packets than the observation the store kept
   * (a capture cut by rotation counted first): the store keeps the first, so it undercounts these.
   */
  largerThanStored: number;
}

export type { PolicyVersion } from '../policy/versions.js';

export interface RuleDefinition {
  kind: string;
  policy: string;
  direction: 'ingress' | 'egress';
  rule: number;
  summary: string;
}

export interface OffsetPosition {
  consumer: string;
  topic: string;
  partition: number;
  /** The next offset to consume, as a decimal string (Kafka offsets are 64-bit). */
  nextOffset: string;
}

export interface StoreOptions {
  /** Violations and denied attempts are deduplicated within windows of this length. Default 1 h. */
  windowMs?: number;
  readonly?: boolean;
  /** Two observations of one flow whose starts differ by at most this much are one flow. Default 2 s. */
  dedupeToleranceMs?: number;
  /** The run whose flows this store object writes (recorded with each flow identity). */
  runId?: number;
}

export interface AggregateRow {
  windowStart: number;
  srcWorkload: string;
  dstWorkload: string;
  proto: string;
  port: number;
  flows: number;
  packets: number;
  bytes: number;
  firstSeen: number;
  lastSeen: number;
  srcNames: string[];
  dstNames: string[];
  evidence: unknown[];
  /** Flows of the row whose direction was guessed (docs/check.md, "Direction"). */
  directionGuessed: number;
}

export interface RuleRow {
  kind: string;
  policy: string;
  direction: 'ingress' | 'egress';
  rule: number;
  summary: string;
  definedFirst: number;
  definedLast: number;
  hits: number;
  bytes: number;
  firstHit: number | null;
  lastHit: number | null;
}

export interface TimeRange {
  since?: number;
  until?: number;
}

interface Agg {
  windowStart: number;
  src: string;
  dst: string;
  proto: string;
  port: number;
  flows: number;
  packets: number;
  bytes: number;
  first: number;
  last: number;
  srcNames: Set<string>;
  dstNames: Set<string>;
  evidence: unknown[];
  directionGuessed: number;
}

function ruleRow(r: Record<string, unknown>): RuleRow {
  return {
    kind: r.kind as string,
    policy: r.policy as string,
    direction: r.direction as 'ingress' | 'egress',
    rule: r.rule_index as number,
    summary: r.summary as string,
    definedFirst: r.defined_first as number,
    definedLast: r.defined_last as number,
    hits: r.hits as number,
    bytes: r.bytes as number,
    firstHit: (r.first_hit as number | null) ?? null,
    lastHit: (r.last_hit as number | null) ?? null,
  };
}

/** An embedded audit run, as `runsFor` reads it back. */
export interface RunRow {
  id: number;
  startedWall: number;
  finished: boolean;
  /** Input problems of severity error the run met. */
  errors: number;
  /** The input problems the run's record keeps. */
  issues: InputIssue[];
}

export class AuditStore {
  readonly db: Database.Database;
  /** The store's file, named in every error. */
  readonly path: string;
  readonly windowMs: number;
  readonly dedupeToleranceMs: number;
  /** The run that flow identities written from now on are credited to (beginRun sets it). */
  runId: number | null;
  private readonly stmts: ReturnType<AuditStore['prepare']>;

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
    this.stmts = this.prepare();
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

  private prepare() {
    const db = this.db;
    const aggUpsert = (table: string) =>
      db.prepare(`INSERT INTO ${table} (window_start, src_workload, dst_workload, proto, port, flows, packets, bytes,
          first_seen, last_seen, src_names, dst_names, evidence, direction_guessed)
        VALUES (@windowStart, @src, @dst, @proto, @port, @flows, @packets, @bytes, @first, @last, @srcNames, @dstNames, @evidence, @directionGuessed)
        ON CONFLICT (window_start, src_workload, dst_workload, proto, port) DO UPDATE SET
          flows = flows + excluded.flows, packets = packets + excluded.packets, bytes = bytes + excluded.bytes,
          direction_guessed = direction_guessed + excluded.direction_guessed,
          first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen),
          src_names = merge_capped(src_names, excluded.src_names, ${NAMES_CAP}),
          dst_names = merge_capped(dst_names, excluded.dst_names, ${NAMES_CAP}),
          evidence = append_capped(evidence, excluded.evidence, ${EVIDENCE_CAP})`);
    db.function('merge_capped', { deterministic: true }, (a: unknown, b: unknown, cap: unknown) => {
      const set = new Set<string>(JSON.parse(String(a)) as string[]);
      for (const n of JSON.parse(String(b)) as string[]) if (set.size < Number(cap)) set.add(n);
      return JSON.stringify([...set]);
    });
    db.function('append_capped', { deterministic: true }, (a: unknown, b: unknown, cap: unknown) => {
      const list = JSON.parse(String(a)) as unknown[];
      if (list.length >= Number(cap)) return String(a);
      for (const e of JSON.parse(String(b)) as unknown[]) if (list.length < Number(cap)) list.push(e);
      return JSON.stringify(list);
    });
    return {
      violation: aggUpsert('violations'),
      denied: aggUpsert('denied_attempts'),
      ambiguous: aggUpsert('ambiguous_flows'),
      edge: db.prepare(`INSERT INTO edges_hourly (hour, src_workload, dst_workload, proto, port, result, flows, packets, bytes)
        VALUES (@hour, @src, @dst, @proto, @port, @result, @flows, @packets, @bytes)
        ON CONFLICT DO UPDATE SET flows = flows + excluded.flows, packets = packets + excluded.packets, bytes = bytes + excluded.bytes`),
      ruleDefine:
        db.prepare(`INSERT INTO rules (kind, policy, direction, rule_index, summary, defined_first, defined_last)
        VALUES (@kind, @policy, @direction, @rule, @summary, @at, @at)
        ON CONFLICT (kind, policy, direction, rule_index) DO UPDATE SET
          summary = CASE WHEN excluded.summary <> '' THEN excluded.summary ELSE summary END,
          defined_first = min(defined_first, excluded.defined_first), defined_last = max(defined_last, excluded.defined_last)`),
      ruleHit: db.prepare(`UPDATE rules SET hits = hits + @hits, bytes = bytes + @bytes,
          first_hit = min(coalesce(first_hit, @first), @first), last_hit = max(coalesce(last_hit, @last), @last)
        WHERE kind = @kind AND policy = @policy AND direction = @direction AND rule_index = @rule RETURNING id`),
      ruleDaily: db.prepare(`INSERT INTO rule_usage_daily (rule_id, day, hits, bytes, first_hit, last_hit)
        VALUES (@id, @day, @hits, @bytes, @first, @last)
        ON CONFLICT DO UPDATE SET hits = hits + excluded.hits, bytes = bytes + excluded.bytes,
          first_hit = min(first_hit, excluded.first_hit), last_hit = max(last_hit, excluded.last_hit)`),
      policyVersion: db.prepare(`INSERT INTO policy_versions (kind, policy, hash, spec, first_seen, last_seen)
        VALUES (@kind, @policy, @hash, @spec, @at, @at)
        ON CONFLICT (kind, policy, hash) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),
          last_seen = max(last_seen, excluded.last_seen)`),
      identitySeen: db.prepare(`SELECT packets FROM flow_identities
        WHERE bucket IN (@b - 1, @b, @b + 1) AND tuple = @tuple AND seq = @seq AND start BETWEEN @lo AND @hi LIMIT 1`),
      identityAdd:
        db.prepare(`INSERT OR IGNORE INTO flow_identities (bucket, tuple, seq, start, packets, bytes, run)
        VALUES (?, ?, ?, ?, ?, ?, ?)`),
      offset: db.prepare(`INSERT INTO offsets (consumer, topic, partition, next_offset) VALUES (?, ?, ?, ?)
        ON CONFLICT DO UPDATE SET next_offset = excluded.next_offset`),
    };
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
      this.db.transaction(() => {
        const { fresh, larger } = this.unseen(flows);
        result = { stored: fresh.length, duplicates: flows.length - fresh.length, largerThanStored: larger };
        this.writeAggregates(fresh);
        this.facts.record(flows, fresh);
        for (const o of offsets) this.stmts.offset.run(o.consumer, o.topic, o.partition, o.nextOffset);
        // What the flows counted for the first time cause (alerts into the outbox), in this transaction.
        onCounted?.(fresh);
      })(),
    );
    return result;
  }

  private factsCache: ReportFacts | undefined;

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

  /** The flows of a batch not counted yet, their identities recorded (inside the caller's transaction). */
  private unseen(flows: readonly StoredFlow[]): { fresh: StoredFlow[]; larger: number } {
    const s = this.stmts;
    const tol = this.dedupeToleranceMs;
    const out: StoredFlow[] = [];
    let larger = 0;
    for (const f of flows) {
      const id = f.identity;
      if (id) {
        const b = Math.floor(id.start / IDENTITY_BUCKET_MS);
        const seen = s.identitySeen.get({
          b,
          tuple: id.tuple,
          seq: id.seq,
          lo: id.start - tol,
          hi: id.start + tol,
        }) as { packets: number } | undefined;
        if (seen) {
          if (f.packets > seen.packets) larger++;
          continue;
        }
        s.identityAdd.run(b, id.tuple, id.seq, id.start, f.packets, f.bytes, this.runId);
      }
      out.push(f);
    }
    return { fresh: out, larger };
  }

  private writeAggregates(flows: readonly StoredFlow[]): void {
    const violations = new Map<string, Agg>();
    const denied = new Map<string, Agg>();
    const ambiguous = new Map<string, Agg>();
    const edges = new Map<
      string,
      {
        hour: number;
        src: string;
        dst: string;
        proto: string;
        port: number;
        result: string;
        flows: number;
        packets: number;
        bytes: number;
      }
    >();
    const hits = new Map<
      string,
      { ref: RuleRefValue; hits: number; bytes: number; first: number; last: number; day: number }
    >();

    for (const f of flows) {
      const hour = Math.floor(f.start / HOUR) * HOUR;
      const ek = `${hour}\u0000${f.srcWorkload}\u0000${f.dstWorkload}\u0000${f.proto}\u0000${f.port}\u0000${f.result}`;
      const e = edges.get(ek);
      if (e) {
        e.flows++;
        e.packets += f.packets;
        e.bytes += f.bytes;
      } else {
        edges.set(ek, {
          hour,
          src: f.srcWorkload,
          dst: f.dstWorkload,
          proto: f.proto,
          port: f.port,
          result: f.result,
          flows: 1,
          packets: f.packets,
          bytes: f.bytes,
        });
      }
      const target =
        f.classification === 'denied-but-observed'
          ? violations
          : f.classification === 'denied-attempt'
            ? denied
            : f.classification === 'ambiguous'
              ? ambiguous
              : undefined;
      if (target) this.aggregate(target, f);
      const day = Math.floor(f.start / DAY) * DAY;
      for (const ref of f.rules) {
        const rk = `${ref.kind ?? 'NetworkPolicy'}\u0000${ref.policy}\u0000${ref.direction}\u0000${ref.rule}\u0000${day}`;
        const h = hits.get(rk);
        if (h) {
          h.hits++;
          h.bytes += f.bytes;
          h.first = Math.min(h.first, f.start);
          h.last = Math.max(h.last, f.end);
        } else {
          hits.set(rk, { ref, hits: 1, bytes: f.bytes, first: f.start, last: f.end, day });
        }
      }
    }

    const s = this.stmts;
    for (const e of edges.values()) s.edge.run(e);
    for (const a of violations.values()) s.violation.run(aggParams(a));
    for (const a of denied.values()) s.denied.run(aggParams(a));
    for (const a of ambiguous.values()) s.ambiguous.run(aggParams(a));
    for (const h of hits.values()) {
      const key = {
        kind: h.ref.kind ?? 'NetworkPolicy',
        policy: h.ref.policy,
        direction: h.ref.direction,
        rule: h.ref.rule,
      };
      let row = s.ruleHit.get({ ...key, hits: h.hits, bytes: h.bytes, first: h.first, last: h.last }) as
        | { id: number }
        | undefined;
      if (!row) {
        // A rule the store has not been told about (its policy arrived with the flow): define it.
        s.ruleDefine.run({ ...key, summary: '', at: h.first });
        row = s.ruleHit.get({ ...key, hits: h.hits, bytes: h.bytes, first: h.first, last: h.last }) as {
          id: number;
        };
      }
      s.ruleDaily.run({
        id: row.id,
        day: h.day,
        hits: h.hits,
        bytes: h.bytes,
        first: h.first,
        last: h.last,
      });
    }
  }

  private aggregate(map: Map<string, Agg>, f: StoredFlow): void {
    const windowStart = Math.floor(f.start / this.windowMs) * this.windowMs;
    const key = `${windowStart}\u0000${f.srcWorkload}\u0000${f.dstWorkload}\u0000${f.proto}\u0000${f.port}`;
    let a = map.get(key);
    if (!a) {
      a = {
        windowStart,
        src: f.srcWorkload,
        dst: f.dstWorkload,
        proto: f.proto,
        port: f.port,
        flows: 0,
        packets: 0,
        bytes: 0,
        first: f.start,
        last: f.end,
        srcNames: new Set(),
        dstNames: new Set(),
        evidence: [],
        directionGuessed: 0,
      };
      map.set(key, a);
    }
    a.flows++;
    if (f.directionGuessed) a.directionGuessed++;
    a.packets += f.packets;
    a.bytes += f.bytes;
    a.first = Math.min(a.first, f.start);
    a.last = Math.max(a.last, f.end);
    if (a.srcNames.size < NAMES_CAP) a.srcNames.add(f.srcName);
    if (a.dstNames.size < NAMES_CAP) a.dstNames.add(f.dstName);
    if (a.evidence.length < EVIDENCE_CAP) a.evidence.push(f.evidence);
  }

  /** Where consumer `consumer` should resume: the positions stored with the data. */
  offsets(consumer: string): OffsetPosition[] {
    return (
      this.db
        .prepare(
          'SELECT consumer, topic, partition, next_offset FROM offsets WHERE consumer = ? ORDER BY topic, partition',
        )
        .all(consumer) as {
        consumer: string;
        topic: string;
        partition: number;
        next_offset: string;
      }[]
    ).map((r) => ({
      consumer: r.consumer,
      topic: r.topic,
      partition: r.partition,
      nextOffset: r.next_offset,
    }));
  }

  violations(range: TimeRange = {}, limit = 1000): AggregateRow[] {
    return this.aggregates('violations', range, limit);
  }

  deniedAttempts(range: TimeRange = {}, limit = 1000): AggregateRow[] {
    return this.aggregates('denied_attempts', range, limit);
  }

  /**
   * Flows whose verdict could not be settled: a Service whose backends disagree, or a guessed
   * direction the result depends on (directionGuessed counts those).
   */
  ambiguous(range: TimeRange = {}, limit = 1000): AggregateRow[] {
    return this.aggregates('ambiguous_flows', range, limit);
  }

  private aggregates(table: string, range: TimeRange, limit: number): AggregateRow[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM ${table} WHERE last_seen >= ? AND first_seen <= ? ORDER BY flows DESC, first_seen LIMIT ?`,
      )
      .all(range.since ?? 0, range.until ?? Number.MAX_SAFE_INTEGER, limit) as Record<string, unknown>[];
    return rows.map((r) => ({
      windowStart: r.window_start as number,
      srcWorkload: r.src_workload as string,
      dstWorkload: r.dst_workload as string,
      proto: r.proto as string,
      port: r.port as number,
      flows: r.flows as number,
      packets: r.packets as number,
      bytes: r.bytes as number,
      firstSeen: r.first_seen as number,
      lastSeen: r.last_seen as number,
      srcNames: JSON.parse(r.src_names as string) as string[],
      dstNames: JSON.parse(r.dst_names as string) as string[],
      evidence: JSON.parse(r.evidence as string) as unknown[],
      directionGuessed: r.direction_guessed as number,
    }));
  }

  /** Every rule with its all-time usage, or only those not hit since `since` (data time). */
  rules(opts: { unusedSince?: number } = {}): RuleRow[] {
    const where =
      opts.unusedSince === undefined
        ? ''
        : 'WHERE (last_hit IS NULL OR last_hit < @since) AND defined_last >= @since';
    const rows = this.db
      .prepare(`SELECT * FROM rules ${where} ORDER BY policy, kind, direction, rule_index`)
      .all(opts.unusedSince === undefined ? {} : { since: opts.unusedSince }) as Record<string, unknown>[];
    return rows.map(ruleRow);
  }

  /**
   * Every rule in force at some point of [since, until) with its usage within that period (from the
   * daily table: day granularity at the edges of the period), for reports on past periods.
   */
  ruleUsage(range: TimeRange = {}): RuleRow[] {
    const since = range.since ?? 0;
    const until = range.until ?? Number.MAX_SAFE_INTEGER;
    const rows = this.db
      .prepare(
        `SELECT r.kind, r.policy, r.direction, r.rule_index, r.summary, r.defined_first, r.defined_last,
           coalesce(sum(d.hits), 0) AS hits, coalesce(sum(d.bytes), 0) AS bytes,
           min(d.first_hit) AS first_hit, max(d.last_hit) AS last_hit
         FROM rules r LEFT JOIN rule_usage_daily d
           ON d.rule_id = r.id AND d.last_hit >= @since AND d.first_hit < @until
         WHERE r.defined_last >= @since AND r.defined_first < @until
         GROUP BY r.id ORDER BY r.policy, r.kind, r.direction, r.rule_index`,
      )
      .all({ since, until }) as Record<string, unknown>[];
    return rows.map(ruleRow);
  }

  /** Each policy version seen in force during [since, until). */
  policyVersions(
    range: TimeRange = {},
  ): { kind: string; policy: string; hash: string; firstSeen: number; lastSeen: number }[] {
    return (
      this.db
        .prepare(
          'SELECT kind, policy, hash, first_seen, last_seen FROM policy_versions WHERE last_seen >= ? AND first_seen < ? ORDER BY policy, first_seen',
        )
        .all(range.since ?? 0, range.until ?? Number.MAX_SAFE_INTEGER) as Record<string, unknown>[]
    ).map((r) => ({
      kind: r.kind as string,
      policy: r.policy as string,
      hash: r.hash as string,
      firstSeen: r.first_seen as number,
      lastSeen: r.last_seen as number,
    }));
  }

  /** Hits of one rule within [since, until), from the daily usage table. */
  ruleHits(
    ref: { kind?: string; policy: string; direction: string; rule: number },
    range: TimeRange = {},
  ): number {
    const row = this.db
      .prepare(`SELECT coalesce(sum(d.hits), 0) AS hits FROM rule_usage_daily d JOIN rules r ON r.id = d.rule_id
        WHERE r.kind = ? AND r.policy = ? AND r.direction = ? AND r.rule_index = ? AND d.last_hit >= ? AND d.first_hit < ?`)
      .get(
        ref.kind ?? 'NetworkPolicy',
        ref.policy,
        ref.direction,
        ref.rule,
        range.since ?? 0,
        range.until ?? Number.MAX_SAFE_INTEGER,
      ) as { hits: number };
    return row.hits;
  }

  /** The newest data time in the store: relative periods ("7d") count back from it. */
  latestDataTime(): number | undefined {
    const row = this.db
      .prepare(
        `SELECT max(t) AS t FROM (SELECT max(hour) + ${HOUR} AS t FROM edges_hourly UNION ALL SELECT max(last_hit) FROM rules UNION ALL SELECT max(last_seen) FROM policy_versions)`,
      )
      .get() as { t: number | null };
    return row.t ?? undefined;
  }

  /** Totals over [since, until) of the hourly edge table, by result. */
  totals(range: TimeRange = {}): {
    flows: number;
    packets: number;
    bytes: number;
    byResult: Record<string, number>;
  } {
    const rows = this.db
      .prepare(
        'SELECT result, sum(flows) AS flows, sum(packets) AS packets, sum(bytes) AS bytes FROM edges_hourly WHERE hour >= ? AND hour < ? GROUP BY result',
      )
      .all(Math.floor((range.since ?? 0) / HOUR) * HOUR, range.until ?? Number.MAX_SAFE_INTEGER) as {
      result: string;
      flows: number;
      packets: number;
      bytes: number;
    }[];
    const byResult: Record<string, number> = {};
    let flows = 0;
    let packets = 0;
    let bytes = 0;
    for (const r of rows) {
      byResult[r.result] = r.flows;
      flows += r.flows;
      packets += r.packets;
      bytes += r.bytes;
    }
    return { flows, packets, bytes, byResult };
  }

  beginRun(mode: string, inputs: unknown[], wallMs: number): number {
    return this.guard('write to', () => this.beginRunUnguarded(mode, inputs, wallMs));
  }

  private beginRunUnguarded(mode: string, inputs: unknown[], wallMs: number): number {
    const id = Number(
      this.db
        .prepare('INSERT INTO runs (mode, started_wall, inputs) VALUES (?, ?, ?)')
        .run(mode, wallMs, JSON.stringify(inputs)).lastInsertRowid,
    );
    this.runId = id;
    return id;
  }

  finishRun(id: number, stats: unknown, wallMs: number): void {
    this.guard('write to', () => this.finishRunUnguarded(id, stats, wallMs));
  }

  private finishRunUnguarded(id: number, stats: unknown, wallMs: number): void {
    this.db
      .prepare('UPDATE runs SET finished_wall = ?, stats = ? WHERE id = ?')
      .run(wallMs, JSON.stringify(stats), id);
  }

  /**
   * Records a run's stats but leaves it unfinished: it stopped before reading its inputs whole (a
   * signal in the middle of a file), so its data is incomplete until a run of the same inputs
   * completes it (markResumed). Reports say so meanwhile.
   */
  leaveRunUnfinished(id: number, stats: unknown): void {
    this.guard('write to', () =>
      this.db.prepare('UPDATE runs SET stats = ? WHERE id = ?').run(JSON.stringify(stats), id),
    );
  }

  /**
   * Marks earlier unfinished runs (interrupted: Ctrl-C, SIGKILL, full disk) with exactly the inputs
   * of run `id`, which has just finished, as resumed by it: ingestion identity made the rerun skip
   * what they had committed and add the rest, so their data is complete. Runs that read standard
   * input are never matched (a stream read again is not the same data). Returns the runs marked.
   */
  markResumed(id: number): number[] {
    return this.guard('write to', () => this.markResumedUnguarded(id));
  }

  private markResumedUnguarded(id: number): number[] {
    const run = this.db.prepare('SELECT inputs, finished_wall FROM runs WHERE id = ?').get(id) as
      | { inputs: string; finished_wall: number | null }
      | undefined;
    if (!run || run.finished_wall === null) return [];
    if ((JSON.parse(run.inputs) as unknown[]).includes('-')) return [];
    const rows = this.db
      .prepare(
        'UPDATE runs SET resumed_by = ? WHERE id < ? AND finished_wall IS NULL AND resumed_by IS NULL AND inputs = ? RETURNING id',
      )
      .all(id, id, run.inputs) as { id: number }[];
    return rows.map((r) => r.id);
  }

  /**
   * The embedded runs that bear on a data period: finished runs whose recorded data span overlaps
   * it, and every unfinished one (interrupted or still going: what it stored is unknown, so it may
   * bear on any period). Kafka processor runs stay open while they serve, so only embedded runs count.
   */
  runsFor(since: number, until: number): RunRow[] {
    const rows = this.db
      .prepare(
        "SELECT id, mode, started_wall, finished_wall, inputs, stats, resumed_by FROM runs WHERE mode = 'embedded' ORDER BY id",
      )
      .all() as {
      id: number;
      mode: string;
      started_wall: number;
      finished_wall: number | null;
      inputs: string;
      stats: string;
      resumed_by: number | null;
    }[];
    // An interrupted run that was later re-run to the end on the same inputs is superseded by it
    // (how the re-run counts the data once is docs/store.md's business, not this check's).
    const lastFinished = new Map<string, number>();
    for (const r of rows) if (r.finished_wall !== null) lastFinished.set(r.inputs, r.id);
    const out: RunRow[] = [];
    for (const r of rows) {
      if (r.finished_wall === null && (r.resumed_by !== null || (lastFinished.get(r.inputs) ?? -1) > r.id))
        continue;
      let stats: { dataFirst?: number; dataLast?: number; errors?: number; issueList?: InputIssue[] } = {};
      try {
        stats = JSON.parse(r.stats) as typeof stats;
      } catch {
        // A stats column we cannot read leaves the run without its span: treated like an unfinished one.
      }
      const finished = r.finished_wall !== null;
      const spanKnown = typeof stats.dataFirst === 'number' && typeof stats.dataLast === 'number';
      if (finished && spanKnown && (stats.dataLast! < since || stats.dataFirst! >= until)) continue;
      if (finished && !spanKnown) continue; // stored no flow (or a run of an older version)
      out.push({
        id: r.id,
        startedWall: r.started_wall,
        finished,
        errors: stats.errors ?? 0,
        issues: Array.isArray(stats.issueList) ? stats.issueList : [],
      });
    }
    return out;
  }

  /** Deletes aggregated data older than `beforeMs` (data time). Rule definitions stay; their daily usage goes. */
  prune(beforeMs: number): { deleted: number } {
    return this.guard('write to', () => this.pruneUnguarded(beforeMs));
  }

  private pruneUnguarded(beforeMs: number): { deleted: number } {
    let deleted = 0;
    this.db.transaction(() => {
      deleted += this.db.prepare('DELETE FROM violations WHERE last_seen < ?').run(beforeMs).changes;
      deleted += this.db.prepare('DELETE FROM denied_attempts WHERE last_seen < ?').run(beforeMs).changes;
      deleted += this.db.prepare('DELETE FROM ambiguous_flows WHERE last_seen < ?').run(beforeMs).changes;
      deleted += this.db.prepare(`DELETE FROM edges_hourly WHERE hour + ${HOUR} <= ?`).run(beforeMs).changes;
      deleted += this.db
        .prepare(`DELETE FROM rule_usage_daily WHERE day + ${DAY} <= ?`)
        .run(beforeMs).changes;
      deleted += this.facts.prune(beforeMs);
      // Identities are kept a day longer than the data, so a late rerun of a pruned period's edge
      // is still recognised; older ones could only dedupe data the store no longer holds.
      deleted += this.db
        .prepare('DELETE FROM flow_identities WHERE bucket < ?')
        .run(Math.floor((beforeMs - DAY) / IDENTITY_BUCKET_MS)).changes;
    })();
    return { deleted };
  }
}

function aggParams(a: Agg) {
  return {
    windowStart: a.windowStart,
    src: a.src,
    dst: a.dst,
    proto: a.proto,
    port: a.port,
    flows: a.flows,
    packets: a.packets,
    bytes: a.bytes,
    first: a.first,
    last: a.last,
    srcNames: JSON.stringify([...a.srcNames]),
    dstNames: JSON.stringify([...a.dstNames]),
    evidence: JSON.stringify(a.evidence),
    directionGuessed: a.directionGuessed,
  };
}

/** Another application's SQLite file: tables but no netpol-audit schema. Never write into it. */
function refuseForeign(db: Database.Database, path: string): void {
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    .all() as { name: string }[];
  if (tables.length > 0 && !tables.some((t) => t.name === 'schema_migrations'))
    throw new AuditError(
      'STORE_FOREIGN_DATABASE',
      `an SQLite database of another application (tables ${tables
        .slice(0, 3)
        .map((t) => JSON.stringify(t.name))
        .join(', ')}${tables.length > 3 ? ', ...' : ''}), not a netpol-audit store`,
      { source: path },
    );
}

/**
 * A store failure as an AuditError with a stable code and the path: what SQLite says, without a
 * stack trace. Errors that already are AuditErrors pass through.
 */
export function storeError(err: unknown, path: string, doing: string): Error {
  if (err instanceof AuditError) return err;
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const at = { source: path };
  if (code === 'SQLITE_NOTADB') return new AuditError('STORE_NOT_A_DATABASE', 'not an SQLite database', at);
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || (err as { errno?: number }).errno === 13)
    return new AuditError('STORE_FULL', `cannot ${doing} the store: the disk is full (${message})`, at);
  if (typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')))
    return new AuditError('STORE_LOCKED', `the store is locked by another writer (${message})`, at);
  if (typeof code === 'string' && code.startsWith('SQLITE_READONLY'))
    return new AuditError(
      'STORE_READONLY',
      `cannot ${doing} the store: no permission to write it (${message})`,
      at,
    );
  if (typeof code === 'string' && code.startsWith('SQLITE_CORRUPT'))
    return new AuditError('STORE_CORRUPT', `the store is damaged (${message})`, at);
  return new AuditError('STORE_FAILED', `cannot ${doing} the store: ${message}`, at);
}

function migrate(db: Database.Database, path: string, readonly: boolean): void {
  if (!readonly)
    db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_wall REAL NOT NULL)',
    );
  const have = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get()
    ? ((db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0)
    : 0;
  if (have > SCHEMA_VERSION) {
    throw new AuditError(
      'STORE_SCHEMA_TOO_NEW',
      `store schema version ${have} is newer than this netpol-audit supports (${SCHEMA_VERSION})`,
      { source: path },
    );
  }
  if (readonly) {
    if (have < SCHEMA_VERSION)
      throw new AuditError(
        'STORE_SCHEMA_OLD',
        `store schema version ${have}, expected ${SCHEMA_VERSION}: open it read-write once to migrate`,
        { source: path },
      );
    return;
  }
  for (const m of MIGRATIONS) {
    if (m.version <= have) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_wall) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        Date.now(),
      );
    })();
  }
}

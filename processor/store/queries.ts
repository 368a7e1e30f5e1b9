import type Database from 'better-sqlite3';
import { HOUR } from './schema.js';
import type { AggregateRow, OffsetPosition, RuleRow, TimeRange } from './types.js';

/** Reading the store back: consumer offsets, aggregates, rules and their usage, totals. */

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

/** Where consumer `consumer` should resume: the positions stored with the data. */
export function offsets(db: Database.Database, consumer: string): OffsetPosition[] {
  return (
    db
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

export function aggregates(
  db: Database.Database,
  table: string,
  range: TimeRange,
  limit: number,
): AggregateRow[] {
  const rows = db
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
export function rules(db: Database.Database, opts: { unusedSince?: number }): RuleRow[] {
  const where =
    opts.unusedSince === undefined
      ? ''
      : 'WHERE (last_hit IS NULL OR last_hit < @since) AND defined_last >= @since';
  const rows = db
    .prepare(`SELECT * FROM rules ${where} ORDER BY policy, kind, direction, rule_index`)
    .all(opts.unusedSince === undefined ? {} : { since: opts.unusedSince }) as Record<string, unknown>[];
  return rows.map(ruleRow);
}

/**
 * Every rule in force at some point of [since, until) with its usage within that period (from the
 * daily table: day granularity at the edges of the period), for reports on past periods.
 */
export function ruleUsage(db: Database.Database, range: TimeRange): RuleRow[] {
  const since = range.since ?? 0;
  const until = range.until ?? Number.MAX_SAFE_INTEGER;
  const rows = db
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
export function policyVersions(
  db: Database.Database,
  range: TimeRange,
): { kind: string; policy: string; hash: string; firstSeen: number; lastSeen: number }[] {
  return (
    db
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
export function ruleHits(
  db: Database.Database,
  ref: { kind?: string; policy: string; direction: string; rule: number },
  range: TimeRange,
): number {
  const row = db
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
export function latestDataTime(db: Database.Database): number | undefined {
  const row = db
    .prepare(
      `SELECT max(t) AS t FROM (SELECT max(hour) + ${HOUR} AS t FROM edges_hourly UNION ALL SELECT max(last_hit) FROM rules UNION ALL SELECT max(last_seen) FROM policy_versions)`,
    )
    .get() as { t: number | null };
  return row.t ?? undefined;
}

/** Totals over [since, until) of the hourly edge table, by result. */
export function totals(
  db: Database.Database,
  range: TimeRange,
): {
  flows: number;
  packets: number;
  bytes: number;
  byResult: Record<string, number>;
} {
  const rows = db
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

import type Database from 'better-sqlite3';
import { TupleMap } from '../../lib/tuple-map.js';
import type { RuleRefValue } from '../../schema/verdict.js';
import { flowsIn } from './identity.js';
import { DAY, HOUR, IDENTITY_BUCKET_MS } from './schema.js';
import type { StoredFlow } from './types.js';

/**
 * Writing batches: the prepared statements, and the in-memory aggregation of a batch into one upsert
 * per distinct key (workload pair, rule, hour, day); the ingestion-identity check is dedupe.ts. The
 * caller (AuditStore.applyBatch) holds the transaction. Also pruning old data (AuditStore.prune).
 */

const EVIDENCE_CAP = 5;
const NAMES_CAP = 10;

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

export function prepareStatements(db: Database.Database) {
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
    offset: db.prepare(`INSERT INTO offsets (consumer, topic, partition, next_offset) VALUES (?, ?, ?, ?)
      ON CONFLICT DO UPDATE SET next_offset = excluded.next_offset`),
  };
}

export type StoreStatements = ReturnType<typeof prepareStatements>;

export function writeAggregates(s: StoreStatements, flows: readonly StoredFlow[], windowMs: number): void {
  const violations = new TupleMap<Agg>();
  const denied = new TupleMap<Agg>();
  const ambiguous = new TupleMap<Agg>();
  const edges = new TupleMap<{
    hour: number;
    src: string;
    dst: string;
    proto: string;
    port: number;
    result: string;
    flows: number;
    packets: number;
    bytes: number;
  }>();
  const hits = new TupleMap<{
    ref: RuleRefValue;
    hits: number;
    bytes: number;
    first: number;
    last: number;
    day: number;
  }>();

  for (const f of flows) {
    const hour = Math.floor(f.start / HOUR) * HOUR;
    const ek = [hour, f.result, f.proto, f.port, f.srcWorkload, f.dstWorkload];
    const e = edges.get(ek);
    const n = flowsIn(f);
    if (e) {
      e.flows += n;
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
        flows: n,
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
    if (target) aggregate(target, f, windowMs);
    const day = Math.floor(f.start / DAY) * DAY;
    for (const ref of f.rules) {
      const rk = [day, ref.kind ?? 'NetworkPolicy', ref.direction, ref.rule, ref.policy];
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

function aggregate(map: TupleMap<Agg>, f: StoredFlow, windowMs: number): void {
  const windowStart = Math.floor(f.start / windowMs) * windowMs;
  const key = [windowStart, f.proto, f.port, f.srcWorkload, f.dstWorkload];
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
  const n = flowsIn(f);
  a.flows += n;
  if (f.directionGuessed && n) a.directionGuessed++;
  a.packets += f.packets;
  a.bytes += f.bytes;
  a.first = Math.min(a.first, f.start);
  a.last = Math.max(a.last, f.end);
  if (a.srcNames.size < NAMES_CAP) a.srcNames.add(f.srcName);
  if (a.dstNames.size < NAMES_CAP) a.dstNames.add(f.dstName);
  if (a.evidence.length < EVIDENCE_CAP) a.evidence.push(f.evidence);
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

/** Deletes aggregated data older than `beforeMs` (AuditStore.prune). */
export function prune(db: Database.Database, beforeMs: number): { deleted: number } {
  let deleted = 0;
  db.transaction(() => {
    deleted += db.prepare('DELETE FROM violations WHERE last_seen < ?').run(beforeMs).changes;
    deleted += db.prepare('DELETE FROM denied_attempts WHERE last_seen < ?').run(beforeMs).changes;
    deleted += db.prepare('DELETE FROM ambiguous_flows WHERE last_seen < ?').run(beforeMs).changes;
    deleted += db.prepare(`DELETE FROM edges_hourly WHERE hour + ${HOUR} <= ?`).run(beforeMs).changes;
    deleted += db.prepare(`DELETE FROM rule_usage_daily WHERE day + ${DAY} <= ?`).run(beforeMs).changes;
    // Identities are kept a day longer than the data, so a late rerun of a pruned period's edge
    // is still recognised; older ones could only dedupe data the store no longer holds.
    deleted += db
      .prepare('DELETE FROM flow_identities WHERE bucket < ?')
      .run(Math.floor((beforeMs - DAY) / IDENTITY_BUCKET_MS)).changes;
  })();
  return { deleted };
}

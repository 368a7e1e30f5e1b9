import type Database from 'better-sqlite3';
import { TupleMap } from '../../lib/tuple-map.js';
import type { ReplayFact } from '../../schema/replay.js';
import type { CoverageSnapshot } from '../../schema/report.js';
import type { Classification } from '../classify.js';
import { type FlowIdentity, flowsIn } from './identity.js';

/**
 * The report's facts (migration 5): isolation coverage per day, traffic between namespaces,
 * traffic into unisolated workloads, which collector reported when, and addresses no pod held.
 * Written with the aggregates, from the flows counted for the first time, so nothing is counted
 * twice; read back by report/model.ts for any period.
 */

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** What the processor knows about a flow that the report needs and the verdict aggregates do not keep. */
export interface FlowFacts {
  /** The pod's namespace, or '(external)', '(node)', '(service)', '(unattributed)'. */
  srcNamespace: string;
  dstNamespace: string;
  /** The destination is a pod no NetworkPolicy isolates for ingress. */
  dstUnisolated?: boolean;
  /** The source is a pod no NetworkPolicy isolates for egress. */
  srcUnisolated?: boolean;
  observer: string;
  node: string;
  /** Addresses of the flow in a node's pod CIDR that no pod held at flow time. */
  unattributed?: { ip: string; node: string }[];
  /** The cluster's isolation, on the first flow a processor judges of each day. */
  coverage?: CoverageSnapshot;
  /** The engine question that decided the flow, for what-if replay (replay.ts). */
  replay?: ReplayFact;
  /** Why no single engine question decided it (a Service across backends, SNAT, a guessed direction). */
  replaySkip?: string;
}

/** The part of a stored flow the facts are made from. */
export interface FactSource {
  start: number;
  bytes: number;
  srcWorkload: string;
  dstWorkload: string;
  classification: Classification;
  facts?: FlowFacts;
  identity?: FlowIdentity;
}

type Sum = { key: unknown[]; flows: number; bytes: number };

function add(map: TupleMap<Sum>, key: unknown[], f: FactSource): void {
  const n = flowsIn(f);
  const cur = map.get(key);
  if (cur) {
    cur.flows += n;
    cur.bytes += f.bytes;
  } else map.set(key, { key, flows: n, bytes: f.bytes });
}

export class ReportFacts {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      coverage: db.prepare('INSERT OR IGNORE INTO coverage_daily (day, as_of, snapshot) VALUES (?, ?, ?)'),
      nsTraffic:
        db.prepare(`INSERT INTO namespace_traffic_daily (day, src_namespace, dst_namespace, classification, flows, bytes)
        VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET flows = flows + excluded.flows, bytes = bytes + excluded.bytes`),
      unisolated:
        db.prepare(`INSERT INTO unisolated_traffic_daily (day, workload, direction, peer, peer_namespace, flows, bytes)
        VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET flows = flows + excluded.flows, bytes = bytes + excluded.bytes`),
      observer: db.prepare(`INSERT INTO observer_hours (hour, observer, node, flows) VALUES (?, ?, ?, ?)
        ON CONFLICT DO UPDATE SET flows = flows + excluded.flows`),
      unattributed: db.prepare(`INSERT INTO unattributed_daily (day, ip, node, flows) VALUES (?, ?, ?, ?)
        ON CONFLICT DO UPDATE SET flows = flows + excluded.flows`),
    };
  }

  /**
   * Inside the batch's transaction: coverage from every flow of the batch (a snapshot is not a
   * count, and the first of a day is kept), counts from the flows counted for the first time.
   */
  record(all: readonly FactSource[], fresh: readonly FactSource[]): void {
    const s = this.stmts;
    for (const f of all) {
      const c = f.facts?.coverage;
      if (c) s.coverage.run(c.day, c.asOf, JSON.stringify(c));
    }
    const ns = new TupleMap<Sum>();
    const unisolated = new TupleMap<Sum>();
    const observers = new TupleMap<Sum>();
    const unattributed = new TupleMap<Sum>();
    for (const f of fresh) {
      const x = f.facts;
      if (!x) continue;
      const day = Math.floor(f.start / DAY) * DAY;
      add(ns, [day, x.srcNamespace, x.dstNamespace, f.classification], f);
      if (x.dstUnisolated) add(unisolated, [day, f.dstWorkload, 'ingress', f.srcWorkload, x.srcNamespace], f);
      if (x.srcUnisolated) add(unisolated, [day, f.srcWorkload, 'egress', f.dstWorkload, x.dstNamespace], f);
      add(observers, [Math.floor(f.start / HOUR) * HOUR, x.observer, x.node], f);
      for (const u of x.unattributed ?? []) add(unattributed, [day, u.ip, u.node], f);
    }
    for (const v of ns.values())
      s.nsTraffic.run(...(v.key as [number, string, string, string]), v.flows, v.bytes);
    for (const v of unisolated.values())
      s.unisolated.run(...(v.key as [number, string, string, string, string]), v.flows, v.bytes);
    for (const v of observers.values()) s.observer.run(...(v.key as [number, string, string]), v.flows);
    for (const v of unattributed.values())
      s.unattributed.run(...(v.key as [number, string, string]), v.flows);
  }

  /** Deletes the facts of days (hours) wholly before `beforeMs`, as prune does the aggregates. */
  prune(beforeMs: number): number {
    let n = 0;
    for (const t of [
      'coverage_daily',
      'namespace_traffic_daily',
      'unisolated_traffic_daily',
      'unattributed_daily',
    ])
      n += this.db.prepare(`DELETE FROM ${t} WHERE day + ${DAY} <= ?`).run(beforeMs).changes;
    n += this.db.prepare(`DELETE FROM observer_hours WHERE hour + ${HOUR} <= ?`).run(beforeMs).changes;
    return n;
  }

  /** The coverage snapshots of the days overlapping [since, until), oldest first. */
  coverage(since: number, until: number): CoverageSnapshot[] {
    const rows = this.db
      .prepare('SELECT snapshot FROM coverage_daily WHERE day >= ? AND day < ? ORDER BY day')
      .all(Math.floor(since / DAY) * DAY, until) as { snapshot: string }[];
    return rows.map((r) => JSON.parse(r.snapshot) as CoverageSnapshot);
  }

  namespaceTraffic(
    since: number,
    until: number,
  ): { day: number; src: string; dst: string; classification: string; flows: number; bytes: number }[] {
    return this.db
      .prepare(
        `SELECT day, src_namespace AS src, dst_namespace AS dst, classification, flows, bytes
         FROM namespace_traffic_daily WHERE day >= ? AND day < ?`,
      )
      .all(Math.floor(since / DAY) * DAY, until) as never;
  }

  unisolatedTraffic(
    since: number,
    until: number,
  ): {
    workload: string;
    direction: 'ingress' | 'egress';
    peer: string;
    peerNamespace: string;
    flows: number;
    bytes: number;
  }[] {
    return this.db
      .prepare(
        `SELECT workload, direction, peer, peer_namespace AS peerNamespace, sum(flows) AS flows, sum(bytes) AS bytes
         FROM unisolated_traffic_daily WHERE day >= ? AND day < ? GROUP BY workload, direction, peer`,
      )
      .all(Math.floor(since / DAY) * DAY, until) as never;
  }

  observerHours(
    since: number,
    until: number,
  ): { hour: number; observer: string; node: string; flows: number }[] {
    return this.db
      .prepare(
        'SELECT hour, observer, node, flows FROM observer_hours WHERE hour >= ? AND hour < ? ORDER BY hour',
      )
      .all(Math.floor(since / HOUR) * HOUR, until) as never;
  }

  unattributed(since: number, until: number): { ip: string; node: string; flows: number }[] {
    return this.db
      .prepare(
        `SELECT ip, node, sum(flows) AS flows FROM unattributed_daily WHERE day >= ? AND day < ?
         GROUP BY ip, node ORDER BY flows DESC`,
      )
      .all(Math.floor(since / DAY) * DAY, until) as never;
  }

  /** Every version of every policy, oldest first per policy, with its spec (JSON). */
  policyHistory(): {
    kind: string;
    policy: string;
    hash: string;
    spec: string;
    firstSeen: number;
    lastSeen: number;
  }[] {
    return this.db
      .prepare(
        `SELECT kind, policy, hash, spec, first_seen AS firstSeen, last_seen AS lastSeen FROM policy_versions
         ORDER BY kind, policy, first_seen`,
      )
      .all() as never;
  }

  /** Per rule (kind, policy, direction, index joined by NUL), its last hit before `beforeMs`. */
  ruleLastHitsBefore(beforeMs: number): Map<string, number> {
    const rows = this.db
      .prepare(
        `SELECT r.kind, r.policy, r.direction, r.rule_index AS rule, max(d.last_hit) AS last
         FROM rule_usage_daily d JOIN rules r ON r.id = d.rule_id WHERE d.last_hit < ?
         GROUP BY r.id`,
      )
      .all(beforeMs) as { kind: string; policy: string; direction: string; rule: number; last: number }[];
    return new Map(
      rows.map((r) => [`${r.kind}\u0000${r.policy}\u0000${r.direction}\u0000${r.rule}`, r.last]),
    );
  }

  /** Every run the store records, with its inputs and stats as written (JSON). */
  runs(): { id: number; mode: string; finished: boolean; inputs: string; stats: string }[] {
    return (
      this.db
        .prepare('SELECT id, mode, finished_wall, resumed_by, inputs, stats FROM runs ORDER BY id')
        .all() as { id: number; mode: string; finished_wall: number | null; inputs: string; stats: string }[]
    ).map((r) => ({
      id: r.id,
      mode: r.mode,
      finished: r.finished_wall !== null,
      inputs: r.inputs,
      stats: r.stats,
    }));
  }
}

import type Database from 'better-sqlite3';
import { TupleMap } from '../../lib/tuple-map.js';
import type { RecordedEdge, ReplayEndpoint, ReplayFact, ReplayNode, ReplayPod } from '../../schema/replay.js';
import type { Classification } from '../classify.js';
import { type FlowIdentity, flowsIn } from './identity.js';

export type { RecordedEdge, ReplayEndpoint, ReplayFact, ReplayNode, ReplayPod } from '../../schema/replay.js';

/**
 * The store's half of what-if replay (migration 6, docs/whatif.md): who each end of a flow was, as
 * the policy engine reads it, and the traffic between them per day. Written in the batch's
 * transaction from the flows counted for the first time, so nothing is counted twice; read back by
 * whatif/ to judge the same traffic under other policies.
 */

const DAY = 86_400_000;

/** What a stored flow brings to replay (a subset of StoredFlow). */
export interface ReplaySource {
  start: number;
  bytes: number;
  classification: Classification;
  facts?: { replay?: ReplayFact; replaySkip?: string };
  identity?: FlowIdentity;
}

/** Canonical JSON: the same pod or node gives the same key, whatever order its labels came in. */
export function canonicalKey(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v as object)
            .sort()
            .map((k) => [k, (v as Record<string, unknown>)[k]]),
        )
      : v,
  );
}

type EdgeSum = { key: unknown[]; flows: number; bytes: number; first: number; last: number };
/** An edge's columns but day and classification (the ends' addresses and identities, protocol, port, answered). */
type EdgeParts = { parts: unknown[]; key: string };

export class ReplayFacts {
  private readonly stmts;
  /** Identity key → id; ids never change, so the cache never goes stale. */
  private readonly ids = new Map<string, number>();
  /**
   * Identity object → id, for frozen objects only: the processor hands every flow of a pod (node)
   * the same frozen object, so its canonical key is computed once, not per flow. Objects that may
   * change (decoded from a verdict message, one per flow) are keyed by content every time.
   */
  private readonly idsByObject = new WeakMap<object, number>();
  /**
   * Identity as received (JSON.stringify, key order as decoded) → id: a recorder decodes a new
   * object per verdict, always written in the same order by the judge, and the plain JSON costs a
   * fraction of the canonical key (which sorts every object's keys). Bounded as `ids` is: by the
   * identities seen.
   */
  private readonly idsByText = new Map<string, number>();
  /** Per frozen replay fact (shared by the flows of a conversation): its edge columns but day and classification. */
  private readonly edgeParts = new WeakMap<ReplayFact, EdgeParts>();

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      identityInsert: db.prepare(
        'INSERT OR IGNORE INTO replay_identities (kind, key, namespace, name) VALUES (?, ?, ?, ?)',
      ),
      identityId: db.prepare('SELECT id FROM replay_identities WHERE key = ?').pluck(),
      edge: db.prepare(`INSERT INTO replay_edges_daily (day, src_ip, src_pod, src_node, dst_ip, dst_pod,
        dst_node, proto, port, answered, classification, flows, bytes, first_seen, last_seen)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET
        flows = flows + excluded.flows, bytes = bytes + excluded.bytes,
        first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)`),
      skipped: db.prepare(`INSERT INTO replay_skipped_daily (day, reason, flows, bytes) VALUES (?, ?, ?, ?)
        ON CONFLICT DO UPDATE SET flows = flows + excluded.flows, bytes = bytes + excluded.bytes`),
    };
  }

  private idOf(kind: 'pod' | 'node', value: ReplayPod | ReplayNode | undefined): number {
    if (!value) return 0;
    const known = this.idsByObject.get(value);
    if (known !== undefined) return known;
    const frozen = Object.isFrozen(value);
    const text = frozen ? undefined : JSON.stringify(value);
    if (text !== undefined) {
      const seen = this.idsByText.get(text);
      if (seen !== undefined) return seen;
    }
    const key = canonicalKey(value);
    let id = this.ids.get(key);
    if (id === undefined) {
      const pod = kind === 'pod' ? (value as ReplayPod) : undefined;
      this.stmts.identityInsert.run(
        kind,
        key,
        pod?.namespace ?? '',
        pod ? pod.workload : (value as ReplayNode).name,
      );
      id = this.stmts.identityId.get(key) as number;
      this.ids.set(key, id);
    }
    if (frozen) this.idsByObject.set(value, id);
    else this.idsByText.set(text!, id);
    return id;
  }

  private partsOf(r: ReplayFact): EdgeParts {
    const known = this.edgeParts.get(r);
    if (known) return known;
    const parts = [
      r.src.ip,
      this.idOf('pod', r.src.pod),
      this.idOf('node', r.src.node),
      r.dst.ip,
      this.idOf('pod', r.dst.pod),
      this.idOf('node', r.dst.node),
      r.proto,
      r.port,
      r.answered ? 1 : 0,
    ];
    const out = { parts, key: parts.join('\u0000') };
    if (Object.isFrozen(r)) this.edgeParts.set(r, out);
    return out;
  }

  /** Inside the batch's transaction, from the flows counted for the first time. */
  record(fresh: readonly ReplaySource[]): void {
    const edges = new TupleMap<EdgeSum>();
    const skipped = new TupleMap<EdgeSum>();
    for (const f of fresh) {
      const day = Math.floor(f.start / DAY) * DAY;
      const r = f.facts?.replay;
      const skip = f.facts?.replaySkip;
      if (!r && !skip) continue;
      const parts = r ? this.partsOf(r) : undefined;
      // Looked up by the parts' joined text (made once per shared fact), stored with the parts.
      const lookup = parts ? [day, parts.key, f.classification] : [day, skip];
      const map = r ? edges : skipped;
      const cur = map.get(lookup);
      const n = flowsIn(f);
      if (cur) {
        cur.flows += n;
        cur.bytes += f.bytes;
        cur.first = Math.min(cur.first, f.start);
        cur.last = Math.max(cur.last, f.start);
      } else {
        const key = parts ? [day, ...parts.parts, f.classification] : lookup;
        map.set(lookup, { key, flows: n, bytes: f.bytes, first: f.start, last: f.start });
      }
    }
    for (const e of edges.values()) this.stmts.edge.run(...e.key, e.flows, e.bytes, e.first, e.last);
    for (const e of skipped.values()) this.stmts.skipped.run(...e.key, e.flows, e.bytes);
  }

  prune(beforeMs: number): number {
    let n = 0;
    for (const t of ['replay_edges_daily', 'replay_skipped_daily'])
      n += this.db.prepare(`DELETE FROM ${t} WHERE day + ${DAY} <= ?`).run(beforeMs).changes;
    return n;
  }

  /** The recorded edges of the days overlapping [since, until), with their ends resolved. */
  edges(since: number, until: number): RecordedEdge[] {
    const identities = new Map<number, ReplayPod | ReplayNode>();
    for (const row of this.db.prepare('SELECT id, key FROM replay_identities').iterate() as Iterable<{
      id: number;
      key: string;
    }>)
      identities.set(row.id, JSON.parse(row.key));
    const end = (ip: string, pod: number, node: number): ReplayEndpoint => {
      const e: ReplayEndpoint = { ip };
      if (pod) e.pod = identities.get(pod) as ReplayPod;
      if (node) e.node = identities.get(node) as ReplayNode;
      return e;
    };
    const rows = this.db
      .prepare(
        `SELECT day, src_ip, src_pod, src_node, dst_ip, dst_pod, dst_node, proto, port, answered,
         classification, flows, bytes, first_seen, last_seen FROM replay_edges_daily
         WHERE day >= ? AND day < ? ORDER BY day`,
      )
      .all(Math.floor(since / DAY) * DAY, until) as Record<string, number | string>[];
    return rows.map((r) => ({
      day: r.day as number,
      src: end(r.src_ip as string, r.src_pod as number, r.src_node as number),
      dst: end(r.dst_ip as string, r.dst_pod as number, r.dst_node as number),
      proto: r.proto as number,
      port: r.port as number,
      answered: r.answered === 1,
      classification: r.classification as Classification,
      flows: r.flows as number,
      bytes: r.bytes as number,
      firstSeen: r.first_seen as number,
      lastSeen: r.last_seen as number,
    }));
  }

  /** Flows of the period that one engine question does not decide, per reason. */
  skipped(since: number, until: number): { reason: string; flows: number; bytes: number }[] {
    return this.db
      .prepare(
        `SELECT reason, sum(flows) AS flows, sum(bytes) AS bytes FROM replay_skipped_daily
         WHERE day >= ? AND day < ? GROUP BY reason ORDER BY reason`,
      )
      .all(Math.floor(since / DAY) * DAY, until) as never;
  }

  /**
   * Flows of the period per day, from the verdict aggregates (kept since the first store version),
   * and whether replay data exists for the day: days without it were recorded before migration 6.
   */
  days(since: number, until: number): { day: number; flows: number; replayable: boolean }[] {
    return (
      this.db
        .prepare(
          `SELECT CAST(hour / ${DAY} AS INTEGER) * ${DAY} AS day, sum(flows) AS flows FROM edges_hourly
           WHERE hour >= ? AND hour < ? GROUP BY 1 ORDER BY 1`,
        )
        .all(Math.floor(since / DAY) * DAY, until) as { day: number; flows: number }[]
    ).map((d) => ({
      ...d,
      replayable:
        this.db
          .prepare(
            'SELECT 1 FROM replay_edges_daily WHERE day = ? UNION ALL SELECT 1 FROM replay_skipped_daily WHERE day = ? LIMIT 1',
          )
          .get(d.day, d.day) !== undefined,
    }));
  }
}

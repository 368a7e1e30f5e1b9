import { type InputIssue, issue } from '../../lib/errors.js';
import { isJsonObject, type JsonObject } from '../../lib/json.js';
import type { ClusterView } from '../cluster-view.js';
import { PolicyCompiler } from '../policy/index.js';
import type { PolicyIndexApi, PolicyOptions } from '../policy/types.js';
import { type PolicyVersion, policySpecHash } from '../policy/versions.js';
import {
  type ChangeSink,
  isPolicyKind,
  KINDS,
  keyOf,
  POLICY_INPUTS,
  parseChange,
  TIMELINE_ISSUE,
} from './changes.js';
import { type IpClaim, IpClaims } from './claims.js';
import type { ClusterChangeSink, WatchedKind } from './events.js';
import {
  clusterModelAt,
  type Entry,
  type PolicyVersionSpan,
  policyVersionSpans,
  pruneHistories,
} from './history.js';
import { Inventory, type InventoryOptions } from './inventory.js';
import { type ClusterModel, emptyCluster, type PodModel } from './model.js';
import type { SnapshotResult } from './snapshot.js';

/**
 * The cluster as it was at any moment of the recent past. Flows reach the processor late (Kafka
 * consumer lag, capture files read after the fact), so a flow must be judged against the pods,
 * labels and policies in force at its own time, not at the time it is processed.
 *
 * Every change at time t opens a version valid from t until the next change. Each object keeps its
 * own short history (one entry per change), so a version costs one entry per changed object, not a
 * copy of the cluster; the ClusterModel of a version is assembled, and its Inventory and PolicyIndex
 * built, only when a flow asks for it, and a few of those are kept (LRU). Times are data times (the
 * source's `at`), never the wall clock; history older than the horizon, counted back from the newest
 * change, is dropped, except the version in force at the horizon itself.
 *
 * This file holds the versions and the built-version caches; reading the changed objects is
 * changes.ts, the objects' histories history.ts, the pods' address claims claims.ts.
 */

export { TIMELINE_ISSUE } from './changes.js';
export type { IpClaim } from './claims.js';
export type { PolicyVersionSpan } from './history.js';

export const DEFAULT_HORIZON_MS = 6 * 3_600_000;
const DEFAULT_CACHED_VERSIONS = 4;
export const DEFAULT_INITIAL_SYNC_MS = 5 * 60_000;

export interface ClusterTimelineOptions {
  /** History kept behind the newest change, in data time. Default 6 h. */
  horizonMs: number;
  /** How many built versions (Inventory) and compiled PolicyIndexes are kept, each. Default 4. */
  cachedVersions: number;
  clusterDomain?: InventoryOptions['clusterDomain'];
  policy?: Partial<PolicyOptions>;
  /** Where input problems go: parse errors once per change, build problems once per distinct issue. */
  onIssue?: (i: InputIssue) => void;
  /** Label for issue locations, e.g. `watch` or a snapshot file. Default `cluster`. */
  source?: string;
  /**
   * A watcher lists its kinds one after another, so the first list of a kind arriving within this
   * time of the first version describes the cluster the timeline started with: its objects are entered
   * from the first version on. Default 5 min; 0 enters every list at its own time.
   */
  initialSyncMs: number;
}

export interface ClusterTimelineStats {
  /** Versions held now (after retention). */
  versions: number;
  /** Changes that altered the cluster (each object added, modified or removed). */
  changes: number;
  /** Upserts and relisted objects identical (for the audit) to what was held; no new version. */
  unchanged: number;
  /** Changes timed before the newest change; applied at the newest change's time. */
  late: number;
  /** Objects of a kind's first list entered from the first version on (see initialSyncMs). */
  backdated: number;
  /** Changes rejected (unparseable object, no name, bad time); reported through onIssue. */
  rejected: number;
  /** at() calls for a time before the earliest version held: answered with that version. */
  beforeFirst: number;
  /** at() calls answered without building (the same version as the previous call, or the cache). */
  cacheHits: number;
  /** Versions built (ClusterModel assembled, Inventory built). */
  builds: number;
  /** PolicyIndexes compiled; versions that differ only in pods, services and slices share one. */
  compiles: number;
  /** NetworkPolicy objects validated and lowered by those compiles: each new or edited policy once. */
  policiesParsed: number;
  /** NetworkPolicy objects those compiles took as compiled before (unchanged since). */
  policiesReused: number;
  /** Built versions dropped from the cache to stay within cachedVersions. */
  evictions: number;
  /** Versions dropped by retention. */
  pruned: number;
}

export interface ClusterAt {
  inventory: Inventory;
  index: PolicyIndexApi;
}

interface Version {
  seq: number;
  from: number;
  /**
   * Versions with the same epoch have the same namespaces, nodes and policies. A PolicyIndex reads
   * nothing else from the cluster (pods come with each query), so they share one compiled index.
   */
  epoch: number;
}

interface Built extends ClusterAt {
  seq: number;
}

/** The hash audit.ts and the store use for a policy version: sha256 of the spec's JSON, 16 hex digits. */
const MAX_REPORTED_KEYS = 100_000;

export class ClusterTimeline implements ClusterChangeSink, ClusterView {
  readonly options: Readonly<ClusterTimelineOptions>;
  private readonly stat: Omit<ClusterTimelineStats, 'versions' | 'policiesParsed' | 'policiesReused'> = {
    changes: 0,
    unchanged: 0,
    late: 0,
    backdated: 0,
    rejected: 0,
    beforeFirst: 0,
    cacheHits: 0,
    builds: 0,
    compiles: 0,
    evictions: 0,
    pruned: 0,
  };
  private readonly objects = new Map<WatchedKind, Map<string, Entry[]>>(
    KINDS.map((k) => [k, new Map<string, Entry[]>()]),
  );
  private versions: Version[] = [];
  private nextSeq = 0;
  private nextEpoch = 0;
  private readonly compiler = new PolicyCompiler();
  /** Compiled indexes by epoch; Map order is recency (LRU). */
  private readonly indexes = new Map<number, PolicyIndexApi>();
  /** Built versions by seq; Map order is recency (LRU). */
  private readonly cache = new Map<number, Built>();
  /** The version the previous at() answered with, and the time range it covers. */
  private last: { from: number; to: number; built: Built } | undefined;
  private empty: Built | undefined;
  /** Objects whose history has more than its current entry, or whose current entry is a deletion. */
  private readonly prunable = new Set<string>();
  private readonly claims = new IpClaims();
  private readonly reported = new Set<string>();
  private changeNo = 0;
  private readonly listed = new Set<WatchedKind>();
  private readonly changeSink: ChangeSink = {
    rejected: () => {
      this.stat.rejected++;
    },
    report: (i) => this.report(i, false),
  };

  constructor(options: Partial<ClusterTimelineOptions> = {}) {
    const horizonMs = options.horizonMs ?? DEFAULT_HORIZON_MS;
    const initialSyncMs = options.initialSyncMs ?? DEFAULT_INITIAL_SYNC_MS;
    const cachedVersions = options.cachedVersions ?? DEFAULT_CACHED_VERSIONS;
    if (!(horizonMs >= 0)) throw new RangeError(`horizonMs must be >= 0, got ${horizonMs}`);
    if (!Number.isInteger(cachedVersions) || cachedVersions < 1)
      throw new RangeError(`cachedVersions must be an integer >= 1, got ${cachedVersions}`);
    if (!(initialSyncMs >= 0)) throw new RangeError(`initialSyncMs must be >= 0, got ${initialSyncMs}`);
    this.options = Object.freeze({ ...options, horizonMs, cachedVersions, initialSyncMs });
  }

  /**
   * A snapshot as a timeline of one version, valid for all time by default (so `audit` judges every
   * flow against it, as before) or from `at`. The snapshot's issues are the caller's to report.
   */
  static fromSnapshot(
    result: SnapshotResult,
    at: number = Number.NEGATIVE_INFINITY,
    options: Partial<ClusterTimelineOptions> = {},
  ): ClusterTimeline {
    const t = new ClusterTimeline(options);
    // A snapshot lists every kind: lists that follow are relists, at their own time.
    for (const kind of KINDS) t.listed.add(kind);
    const c = result.cluster;
    for (const ns of c.namespaces) t.apply('Namespace', ns.name, ns, at);
    for (const pod of c.pods) t.apply('Pod', `${pod.namespace}/${pod.name}`, pod, at);
    for (const node of c.nodes) t.apply('Node', node.name, node, at);
    for (const svc of c.services) t.apply('Service', `${svc.namespace}/${svc.name}`, svc, at);
    for (const s of c.endpointSlices) t.apply('EndpointSlice', `${s.namespace}/${s.name}`, s, at);
    for (const p of c.networkPolicies) {
      const meta = isJsonObject(p) && isJsonObject(p.metadata) ? p.metadata : {};
      t.apply('NetworkPolicy', `${String(meta.namespace ?? 'default')}/${String(meta.name)}`, p, at);
    }
    for (const p of c.clusterNetworkPolicies ?? []) {
      const kind = isJsonObject(p) ? p.kind : undefined;
      const meta = isJsonObject(p) && isJsonObject(p.metadata) ? p.metadata : {};
      if (
        kind === 'AdminNetworkPolicy' ||
        kind === 'BaselineAdminNetworkPolicy' ||
        kind === 'ClusterNetworkPolicy'
      )
        t.apply(kind, `${kind}/${String(meta.name)}`, p, at);
    }
    // A snapshot without objects still has one (empty) version: the cluster was seen empty.
    if (t.versions.length === 0) t.versions.push({ seq: t.nextSeq++, from: at, epoch: t.nextEpoch++ });
    return t;
  }

  // ---- ClusterChangeSink ----

  replace(kind: WatchedKind, objects: unknown[], at: number): void {
    if (!this.checkTime(kind, at)) return;
    const first = this.versions[0];
    const initial =
      !this.listed.has(kind) && first !== undefined && at - first.from <= this.options.initialSyncMs;
    this.listed.add(kind);
    const bucket = this.bucket(kind);
    const seen = new Set<string>();
    objects.forEach((obj, i) => {
      const parsed = this.parse(kind, obj, `items[${i}].`);
      // An object that cannot be read is still there: keep what was known of it, do not delete it.
      if (parsed.key !== undefined) seen.add(parsed.key);
      if (parsed.model === undefined || parsed.key === undefined) return;
      if (initial && first && !bucket.has(parsed.key))
        this.backdate(kind, parsed.key, parsed.model, first.from);
      else this.apply(kind, parsed.key, parsed.model, at);
    });
    for (const [key, hist] of this.bucket(kind)) {
      if (!seen.has(key) && hist[hist.length - 1]!.model !== null) this.apply(kind, key, null, at);
    }
    this.retain();
  }

  upsert(kind: WatchedKind, object: unknown, at: number): void {
    if (!this.checkTime(kind, at)) return;
    const parsed = this.parse(kind, object, '');
    if (parsed.model !== undefined && parsed.key !== undefined)
      this.apply(kind, parsed.key, parsed.model, at);
    this.retain();
  }

  remove(kind: WatchedKind, object: unknown, at: number): void {
    if (!this.checkTime(kind, at)) return;
    this.changeNo++;
    const key = keyOf(kind, object, '', this.source, this.changeNo, this.changeSink);
    if (key !== undefined) this.apply(kind, key, null, at);
    this.retain();
  }

  // ---- ClusterView ----

  /** The Inventory and PolicyIndex in force at `ms` (the version with the latest start <= ms). */
  at(ms: number): ClusterAt {
    const versions = this.versions;
    if (versions.length === 0) {
      this.empty ??= this.build({ seq: -1, from: Number.NEGATIVE_INFINITY, epoch: -1 }, emptyCluster());
      return this.empty;
    }
    const before = ms < versions[0]!.from;
    if (before) this.stat.beforeFirst++;
    const last = this.last;
    // Flows come in bursts at nearly the same time: no search, no map lookup.
    if (last && ms >= last.from && ms < last.to) {
      this.stat.cacheHits++;
      return last.built;
    }
    const i = before ? 0 : this.versionIndexAt(ms);
    const v = versions[i]!;
    let built = this.cache.get(v.seq);
    if (built) {
      this.stat.cacheHits++;
      this.cache.delete(v.seq);
      this.cache.set(v.seq, built);
      // Its index is in use too: keep the two caches' recency alike.
      if (this.indexes.delete(v.epoch)) this.indexes.set(v.epoch, built.index);
    } else {
      built = this.build(v, this.modelAt(v.from));
      this.cache.set(v.seq, built);
      while (this.cache.size > this.options.cachedVersions) {
        const oldest = this.cache.keys().next().value as number;
        this.cache.delete(oldest);
        this.stat.evictions++;
      }
    }
    const to = i + 1 < versions.length ? versions[i + 1]!.from : Number.POSITIVE_INFINITY;
    this.last = { from: i === 0 ? Number.NEGATIVE_INFINITY : v.from, to, built };
    return built;
  }

  // ---- History ----

  /** The ClusterModel in force at `ms`, assembled from the object histories (no Inventory, no compile). */
  modelAt(ms: number): ClusterModel {
    return clusterModelAt(this.objects, ms, this.source, (i) => this.report(i));
  }

  /** Start times of the versions held, oldest first. */
  versionTimes(): number[] {
    return this.versions.map((v) => v.from);
  }

  /** Which pods held `ip`, and when (claims by pods whose address was then taken by another overlap). */
  ipHistory(ip: string): readonly IpClaim[] {
    return this.claims.history(ip);
  }

  /**
   * Every policy version held, with the span it was in force, for the store's policy_versions:
   * within `range` when given (spans overlapping it).
   */
  policyVersions(range: { since?: number; until?: number } = {}): PolicyVersionSpan[] {
    return policyVersionSpans(this.objects, range);
  }

  /** The policy versions in force at `ms`, in the shape AuditStore.recordPolicies takes. */
  policiesAt(ms: number): PolicyVersion[] {
    const t = this.versions.length > 0 && ms < this.versions[0]!.from ? this.versions[0]!.from : ms;
    return this.policyVersions({ since: t, until: t })
      .filter((s) => s.validFrom <= t && (s.validTo === undefined || s.validTo > t))
      .map(({ kind, policy, hash, spec }) => ({ kind, policy, hash, spec }));
  }

  stats(): ClusterTimelineStats {
    return {
      versions: this.versions.length,
      ...this.stat,
      policiesParsed: this.compiler.stats.parsed,
      policiesReused: this.compiler.stats.reused,
    };
  }

  // ---- Internals ----

  private get source(): string {
    return this.options.source ?? 'cluster';
  }

  private bucket(kind: WatchedKind): Map<string, Entry[]> {
    return this.objects.get(kind)!;
  }

  private checkTime(kind: WatchedKind, at: number): boolean {
    if (Number.isFinite(at)) return true;
    this.stat.rejected++;
    this.report(
      issue(TIMELINE_ISSUE.badTime, `${kind} change without a usable time (${String(at)}); ignored`, {
        source: this.source,
        record: this.changeNo++,
      }),
      false,
    );
    return false;
  }

  private report(i: InputIssue, dedupe = true): void {
    if (dedupe) {
      const k = `${i.code}\u0000${i.object ?? ''}\u0000${i.field ?? ''}\u0000${i.message}`;
      if (this.reported.has(k)) return;
      if (this.reported.size >= MAX_REPORTED_KEYS) this.reported.clear();
      this.reported.add(k);
    }
    this.options.onIssue?.(i);
  }

  /** Reads one object of a change (counted as one change). */
  private parse(kind: WatchedKind, obj: unknown, prefix: string): { key?: string; model?: unknown } {
    this.changeNo++;
    return parseChange(kind, obj, prefix, this.source, this.changeNo, this.changeSink);
  }

  /** Records `model` (null: deleted) as the state of one object from `at`. Returns whether anything changed. */
  private apply(kind: WatchedKind, key: string, model: unknown, at: number): boolean {
    const bucket = this.bucket(kind);
    let hist = bucket.get(key);
    const cur = hist?.[hist.length - 1];
    const policy = isPolicyKind(kind);
    const hash = policy && model !== null ? policySpecHash((model as JsonObject).spec) : undefined;
    const fingerprint = model === null ? '' : policy ? `${hash}` : JSON.stringify(model);
    if ((cur === undefined && model === null) || (cur !== undefined && cur.fingerprint === fingerprint)) {
      if (model !== null) this.stat.unchanged++;
      return false;
    }
    const newest = this.versions[this.versions.length - 1];
    let t = at;
    if (newest && t < newest.from) {
      this.stat.late++;
      t = newest.from;
    }
    // A pod or service in a namespace not held gets a made-up namespace (see modelAt): that is an
    // input of the PolicyIndex too.
    const policyInput =
      POLICY_INPUTS.has(kind) ||
      (model !== null && !this.namespaceHeld((model as { namespace?: string }).namespace));
    if (!newest || t > newest.from) {
      const epoch = !newest || policyInput ? this.nextEpoch++ : newest.epoch;
      this.versions.push({ seq: this.nextSeq++, from: t, epoch });
    } else {
      this.cache.delete(newest.seq);
      // Earlier versions may share the newest one's epoch: give it a new one rather than change theirs.
      if (policyInput) newest.epoch = this.nextEpoch++;
    }
    this.last = undefined;
    this.stat.changes++;

    const entry: Entry = { from: t, model, fingerprint };
    if (hash !== undefined) entry.hash = hash;
    if (kind === 'Pod') {
      const before = cur && cur.model !== null ? (cur.model as PodModel) : undefined;
      const after = model !== null ? (model as PodModel) : undefined;
      const same = this.claims.update(key, before, after, t);
      entry.claimSince = same && cur ? (cur.claimSince ?? cur.from) : t;
    }
    if (!hist) {
      hist = [];
      bucket.set(key, hist);
    }
    if (cur && cur.from === t) hist[hist.length - 1] = entry;
    else hist.push(entry);
    if (hist.length === 1 && model === null) bucket.delete(key);
    else if (hist.length > 1 || model === null) this.prunable.add(`${kind}\u0000${key}`);
    return true;
  }

  /**
   * Enters an object nothing was known of as present since `from`, a version time already held: the
   * first list of a kind that came back after another kind's list.
   */
  private backdate(kind: WatchedKind, key: string, model: unknown, from: number): void {
    const policy = isPolicyKind(kind);
    const hash = policy ? policySpecHash((model as JsonObject).spec) : undefined;
    const entry: Entry = { from, model, fingerprint: policy ? `${hash}` : JSON.stringify(model) };
    if (hash !== undefined) entry.hash = hash;
    if (kind === 'Pod') {
      this.claims.update(key, undefined, model as PodModel, from);
      entry.claimSince = from;
    }
    this.bucket(kind).set(key, [entry]);
    // Every version from `from` on now holds the object: nothing built before is right any more.
    // Epochs stay right: all versions changed alike.
    this.cache.clear();
    if (POLICY_INPUTS.has(kind) || !this.namespaceHeld((model as { namespace?: string }).namespace))
      this.indexes.clear();
    this.last = undefined;
    this.stat.changes++;
    this.stat.backdated++;
  }

  private namespaceHeld(ns: string | undefined): boolean {
    if (ns === undefined) return true;
    const hist = this.bucket('Namespace').get(ns);
    return hist !== undefined && hist[hist.length - 1]!.model !== null;
  }

  private versionIndexAt(ms: number): number {
    const v = this.versions;
    let lo = 0;
    let hi = v.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (v[mid]!.from <= ms) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private build(v: Version, model: ClusterModel): Built {
    this.stat.builds++;
    const inventory = new Inventory(model, { clusterDomain: this.options.clusterDomain });
    for (const i of inventory.issues) this.report(i);
    let index = this.indexes.get(v.epoch);
    if (index) {
      this.indexes.delete(v.epoch);
    } else {
      this.stat.compiles++;
      const compiled = this.compiler.compile(model, this.options.policy);
      for (const i of compiled.issues) this.report(i);
      index = compiled.index;
    }
    this.indexes.set(v.epoch, index);
    while (this.indexes.size > this.options.cachedVersions)
      this.indexes.delete(this.indexes.keys().next().value as number);
    return { seq: v.seq, inventory, index };
  }

  /** Drops versions that ended before the horizon, keeping the one in force at it. */
  private retain(): void {
    const versions = this.versions;
    if (versions.length < 2) return;
    const cutoff = versions[versions.length - 1]!.from - this.options.horizonMs;
    const keep = this.versionIndexAt(cutoff);
    if (keep === 0) return;
    for (const v of versions.slice(0, keep)) this.cache.delete(v.seq);
    this.versions = versions.slice(keep);
    this.stat.pruned += keep;
    this.last = undefined;
    const first = this.versions[0]!.from;
    const firstEpoch = this.versions[0]!.epoch;
    for (const epoch of this.indexes.keys()) if (epoch < firstEpoch) this.indexes.delete(epoch);
    pruneHistories(this.objects, this.prunable, first);
    this.claims.retain(first);
  }
}

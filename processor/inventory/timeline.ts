import { type InputIssue, issue } from '../../lib/errors.js';
import { isJsonObject, type JsonObject } from '../../lib/json.js';
import type { ClusterView } from '../cluster-view.js';
import { PolicyCompiler } from '../policy/index.js';
import type { PolicyIndexApi, PolicyOptions } from '../policy/types.js';
import { type PolicyVersion, policySpecHash } from '../policy/versions.js';
import type { ClusterChangeSink, WatchedKind } from './events.js';
import { Inventory, type InventoryOptions, isTerminal, normalizeIp } from './inventory.js';
import { type ClusterModel, emptyCluster, type NamespaceModel, type PodModel } from './model.js';
import {
  ClusterModelBuilder,
  NAMESPACE_NAME_LABEL,
  SNAPSHOT_ISSUE,
  type SnapshotResult,
} from './snapshot.js';

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
 */

export const TIMELINE_ISSUE = {
  /** The change names a kind that the object itself contradicts, or no usable metadata.name. */
  badChange: 'TIMELINE_BAD_CHANGE',
  /** The change time is not a number. */
  badTime: 'TIMELINE_BAD_TIME',
} as const;

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

/** One policy's content over a span of time; consecutive versions with the same spec are merged. */
export interface PolicyVersionSpan extends PolicyVersion {
  resourceVersion?: string;
  generation?: number;
  /** In force from this time (inclusive)... */
  validFrom: number;
  /** ...until this time (exclusive); absent while still in force. */
  validTo?: number;
}

/** A pod's hold on an address: from when it appeared with the IP until deleted, terminal, or readdressed. */
export interface IpClaim {
  ip: string;
  /** `namespace/name`. */
  pod: string;
  uid?: string;
  from: number;
  /** Exclusive; absent while the pod still holds the address. */
  to?: number;
}

export interface ClusterAt {
  inventory: Inventory;
  index: PolicyIndexApi;
}

interface Entry {
  /** Version time from which this state holds. */
  from: number;
  /** The parsed model (raw object for policies); null once deleted. */
  model: unknown;
  /** Equal fingerprints mean equal for the audit: an upsert with the same one makes no version. */
  fingerprint: string;
  /** Pods: since when the pod has held its current addresses (the newest claimant wins conflicts). */
  claimSince?: number;
  /** Policies: content hash of spec, as the store records it. */
  hash?: string;
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

const KINDS: readonly WatchedKind[] = [
  'Namespace',
  'Pod',
  'Node',
  'Service',
  'EndpointSlice',
  'NetworkPolicy',
  'AdminNetworkPolicy',
  'BaselineAdminNetworkPolicy',
  'ClusterNetworkPolicy',
];

/** Watch and list items often lack kind/apiVersion (the List carries them); the parser needs both. */
const DEFAULT_API_VERSION: Record<WatchedKind, string> = {
  Namespace: 'v1',
  Pod: 'v1',
  Node: 'v1',
  Service: 'v1',
  EndpointSlice: 'discovery.k8s.io/v1',
  NetworkPolicy: 'networking.k8s.io/v1',
  AdminNetworkPolicy: 'policy.networking.k8s.io/v1alpha1',
  BaselineAdminNetworkPolicy: 'policy.networking.k8s.io/v1alpha1',
  ClusterNetworkPolicy: 'policy.networking.k8s.io/v1alpha2',
};

const CLUSTER_SCOPED = new Set<WatchedKind>([
  'Namespace',
  'Node',
  'AdminNetworkPolicy',
  'BaselineAdminNetworkPolicy',
  'ClusterNetworkPolicy',
]);

/** The kinds a compiled PolicyIndex depends on. */
const POLICY_INPUTS = new Set<WatchedKind>([
  'Namespace',
  'Node',
  'NetworkPolicy',
  'AdminNetworkPolicy',
  'BaselineAdminNetworkPolicy',
  'ClusterNetworkPolicy',
]);

const isPolicyKind = (k: WatchedKind) =>
  k === 'NetworkPolicy' ||
  k === 'AdminNetworkPolicy' ||
  k === 'BaselineAdminNetworkPolicy' ||
  k === 'ClusterNetworkPolicy';

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
  private readonly claims = new Map<string, IpClaim[]>();
  /** Addresses with a closed claim, the only ones retention has to look at. */
  private readonly closedClaims = new Set<string>();
  private readonly reported = new Set<string>();
  private changeNo = 0;
  private readonly listed = new Set<WatchedKind>();

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
    const key = this.keyOf(kind, object, '');
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
    const pick = <T>(kind: WatchedKind): { model: T; since: number }[] => {
      const out: { model: T; since: number }[] = [];
      for (const hist of this.bucket(kind).values()) {
        const e = entryAt(hist, ms);
        if (e && e.model !== null) out.push({ model: e.model as T, since: e.claimSince ?? e.from });
      }
      return out;
    };
    // When two live pods claim one address (the older one's deletion not seen yet), the Inventory
    // keeps the Running one, then the first listed: list the newest claimant first.
    const pods = pick<PodModel>('Pod')
      .sort((a, b) => b.since - a.since)
      .map((p) => p.model);
    const namespaces = pick<NamespaceModel>('Namespace').map((n) => n.model);
    const services = pick<ClusterModel['services'][number]>('Service').map((s) => s.model);
    // As the snapshot parser does: a namespace that is used but unknown gets its certain name label,
    // so namespaceSelector rules do not silently turn into denials.
    const known = new Set(namespaces.map((n) => n.name));
    for (const ns of [...pods.map((p) => p.namespace), ...services.map((s) => s.namespace)]) {
      if (known.has(ns)) continue;
      known.add(ns);
      namespaces.push({ name: ns, labels: { [NAMESPACE_NAME_LABEL]: ns } });
      this.report(
        issue(
          SNAPSHOT_ISSUE.missingNamespace,
          `namespace ${ns} is used but not known; assuming only the label ${NAMESPACE_NAME_LABEL}=${ns}`,
          { source: this.source, object: ns },
          'warning',
        ),
      );
    }
    return {
      namespaces,
      pods,
      nodes: pick<ClusterModel['nodes'][number]>('Node').map((n) => n.model),
      services,
      endpointSlices: pick<ClusterModel['endpointSlices'][number]>('EndpointSlice').map((s) => s.model),
      networkPolicies: pick<unknown>('NetworkPolicy').map((p) => p.model),
      clusterNetworkPolicies: [
        ...pick<unknown>('AdminNetworkPolicy'),
        ...pick<unknown>('BaselineAdminNetworkPolicy'),
        ...pick<unknown>('ClusterNetworkPolicy'),
      ].map((p) => p.model),
    };
  }

  /** Start times of the versions held, oldest first. */
  versionTimes(): number[] {
    return this.versions.map((v) => v.from);
  }

  /** Which pods held `ip`, and when (claims by pods whose address was then taken by another overlap). */
  ipHistory(ip: string): readonly IpClaim[] {
    return this.claims.get(normalizeIp(ip) ?? ip) ?? [];
  }

  /**
   * Every policy version held, with the span it was in force, for the store's policy_versions:
   * within `range` when given (spans overlapping it).
   */
  policyVersions(range: { since?: number; until?: number } = {}): PolicyVersionSpan[] {
    const since = range.since ?? Number.NEGATIVE_INFINITY;
    const until = range.until ?? Number.POSITIVE_INFINITY;
    const out: PolicyVersionSpan[] = [];
    for (const kind of KINDS) {
      if (!isPolicyKind(kind)) continue;
      for (const [key, hist] of this.bucket(kind)) {
        let open: PolicyVersionSpan | undefined;
        const close = (to: number | undefined) => {
          if (!open) return;
          if (to !== undefined) open.validTo = to;
          if (open.validFrom <= until && (open.validTo === undefined || open.validTo > since)) out.push(open);
          open = undefined;
        };
        for (const e of hist) {
          if (e.model === null) {
            close(e.from);
            continue;
          }
          if (open && open.hash === e.hash) continue;
          close(e.from);
          open = policySpan(kind, key, e);
        }
        close(undefined);
      }
    }
    return out.sort(
      (a, b) => a.validFrom - b.validFrom || (a.policy < b.policy ? -1 : a.policy > b.policy ? 1 : 0),
    );
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

  /** `ns/name` (namespaced), `name` (Namespace, Node), `Kind/name` (cluster policies), as the builder keys them. */
  private keyOf(kind: WatchedKind, obj: unknown, prefix: string): string | undefined {
    const meta = isJsonObject(obj) && isJsonObject(obj.metadata) ? obj.metadata : undefined;
    const name = meta?.name;
    if (typeof name !== 'string' || name === '') {
      this.stat.rejected++;
      this.report(
        issue(TIMELINE_ISSUE.badChange, `${kind} without metadata.name; ignored`, {
          source: this.source,
          record: this.changeNo,
          field: `${prefix}metadata.name`,
        }),
        false,
      );
      return undefined;
    }
    if (kind === 'Namespace' || kind === 'Node') return name;
    if (CLUSTER_SCOPED.has(kind)) return `${kind}/${name}`;
    const ns = meta?.namespace;
    return `${typeof ns === 'string' && ns !== '' ? ns : 'default'}/${name}`;
  }

  private parse(kind: WatchedKind, obj: unknown, prefix: string): { key?: string; model?: unknown } {
    this.changeNo++;
    const key = this.keyOf(kind, obj, prefix);
    if (key === undefined) return {};
    const o = obj as JsonObject;
    if (o.kind !== undefined && o.kind !== kind) {
      this.stat.rejected++;
      this.report(
        issue(TIMELINE_ISSUE.badChange, `a ${kind} change carries a ${String(o.kind)} object; ignored`, {
          source: this.source,
          record: this.changeNo,
          object: key,
          field: `${prefix}kind`,
        }),
        false,
      );
      return { key };
    }
    let full: JsonObject = { apiVersion: DEFAULT_API_VERSION[kind], ...o, kind };
    if (isPolicyKind(kind) && isJsonObject(o.metadata) && 'managedFields' in o.metadata) {
      // Raw policies are kept for the compiler and the store; managedFields is most of their bulk.
      const { managedFields: _drop, ...metadata } = o.metadata;
      full = { ...full, metadata };
    }
    const r = ClusterModelBuilder.parseObject(full, {
      source: this.source,
      record: this.changeNo,
      line: undefined,
      prefix,
    });
    for (const i of r.issues) this.report(i, false);
    if (r.model === undefined) {
      this.stat.rejected++;
      if (r.issues.length === 0)
        this.report(
          issue(
            TIMELINE_ISSUE.badChange,
            `${kind} with apiVersion ${String(full.apiVersion)} is not one the inventory reads; ignored`,
            { source: this.source, record: this.changeNo, object: key, field: `${prefix}apiVersion` },
          ),
          false,
        );
    }
    return { key, model: r.model };
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
      const same = this.updateClaims(key, before, after, t);
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
      this.updateClaims(key, undefined, model as PodModel, from);
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

  /** Closes and opens address claims for a pod change; true when the pod holds exactly what it held. */
  private updateClaims(
    ref: string,
    before: PodModel | undefined,
    after: PodModel | undefined,
    t: number,
  ): boolean {
    const held = (p: PodModel | undefined): string[] => {
      if (!p || p.hostNetwork || isTerminal(p)) return [];
      const out: string[] = [];
      for (const a of p.ips) {
        const ip = normalizeIp(a);
        if (ip && !out.includes(ip)) out.push(ip);
      }
      return out;
    };
    const was = held(before);
    const is = held(after);
    // Same name, new uid: a new pod (StatefulSets reuse names), so its claims start afresh.
    const samePod = before?.uid === after?.uid;
    for (const ip of was) {
      if (samePod && is.includes(ip)) continue;
      const list = this.claims.get(ip);
      if (!list) continue;
      for (let i = list.length - 1; i >= 0; i--) {
        const c = list[i]!;
        if (c.pod !== ref || c.to !== undefined) continue;
        if (c.from === t) list.splice(i, 1);
        else {
          c.to = t;
          this.closedClaims.add(ip);
        }
        break;
      }
      if (list.length === 0) this.claims.delete(ip);
    }
    for (const ip of is) {
      if (samePod && was.includes(ip)) continue;
      const claim: IpClaim = { ip, pod: ref, from: t };
      if (after?.uid) claim.uid = after.uid;
      const list = this.claims.get(ip);
      if (!list) this.claims.set(ip, [claim]);
      else {
        list.push(claim);
        // A backdated claim can start before claims already held: keep the history in time order.
        if (list[list.length - 2]!.from > t) list.sort((a, b) => a.from - b.from);
      }
    }
    return samePod && was.length === is.length && was.every((ip) => is.includes(ip)) && was.length > 0;
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
    for (const id of this.prunable) {
      const sep = id.indexOf('\u0000');
      const bucket = this.bucket(id.slice(0, sep) as WatchedKind);
      const key = id.slice(sep + 1);
      const hist = bucket.get(key);
      if (!hist) {
        this.prunable.delete(id);
        continue;
      }
      let j = 0;
      while (j + 1 < hist.length && hist[j + 1]!.from <= first) j++;
      if (j > 0) hist.splice(0, j);
      if (hist.length === 1 && hist[0]!.from <= first) {
        this.prunable.delete(id);
        if (hist[0]!.model === null) bucket.delete(key);
      }
    }
    for (const ip of this.closedClaims) {
      const list = this.claims.get(ip);
      if (!list) {
        this.closedClaims.delete(ip);
        continue;
      }
      const kept = list.filter((c) => c.to === undefined || c.to > first);
      if (kept.length === 0) this.claims.delete(ip);
      else this.claims.set(ip, kept);
      if (kept.every((c) => c.to === undefined)) this.closedClaims.delete(ip);
    }
  }
}

function entryAt(hist: Entry[], ms: number): Entry | undefined {
  // Histories are short and mostly asked about recent times: scan from the end.
  for (let i = hist.length - 1; i >= 0; i--) if (hist[i]!.from <= ms) return hist[i];
  return undefined;
}

function policySpan(kind: WatchedKind, key: string, e: Entry): PolicyVersionSpan {
  const raw = e.model as JsonObject;
  const meta = isJsonObject(raw.metadata) ? raw.metadata : {};
  const span: PolicyVersionSpan = {
    kind,
    policy: kind === 'NetworkPolicy' ? key : key.slice(kind.length + 1),
    hash: e.hash!,
    spec: raw.spec ?? {},
    validFrom: e.from,
  };
  if (typeof meta.resourceVersion === 'string') span.resourceVersion = meta.resourceVersion;
  if (typeof meta.generation === 'number') span.generation = meta.generation;
  return span;
}

import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { InputIssue } from '../../lib/errors.js';
import type { FlowRecord } from '../../schema/flow-record.js';
import { ROOT } from '../../test/support/cli.js';
import { flowAt } from '../judge/fixtures.js';
import { judgeFlow } from '../judge/index.js';
import { compilePolicyIndex } from '../policy/index.js';
import type { PolicyIndexApi } from '../policy/types.js';
import { policySpecHash } from '../policy/versions.js';
import { FlowProcessor, type JudgedFlow } from '../processor.js';
import type { WatchedKind } from './events.js';
import { Inventory } from './index.js';
import type { PodModel } from './model.js';
import { ClusterModelBuilder, loadSnapshotFiles, parseSnapshot } from './snapshot.js';
import { ClusterTimeline } from './timeline.js';

/** Raw objects as the API server returns them (list items: no kind/apiVersion on pods, as from a watch). */
function namespace(name: string, labels: Record<string, string> = {}) {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

function pod(
  ns: string,
  name: string,
  ip: string | undefined,
  labels: Record<string, string>,
  phase = 'Running',
  uid = `${ns}-${name}-uid`,
) {
  const status: Record<string, unknown> = { phase };
  if (ip) status.podIPs = [{ ip }];
  return {
    metadata: { namespace: ns, name, uid, labels, resourceVersion: '1' },
    spec: { nodeName: 'node-1', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }] },
    status,
  };
}

/** Ingress to `app=<target>` only from `app=<from>`, on TCP 8080. */
function allowFrom(ns: string, name: string, target: string, from: string, generation = 1) {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { namespace: ns, name, generation, resourceVersion: String(100 + generation) },
    spec: {
      podSelector: { matchLabels: { app: target } },
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ podSelector: { matchLabels: { app: from } } }], ports: [{ port: 8080 }] }],
    },
  };
}

function denyAllIngress(ns: string, name: string) {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { namespace: ns, name },
    spec: { podSelector: {}, policyTypes: ['Ingress'] },
  };
}

const flow = (start: number, src: string, dst: string, port = 8080) => flowAt(start, src, dst, port);

const judgeAt = (tl: ClusterTimeline, f: FlowRecord) => {
  const { inventory, index } = tl.at(f.start);
  return judgeFlow(f, inventory, index);
};

const T0 = 1_700_000_000_000;
const CLIENT = '10.244.0.5';
const SERVER = '10.244.0.9';

/** shop: client (app=web), server (app=api) admitting app=web on 8080. */
function shop(issues?: InputIssue[]): ClusterTimeline {
  const tl = new ClusterTimeline({ onIssue: (i) => issues?.push(i) });
  tl.replace('Namespace', [namespace('shop')], T0);
  tl.replace(
    'Pod',
    [pod('shop', 'client', CLIENT, { app: 'web' }), pod('shop', 'server', SERVER, { app: 'api' })],
    T0,
  );
  tl.replace('NetworkPolicy', [allowFrom('shop', 'api-from-web', 'api', 'web')], T0);
  return tl;
}

describe('ClusterTimeline: versions in time', () => {
  it('an IP that moves from pod A to pod B at t: flows before t are A, after t are B', async () => {
    const tl = shop();
    const t = T0 + 60_000;
    // A (app=api, admitted) dies; B (app=db, not selected by any policy) gets its IP at t.
    tl.remove('Pod', pod('shop', 'server', SERVER, { app: 'api' }), t);
    tl.upsert('Pod', pod('shop', 'db-0', SERVER, { app: 'db' }), t);
    const out: JudgedFlow[] = [];
    const processor = new FlowProcessor(tl, {
      write: (j) => {
        out.push(j);
      },
      flush: async () => {},
    });
    for (const start of [T0 + 1, t - 1, t, t + 5_000]) processor.write(flow(start, CLIENT, SERVER));
    await processor.flush();
    expect(out.map((j) => j.record.dst.pod)).toEqual([
      'shop/server',
      'shop/server',
      'shop/db-0',
      'shop/db-0',
    ]);
    expect(out.map((j) => j.stored.dstWorkload)).toEqual([
      expect.stringContaining('server'),
      expect.stringContaining('server'),
      expect.stringContaining('db-0'),
      expect.stringContaining('db-0'),
    ]);
    expect(tl.ipHistory(SERVER)).toEqual([
      { ip: SERVER, pod: 'shop/server', uid: 'shop-server-uid', from: T0, to: t },
      { ip: SERVER, pod: 'shop/db-0', uid: 'shop-db-0-uid', from: t },
    ]);
  });

  it('a label change flips a verdict exactly at t', () => {
    const tl = shop();
    const t = T0 + 30_000;
    tl.upsert('Pod', pod('shop', 'client', CLIENT, { app: 'batch' }), t);
    expect(judgeAt(tl, flow(t - 1, CLIENT, SERVER)).verdict.allowed).toBe(true);
    expect(judgeAt(tl, flow(t, CLIENT, SERVER)).verdict.allowed).toBe(false);
    expect(judgeAt(tl, flow(t + 1, CLIENT, SERVER)).verdict.allowed).toBe(false);
    // And back: the earlier version still answers for earlier flows after the later one was built.
    expect(judgeAt(tl, flow(T0, CLIENT, SERVER)).verdict.allowed).toBe(true);
  });

  it('a policy added at t denies flows after t only', () => {
    const tl = new ClusterTimeline();
    tl.replace('Namespace', [namespace('shop')], T0);
    tl.replace(
      'Pod',
      [pod('shop', 'client', CLIENT, { app: 'web' }), pod('shop', 'server', SERVER, { app: 'api' })],
      T0,
    );
    const t = T0 + 10_000;
    tl.upsert('NetworkPolicy', denyAllIngress('shop', 'deny'), t);
    expect(judgeAt(tl, flow(t - 1, CLIENT, SERVER)).verdict).toMatchObject({
      allowed: true,
      result: 'allowed',
    });
    expect(judgeAt(tl, flow(t, CLIENT, SERVER)).verdict).toMatchObject({ allowed: false, result: 'denied' });
    expect(tl.policiesAt(t - 1)).toEqual([]);
    expect(tl.policiesAt(t)).toEqual([
      {
        kind: 'NetworkPolicy',
        policy: 'shop/deny',
        hash: policySpecHash(denyAllIngress('shop', 'deny').spec),
        spec: denyAllIngress('shop', 'deny').spec,
      },
    ]);
  });

  it('a pod reaching Failed releases its IP', () => {
    const tl = shop();
    const t = T0 + 5_000;
    tl.upsert('Pod', pod('shop', 'server', SERVER, { app: 'api' }, 'Failed'), t);
    expect(tl.at(t - 1).inventory.resolve(SERVER).pod?.name).toBe('server');
    expect(tl.at(t).inventory.resolve(SERVER).pod).toBeUndefined();
    expect(tl.ipHistory(SERVER)).toEqual([
      { ip: SERVER, pod: 'shop/server', uid: 'shop-server-uid', from: T0, to: t },
    ]);
    // A new pod reusing it later is the holder from then on.
    tl.upsert('Pod', pod('shop', 'server-2', SERVER, { app: 'api' }), t + 1_000);
    expect(tl.at(t + 999).inventory.resolve(SERVER).pod).toBeUndefined();
    expect(tl.at(t + 1_000).inventory.resolve(SERVER).pod?.name).toBe('server-2');
  });

  it('replace() after a relist removes, at the relist time, objects missing from the new list', () => {
    const tl = shop();
    const t = T0 + 120_000;
    // The watch missed the deletion of server; the relist after 410 Gone no longer has it.
    tl.replace('Pod', [pod('shop', 'client', CLIENT, { app: 'web' })], t);
    expect(tl.at(t - 1).inventory.pod('shop/server')?.name).toBe('server');
    expect(tl.at(t).inventory.pod('shop/server')).toBeUndefined();
    expect(tl.at(t).inventory.pod('shop/client')?.name).toBe('client');
    // Other kinds are untouched by a Pod relist.
    expect(tl.policiesAt(t).map((p) => p.policy)).toEqual(['shop/api-from-web']);
    // An unchanged relisted object makes no version; the removal made exactly one.
    expect(tl.versionTimes()).toEqual([T0, t]);
    expect(tl.stats().unchanged).toBe(1);
  });

  it('a relist item that cannot be read is reported and kept as it was, not deleted', () => {
    const issues: InputIssue[] = [];
    const tl = shop(issues);
    const broken = pod('shop', 'server', SERVER, { app: 'api' });
    (broken.spec as Record<string, unknown>).hostNetwork = 'yes';
    tl.replace('Pod', [pod('shop', 'client', CLIENT, { app: 'web' }), broken], T0 + 1_000);
    expect(tl.at(T0 + 2_000).inventory.pod('shop/server')?.labels).toEqual({ app: 'api' });
    expect(issues).toEqual([
      expect.objectContaining({
        code: 'SNAPSHOT_INVALID_FIELD',
        field: 'items[1].spec.hostNetwork',
        object: 'shop/server',
      }),
    ]);
    expect(tl.stats()).toMatchObject({ rejected: 1, versions: 1 });
  });

  it('first lists of kinds arriving one after another all hold from the first version', () => {
    const tl = new ClusterTimeline({ initialSyncMs: 60_000 });
    tl.replace('Namespace', [namespace('shop')], T0);
    tl.upsert('Namespace', namespace('shop', { team: 'a' }), T0 + 100);
    tl.replace(
      'Pod',
      [pod('shop', 'client', CLIENT, { app: 'web' }), pod('shop', 'server', SERVER, { app: 'api' })],
      T0 + 300,
    );
    tl.replace('NetworkPolicy', [denyAllIngress('shop', 'deny')], T0 + 800);
    expect(tl.versionTimes()).toEqual([T0, T0 + 100]);
    for (const ms of [T0 - 60_000, T0, T0 + 100, T0 + 900]) {
      expect(tl.at(ms).inventory.resolve(SERVER).pod?.name).toBe('server');
      expect(judgeAt(tl, flow(ms, CLIENT, SERVER)).verdict.allowed).toBe(false);
    }
    expect(tl.ipHistory(SERVER)).toEqual([
      { ip: SERVER, pod: 'shop/server', uid: 'shop-server-uid', from: T0 },
    ]);
    expect(tl.stats().backdated).toBe(3);
    // A relist is the cluster at its own time; so is a first list long after the start.
    tl.replace('Pod', [pod('shop', 'client', CLIENT, { app: 'web' })], T0 + 2_000);
    tl.replace(
      'Service',
      [{ metadata: { namespace: 'shop', name: 's' }, spec: { clusterIP: '10.96.0.1' } }],
      T0 + 120_000,
    );
    expect(tl.at(T0 + 1_999).inventory.pod('shop/server')?.name).toBe('server');
    expect(tl.at(T0 + 2_000).inventory.pod('shop/server')).toBeUndefined();
    expect(tl.at(T0 + 119_999).inventory.service('shop/s')).toBeUndefined();
    expect(tl.at(T0 + 120_000).inventory.service('shop/s')?.name).toBe('s');
    expect(tl.stats().backdated).toBe(3);
  });

  it('build problems are reported once, not once per version', () => {
    const issues: InputIssue[] = [];
    const tl = new ClusterTimeline({ onIssue: (i) => issues.push(i) });
    tl.replace('Pod', [pod('ghost', 'a', '10.244.3.1', { app: 'a' })], T0);
    tl.upsert('Pod', pod('ghost', 'b', '10.244.3.2', { app: 'b' }), T0 + 1);
    tl.at(T0);
    tl.at(T0 + 1);
    expect(tl.stats()).toMatchObject({ builds: 2, compiles: 2 });
    expect(issues).toEqual([
      expect.objectContaining({ code: 'SNAPSHOT_MISSING_NAMESPACE', object: 'ghost', severity: 'warning' }),
    ]);
    // The namespace got its name label, so a namespaceSelector on it matches.
    expect(tl.at(T0).inventory.namespace('ghost')?.labels).toEqual({
      'kubernetes.io/metadata.name': 'ghost',
    });
  });

  it('flows older than the first version use it, and are counted', () => {
    const tl = shop();
    expect(tl.at(T0 - 3_600_000).inventory.resolve(SERVER).pod?.name).toBe('server');
    expect(tl.at(T0 - 1).inventory.resolve(SERVER).pod?.name).toBe('server');
    expect(tl.at(T0).inventory.resolve(SERVER).pod?.name).toBe('server');
    expect(tl.stats().beforeFirst).toBe(2);
  });

  it('a late change (timed before the newest) applies at the newest time, and is counted', () => {
    const tl = shop();
    tl.upsert('Pod', pod('shop', 'x', '10.244.0.77', { app: 'x' }), T0 + 100);
    tl.upsert('Pod', pod('shop', 'y', '10.244.0.78', { app: 'y' }), T0 + 50);
    expect(tl.versionTimes()).toEqual([T0, T0 + 100]);
    expect(tl.at(T0 + 99).inventory.pod('shop/y')).toBeUndefined();
    expect(tl.at(T0 + 100).inventory.pod('shop/y')?.name).toBe('y');
    expect(tl.stats().late).toBe(1);
  });

  it('rejects changes without a name or a usable time, with an issue each', () => {
    const issues: InputIssue[] = [];
    const tl = shop(issues);
    tl.upsert('Pod', { metadata: { namespace: 'shop' } }, T0 + 1);
    tl.upsert('Pod', pod('shop', 'z', undefined, {}), Number.NaN);
    tl.upsert('Pod', { ...namespace('other'), kind: 'Namespace' }, T0 + 2);
    expect(issues.map((i) => i.code)).toEqual([
      'TIMELINE_BAD_CHANGE',
      'TIMELINE_BAD_TIME',
      'TIMELINE_BAD_CHANGE',
    ]);
    expect(issues[0]).toMatchObject({ field: 'metadata.name' });
    expect(issues[2]).toMatchObject({ field: 'kind', object: 'default/other' });
    expect(tl.stats()).toMatchObject({ rejected: 3, versions: 1 });
  });
});

describe('ClusterTimeline: policy versions for the store', () => {
  it('lists each policy version with the span it was in force; metadata-only edits do not split a span', () => {
    const tl = shop();
    const v1 = allowFrom('shop', 'api-from-web', 'api', 'web', 1);
    const v2 = allowFrom('shop', 'api-from-web', 'api', 'batch', 2);
    // Same spec, new resourceVersion (a label was added): no new version.
    tl.upsert(
      'NetworkPolicy',
      { ...v1, metadata: { ...v1.metadata, resourceVersion: '150', labels: { a: 'b' } } },
      T0 + 10,
    );
    tl.upsert('NetworkPolicy', v2, T0 + 20);
    tl.remove('NetworkPolicy', v2, T0 + 30);
    expect(tl.policyVersions()).toEqual([
      {
        kind: 'NetworkPolicy',
        policy: 'shop/api-from-web',
        hash: policySpecHash(v1.spec),
        spec: v1.spec,
        resourceVersion: '101',
        generation: 1,
        validFrom: T0,
        validTo: T0 + 20,
      },
      {
        kind: 'NetworkPolicy',
        policy: 'shop/api-from-web',
        hash: policySpecHash(v2.spec),
        spec: v2.spec,
        resourceVersion: '102',
        generation: 2,
        validFrom: T0 + 20,
        validTo: T0 + 30,
      },
    ]);
    expect(tl.policyVersions({ since: T0 + 25 }).map((s) => s.generation)).toEqual([2]);
    expect(tl.policyVersions({ until: T0 + 19 }).map((s) => s.generation)).toEqual([1]);
    expect(tl.policiesAt(T0 + 30)).toEqual([]);
    expect(tl.stats().unchanged).toBe(1);
  });
});

describe('ClusterTimeline: retention and caching', () => {
  it('drops versions older than the horizon, keeping the one in force at the horizon', () => {
    const HOUR = 3_600_000;
    const tl = new ClusterTimeline({ horizonMs: 2 * HOUR });
    tl.replace('Namespace', [namespace('shop')], T0);
    tl.upsert('Pod', pod('shop', 'a', '10.244.0.1', { v: '1' }), T0);
    tl.upsert('Pod', pod('shop', 'a', '10.244.0.1', { v: '2' }), T0 + HOUR);
    tl.upsert('Pod', pod('shop', 'a', '10.244.0.1', { v: '3' }), T0 + 2 * HOUR);
    tl.remove('Pod', pod('shop', 'b', '10.244.0.2', {}), T0 + 2 * HOUR);
    expect(tl.versionTimes()).toEqual([T0, T0 + HOUR, T0 + 2 * HOUR]);
    // Newest change at T0+3.5h: the horizon is T0+1.5h, where the T0+1h version was in force.
    tl.upsert('Pod', pod('shop', 'b', '10.244.0.1', {}, 'Pending'), T0 + 3.5 * HOUR);
    expect(tl.versionTimes()).toEqual([T0 + HOUR, T0 + 2 * HOUR, T0 + 3.5 * HOUR]);
    expect(tl.stats().pruned).toBe(1);
    expect(tl.at(T0 + 1.5 * HOUR).inventory.pod('shop/a')?.labels).toEqual({ v: '2' });
    // Older flows get the oldest version held, counted as such.
    expect(tl.at(T0 + 1).inventory.pod('shop/a')?.labels).toEqual({ v: '2' });
    expect(tl.stats().beforeFirst).toBe(1);
    // The history of the address is trimmed the same way, and the conflict goes to the newest claimant.
    expect(tl.ipHistory('10.244.0.1').map((c) => c.pod)).toEqual(['shop/a', 'shop/b']);
    tl.upsert('Pod', pod('shop', 'a', '10.244.0.1', {}, 'Succeeded'), T0 + 6 * HOUR);
    tl.upsert('Pod', pod('shop', 'c', '10.244.0.9', {}), T0 + 9 * HOUR);
    expect(tl.versionTimes()).toEqual([T0 + 6 * HOUR, T0 + 9 * HOUR]);
    expect(tl.ipHistory('10.244.0.1').map((c) => [c.pod, c.to])).toEqual([['shop/b', undefined]]);
  });

  it('at() between two changes builds once, however often it is asked', () => {
    const tl = shop();
    tl.upsert('Pod', pod('shop', 'client', CLIENT, { app: 'batch' }), T0 + 1_000);
    expect(tl.stats()).toMatchObject({ builds: 0, compiles: 0 });
    for (let ms = T0; ms < T0 + 1_000; ms += 7) tl.at(ms);
    expect(tl.stats()).toMatchObject({ builds: 1, compiles: 1 });
    for (let ms = T0 + 1_000; ms < T0 + 5_000; ms += 3) tl.at(ms);
    // A pod change: a new Inventory, the same compiled policies.
    expect(tl.stats()).toMatchObject({ builds: 2, compiles: 1 });
    // Interleaved flows of both versions (consumer lag across partitions) stay within the cache.
    for (let i = 0; i < 100; i++) tl.at(i % 2 === 0 ? T0 + i : T0 + 1_000 + i);
    expect(tl.stats()).toMatchObject({ builds: 2, compiles: 1 });
    expect(tl.at(T0).inventory).toBe(tl.at(T0 + 999).inventory);
  });

  it('a policy edit recompiles the index but parses only the edited policy', () => {
    const tl = shop();
    for (let i = 0; i < 4; i++)
      tl.upsert('NetworkPolicy', allowFrom('shop', `extra-${i}`, 'api', `from-${i}`), T0 + 1);
    tl.at(T0 + 1);
    const before = tl.stats();
    tl.upsert('NetworkPolicy', allowFrom('shop', 'extra-2', 'api', 'edited'), T0 + 2);
    tl.at(T0 + 2);
    const after = tl.stats();
    expect(after.compiles - before.compiles).toBe(1);
    expect(after.policiesParsed - before.policiesParsed).toBe(1);
    expect(after.policiesReused - before.policiesReused).toBe(4);
    // And the edit is in force: extra-2 now admits 'edited', no longer 'from-2'.
    const rules = (at: number) =>
      tl
        .at(at)
        .index.rules()
        .filter((r) => r.policy === 'shop/extra-2')
        .map((r) => r.summary);
    expect(rules(T0 + 1).join()).toContain('from-2');
    expect(rules(T0 + 2).join()).toContain('edited');
  });

  it('keeps at most cachedVersions built versions (LRU)', () => {
    const tl = new ClusterTimeline({ cachedVersions: 2 });
    tl.replace('Namespace', [namespace('shop')], T0);
    // Policy edits: every version has its own compiled index, so both caches are exercised.
    for (let i = 0; i < 5; i++)
      tl.upsert('NetworkPolicy', allowFrom('shop', 'np', 'api', `from-${i}`, i + 1), T0 + i * 100);
    expect(tl.versionTimes()).toHaveLength(5);
    tl.at(T0); // v0 built
    tl.at(T0 + 100); // v1 built
    tl.at(T0 + 1); // v0 cached (now most recent)
    tl.at(T0 + 200); // v2 built, evicts v1
    expect(tl.stats()).toMatchObject({ builds: 3, compiles: 3, evictions: 1 });
    tl.at(T0 + 2); // v0 still cached
    expect(tl.stats()).toMatchObject({ builds: 3, compiles: 3 });
    tl.at(T0 + 101); // v1 was evicted, and its index with it: built again
    expect(tl.stats()).toMatchObject({ builds: 4, compiles: 4, evictions: 2 });
    for (let i = 0; i < 5; i++) tl.at(T0 + i * 100);
    expect(tl.stats().evictions).toBeGreaterThanOrEqual(4);
  });

  it('a change at the time of the newest version rebuilds it, not the older ones', () => {
    const tl = shop();
    expect(judgeAt(tl, flow(T0 + 5, CLIENT, SERVER)).verdict.allowed).toBe(true);
    tl.upsert('Pod', pod('shop', 'client', CLIENT, { app: 'other' }), T0);
    expect(tl.versionTimes()).toEqual([T0]);
    expect(judgeAt(tl, flow(T0 + 5, CLIENT, SERVER)).verdict.allowed).toBe(false);
    expect(tl.stats()).toMatchObject({ builds: 2, compiles: 1 });
    // A policy change at that same time recompiles.
    tl.upsert('NetworkPolicy', allowFrom('shop', 'api-from-web', 'api', 'other'), T0);
    expect(judgeAt(tl, flow(T0 + 5, CLIENT, SERVER)).verdict.allowed).toBe(true);
    expect(tl.stats()).toMatchObject({ builds: 3, compiles: 2 });
  });

  it('a policy change joining a pod-only version at its time gives it its own index', () => {
    const tl = shop();
    tl.upsert('Pod', pod('shop', 'other', '10.244.0.30', { app: 'x' }), T0 + 10);
    tl.upsert('NetworkPolicy', denyAllIngress('shop', 'api-from-web'), T0 + 10);
    expect(tl.versionTimes()).toEqual([T0, T0 + 10]);
    expect(judgeAt(tl, flow(T0, CLIENT, SERVER)).verdict.allowed).toBe(true);
    expect(judgeAt(tl, flow(T0 + 10, CLIENT, SERVER)).verdict.allowed).toBe(false);
    expect(tl.stats()).toMatchObject({ builds: 2, compiles: 2 });
  });

  it('versions that differ in pods only share one compiled index; namespaces and policies do not', () => {
    const tl = new ClusterTimeline();
    tl.replace('Namespace', [namespace('shop'), namespace('ops', { team: 'ops' })], T0);
    tl.replace(
      'Pod',
      [pod('ops', 'probe', CLIENT, { app: 'probe' }), pod('shop', 'server', SERVER, { app: 'api' })],
      T0,
    );
    tl.replace(
      'NetworkPolicy',
      [
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { namespace: 'shop', name: 'from-ops' },
          spec: {
            podSelector: {},
            policyTypes: ['Ingress'],
            ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ops' } } }] }],
          },
        },
      ],
      T0,
    );
    tl.upsert('Pod', pod('shop', 'server', SERVER, { app: 'api', v: '2' }), T0 + 10);
    tl.upsert('Pod', pod('ops', 'probe-2', '10.244.0.6', { app: 'probe' }), T0 + 20);
    tl.upsert('Namespace', namespace('ops', { team: 'other' }), T0 + 30);
    tl.upsert('Pod', pod('ops', 'probe-3', '10.244.0.7', { app: 'probe' }), T0 + 40);
    tl.upsert('Namespace', namespace('ops', { team: 'ops' }), T0 + 50);
    const allowed = [0, 10, 20, 30, 40, 50].map(
      (d) => judgeAt(tl, flow(T0 + d, CLIENT, SERVER)).verdict.allowed,
    );
    expect(allowed).toEqual([true, true, true, false, false, true]);
    // Six versions, three namespace states: three compiles (the last equals the first in content,
    // but is a later change, so it is compiled again).
    expect(tl.stats()).toMatchObject({ versions: 6, builds: 6, compiles: 3 });
  });
});

describe('ClusterTimeline.fromSnapshot', () => {
  it('is one version valid for all time, judging as the snapshot does', () => {
    const yaml = [
      namespace('shop'),
      { apiVersion: 'v1', kind: 'Pod', ...pod('shop', 'server', SERVER, { app: 'api' }) },
    ]
      .map((o) => JSON.stringify(o))
      .join('\n---\n');
    const snap = parseSnapshot([
      { source: 's.yaml', text: `${yaml}\n---\n${JSON.stringify(denyAllIngress('shop', 'd'))}` },
    ]);
    const tl = ClusterTimeline.fromSnapshot(snap);
    for (const ms of [0, T0, Number.MAX_SAFE_INTEGER]) {
      const { inventory, index } = tl.at(ms);
      expect(inventory.resolve(SERVER).pod?.name).toBe('server');
      expect(index.rules()).toEqual([]);
      expect(
        index.evaluate({
          src: { ip: '192.0.2.1' },
          dst: { ip: SERVER, pod: inventory.resolve(SERVER).pod },
          proto: 6,
          port: 80,
        }).allowed,
      ).toBe(false);
    }
    expect(tl.stats()).toMatchObject({ versions: 1, compiles: 1, beforeFirst: 0 });
    expect(tl.policiesAt(T0).map((p) => p.policy)).toEqual(['shop/d']);
  });

  it('judges every pair of the shop fixture exactly as the snapshot Inventory and index do', async () => {
    const snap = await loadSnapshotFiles([resolve(ROOT, 'test/fixtures/clusters/shop.yaml')]);
    const inventory = new Inventory(snap.cluster);
    const { index } = compilePolicyIndex(snap.cluster);
    const tl = ClusterTimeline.fromSnapshot(snap);
    const ips = snap.cluster.pods
      .flatMap((p) => p.ips)
      .concat(snap.cluster.services.flatMap((s) => s.clusterIPs));
    expect(ips.length).toBeGreaterThan(10);
    let allowed = 0;
    for (const src of ips)
      for (const dst of ips)
        for (const port of [53, 80, 443, 8080, 9090]) {
          const f = flow(T0, src, dst, port);
          const want = judgeFlow(f, inventory, index);
          const got = judgeAt(tl, f);
          expect(got).toEqual(want);
          if (got.verdict.allowed) allowed++;
        }
    // Both outcomes occur, so the comparison is not between two empty answers.
    expect(allowed).toBeGreaterThan(0);
    expect(allowed).toBeLessThan(ips.length * ips.length * 5);
    expect(tl.stats().compiles).toBe(1);
  });

  it('an empty snapshot is one empty version', () => {
    const tl = ClusterTimeline.fromSnapshot(parseSnapshot([]), T0);
    expect(tl.versionTimes()).toEqual([T0]);
    expect(tl.at(T0).inventory.resolve(SERVER).pod).toBeUndefined();
  });
});

// ---- Property: the timeline at t equals the cluster rebuilt from scratch from all events <= t ----

type Ev =
  | { op: 'upsert' | 'remove'; kind: WatchedKind; obj: unknown; at: number }
  | { op: 'replace'; kind: WatchedKind; objs: unknown[]; at: number };

const NAMESPACES = ['a', 'b'];
const IPS = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'];
const APPS = ['web', 'api', 'db'];
const PHASES = ['Running', 'Running', 'Running', 'Pending', 'Succeeded', 'Failed'];

const podArb = fc
  .record({
    ns: fc.constantFrom(...NAMESPACES),
    name: fc.constantFrom('p0', 'p1', 'p2', 'p3', 'p4', 'p5'),
    ip: fc.option(fc.constantFrom(...IPS), { freq: 8 }),
    app: fc.constantFrom(...APPS),
    phase: fc.constantFrom(...PHASES),
    gen: fc.integer({ min: 0, max: 1 }),
  })
  .map((p) => pod(p.ns, p.name, p.ip ?? undefined, { app: p.app }, p.phase, `${p.ns}-${p.name}-${p.gen}`));

const policyArb = fc
  .record({
    ns: fc.constantFrom(...NAMESPACES),
    name: fc.constantFrom('n0', 'n1', 'n2'),
    target: fc.constantFrom(...APPS),
    from: fc.constantFrom(...APPS),
    shape: fc.constantFrom('deny', 'pods', 'namespaces', 'namespaces'),
    team: fc.constantFrom('x', 'y'),
  })
  .map((p) => {
    if (p.shape === 'deny') return denyAllIngress(p.ns, p.name);
    if (p.shape === 'pods') return allowFrom(p.ns, p.name, p.target, p.from);
    // Namespace labels decide this one, so namespace changes must reach the compiled index.
    return {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { namespace: p.ns, name: p.name },
      spec: {
        podSelector: { matchLabels: { app: p.target } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: p.team } } }] }],
      },
    };
  });

const nsArb = fc
  .record({ name: fc.constantFrom(...NAMESPACES), team: fc.constantFrom('x', 'y') })
  .map((n) => namespace(n.name, { team: n.team }));

const eventArb: fc.Arbitrary<Omit<Ev, 'at'> & { dt: number }> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('upsert' as const),
      kind: fc.constant('Pod' as const),
      obj: podArb,
      dt: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('remove' as const),
      kind: fc.constant('Pod' as const),
      obj: podArb,
      dt: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('replace' as const),
      kind: fc.constant('Pod' as const),
      objs: fc.array(podArb, { maxLength: 5 }),
      dt: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('upsert' as const),
      kind: fc.constant('NetworkPolicy' as const),
      obj: policyArb,
      dt: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('remove' as const),
      kind: fc.constant('NetworkPolicy' as const),
      obj: policyArb,
      dt: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('upsert' as const),
      kind: fc.constant('Namespace' as const),
      obj: nsArb,
      dt: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('replace' as const),
      kind: fc.constant('NetworkPolicy' as const),
      objs: fc.array(policyArb, { maxLength: 3 }),
      dt: fc.integer({ min: 0, max: 3 }),
    }),
  },
);

/** The reference: replay every event up to t into plain maps, then parse the survivors as one snapshot. */
function fromScratch(events: Ev[], t: number): { inventory: Inventory; index: PolicyIndexApi } {
  const state = new Map<WatchedKind, Map<string, unknown>>();
  const keyOf = (kind: WatchedKind, o: unknown) => {
    const m = (o as { metadata: { name: string; namespace?: string } }).metadata;
    return kind === 'Namespace' ? m.name : `${m.namespace}/${m.name}`;
  };
  for (const e of events) {
    if (e.at > t) break;
    let m = state.get(e.kind);
    if (!m) {
      m = new Map();
      state.set(e.kind, m);
    }
    if (e.op === 'replace') {
      m.clear();
      for (const o of e.objs) m.set(keyOf(e.kind, o), o);
    } else if (e.op === 'upsert') m.set(keyOf(e.kind, e.obj), e.obj);
    else m.delete(keyOf(e.kind, e.obj));
  }
  const builder = new ClusterModelBuilder();
  for (const [kind, m] of state)
    for (const o of m.values())
      builder.add(
        { apiVersion: kind === 'NetworkPolicy' ? 'networking.k8s.io/v1' : 'v1', kind, ...(o as object) },
        { source: 'ref', record: 0, line: undefined, prefix: '' },
      );
  const { cluster } = builder.finish();
  return { inventory: new Inventory(cluster), index: compilePolicyIndex(cluster).index };
}

function liveClaimants(inventory: Inventory, ip: string): PodModel[] {
  return inventory.cluster.pods.filter(
    (p) => !p.hostNetwork && p.phase !== 'Succeeded' && p.phase !== 'Failed' && p.ips.includes(ip),
  );
}

describe('ClusterTimeline property', () => {
  it('at(t) resolves and judges as the cluster rebuilt from all events <= t', () => {
    fc.assert(
      fc.property(
        fc.array(eventArb, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom(undefined, 0, 3, 10),
        (raw, cache, horizonMs) => {
          let at = T0;
          const events: Ev[] = raw.map(({ dt, ...e }) => {
            at += dt;
            return { ...e, at } as Ev;
          });
          // initialSyncMs 0: every list at its own time, as the reference replays it.
          const tl = new ClusterTimeline({ cachedVersions: cache, horizonMs, initialSyncMs: 0 });
          for (const e of events) {
            if (e.op === 'replace') tl.replace(e.kind, e.objs, e.at);
            else if (e.op === 'upsert') tl.upsert(e.kind, e.obj, e.at);
            else tl.remove(e.kind, e.obj, e.at);
          }
          // Every version start, the moment just before it, and a time past the end; in a shuffled order
          // so the cache is exercised out of time order.
          // Before the first version held (nothing happened yet, or pruned) the timeline answers with that
          // version on purpose: compare from there on.
          const first = tl.versionTimes()[0] ?? Number.NEGATIVE_INFINITY;
          const times = [...new Set(events.flatMap((e) => [e.at, e.at - 1]).concat([at + 10]))].filter(
            (ms) => ms >= first,
          );
          times.sort((x, y) => ((x * 7919) % 13) - ((y * 7919) % 13) || x - y);
          for (const ms of times) {
            const got = tl.at(ms);
            const want = fromScratch(events, ms);
            const pods = (inv: Inventory) =>
              inv.cluster.pods
                .map((p) => `${p.namespace}/${p.name}|${p.phase}|${p.labels.app}|${p.ips}`)
                .sort();
            expect(pods(got.inventory)).toEqual(pods(want.inventory));
            const conflicted = new Set<string>();
            for (const ip of IPS) {
              const r = got.inventory.resolve(ip).pod;
              const claimants = liveClaimants(want.inventory, ip);
              // The address history agrees: exactly the live claimants hold a claim at ms.
              const holding = tl
                .ipHistory(ip)
                .filter((c) => c.from <= ms && (c.to === undefined || c.to > ms))
                .map((c) => c.pod)
                .sort();
              expect(holding).toEqual(claimants.map((c) => `${c.namespace}/${c.name}`).sort());
              if (claimants.length <= 1) {
                expect(r && `${r.namespace}/${r.name}`).toEqual(
                  want.inventory.resolve(ip).pod &&
                    `${want.inventory.resolve(ip).pod!.namespace}/${want.inventory.resolve(ip).pod!.name}`,
                );
              } else {
                // Two live pods claim one address: either may be chosen, but a Running one beats the others.
                conflicted.add(ip);
                expect(claimants.map((c) => c.name)).toContain(r?.name);
                if (claimants.filter((c) => c.phase === 'Running').length === 1)
                  expect(r?.phase).toBe('Running');
              }
            }
            for (const src of IPS)
              for (const dst of IPS) {
                if (conflicted.has(src) || conflicted.has(dst)) continue;
                const q = (inv: Inventory) => ({
                  src: { ip: src, pod: inv.resolve(src).pod },
                  dst: { ip: dst, pod: inv.resolve(dst).pod },
                  proto: 6,
                  port: 8080,
                });
                const a = got.index.evaluate(q(got.inventory));
                const b = want.index.evaluate(q(want.inventory));
                expect({
                  allowed: a.allowed,
                  result: a.result,
                  rules: [...a.ingress.rules, ...a.egress.rules],
                }).toEqual({
                  allowed: b.allowed,
                  result: b.result,
                  rules: [...b.ingress.rules, ...b.egress.rules],
                });
              }
            // The policies in force agree with the rebuilt cluster's.
            expect(
              tl
                .policiesAt(ms)
                .map((p) => p.policy)
                .sort(),
            ).toEqual(
              (want.inventory.cluster.networkPolicies as { metadata: { namespace: string; name: string } }[])
                .map((p) => `${p.metadata.namespace}/${p.metadata.name}`)
                .sort(),
            );
          }
        },
      ),
      { numRuns: 150, seed: 20261123 },
    );
  });
});

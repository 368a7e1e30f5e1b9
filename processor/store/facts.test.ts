import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CoverageSnapshot } from '../../schema/report.js';
import { AuditStore, type StoredFlow } from './index.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 2, 10, 0, 0);

function flow(i: number, over: Partial<StoredFlow> = {}): StoredFlow {
  return {
    start: T0 + i * 1000,
    end: T0 + i * 1000 + 500,
    proto: 'TCP',
    port: 5432,
    srcWorkload: `shop/web-${i % 3}`,
    dstWorkload: 'db/postgres',
    srcName: 'a',
    dstName: 'b',
    packets: 4,
    bytes: 400,
    result: 'allowed',
    classification: 'allowed',
    rules: [],
    evidence: {},
    identity: { tuple: `6|10.0.0.${i}|40000|10.0.1.1|5432`, seq: 0, start: T0 + i * 1000 },
    facts: {
      srcNamespace: 'shop',
      dstNamespace: 'db',
      dstUnisolated: true,
      observer: 'conntrack',
      node: i % 2 ? 'node-a' : 'node-b',
      ...(i === 0 ? { unattributed: [{ ip: '10.244.9.9', node: 'node-a' }] } : {}),
    },
    ...over,
  };
}

const snapshot = (asOf: number, pods: number): CoverageSnapshot => ({
  day: Math.floor(asOf / DAY) * DAY,
  asOf,
  workloads: [{ workload: 'db/postgres', namespace: 'db', pods, ingressIsolated: 0, egressIsolated: 0 }],
  namespaces: [{ namespace: 'db', defaultDenyIngress: false, defaultDenyEgress: false }],
});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'npa-facts-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('report facts', () => {
  it('counts each flow once whichever way it arrives again, and keeps the first coverage of a day', () => {
    const store = AuditStore.open(join(dir, 'a.db'));
    const flows = Array.from({ length: 6 }, (_, i) => flow(i));
    flows[0]!.facts!.coverage = snapshot(T0, 2);
    store.applyBatch(flows);
    // The same flows again (a rerun), the first now with a later snapshot of the same day.
    const again = Array.from({ length: 6 }, (_, i) => flow(i));
    again[0]!.facts!.coverage = snapshot(T0 + 3_600_000, 5);
    expect(store.applyBatch(again).duplicates).toBe(6);
    const f = store.facts;
    const until = T0 + DAY;
    expect(f.namespaceTraffic(T0, until)).toEqual([
      {
        day: Math.floor(T0 / DAY) * DAY,
        src: 'shop',
        dst: 'db',
        classification: 'allowed',
        flows: 6,
        bytes: 2400,
      },
    ]);
    const unisolated = f.unisolatedTraffic(T0, until);
    expect(unisolated.map((u) => [u.peer, u.flows]).sort()).toEqual([
      ['shop/web-0', 2],
      ['shop/web-1', 2],
      ['shop/web-2', 2],
    ]);
    expect(
      f
        .observerHours(T0, until)
        .map((o) => [o.node, o.flows])
        .sort(),
    ).toEqual([
      ['node-a', 3],
      ['node-b', 3],
    ]);
    expect(f.unattributed(T0, until)).toEqual([{ ip: '10.244.9.9', node: 'node-a', flows: 1 }]);
    expect(f.coverage(T0, until).map((c) => c.workloads[0]!.pods)).toEqual([2]);
    // Prune removes the facts of the days it removes, and only those.
    expect(f.coverage(T0 + DAY, T0 + 2 * DAY)).toEqual([]);
    store.prune(T0 + 2 * DAY);
    expect(f.namespaceTraffic(T0, until)).toEqual([]);
    expect(f.coverage(T0, until)).toEqual([]);
    store.close();
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredFlow } from '../processor/store/index.js';
import { AuditStore } from '../processor/store/index.js';
import { ReportModelSchema } from '../schema/report.js';
import { buildReport } from './model.js';
import { lineDiff } from './yaml-diff.js';

const DAY = 86_400_000;
const MONDAY = Date.UTC(2026, 10, 2);

function flow(i: number, over: Partial<StoredFlow> = {}): StoredFlow {
  return {
    start: MONDAY + 3_600_000 + i,
    end: MONDAY + 3_600_000 + i + 10,
    proto: 'TCP',
    port: 443,
    srcWorkload: 'shop/web',
    dstWorkload: '10.244.3.7',
    srcName: 'web',
    dstName: '10.244.3.7',
    packets: 2,
    bytes: 200,
    result: 'allowed',
    classification: 'allowed',
    rules: [],
    evidence: {},
    facts: { srcNamespace: 'shop', dstNamespace: '(external)', observer: 'pcap', node: 'n1' },
    ...over,
  };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'npa-model-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('the report model', () => {
  it('allowed flows with nothing missing: compliant, and the model is the published schema', () => {
    const store = AuditStore.open(join(dir, 'a.db'));
    store.applyBatch([flow(0), flow(1)]);
    const r = buildReport(store, MONDAY, MONDAY + 7 * DAY, '2026-W45');
    expect(r.assessment).toBe('compliant');
    expect([...Value.Errors(ReportModelSchema, r)]).toEqual([]);
    expect(r.daily[0]).toMatchObject({ allowed: 2, unattributed: 0 });
    // Coverage and collectors the store does not hold are "not known", never zero.
    expect(r.coverage.available).toBe(false);
    expect(r.completeness.observersKnown).toBe(true);
    store.close();
  });

  it('a flow to an address no pod held is "not attributable", never allowed: the period cannot be fully assessed', () => {
    const store = AuditStore.open(join(dir, 'b.db'));
    store.applyBatch([
      flow(0),
      flow(1, {
        facts: {
          srcNamespace: 'shop',
          dstNamespace: '(unattributed)',
          observer: 'pcap',
          node: 'n1',
          unattributed: [{ ip: '10.244.3.7', node: 'node-3' }],
        },
      }),
    ]);
    const r = buildReport(store, MONDAY, MONDAY + 7 * DAY, '2026-W45');
    expect(r.assessment).toBe('unsettled');
    expect(r.compliant).toBe(false);
    expect(r.summary).toContain('1 flow(s) had an address in a pod CIDR that no pod held');
    expect(r.daily[0]).toMatchObject({ allowed: 1, unattributed: 1 });
    expect(r.namespaceMatrix.find((m) => m.dst === '(unattributed)')).toMatchObject({
      allowed: 0,
      unattributed: 1,
    });
    expect(r.completeness.unattributed).toEqual({
      flows: 1,
      addresses: [{ ip: '10.244.3.7', node: 'node-3', flows: 1 }],
    });
    store.close();
  });
});

describe('policy diffs', () => {
  it('marks removed and added lines and folds long unchanged runs', () => {
    const before = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].join('\n');
    const after = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'X', 'i'].join('\n');
    expect(lineDiff(before, after, 1)).toEqual(['@@ ...', ' g', '-h', '+X', ' i']);
    expect(lineDiff('', 'x: 1\n')).toEqual(['+x: 1']);
  });
});

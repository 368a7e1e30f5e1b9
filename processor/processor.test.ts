// FlowProcessor: what it hands the store for a flow through a Service, seen by two observers.
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../schema/flow-record.js';
import { Inventory, loadSnapshotFiles } from './inventory/index.js';
import { compilePolicyIndex } from './policy/index.js';
import { FlowProcessor, type JudgedFlow, StaticClusterView } from './processor.js';

const SHOP = resolve(import.meta.dirname, '../examples/shop/cluster.yaml');

describe('FlowProcessor: a Service flow', () => {
  it('stores the pod’s port when conntrack revealed the DNAT, as the node that saw the pod does (the lab found 80 and 8080 rows for one connection)', async () => {
    const snapshot = await loadSnapshotFiles([SHOP]);
    const view = new StaticClusterView(
      new Inventory(snapshot.cluster),
      compilePolicyIndex(snapshot.cluster).index,
    );
    const out: JudgedFlow[] = [];
    const processor = new FlowProcessor(view, { write: (j) => void out.push(j), flush: async () => {} });
    const base: FlowRecord = {
      v: 1,
      start: 1_767_225_600_000,
      end: 1_767_225_600_050,
      proto: 'TCP',
      src: { ip: '10.244.1.10', port: 41000 },
      dst: { ip: '10.96.12.34', port: 80 },
      packets: { fwd: 5, rev: 4 },
      bytes: { fwd: 400, rev: 300 },
      state: 'closed',
      observer: { node: 'node-1', source: 'conntrack' },
    };
    // frontend → Service cart (10.96.12.34:80 → targetPort http = 8080): the client's node, then the pod's.
    processor.write({ ...base, nat: { dst: { ip: '10.244.1.11', port: 8080 } } });
    processor.write({ ...base, dst: { ip: '10.244.1.11', port: 8080 } });
    await processor.flush();
    expect(out.map((j) => [j.stored.dstWorkload, j.stored.port, j.stored.classification])).toEqual([
      ['shop/cart', 8080, 'allowed'],
      ['shop/cart', 8080, 'allowed'],
    ]);
  });
});

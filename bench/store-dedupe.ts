// Cost of ingestion identity (dedupe) on the store's write throughput, on this machine:
//   npx tsx bench/store-dedupe.ts [--flows 200000] [--batch 4000] [--rounds 3]
// Judges the pipeline's synthetic shop flows once, then applies them to fresh SQLite stores in
// batches: without identities (every flow counted, the cost before migration 2), with identities
// (every flow new: the batch's bucket range read once, one insert per flow; processor/store/dedupe.ts),
// and the same flows again into the filled store (every flow a duplicate: no insert). Prints the best of --rounds for each, plus
// the store's size; nothing here asserts a speed (docs/store.md, "Ingestion identity").
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Inventory, loadSnapshotFiles } from '../processor/inventory/index.js';
import { compilePolicyIndex } from '../processor/policy/index.js';
import { FlowProcessor, type JudgedFlow, StaticClusterView } from '../processor/processor.js';
import { flowIdentity } from '../processor/store/identity.js';
import { AuditStore, type StoredFlow } from '../processor/store/index.js';
import { SHOP_CLUSTER, shopFlow } from '../test/pipeline/support.js';

const { values: args } = parseArgs({
  options: {
    flows: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '3' },
  },
});
const total = Number(args.flows);
const batch = Number(args.batch);
const rounds = Number(args.rounds);

const snapshot = await loadSnapshotFiles([SHOP_CLUSTER]);
const view = new StaticClusterView(
  new Inventory(snapshot.cluster),
  compilePolicyIndex(snapshot.cluster).index,
);
const identified: StoredFlow[] = [];
const sink = {
  write: (j: JudgedFlow) => void identified.push({ ...j.stored, identity: flowIdentity(j.record) }),
  flush: async () => {},
};
const judge = new FlowProcessor(view, sink);
for (let i = 0; i < total; i++) judge.write(shopFlow(i));
await judge.close();
const anonymous = identified.map(({ identity: _identity, ...f }) => f);

const dir = mkdtempSync(join(tmpdir(), 'npa-dedupe-bench-'));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function apply(store: AuditStore, flows: StoredFlow[]): { ms: number; stored: number; duplicates: number } {
  let stored = 0;
  let duplicates = 0;
  const t0 = performance.now();
  for (let i = 0; i < flows.length; i += batch) {
    const r = store.applyBatch(flows.slice(i, i + batch));
    stored += r.stored;
    duplicates += r.duplicates;
  }
  return { ms: performance.now() - t0, stored, duplicates };
}

const best = { without: Infinity, withNew: Infinity, allDuplicates: Infinity };
let sizes = { without: 0, with: 0 };
try {
  for (let round = 0; round < rounds; round++) {
    const a = AuditStore.open(join(dir, `without-${round}.db`));
    best.without = Math.min(best.without, apply(a, anonymous).ms);
    a.close();
    const b = AuditStore.open(join(dir, `with-${round}.db`));
    const first = apply(b, identified);
    const again = apply(b, identified);
    if (first.stored !== identified.length || again.duplicates !== identified.length)
      throw new Error(`unexpected dedupe: ${JSON.stringify({ first, again })}`);
    best.withNew = Math.min(best.withNew, first.ms);
    best.allDuplicates = Math.min(best.allDuplicates, again.ms);
    b.db.pragma('wal_checkpoint(TRUNCATE)');
    sizes = {
      without: statSync(join(dir, `without-${round}.db`)).size,
      with: statSync(join(dir, `with-${round}.db`)).size,
    };
    b.close();
  }
  const rate = (ms: number) => (identified.length / ms) * 1000;
  console.log(`${fmt(identified.length)} judged flows, batches of ${batch}, best of ${rounds}:`);
  console.log(`  no identities (counted blindly): ${fmt(rate(best.without))} flows/s`);
  console.log(
    `  identities, all new:              ${fmt(rate(best.withNew))} flows/s (${(best.withNew / best.without).toFixed(2)}x the time)`,
  );
  console.log(`  identities, all duplicates:       ${fmt(rate(best.allDuplicates))} flows/s`);
  console.log(
    `  store size: ${fmt(sizes.without / 1024)} KiB without, ${fmt(sizes.with / 1024)} KiB with identities ` +
      `(${((sizes.with - sizes.without) / identified.length).toFixed(1)} bytes per flow)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

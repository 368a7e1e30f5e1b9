// Measures the live source's memory for the cluster behind a kubeconfig, in a process of its own so that
// nothing else shares the heap. Run with --expose-gc:
//   node --expose-gc --import tsx test/k8s/watch-memory.ts KUBECONFIG keep|count
// `keep`: the sink holds every object (what a ClusterTimeline holds at least); `count`: the sink drops
// them, which leaves the watcher's own footprint. Prints one JSON line.
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import type { ClusterChangeSink, WatchedKind } from '../../processor/inventory/events.js';
import { KubeInventorySource } from '../../processor/inventory/kube/index.js';

const [kubeconfig, mode = 'keep'] = process.argv.slice(2);
if (!kubeconfig || (mode !== 'keep' && mode !== 'count')) {
  process.stderr.write('usage: watch-memory.ts KUBECONFIG keep|count\n');
  process.exit(2);
}
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write('run with node --expose-gc\n');
  process.exit(2);
}

const held = new Map<string, unknown>();
const counts: Partial<Record<WatchedKind, number>> = {};
const keyOf = (kind: WatchedKind, o: unknown) => {
  const m = (o as { metadata: { namespace?: string; name: string } }).metadata;
  return `${kind}/${m.namespace ?? ''}/${m.name}`;
};
const sink: ClusterChangeSink = {
  replace(kind, objects) {
    counts[kind] = objects.length;
    if (mode === 'keep') for (const o of objects) held.set(keyOf(kind, o), o);
  },
  upsert(kind, o) {
    if (mode === 'keep') held.set(keyOf(kind, o), o);
  },
  remove(kind, o) {
    held.delete(keyOf(kind, o));
  },
};

const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
gc();
const base = process.memoryUsage();
const t0 = performance.now();
const source = new KubeInventorySource({ kubeConfig: kc, sink, logger: pino({ level: 'silent' }) });
source.start();
await source.ready();
const readyMs = performance.now() - t0;
const peakRss = process.memoryUsage().rss;
let jsonBytes = 0;
for (const o of held.values()) jsonBytes += JSON.stringify(o).length;
gc();
gc();
const ready = process.memoryUsage();
// What the sink's objects cost: the heap with them minus the heap without them.
held.clear();
gc();
gc();
const released = process.memoryUsage();
await source.stop();
const mib = (n: number) => +(n / 2 ** 20).toFixed(1);
process.stdout.write(
  `${JSON.stringify({
    mode,
    pods: counts.Pod ?? 0,
    objects: Object.values(counts).reduce((a, b) => a + b, 0),
    readyMs: Math.round(readyMs),
    objectsHeapMiB: mib(ready.heapUsed - released.heapUsed),
    objectsJsonMiB: mib(jsonBytes),
    watcherHeapMiB: mib(released.heapUsed - base.heapUsed),
    rssMiB: mib(ready.rss),
    peakRssMiB: mib(peakRss),
    baseRssMiB: mib(base.rss),
  })}\n`,
);

// How long the compliance report takes on a big store, on this machine:
//   npx tsx bench/report.ts [--flows 10000000] [--pods 5000] [--days 14]
// Fills a fresh SQLite store with --flows judged flows spread over --days days of a cluster of
// --pods pods (500 workloads in 25 namespaces; 1 in 2,000 flows a violation, 1 in 500 a denied
// attempt; a coverage snapshot per day), through the store's own batch writer, as `audit` would.
// Then times buildReport for the last week (with the previous week compared) and each renderer,
// and prints the ratio against a baseline on the same store in the same run: one full scan of the
// tables the report reads (the least any report could cost). Nothing here asserts a speed.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Classification } from '../processor/classify.js';
import { AuditStore, type StoredFlow } from '../processor/store/index.js';
import { buildReport } from '../report/model.js';
import { renderCsv } from '../report/render/csv.js';
import { renderHtml } from '../report/render/html.js';
import { renderJson } from '../report/render/json.js';
import { renderMarkdown } from '../report/render/markdown.js';
import type { CoverageSnapshot } from '../schema/report.js';

const { values: args } = parseArgs({
  options: {
    flows: { type: 'string', default: '10000000' },
    pods: { type: 'string', default: '5000' },
    days: { type: 'string', default: '14' },
  },
});
const total = Number(args.flows);
const pods = Number(args.pods);
const days = Number(args.days);
const DAY = 86_400_000;
const start = Date.UTC(2026, 10, 2); // a Monday
const NAMESPACES = 25;
const WORKLOADS = 500;

const dir = mkdtempSync(join(tmpdir(), 'npa-report-bench-'));
const path = join(dir, 'big.db');
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const workload = (i: number) => `ns-${i % NAMESPACES}/app-${i}`;

// A deterministic generator: the same store every run.
// mulberry32: successive draws independent enough for source, destination and outcome.
let seed = 42;
const rnd = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

function coverage(day: number): CoverageSnapshot {
  return {
    day,
    asOf: day,
    workloads: Array.from({ length: WORKLOADS }, (_, i) => ({
      workload: workload(i),
      namespace: `ns-${i % NAMESPACES}`,
      pods: pods / WORKLOADS,
      ingressIsolated: i % 3 === 0 ? 0 : pods / WORKLOADS,
      egressIsolated: i % 5 === 0 ? pods / WORKLOADS : 0,
    })),
    namespaces: Array.from({ length: NAMESPACES }, (_, i) => ({
      namespace: `ns-${i}`,
      defaultDenyIngress: i % 2 === 0,
      defaultDenyEgress: false,
    })),
  };
}

const store = AuditStore.open(path);
const fillStart = performance.now();
const BATCH = 50_000;
const covered = new Set<number>();
let batch: StoredFlow[] = [];
for (let i = 0; i < total; i++) {
  const t = start + Math.floor((i / total) * days * DAY);
  const s = Math.floor(rnd() * WORKLOADS);
  const d = Math.floor(rnd() * WORKLOADS);
  const pick = rnd();
  const classification: Classification =
    pick < 0.0005 ? 'denied-but-observed' : pick < 0.0025 ? 'denied-attempt' : 'allowed';
  const day = Math.floor(t / DAY) * DAY;
  const f: StoredFlow = {
    start: t,
    end: t + 20,
    proto: 'TCP',
    port: 8080 + (d % 4),
    srcWorkload: workload(s),
    dstWorkload: workload(d),
    srcName: `10-244-${s % 250}-${d % 250}.ns-${s % NAMESPACES}.pod.cluster.local`,
    dstName: `app-${d}.ns-${d % NAMESPACES}.svc.cluster.local`,
    packets: 10,
    bytes: 1500,
    result: classification === 'allowed' ? 'allowed' : 'denied',
    classification,
    rules: [],
    evidence: { start: t, end: t + 20, proto: 6, state: 'closed' },
    facts: {
      srcNamespace: `ns-${s % NAMESPACES}`,
      dstNamespace: `ns-${d % NAMESPACES}`,
      observer: `conntrack:node-${s % 20}`,
      node: `node-${s % 20}`,
      ...(d % 3 === 0 ? { dstUnisolated: true } : {}),
    },
  };
  if (!covered.has(day)) {
    covered.add(day);
    f.facts!.coverage = coverage(day);
  }
  batch.push(f);
  if (batch.length === BATCH) {
    store.applyBatch(batch);
    batch = [];
  }
}
if (batch.length) store.applyBatch(batch);
const fillMs = performance.now() - fillStart;
store.close();
const size = statSync(path).size;
console.log(
  `store: ${fmt(total)} flows over ${days} days, ${pods} pods, filled in ${(fillMs / 1000).toFixed(1)} s (${fmt(total / (fillMs / 1000))} flows/s), ${(size / 1e6).toFixed(0)} MB`,
);

const ro = AuditStore.open(path, { readonly: true });
const until = start + days * DAY;
const since = until - 7 * DAY;
const time = <T>(fn: () => T): { ms: number; value: T } => {
  const t0 = performance.now();
  const value = fn();
  return { ms: performance.now() - t0, value };
};
const baseline = time(() => {
  let rows = 0;
  for (const t of [
    'edges_hourly',
    'violations',
    'denied_attempts',
    'namespace_traffic_daily',
    'unisolated_traffic_daily',
    'observer_hours',
    'rule_usage_daily',
    'coverage_daily',
  ])
    for (const row of ro.db.prepare(`SELECT * FROM ${t}`).iterate()) {
      void row;
      rows++;
    }
  return rows;
});
const model = time(() => buildReport(ro, since, until, 'the last week'));
const renders = {
  html: time(() => renderHtml(model.value)),
  markdown: time(() => renderMarkdown(model.value)),
  json: time(() => renderJson(model.value)),
  csv: time(() => renderCsv(model.value)),
};
ro.close();
const r = model.value;
console.log(
  `report (last ${7} days, previous week compared): ${r.traffic.flows.toLocaleString('en-US')} flows judged, ${r.violations.length} violation rows, ${r.deniedAttempts.length} denied-attempt rows, ${r.coverage.workloads} workloads`,
);
console.log(
  `  baseline (one scan of the report's tables, ${fmt(baseline.value)} rows): ${fmt(baseline.ms)} ms`,
);
console.log(`  buildReport: ${fmt(model.ms)} ms (ratio to baseline ${(model.ms / baseline.ms).toFixed(2)})`);
for (const [name, t] of Object.entries(renders))
  console.log(`  render ${name}: ${fmt(t.ms)} ms, ${(t.value.length / 1e6).toFixed(2)} MB`);
console.log(
  `  total model + HTML: ${fmt(model.ms + renders.html.ms)} ms (ratio to baseline ${((model.ms + renders.html.ms) / baseline.ms).toFixed(2)})`,
);
rmSync(dir, { recursive: true, force: true });

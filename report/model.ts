import { formatIssue, type InputIssue } from '../lib/errors.js';
import { packageVersion } from '../lib/version.js';
import type { AggregateRow, AuditStore } from '../processor/store/index.js';
import { SCHEMA_VERSION } from '../schema/migrations.js';
import {
  type Completeness,
  type Coverage,
  type EvidenceFlow,
  type Finding,
  type KeyFigure,
  type PolicyChange,
  REPORT_VERSION,
  type ReportAssessment,
  type ReportModel,
  type UnusedRule,
} from '../schema/report.js';
import { evidenceFor } from './evidence.js';
import { lineDiff, toYaml } from './yaml-diff.js';

/**
 * The report model (schema/report.ts): what a compliance report says about a period, built from the
 * store once and rendered by any renderer (report/render/). Nothing here formats for an output; the
 * sentences are plain text that every renderer escapes like any other value.
 */

const DAY = 86_400_000;
const HOUR = 3_600_000;

/** Start (Monday 00:00 UTC) of ISO week `YYYY-Www`. */
export function isoWeekStart(value: string): number {
  const m = /^(\d{4})-W(\d{2})$/.exec(value);
  if (!m) throw new Error(`--week must look like 2026-W47, got '${value}'`);
  const year = Number(m[1]);
  const week = Number(m[2]);
  // Week 1 is the week with the year's first Thursday, i.e. the one holding January 4th.
  const jan4 = Date.UTC(year, 0, 4);
  const jan4Weekday = (new Date(jan4).getUTCDay() + 6) % 7; // Monday = 0
  const week1 = jan4 - jan4Weekday * DAY;
  const weeksInYear = isoWeekOf(Date.UTC(year, 11, 28)).week;
  if (week < 1 || week > weeksInYear) throw new Error(`${value}: ${year} has weeks 1 to ${weeksInYear}`);
  return week1 + (week - 1) * 7 * DAY;
}

export function isoWeekOf(ms: number): { year: number; week: number } {
  const d = new Date(Math.floor(ms / DAY) * DAY);
  const weekday = (d.getUTCDay() + 6) % 7;
  const thursday = d.getTime() + (3 - weekday) * DAY;
  const year = new Date(thursday).getUTCFullYear();
  const week = 1 + Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * DAY));
  return { year, week };
}

const keyOf = (r: { srcWorkload: string; dstWorkload: string; proto: string; port: number }) =>
  `${r.srcWorkload}\u0000${r.dstWorkload}\u0000${r.proto}\u0000${r.port}`;

/** Merges the store's per-window rows over the whole period: one row per (source, destination, proto, port). */
function overPeriod(rows: AggregateRow[]): AggregateRow[] {
  const byKey = new Map<string, AggregateRow>();
  for (const r of rows) {
    const k = keyOf(r);
    const cur = byKey.get(k);
    if (!cur) {
      byKey.set(k, { ...r, srcNames: [...r.srcNames], dstNames: [...r.dstNames], evidence: [...r.evidence] });
      continue;
    }
    cur.windowStart = Math.min(cur.windowStart, r.windowStart);
    cur.flows += r.flows;
    cur.packets += r.packets;
    cur.bytes += r.bytes;
    cur.directionGuessed += r.directionGuessed;
    cur.firstSeen = Math.min(cur.firstSeen, r.firstSeen);
    cur.lastSeen = Math.max(cur.lastSeen, r.lastSeen);
    for (const n of r.srcNames) if (!cur.srcNames.includes(n)) cur.srcNames.push(n);
    for (const n of r.dstNames) if (!cur.dstNames.includes(n)) cur.dstNames.push(n);
    for (const e of r.evidence) if (cur.evidence.length < EVIDENCE_KEPT) cur.evidence.push(e);
  }
  return [...byKey.values()].sort((a, b) => b.flows - a.flows || a.firstSeen - b.firstSeen);
}

const EVIDENCE_KEPT = 5;

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' ? (v as Obj) : {});
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A judged record kept as evidence, reduced to what an auditor checks (stores hold what the judge wrote). */
export function evidenceFlow(raw: unknown): EvidenceFlow {
  const r = obj(raw);
  const end = (e: Obj) => ({
    ip: str(e.ip) ?? '',
    ...(typeof e.port === 'number' ? { port: e.port } : {}),
    ...(str(e.name) ? { name: str(e.name) } : {}),
    ...(str(e.kind) ? { kind: str(e.kind) } : {}),
  });
  const v = obj(r.verdict);
  const side = (d: Obj) => ({
    isolatedBy: Array.isArray(d.isolatedBy) ? d.isolatedBy.map(String) : [],
    reason: str(d.reason) ?? '',
    rules: Array.isArray(d.rules)
      ? d.rules.map((x) => {
          const ref = obj(x);
          return `${ref.kind && ref.kind !== 'NetworkPolicy' ? `${String(ref.kind)} ` : ''}${String(ref.policy)} ${String(ref.direction)}[${String(ref.rule)}]`;
        })
      : [],
  });
  const ing = side(obj(v.ingress));
  const eg = side(obj(v.egress));
  const observer = obj(r.observer);
  const p = obj(r.packets);
  const b = obj(r.bytes);
  return {
    start: num(r.start),
    end: num(r.end),
    proto: String(r.proto ?? ''),
    src: end(obj(r.src)),
    dst: end(obj(r.dst)),
    packets: { fwd: num(p.fwd), rev: num(p.rev) },
    bytes: { fwd: num(b.fwd), rev: num(b.rev) },
    state: str(r.state) ?? '',
    ...(str(observer.source)
      ? { observer: [observer.source, observer.file ?? observer.iface].filter(Boolean).join(':') }
      : {}),
    ...(str(observer.node) ? { node: str(observer.node) } : {}),
    isolatedBy: { ingress: ing.isolatedBy, egress: eg.isolatedBy },
    reasons: { ingress: ing.reason, egress: eg.reason },
    rules: [...eg.rules, ...ing.rules],
  };
}

function findings(rows: AggregateRow[], after: AggregateRow[], newest: number): Finding[] {
  const later = new Map(overPeriod(after).map((r) => [keyOf(r), r]));
  return rows.map((r) => {
    const next = later.get(keyOf(r));
    return {
      src: r.srcWorkload,
      dst: r.dstWorkload,
      proto: r.proto,
      port: r.port,
      flows: r.flows,
      packets: r.packets,
      bytes: r.bytes,
      firstSeen: r.firstSeen,
      lastSeen: r.lastSeen,
      srcNames: r.srcNames,
      dstNames: r.dstNames,
      directionGuessed: r.directionGuessed,
      since: {
        lastSeen: next ? Math.max(next.lastSeen, r.lastSeen) : r.lastSeen,
        stillOccurring: next !== undefined && next.lastSeen > r.lastSeen && newest > r.lastSeen,
        flowsAfter: next?.flows ?? 0,
      },
      evidence: r.evidence.map(evidenceFlow),
    };
  });
}

interface Figures {
  flows: number;
  violations: number;
  deniedAttempts: number;
  workloadsIsolated: number | null;
  unusedRules: number | null;
}

const sum = (rows: { flows: number }[]) => rows.reduce((a, r) => a + r.flows, 0);

function coverage(store: AuditStore, since: number, until: number): Coverage {
  const snapshots = store.facts.coverage(since, until);
  const latest = snapshots[snapshots.length - 1];
  const unisolated = new Map<
    string,
    {
      workload: string;
      direction: 'ingress' | 'egress';
      flows: number;
      bytes: number;
      peers: Set<string>;
      ns: Set<string>;
    }
  >();
  for (const t of store.facts.unisolatedTraffic(since, until)) {
    const k = `${t.workload}\u0000${t.direction}`;
    let u = unisolated.get(k);
    if (!u) {
      u = {
        workload: t.workload,
        direction: t.direction,
        flows: 0,
        bytes: 0,
        peers: new Set(),
        ns: new Set(),
      };
      unisolated.set(k, u);
    }
    u.flows += t.flows;
    u.bytes += t.bytes;
    u.peers.add(t.peer);
    u.ns.add(t.peerNamespace);
  }
  const unisolatedTraffic = [...unisolated.values()]
    .sort((a, b) => b.peers.size - a.peers.size || b.flows - a.flows || (a.workload < b.workload ? -1 : 1))
    .map((u) => ({
      workload: u.workload,
      direction: u.direction,
      flows: u.flows,
      bytes: u.bytes,
      peers: u.peers.size,
      peerNamespaces: u.ns.size,
      sentence:
        u.direction === 'ingress'
          ? `${u.workload} is not isolated for ingress and received connections from ${u.peers.size} source(s) in ${u.ns.size} namespace(s) (${u.flows} flows) in the period`
          : `${u.workload} is not isolated for egress and opened connections to ${u.peers.size} destination(s) in ${u.ns.size} namespace(s) (${u.flows} flows) in the period`,
    }));
  const w = latest?.workloads ?? [];
  return {
    available: latest !== undefined,
    asOf: latest?.asOf ?? null,
    workloads: w.length,
    ingressIsolated: w.filter((x) => x.ingressIsolated === x.pods).length,
    egressIsolated: w.filter((x) => x.egressIsolated === x.pods).length,
    pods: w.reduce((a, x) => a + x.pods, 0),
    podsIngressIsolated: w.reduce((a, x) => a + x.ingressIsolated, 0),
    podsEgressIsolated: w.reduce((a, x) => a + x.egressIsolated, 0),
    notIsolated: w.filter((x) => x.ingressIsolated < x.pods || x.egressIsolated < x.pods),
    namespacesWithoutDefaultDeny: (latest?.namespaces ?? []).filter(
      (n) => !n.defaultDenyIngress || !n.defaultDenyEgress,
    ),
    unisolatedTraffic,
  };
}

/** The key figures of a period, read from the store (the previous period's). */
function figures(store: AuditStore, since: number, until: number): Figures {
  const range = { since, until };
  const all = Number.MAX_SAFE_INTEGER;
  const flows = store.totals(range).flows;
  const cov = store.facts.coverage(since, until);
  const latest = cov[cov.length - 1];
  const rules = store.ruleUsage(range);
  return {
    flows,
    violations: sum(store.violations(range, all).filter((r) => r.firstSeen < until)),
    deniedAttempts: sum(store.deniedAttempts(range, all).filter((r) => r.firstSeen < until)),
    workloadsIsolated: latest ? latest.workloads.filter((x) => x.ingressIsolated === x.pods).length : null,
    unusedRules: flows > 0 ? rules.filter((r) => r.hits === 0).length : null,
  };
}

function keyFigures(now: Figures, before: Figures): KeyFigure[] {
  const f = (
    name: keyof Figures,
    label: string,
    better: KeyFigure['better'],
    noData: boolean,
  ): KeyFigure => ({
    name,
    label,
    value: noData ? null : now[name],
    previous: before.flows === 0 ? null : before[name],
    better,
  });
  const empty = now.flows === 0;
  return [
    f('flows', 'Flows judged', 'neither', false),
    f('violations', 'Violations (flows)', 'less', empty),
    f('deniedAttempts', 'Denied attempts (flows)', 'less', empty),
    f('workloadsIsolated', 'Workloads isolated for ingress', 'more', false),
    f('unusedRules', 'Unused rules', 'less', empty),
  ];
}

function policyChanges(store: AuditStore, since: number, until: number): PolicyChange[] {
  const out: PolicyChange[] = [];
  let prev: { kind: string; policy: string; hash: string; spec: string } | undefined;
  for (const v of store.facts.policyHistory()) {
    const same = prev && prev.kind === v.kind && prev.policy === v.policy;
    if (v.firstSeen >= since && v.firstSeen < until) {
      const before = same ? prev : undefined;
      out.push({
        kind: v.kind,
        policy: v.policy,
        at: v.firstSeen,
        change: before ? 'changed' : 'first-seen',
        fromHash: before?.hash ?? null,
        toHash: v.hash,
        diff: lineDiff(before ? toYaml(JSON.parse(before.spec)) : '', toYaml(JSON.parse(v.spec))),
      });
    }
    prev = v;
  }
  return out.sort((a, b) => a.at - b.at);
}

function completeness(
  store: AuditStore,
  since: number,
  until: number,
  inputProblems: InputIssue[],
): Completeness {
  const hours = Math.max(0, Math.ceil((until - Math.floor(since / HOUR) * HOUR) / HOUR));
  const rows = store.facts.observerHours(since, until);
  const byObserver = new Map<string, { observer: string; node: string; hours: Set<number>; flows: number }>();
  const dataHours = new Set<number>();
  for (const r of rows) {
    dataHours.add(r.hour);
    const k = `${r.observer}\u0000${r.node}`;
    let o = byObserver.get(k);
    if (!o) {
      o = { observer: r.observer, node: r.node, hours: new Set(), flows: 0 };
      byObserver.set(k, o);
    }
    o.hours.add(r.hour);
    o.flows += r.flows;
  }
  // Gaps are hours without a flow from a collector while some collector reported: a quiet node and
  // a stopped collector look alike here, which is why the section says "no flow", not "down".
  const first = Math.min(...dataHours);
  const last = Math.max(...dataHours);
  const observers = [...byObserver.values()].map((o) => {
    const gaps: { from: number; until: number }[] = [];
    for (let h = first; h <= last; h += HOUR) {
      if (o.hours.has(h)) continue;
      const g = gaps[gaps.length - 1];
      if (g && g.until === h) g.until = h + HOUR;
      else gaps.push({ from: h, until: h + HOUR });
    }
    return { observer: o.observer, node: o.node, flows: o.flows, hoursReporting: o.hours.size, gaps };
  });
  const skipped = new Map<string, { code: string; severity: string; count: number; example: string }>();
  for (const i of inputProblems) {
    const s = skipped.get(i.code);
    if (s) s.count++;
    else skipped.set(i.code, { code: i.code, severity: i.severity, count: 1, example: formatIssue(i) });
  }
  const runs = store.facts
    .runs()
    .map((r) => {
      let stats: Obj = {};
      let inputs: unknown[] = [];
      try {
        stats = obj(JSON.parse(r.stats));
        inputs = JSON.parse(r.inputs) as unknown[];
      } catch {
        // A run whose record cannot be read is listed without its numbers.
      }
      const input = obj(stats.input);
      return {
        id: r.id,
        mode: r.mode,
        finished: r.finished,
        inputs: inputs.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))),
        packets: typeof input.packets === 'number' ? input.packets : null,
        // audit records {flows: {total, ...}}; process records its judged count.
        flows:
          typeof stats.flows === 'number'
            ? stats.flows
            : typeof obj(stats.flows).total === 'number'
              ? (obj(stats.flows).total as number)
              : typeof stats.judged === 'number'
                ? stats.judged
                : null,
        deadLetters: num(stats.deadLetters),
        dataFirst: typeof stats.dataFirst === 'number' ? stats.dataFirst : undefined,
        dataLast: typeof stats.dataLast === 'number' ? stats.dataLast : undefined,
      };
    })
    .filter((r) => !r.finished || r.dataFirst === undefined || (r.dataLast! >= since && r.dataFirst < until))
    .map(({ dataFirst: _f, dataLast: _l, ...r }) => r);
  const unattributed = store.facts.unattributed(since, until);
  return {
    hours,
    hoursWithData: dataHours.size,
    observers,
    unattributed: { flows: sum(unattributed), addresses: unattributed.slice(0, 50) },
    skipped: [...skipped.values()].sort((a, b) => b.count - a.count),
    runs,
    unfinishedRuns: runs.filter((r) => !r.finished).length,
    deadLetters: runs.reduce((a, r) => a + r.deadLetters, 0),
    spoolDrops: null,
    observersKnown: rows.length > 0,
  };
}

function unusedRules(
  store: AuditStore,
  since: number,
  until: number,
): { total: number; used: number; unused: UnusedRule[] } {
  const rules = store.ruleUsage({ since, until });
  const before = store.facts.ruleLastHitsBefore(since);
  const unused = rules
    .filter((r) => r.hits === 0)
    .map((r) => {
      const last = before.get(`${r.kind}\u0000${r.policy}\u0000${r.direction}\u0000${r.rule}`) ?? null;
      return {
        kind: r.kind,
        policy: r.policy,
        direction: r.direction,
        rule: r.rule,
        summary: r.summary,
        definedFirst: r.definedFirst,
        lastHit: last,
        unusedSince: last ?? r.definedFirst,
      };
    })
    .sort((a, b) => a.unusedSince - b.unusedSince);
  return { total: rules.length, used: rules.length - unused.length, unused };
}

function summaryOf(
  assessment: ReportAssessment,
  violations: Finding[],
  unsettled: Finding[],
  unattributed: number,
  unfinishedRuns: number,
  flows: number,
  label: string,
): string {
  switch (assessment) {
    case 'compliant':
      return `Compliant: none of the ${flows} flows judged in ${label} was denied by the NetworkPolicies in force and observed to flow.`;
    case 'not-compliant':
      return `Not compliant: ${violations.length} connection(s) (${sum(violations)} flows) that the NetworkPolicies deny were observed to flow in ${label}; enforcement failed or is missing for them.`;
    case 'no-data':
      return `No data: cannot assess ${label}; the store holds no flow for it, so nothing can be said about compliance.`;
    case 'incomplete':
      return `No data: cannot assess ${label}; ${unfinishedRuns} audit run(s) did not finish, so its data is incomplete (re-run them).`;
    case 'unsettled':
      return `Cannot fully assess ${label}: no violation was observed, but ${[
        unsettled.length > 0
          ? `the verdict of ${unsettled.length} connection(s) (${sum(unsettled)} flows) depends on what was not observed`
          : '',
        unattributed > 0
          ? `${unattributed} flow(s) had an address in a pod CIDR that no pod held at flow time (not attributable: not counted as allowed)`
          : '',
      ]
        .filter(Boolean)
        .join(', and ')}.`;
  }
}

export interface BuildOptions {
  /** Wall clock of the report (generatedAt); the data's own times are everything else. */
  now?: Date;
}

export function buildReport(
  store: AuditStore,
  since: number,
  until: number,
  label: string,
  options: BuildOptions = {},
): ReportModel {
  const range = { since, until };
  const all = Number.MAX_SAFE_INTEGER;
  const newest = store.latestDataTime() ?? until;
  const after = { since: until };
  // Windowed rows overlapping the period; a window straddling an edge counts whole (windows are 1 h).
  const vRows = overPeriod(store.violations(range, all).filter((r) => r.firstSeen < until));
  const dRows = overPeriod(store.deniedAttempts(range, all).filter((r) => r.firstSeen < until));
  const uRows = overPeriod(store.ambiguous(range, all).filter((r) => r.firstSeen < until));
  const violations = findings(vRows, store.violations(after, all), newest);
  const deniedAttempts = findings(dRows, store.deniedAttempts(after, all), newest);
  const unsettled = findings(uRows, store.ambiguous(after, all), newest);
  const evidence = evidenceFor(store, since, until);
  const traffic = store.totals(range);
  const length = until - since;
  const previous = { since: since - length, until: since };

  const daily = new Map<number, ReportModel['daily'][number]>();
  for (let d = Math.floor(since / DAY) * DAY; d < until; d += DAY)
    daily.set(d, { day: d, allowed: 0, violations: 0, deniedAttempts: 0, unsettled: 0, unattributed: 0 });
  const matrix = new Map<string, ReportModel['namespaceMatrix'][number]>();
  // "Not attributable" is an outcome of its own: a flow the policies would allow, to or from an
  // address in a pod CIDR that no pod held, is not evidence that the policies allowed a pod's traffic.
  let unattributedAllowed = 0;
  for (const t of store.facts.namespaceTraffic(since, until)) {
    const unattributed = t.src === '(unattributed)' || t.dst === '(unattributed)';
    const field =
      t.classification === 'allowed'
        ? unattributed
          ? 'unattributed'
          : 'allowed'
        : t.classification === 'denied-but-observed'
          ? 'violations'
          : t.classification === 'denied-attempt'
            ? 'deniedAttempts'
            : 'unsettled';
    if (field === 'unattributed') unattributedAllowed += t.flows;
    const day = daily.get(t.day);
    if (day) day[field] += t.flows;
    const k = `${t.src}\u0000${t.dst}`;
    let cell = matrix.get(k);
    if (!cell) {
      cell = {
        src: t.src,
        dst: t.dst,
        allowed: 0,
        violations: 0,
        deniedAttempts: 0,
        unsettled: 0,
        unattributed: 0,
      };
      matrix.set(k, cell);
    }
    cell[field] += t.flows;
  }
  // A violation is evidence whatever else is missing; its absence is only evidence when the period
  // has data and every run that wrote to it finished, and no flow's verdict hangs on what was not
  // observed (an unsettled verdict, or an address no pod held).
  const assessment: ReportAssessment =
    violations.length > 0
      ? 'not-compliant'
      : evidence.status !== 'ok'
        ? evidence.status
        : unsettled.length > 0 || unattributedAllowed > 0
          ? 'unsettled'
          : 'compliant';
  const cov = coverage(store, since, until);
  const rules = unusedRules(store, since, until);
  const pairs = new Map<string, { src: string; dst: string; flows: number }>();
  for (const v of violations) {
    const k = `${v.src}\u0000${v.dst}`;
    const p = pairs.get(k) ?? { src: v.src, dst: v.dst, flows: 0 };
    p.flows += v.flows;
    pairs.set(k, p);
  }

  return {
    reportVersion: REPORT_VERSION,
    generatedBy: `netpol-audit ${packageVersion()}`,
    generatedAt: (options.now ?? new Date()).toISOString(),
    storeSchemaVersion: SCHEMA_VERSION,
    period: { since, until, label },
    previousPeriod: previous,
    assessment,
    compliant: assessment === 'compliant',
    summary: summaryOf(
      assessment,
      violations,
      unsettled,
      unattributedAllowed,
      evidence.unfinishedRuns,
      traffic.flows,
      label,
    ),
    // This period's figures come from what was just built; only the previous period is read again.
    keyFigures: keyFigures(
      {
        flows: traffic.flows,
        violations: sum(violations),
        deniedAttempts: sum(deniedAttempts),
        workloadsIsolated: cov.available ? cov.ingressIsolated : null,
        unusedRules: traffic.flows > 0 ? rules.unused.length : null,
      },
      figures(store, previous.since, previous.until),
    ),
    traffic,
    daily: [...daily.values()],
    topViolatingPairs: [...pairs.values()].sort((a, b) => b.flows - a.flows).slice(0, 10),
    namespaceMatrix: [...matrix.values()].sort((a, b) =>
      a.src === b.src ? (a.dst < b.dst ? -1 : 1) : a.src < b.src ? -1 : 1,
    ),
    violations,
    deniedAttempts,
    unsettled,
    coverage: cov,
    rules,
    policyChanges: policyChanges(store, since, until),
    policyVersions: store.policyVersions(range),
    completeness: completeness(store, since, until, evidence.issues),
    unfinishedRuns: evidence.unfinishedRuns,
    inputProblems: evidence.issues as unknown as ReportModel['inputProblems'],
  };
}

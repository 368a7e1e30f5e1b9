import { AlertDispatcher, AlertStage, loadAlertsConfig, makeReceivers } from '../../alerts/index.js';
import { formatIssue, type InputIssue, issue } from '../../lib/errors.js';
import { escapeTerminal } from '../../lib/escape.js';
import { isoTime, parseDuration } from '../../lib/format.js';
import { stopOnSignals } from '../../lib/signals.js';
import { CLUSTER_OPTIONS, clusterOptionsFrom, openCluster } from '../../pipeline/cluster.js';
import { runEmbedded } from '../../pipeline/embedded.js';
import { type AggregateRow, AuditStore, type RuleRow } from '../../processor/store/index.js';
import { asUsage, parse } from '../args.js';
import { type Command, EXIT_INPUT_PROBLEMS, UsageError } from '../command.js';

const USAGE = `usage: netpol-audit audit CAPTURE... --cluster SNAPSHOT [--cluster MORE] [--db FILE]
                         [--window 1h] [--node NAME] [--cluster-domain D]
                         [--ipblock-matches-pods true|false] [--host-network node|pod] [--format text|json]
                         [--alerts FILE [--alerts-drain 30s]]

Runs the whole audit in one process, without Kafka: reads the captures (pcap or pcapng; - for
standard input), turns packets into flows, judges every flow against the NetworkPolicies of the
cluster snapshot, stores violations, denied attempts and per-rule usage in SQLite (--db, default
netpol-audit.db), and prints a summary. Exit code 1 when input problems were found.

With --alerts, violations (and, as configured, denied attempts and scans) become alerts: written
to the store's outbox with the flows that raised them, resolved once the data shows them quiet for
the resolve timeout, and delivered to the configured receivers (Alertmanager, signed webhook,
Slack) for up to --alerts-drain; what is not delivered by then stays pending in the store for the
next run or \`netpol-audit alerts\` (docs/alerts.md).`;

interface Summary {
  captures: string[];
  cluster: string[];
  db: string;
  data: { first?: string; last?: string };
  input: Record<string, unknown>;
  flows: {
    total: number;
    allowed: number;
    deniedButObserved: number;
    deniedAttempts: number;
    ambiguous: number;
    /** Direction not seen by the collector, settled by a port the cluster declares. */
    directionFromCluster: number;
    /** Direction not seen and not settled: judged both ways (docs/check.md, "Direction"). */
    directionGuessed: number;
  };
  /** Flows the store had already counted (same capture again, rerun, overlap, second observer): not added. */
  alreadyStored: {
    flows: number;
    /** Of those, seen here with more packets than the store kept (it keeps the first observation). */
    largerHere: number;
    /** Earlier interrupted runs of the same inputs that this run completed (runs.resumed_by). */
    resumedRuns: number[];
  };
  violations: AggregateRow[];
  deniedAttempts: AggregateRow[];
  /** Flows whose verdict could not be settled (Service backends disagree, or a guessed direction matters). */
  ambiguous: AggregateRow[];
  unusedRules: RuleRow[];
  /** Inputs a signal stopped before their end: the run is left unfinished. */
  interrupted?: string[];
  /** With --alerts: what the run raised and what was delivered (docs/alerts.md). */
  alerts?: {
    raised: number;
    repeated: number;
    resolved: number;
    firing: number;
    notifications: number;
    sent: number;
    failed: number;
    pending: number;
  };
  rules: number;
  policies: number;
  issues: InputIssue[];
}

export const auditCommand: Command = {
  path: ['audit'],
  summary: 'embedded audit: captures + cluster snapshot in, SQLite store and summary out',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      {
        ...CLUSTER_OPTIONS,
        db: { type: 'string' },
        window: { type: 'string' },
        node: { type: 'string' },
        format: { type: 'string' },
        alerts: { type: 'string' },
        'alerts-drain': { type: 'string' },
      },
      true,
    );
    if (positionals.length === 0) throw new UsageError('give at least one capture file');
    const clusterOptions = clusterOptionsFrom(values, false);
    const format = values.format ?? 'text';
    if (format !== 'text' && format !== 'json') throw new UsageError('--format must be text or json');
    const windowMs = values.window ? asUsage(() => parseDuration(values.window!)) : 3_600_000;
    const dbPath = values.db ?? 'netpol-audit.db';
    const drainMs = values['alerts-drain'] ? asUsage(() => parseDuration(values['alerts-drain']!)) : 30_000;
    if (values['alerts-drain'] && !values.alerts) throw new UsageError('--alerts-drain needs --alerts');
    // Read before anything else is opened: a broken alerts file stops the run with nothing stored.
    const alertsConfig = values.alerts ? loadAlertsConfig(values.alerts) : undefined;

    const issues: InputIssue[] = [];
    // A snapshot that cannot be used stops the run before the store is opened (docs/trust.md).
    const cluster = await openCluster(clusterOptions, (i) => issues.push(i));
    const clusterFiles = clusterOptions.snapshots;

    const store = AuditStore.open(dbPath, { windowMs });
    const runId = store.beginRun('embedded', [...positionals, ...clusterFiles], Date.now());
    const alerts = alertsConfig
      ? new AlertStage(alertsConfig, store.outbox, Date.now, (ns, at) => cluster.namespaceLabels(ns, at))
      : undefined;
    // SIGINT/SIGTERM: stop reading, judge and store what was read, finish the run, summarise.
    const stop = stopOnSignals();
    const { processor, recorder, collected, placed } = await runEmbedded({
      captures: positionals,
      cluster: cluster.view,
      store,
      ...(alerts ? { onCounted: (fresh) => alerts.counted(fresh) } : {}),
      collect: { signal: stop.signal, node: values.node, onIssue: (i: InputIssue) => issues.push(i) },
    });
    stop.dispose();
    // None of the flows placed: the snapshot is of another cluster or another time, and every
    // verdict is about nothing.
    if (processor.stats.flows > 0 && placed === 0)
      issues.push(
        issue(
          'AUDIT_SNAPSHOT_MATCHES_NO_FLOW',
          `none of the ${processor.stats.flows} flows has an address the cluster snapshot knows (pod, service or node): the snapshot is probably of another cluster or another time, and the verdicts rest on no inventory`,
          { source: clusterFiles.join(', ') },
          'warning',
        ),
      );

    // The policies were in force for the whole span of the data: every rule is defined over it, so
    // rules that no flow used show up with zero hits.
    const stats = processor.stats;
    const first = stats.firstFlow ?? 0;
    const last = stats.lastFlow ?? 0;
    const { rules: ruleDefs, policies } = cluster.policiesAt(first);
    // Without a flow there is no data time: recording the policies at 0 would claim them "in force
    // since 1970" and make every rule look unused over any period.
    if (stats.firstFlow !== undefined) {
      store.recordPolicies(policies, ruleDefs, first);
      store.recordPolicies(policies, ruleDefs, last);
    }
    const range = { since: first, until: last };
    const summary: Summary = {
      captures: positionals,
      cluster: clusterFiles,
      db: dbPath,
      data: {
        first: stats.firstFlow === undefined ? undefined : isoTime(first),
        last: stats.lastFlow === undefined ? undefined : isoTime(last),
      },
      input: collected as unknown as Record<string, unknown>,
      flows: {
        total: stats.flows,
        allowed: stats.allowed,
        deniedButObserved: stats.deniedButObserved,
        deniedAttempts: stats.deniedAttempts,
        ambiguous: stats.ambiguous,
        directionFromCluster: stats.directionFromCluster,
        directionGuessed: stats.directionGuessed,
      },
      alreadyStored: { flows: recorder.duplicates, largerHere: recorder.largerThanStored, resumedRuns: [] },
      violations: store.violations(range),
      deniedAttempts: store.deniedAttempts(range),
      ambiguous: store.ambiguous(range),
      unusedRules: store
        .rules({ unusedSince: first })
        .filter((r) => ruleDefs.some((x) => x.policy === r.policy && x.kind === r.kind)),
      rules: ruleDefs.length,
      policies: policies.length,
      issues,
    };
    // The run's record keeps its input problems (capped), so a report over the period can show them.
    const runStats = {
      flows: summary.flows,
      input: summary.input,
      // The data span this run stored (data time), so a report knows which runs bear on its period.
      dataFirst: stats.firstFlow,
      dataLast: stats.lastFlow,
      issues: issues.length,
      errors: issues.filter((i) => i.severity === 'error').length,
      issueList: issues.slice(0, RUN_ISSUES_KEPT),
      ...(stop.by ? { stoppedBy: stop.by } : {}),
    };
    // A file the signal cut was not read whole: the run stays unfinished, and a report says its
    // period is incomplete until the same inputs are audited again (nothing is counted twice). A
    // stopped standard input is a stream that ended when the user said so: the run is whole.
    const cutFiles = (collected.cutInputs ?? []).filter((f) => f !== '<stdin>' && f !== '-');
    if (cutFiles.length > 0) {
      store.leaveRunUnfinished(runId, { ...runStats, interrupted: true, cutInputs: cutFiles });
      summary.interrupted = cutFiles;
    } else {
      store.finishRun(runId, runStats, Date.now());
      // Ingestion identity (docs/store.md): this run completed what interrupted runs of the same inputs committed.
      summary.alreadyStored.resumedRuns = store.markResumed(runId);
    }
    if (alerts && alertsConfig) {
      // Data time: alerts quiet for the resolve timeout before the newest data resolve (docs/alerts.md).
      if (stats.lastFlow !== undefined) alerts.tick(stats.lastFlow, (fn) => store.transaction(fn));
      const dispatcher = new AlertDispatcher(store.outbox, makeReceivers(alertsConfig.receivers));
      const pending = await dispatcher.drain(Date.now() + drainMs);
      summary.alerts = {
        raised: alerts.counts.firing,
        repeated: alerts.counts.repeat,
        resolved: alerts.counts.resolved,
        firing: alerts.firing.length,
        notifications: alerts.counts.notifications,
        sent: dispatcher.stats.sent,
        failed: dispatcher.stats.failed,
        pending,
      };
    }
    store.close();

    process.stdout.write(format === 'json' ? `${JSON.stringify(summary, null, 2)}\n` : renderText(summary));
    return issues.some((i) => i.severity === 'error') ? EXIT_INPUT_PROBLEMS : 0;
  },
};

/** How many of a run's input problems its record in the store keeps. */
const RUN_ISSUES_KEPT = 200;

function port(r: AggregateRow): string {
  return r.port < 0 ? r.proto : `${r.proto}/${r.port}`;
}

const t = escapeTerminal;

function renderText(s: Summary): string {
  const out: string[] = [];
  const n = (x: number, word: string) =>
    `${x} ${x === 1 ? word : word.endsWith('y') ? `${word.slice(0, -1)}ies` : `${word}s`}`;
  out.push(`netpol-audit: ${s.captures.join(', ')} against ${s.cluster.join(', ')}`);
  if (s.data.first) out.push(`data from ${s.data.first} to ${s.data.last}`);
  const input = s.input as { packets?: number; flows?: number };
  if (input.packets !== undefined) out.push(`${n(input.packets, 'packet')} read`);
  if (s.interrupted)
    out.push(
      `stopped by a signal before the end of ${s.interrupted.map(t).join(', ')}: what was read was judged and stored, ` +
        'and the run stays unfinished (audit the same inputs again to complete it; nothing is counted twice)',
    );
  else if ((s.input as { stopped?: boolean }).stopped)
    out.push('stopped by a signal: what was read until then was judged and stored');
  const implausible = (s.input as { implausibleTime?: number }).implausibleTime ?? 0;
  if (implausible > 0)
    out.push(`${n(implausible, 'packet')} with an implausible timestamp, kept out of flows and periods`);
  out.push(
    `${n(s.flows.total, 'flow')} judged: ${s.flows.allowed} allowed, ${s.flows.deniedButObserved} denied but observed (violations), ` +
      `${s.flows.deniedAttempts} denied attempts, ${s.flows.ambiguous} ambiguous`,
  );
  if (s.flows.directionFromCluster + s.flows.directionGuessed > 0)
    out.push(
      `${n(s.flows.directionFromCluster + s.flows.directionGuessed, 'flow')} began before the capture did: ` +
        `direction from the cluster's declared ports for ${s.flows.directionFromCluster}, guessed for ${s.flows.directionGuessed}` +
        (s.flows.directionGuessed > 0 ? ' (judged both ways; ambiguous where the result depends on it)' : ''),
    );
  if (s.alreadyStored.flows > 0)
    out.push(
      `${n(s.alreadyStored.flows, 'flow')} already in the store (same flow from another capture, run or observer): not counted again` +
        (s.alreadyStored.largerHere > 0
          ? ` (${s.alreadyStored.largerHere} seen here with more packets: the store keeps the first observation)`
          : ''),
    );
  if (s.alreadyStored.resumedRuns.length > 0)
    out.push(
      `completes interrupted ${s.alreadyStored.resumedRuns.length === 1 ? 'run' : 'runs'} ${s.alreadyStored.resumedRuns.join(', ')} of the same inputs`,
    );
  out.push(`${n(s.policies, 'policy')}, ${n(s.rules, 'rule')}`);
  out.push('');
  const guessed = (v: AggregateRow) =>
    v.directionGuessed > 0 ? ` (direction guessed for ${v.directionGuessed}: denied either way)` : '';
  out.push(`VIOLATIONS: denied by the policies, observed to flow (${s.violations.length})`);
  for (const v of s.violations)
    out.push(
      `  ${t(v.srcWorkload)} -> ${t(v.dstWorkload)} ${port(v)}: ${n(v.flows, 'flow')}, ${v.bytes} bytes, ${isoTime(v.firstSeen)} .. ${isoTime(v.lastSeen)}${guessed(v)}`,
    );
  if (s.violations.length === 0) out.push('  none');
  out.push('');
  out.push(`DENIED ATTEMPTS: denied, and stopped (${s.deniedAttempts.length})`);
  for (const v of s.deniedAttempts)
    out.push(`  ${t(v.srcWorkload)} -> ${t(v.dstWorkload)} ${port(v)}: ${n(v.flows, 'flow')}${guessed(v)}`);
  if (s.deniedAttempts.length === 0) out.push('  none');
  if (s.ambiguous.length > 0) {
    out.push('');
    out.push(`UNSETTLED: the verdict depends on what was not observed (${s.ambiguous.length})`);
    for (const v of s.ambiguous)
      out.push(
        `  ${t(v.srcWorkload)} -> ${t(v.dstWorkload)} ${port(v)}: ${n(v.flows, 'flow')}, ` +
          (v.directionGuessed > 0
            ? `direction not seen (began before the capture), allowed one way and denied the other${v.directionGuessed < v.flows ? '; or a Service whose backends disagree' : ''}`
            : 'a Service whose backends disagree'),
      );
  }
  out.push('');
  out.push(`UNUSED RULES: in force, used by no flow (${s.unusedRules.length})`);
  for (const r of s.unusedRules)
    out.push(`  ${t(r.policy)} ${r.direction}[${r.rule}]${r.summary ? `: ${t(r.summary)}` : ''}`);
  if (s.unusedRules.length === 0) out.push('  none');
  if (s.issues.length > 0) {
    out.push('');
    out.push(`INPUT PROBLEMS (${s.issues.length})`);
    for (const i of s.issues.slice(0, 50)) out.push(`  ${t(formatIssue(i))}`);
    if (s.issues.length > 50) out.push(`  ... and ${s.issues.length - 50} more`);
  }
  if (s.alerts) {
    const a = s.alerts;
    out.push('');
    out.push(
      `ALERTS: ${a.raised} raised, ${a.repeated} repeated, ${a.resolved} resolved, ${a.firing} firing; ` +
        `${a.notifications} notifications: ${a.sent} sent, ${a.failed} failed, ${a.pending} pending` +
        (a.pending > 0 ? ` (delivered later: netpol-audit alerts --db ${s.db})` : ''),
    );
  }
  out.push('');
  out.push(`store: ${s.db} (netpol-audit violations --db ${s.db}; netpol-audit rules --unused --db ${s.db})`);
  return `${out.join('\n')}\n`;
}

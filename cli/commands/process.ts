import {
  AlertDispatcher,
  AlertStage,
  dispatchUntil,
  loadAlertsConfig,
  makeReceivers,
} from '../../alerts/index.js';
import { formatIssue, type InputIssue } from '../../lib/errors.js';
import { isoTime, parseDuration } from '../../lib/format.js';
import { Metrics, serveMetrics } from '../../metrics/index.js';
import { CLUSTER_OPTIONS, CLUSTER_USAGE, clusterOptionsFrom, openCluster } from '../../pipeline/cluster.js';
import { PipelineRunner, type Role } from '../../pipeline/kafka.js';
import { METRICS_USAGE } from '../metrics-option.js';

/** How often a live pipeline resolves alerts quiet for their resolve timeout (wall time). */
const ALERT_TICK_MS = 30_000;

import { AuditStore } from '../../processor/store/index.js';
import { kafkaSettings, parseBrokers, topicNames } from '../../transport/kafka/index.js';
import { asUsage, parse } from '../args.js';
import { type Command, EXIT_INPUT_PROBLEMS, EXIT_OK, UsageError } from '../command.js';

const USAGE = `usage: netpol-audit process (--cluster SNAPSHOT | --kubeconfig FILE | --in-cluster) --brokers HOST:PORT [--db FILE] [options]

The processor of the Kafka pipeline (docs/pipeline.md). Consumes the FlowRecords the collectors
publish (collect ... --kafka), judges them against the cluster (a snapshot, or the API server
followed live) and stores them in SQLite exactly once, until SIGTERM/SIGINT (then it finishes the
batch in hand and commits it). In a pod (Kubernetes' service environment variables for the API
server set) without --cluster or --kubeconfig, it follows the cluster with the pod's service
account, as --in-cluster does (deploy/, docs/deploy.md).

options:
${CLUSTER_USAGE}
      --db FILE            the SQLite store (default netpol-audit.db); roles all and record
      --brokers LIST       Kafka bootstrap servers, host:port[,host:port]
      --role R             all (default): consume, judge and record in this process;
                           judge: consume flows, publish judged records to the verdicts topic (run many);
                           record: consume the verdicts, write the store (run exactly one)
      --wire 1|2           how a judge publishes its verdicts: 1, one message each (default); 2, packs
                           of up to 1000, several times cheaper for judge and recorder (docs/pipeline.md;
                           a recorder reads both: upgrade the recorder first)
      --group ID           consumer group (default netpol-audit; judges use ID-judge, the recorder ID-record)
      --topic-prefix P     prefix of the topic names (default 'netpol-audit.')
      --topic NAME         flows topic, if the collectors were given --topic
      --partitions N       partitions of the flows and verdicts topics when this creates them (default 6)
      --window D           violations are grouped in windows of D (default 1h)
      --alerts FILE        alert on violations (docs/alerts.md): raised with the flows that cause them,
                           resolved on wall time, delivered while running; roles all and record
      --alerts-drain D     at exit, how long to keep delivering pending alerts (default 10s)
${METRICS_USAGE}
      --exit-when-idle MS  stop once caught up and nothing arrived for MS milliseconds
      --format text|json   the summary printed at exit

Exit status: 0 ok, 1 messages went to the dead-letter topic or the snapshot had problems, 2 usage error.`;

export const processCommand: Command = {
  path: ['process'],
  summary: 'Kafka pipeline processor: consume flows, judge, store exactly once (roles all|judge|record)',
  usage: USAGE,
  async run(argv) {
    const { values } = parse(argv, {
      ...CLUSTER_OPTIONS,
      db: { type: 'string' },
      brokers: { type: 'string' },
      role: { type: 'string' },
      wire: { type: 'string' },
      group: { type: 'string' },
      'topic-prefix': { type: 'string' },
      topic: { type: 'string' },
      partitions: { type: 'string' },
      window: { type: 'string' },
      alerts: { type: 'string' },
      'alerts-drain': { type: 'string' },
      'metrics-listen': { type: 'string' },
      'exit-when-idle': { type: 'string' },
      format: { type: 'string' },
    });
    // In a pod with nothing said about the cluster: follow it with the pod's service account.
    if (
      values.cluster === undefined &&
      values.kubeconfig === undefined &&
      values.context === undefined &&
      process.env.KUBERNETES_SERVICE_HOST
    )
      values['in-cluster'] = true;
    // The same cluster options as audit and check (--ipblock-matches-pods, --host-network included).
    const clusterOptions = clusterOptionsFrom(values);
    if (values.brokers === undefined) throw new UsageError('--brokers is required');
    const brokers = asUsage(() => parseBrokers(values.brokers!));
    const role = (values.role ?? 'all') as Role;
    if (!['all', 'judge', 'record'].includes(role))
      throw new UsageError('--role must be all, judge or record');
    if (values.wire !== undefined && values.wire !== '1' && values.wire !== '2')
      throw new UsageError('--wire must be 1 or 2');
    if (values.wire !== undefined && role !== 'judge')
      throw new UsageError('--wire is how a judge publishes its verdicts: --role judge only');
    if (role === 'judge' && values.db !== undefined)
      throw new UsageError('--role judge writes no store: drop --db');
    const format = values.format ?? 'text';
    if (format !== 'text' && format !== 'json') throw new UsageError('--format must be text or json');
    const windowMs = values.window ? asUsage(() => parseDuration(values.window!)) : 3_600_000;
    let idle: number | undefined;
    if (values['exit-when-idle'] !== undefined) {
      idle = Number(values['exit-when-idle']);
      if (!Number.isFinite(idle) || idle < 0)
        throw new UsageError(`--exit-when-idle must be milliseconds, got '${values['exit-when-idle']}'`);
    }
    let partitions = 6;
    if (values.partitions !== undefined) {
      partitions = Number(values.partitions);
      if (!Number.isInteger(partitions) || partitions < 1)
        throw new UsageError(`--partitions must be a positive integer, got '${values.partitions}'`);
    }
    const topics = topicNames(values['topic-prefix']);
    if (values.topic !== undefined) topics.flows = values.topic;
    const settings = kafkaSettings({
      brokers,
      topics,
      group: values.group ?? 'netpol-audit',
      clientId: `netpol-audit-process-${role}`,
      partitions: { flows: partitions, verdicts: partitions, violations: 3, deadLetter: 1 },
    });

    const issues: InputIssue[] = [];
    const report = (i: InputIssue) => {
      issues.push(i);
      process.stderr.write(`netpol-audit process: ${formatIssue(i)}\n`);
    };
    // Read before the cluster or the store is opened: a broken alerts file stops the process first.
    const alertsConfig = values.alerts ? loadAlertsConfig(values.alerts) : undefined;
    const cluster = await openCluster(clusterOptions, report);
    const dbPath = values.db ?? 'netpol-audit.db';
    if (values.alerts && role === 'judge')
      throw new UsageError('--alerts goes to the process that writes the store (roles all and record)');
    if (values['alerts-drain'] && !values.alerts) throw new UsageError('--alerts-drain needs --alerts');
    const drainMs = values['alerts-drain'] ? asUsage(() => parseDuration(values['alerts-drain']!)) : 10_000;
    const store = role === 'judge' ? undefined : AuditStore.open(dbPath, { windowMs });
    const runId = store?.beginRun(
      `pipeline-${role}`,
      [
        ...(values.cluster ??
          (clusterOptions.inCluster ? ['in-cluster'] : [`kubeconfig:${values.kubeconfig ?? 'default'}`])),
        brokers.join(','),
      ],
      Date.now(),
    );
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    // Alerts (docs/alerts.md): raised in the store's transactions, resolved on wall time (a live
    // pipeline), delivered while the pipeline runs and for --alerts-drain after it stops.
    const alerts =
      alertsConfig && store
        ? new AlertStage(alertsConfig, store.outbox, Date.now, (ns, at) => cluster.namespaceLabels(ns, at))
        : undefined;
    const dispatcher =
      alertsConfig && store
        ? new AlertDispatcher(store.outbox, makeReceivers(alertsConfig.receivers))
        : undefined;
    const alertsStop = new AbortController();
    const delivering =
      dispatcher && store ? dispatchUntil(dispatcher, store.outbox, alertsStop.signal) : undefined;
    const amReceivers = new Map(
      alertsConfig ? makeReceivers(alertsConfig.receivers).map((r) => [r.name, r] as const) : [],
    );
    const resolving =
      alerts && store
        ? setInterval(() => {
            alerts.tick(Date.now(), (fn) => store.transaction(fn));
            // Alertmanager forgets a firing alert not re-sent within its resolve_timeout (5 min by default).
            for (const r of alerts.refreshes()) void amReceivers.get(r.receiver)?.deliver(r.payload, r.key);
          }, ALERT_TICK_MS)
        : undefined;
    // Metrics (docs/metrics.md): served while the pipeline runs, read from the stages' own counters.
    const metrics = values['metrics-listen'] ? new Metrics() : undefined;
    const metricsServer = metrics ? await serveMetrics(values['metrics-listen']!, metrics) : undefined;
    if (metricsServer) process.stderr.write(`process (${role}): metrics at ${metricsServer.url}\n`);
    let stats: Awaited<ReturnType<PipelineRunner['run']>>;
    try {
      const runner = new PipelineRunner({
        role,
        settings,
        cluster: role === 'record' ? undefined : cluster.view,
        store,
        ...(alerts ? { onCounted: (fresh) => alerts.counted(fresh) } : {}),
        exitWhenIdleMs: idle,
        signal: ac.signal,
        verdictWire: values.wire === '2' ? 2 : 1,
      });
      if (metrics) {
        metrics.pipeline(runner.stats).judged(runner.stats);
        if (cluster.health) metrics.inventory(cluster.health);
        if (alerts && dispatcher && store)
          metrics.alerts({
            firing: () => alerts.firing.length,
            outbox: () => store.outbox.counts(),
            deliveries: () =>
              [...dispatcher.stats.byReceiver].flatMap(([receiver, c]) =>
                Object.entries(c).map(([outcome, count]) => ({ receiver, outcome, count })),
              ),
          });
      }
      stats = await runner.run();
    } finally {
      await metricsServer?.close();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      clearInterval(resolving);
      alertsStop.abort();
      await delivering;
      await cluster.close();
    }
    let alertSummary: Record<string, number> | undefined;
    if (alerts && dispatcher && store) {
      alerts.tick(Date.now(), (fn) => store.transaction(fn));
      const pending = await dispatcher.drain(Date.now() + drainMs);
      alertSummary = {
        raised: alerts.counts.firing,
        repeated: alerts.counts.repeat,
        resolved: alerts.counts.resolved,
        firing: alerts.firing.length,
        sent: dispatcher.stats.sent,
        failed: dispatcher.stats.failed,
        pending,
      };
    }
    if (store) {
      // As in `audit`: the policies (of each cluster version) were in force over the data this run stored.
      if (stats.firstFlow !== undefined && stats.lastFlow !== undefined) {
        const first = stats.firstFlow;
        const last = stats.lastFlow;
        const times = [first, ...cluster.versionTimes().filter((t) => t > first && t < last), last];
        for (const t of times) {
          const { rules, policies } = cluster.policiesAt(t);
          store.recordPolicies(policies, rules, t);
        }
      }
      store.finishRun(runId!, stats, Date.now());
      store.close();
    }
    if (format === 'json')
      process.stdout.write(
        `${JSON.stringify({ ...stats, db: store ? dbPath : undefined, ...(alertSummary ? { alerts: alertSummary } : {}) })}\n`,
      );
    else {
      const lines = [
        `process (${role}): ${stats.consumed} messages consumed (${stats.redelivered} already stored), ` +
          `${stats.deadLetters} to the dead-letter topic, ${stats.duplicates} duplicates dropped`,
        `process (${role}): ${stats.judged} flows judged, ${stats.recorded} recorded: ${stats.allowed} allowed, ` +
          `${stats.deniedButObserved} denied but observed, ${stats.deniedAttempts} denied attempts, ${stats.ambiguous} ambiguous`,
      ];
      if (stats.firstFlow !== undefined)
        lines.push(`process (${role}): data from ${isoTime(stats.firstFlow)} to ${isoTime(stats.lastFlow!)}`);
      if (alertSummary) {
        const a = alertSummary;
        lines.push(
          `process (${role}): alerts: ${a.raised} raised, ${a.repeated} repeated, ${a.resolved} resolved, ${a.firing} firing; ` +
            `${a.sent} sent, ${a.failed} failed, ${a.pending} pending`,
        );
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return stats.deadLetters > 0 || issues.some((i) => i.severity === 'error')
      ? EXIT_INPUT_PROBLEMS
      : EXIT_OK;
  },
};

import { createServer, type Server } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { AuditError } from '../lib/errors.js';

/**
 * Prometheus metrics (`--metrics-listen ADDR`, docs/metrics.md). The stages keep their own counters
 * (stats objects); this module reads them when Prometheus scrapes, so the hot paths pay nothing.
 * Names follow Prometheus conventions (netpol_audit_..._total, _seconds, _bytes); labels are
 * bounded: classifications, reasons, states, configured receiver names, topic partitions. No
 * address or pod name is ever a label.
 */

/** A counter whose value is read from a stats object at scrape time (monotonic by construction). */
function counterFrom(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: () => { labels?: Record<string, string>; value: number }[],
): void {
  const last = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const { labels = {}, value } of read()) {
        const key = JSON.stringify(labels);
        const delta = value - (last.get(key) ?? 0);
        if (delta > 0) this.inc(labels, delta);
        else if (!last.has(key)) this.inc(labels, 0);
        last.set(key, Math.max(value, last.get(key) ?? 0));
      }
    },
  });
}

function gaugeFrom(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: () => { labels?: Record<string, string>; value: number }[],
): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels = {}, value } of read()) this.set(labels, value);
    },
  });
}

export interface ProcessorCounts {
  allowed: number;
  deniedButObserved: number;
  deniedAttempts: number;
  ambiguous: number;
}

export class Metrics {
  readonly registry = new Registry();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'netpol_audit_' });
    // prom-client names three gauges *_total, which Prometheus reserves for counters (promtool check
    // metrics rejects them); the handle counts are not worth a convention break.
    for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total'])
      this.registry.removeSingleMetric(`netpol_audit_nodejs_${name}`);
  }

  /** Flows judged, by classification (audit, process roles all and record). */
  judged(stats: ProcessorCounts): this {
    counterFrom(
      this.registry,
      'netpol_audit_flows_judged_total',
      'Flows judged against the policies in force, by classification.',
      ['classification'],
      () => [
        { labels: { classification: 'allowed' }, value: stats.allowed },
        { labels: { classification: 'denied-but-observed' }, value: stats.deniedButObserved },
        { labels: { classification: 'denied-attempt' }, value: stats.deniedAttempts },
        { labels: { classification: 'ambiguous' }, value: stats.ambiguous },
      ],
    );
    return this;
  }

  /** The Kafka processor: messages, redeliveries, duplicates, dead letters, published verdicts. */
  pipeline(stats: {
    consumed: number;
    redelivered: number;
    duplicates: number;
    deadLetters: number;
    deadLetterCodes: Record<string, number>;
    recorded: number;
    violationsPublished: number;
    lag: Record<number, number>;
    batches: number;
    seconds: Record<string, number>;
  }): this {
    const r = this.registry;
    counterFrom(r, 'netpol_audit_messages_consumed_total', 'Kafka messages consumed.', [], () => [
      { value: stats.consumed },
    ]);
    counterFrom(
      r,
      'netpol_audit_messages_redelivered_total',
      'Messages already in the store (below its position).',
      [],
      () => [{ value: stats.redelivered }],
    );
    counterFrom(
      r,
      'netpol_audit_flows_duplicate_total',
      'Flows dropped because the store already had them.',
      [],
      () => [{ value: stats.duplicates }],
    );
    counterFrom(
      r,
      'netpol_audit_dead_letters_total',
      'Messages sent to the dead-letter topic, by reason code.',
      ['code'],
      () => Object.entries(stats.deadLetterCodes).map(([code, value]) => ({ labels: { code }, value })),
    );
    counterFrom(r, 'netpol_audit_flows_recorded_total', 'Flows written to the store.', [], () => [
      { value: stats.recorded },
    ]);
    counterFrom(
      r,
      'netpol_audit_violations_published_total',
      'Violations published to the violations topic.',
      [],
      () => [{ value: stats.violationsPublished }],
    );
    counterFrom(r, 'netpol_audit_processor_batches_total', 'Kafka batches handled.', [], () => [
      { value: stats.batches },
    ]);
    counterFrom(
      r,
      'netpol_audit_processor_stage_seconds_total',
      'Seconds spent per stage: judge (decode and judge), publish (until the broker took the side outputs), commit (store transactions).',
      ['stage'],
      () => Object.entries(stats.seconds).map(([stage, value]) => ({ labels: { stage }, value })),
    );
    return this;
  }

  /** Alerts: firing now, notifications by receiver and outcome, the outbox by state. */
  alerts(source: {
    firing: () => number;
    outbox: () => Record<string, number>;
    deliveries: () => { receiver: string; outcome: string; count: number }[];
  }): this {
    const r = this.registry;
    gaugeFrom(r, 'netpol_audit_alerts_firing', 'Alerts firing now.', [], () => [{ value: source.firing() }]);
    gaugeFrom(
      r,
      'netpol_audit_alert_outbox_rows',
      'Alert notifications in the outbox, by state.',
      ['state'],
      () => Object.entries(source.outbox()).map(([state, value]) => ({ labels: { state }, value })),
    );
    counterFrom(
      r,
      'netpol_audit_alert_deliveries_total',
      'Alert delivery attempts, by receiver and outcome (sent, retry, failed).',
      ['receiver', 'outcome'],
      () =>
        source
          .deliveries()
          .map((d) => ({ labels: { receiver: d.receiver, outcome: d.outcome }, value: d.count })),
    );
    return this;
  }

  /** The collectors: packets read, placed in flows, skipped by reason; flows exported. */
  collector(summary: {
    packets: number;
    flowPackets: number;
    notIp: number;
    unsupportedLinktype: number;
    truncated: number;
    malformed: number;
    implausibleTime: number;
    flows: number;
  }): this {
    const r = this.registry;
    counterFrom(r, 'netpol_audit_packets_total', 'Packets read by the collector.', [], () => [
      { value: summary.packets },
    ]);
    counterFrom(r, 'netpol_audit_packets_in_flows_total', 'Packets counted in flows.', [], () => [
      { value: summary.flowPackets },
    ]);
    counterFrom(
      r,
      'netpol_audit_packets_skipped_total',
      'Packets read that are in no flow, by reason.',
      ['reason'],
      () => [
        { labels: { reason: 'not-ip' }, value: summary.notIp },
        { labels: { reason: 'unsupported-linktype' }, value: summary.unsupportedLinktype },
        { labels: { reason: 'malformed' }, value: summary.malformed },
        { labels: { reason: 'implausible-time' }, value: summary.implausibleTime },
      ],
    );
    counterFrom(r, 'netpol_audit_flows_exported_total', 'Flows exported by the collector.', [], () => [
      { value: summary.flows },
    ]);
    return this;
  }

  /** A collector's Kafka sink: sent, spooled while the broker was away, dropped (spool full), spool size. */
  kafkaSink(
    read: () => {
      sent: number;
      spooled: number;
      resent: number;
      dropped: number;
      sendFailures: number;
      spoolBytes: number;
    },
  ): this {
    const stats = {
      get sent() {
        return read().sent;
      },
      get spooled() {
        return read().spooled;
      },
      get resent() {
        return read().resent;
      },
      get dropped() {
        return read().dropped;
      },
      get sendFailures() {
        return read().sendFailures;
      },
      get spoolBytes() {
        return read().spoolBytes;
      },
    };
    const r = this.registry;
    counterFrom(
      r,
      'netpol_audit_records_sent_total',
      'Flow records the broker acknowledged, directly or from the spool.',
      ['path'],
      () => [
        { labels: { path: 'direct' }, value: stats.sent },
        { labels: { path: 'spool' }, value: stats.resent },
      ],
    );
    counterFrom(
      r,
      'netpol_audit_records_spooled_total',
      'Flow records put in the disk spool while the broker was away.',
      [],
      () => [{ value: stats.spooled }],
    );
    counterFrom(
      r,
      'netpol_audit_records_dropped_total',
      'Flow records refused because the spool was full (lost, and reported).',
      [],
      () => [{ value: stats.dropped }],
    );
    counterFrom(r, 'netpol_audit_send_failures_total', 'Produce attempts that failed.', [], () => [
      { value: stats.sendFailures },
    ]);
    gaugeFrom(r, 'netpol_audit_spool_bytes', 'Bytes waiting in the disk spool.', [], () => [
      { value: stats.spoolBytes },
    ]);
    return this;
  }

  /**
   * `collect live`: tcpdump's own counts, as it last reported them (every few seconds while it runs):
   * packets the kernel dropped never reached the collector, so no flow holds them.
   */
  tcpdump(counts: { receivedByFilter?: number; droppedByKernel?: number }): this {
    const r = this.registry;
    counterFrom(
      r,
      'netpol_audit_tcpdump_packets_received_total',
      'Packets tcpdump received by its filter, as it last reported.',
      [],
      () => [{ value: counts.receivedByFilter ?? 0 }],
    );
    counterFrom(
      r,
      'netpol_audit_tcpdump_packets_dropped_by_kernel_total',
      'Packets the kernel dropped before tcpdump read them (its buffer was full), as tcpdump last reported.',
      [],
      () => [{ value: counts.droppedByKernel ?? 0 }],
    );
    return this;
  }

  /**
   * `collect conntrack`: lines read, malformed ones, flow records exported, implausible times; and,
   * live, the evidence the kernel's event buffer lost (ENOBUFS) and the dumps that caught up.
   */
  conntrack(summary: {
    lines: number;
    malformed: number;
    records: number;
    implausibleTime: number;
    eventLosses: number;
    resyncs: number;
    gone: number;
  }): this {
    const r = this.registry;
    counterFrom(r, 'netpol_audit_conntrack_lines_total', 'conntrack lines read.', [], () => [
      { value: summary.lines },
    ]);
    counterFrom(
      r,
      'netpol_audit_conntrack_lines_skipped_total',
      'conntrack lines in no flow, by reason.',
      ['reason'],
      () => [
        { labels: { reason: 'malformed' }, value: summary.malformed },
        { labels: { reason: 'implausible-time' }, value: summary.implausibleTime },
      ],
    );
    counterFrom(r, 'netpol_audit_flow_records_total', 'Flow records exported by the collector.', [], () => [
      { value: summary.records },
    ]);
    // A loss is evidence the audit does not have: with `--events conntrack` a short connection whose
    // NEW and DESTROY both fell in the gap is in no record at all (docs/conntrack.md, "Lost events").
    counterFrom(
      r,
      'netpol_audit_conntrack_event_losses_total',
      'Times conntrack reported lost events (ENOBUFS: the kernel event buffer overran).',
      [],
      () => [{ value: summary.eventLosses }],
    );
    counterFrom(
      r,
      'netpol_audit_conntrack_resyncs_total',
      'Conntrack table dumps taken to catch up after lost events.',
      [],
      () => [{ value: summary.resyncs }],
    );
    counterFrom(
      r,
      'netpol_audit_conntrack_flows_gone_total',
      'Flows a catch-up dump found ended whose DESTROY was lost (end time approximate).',
      [],
      () => [{ value: summary.gone }],
    );
    return this;
  }

  /** The live inventory: age of the last event, relists, errors, by kind. */
  inventory(
    health: () => { kind: string; relists: number; errors: number; lastEventAt?: number }[],
    now = Date.now,
  ): this {
    const r = this.registry;
    gaugeFrom(
      r,
      'netpol_audit_inventory_last_event_age_seconds',
      'Seconds since the API server last sent an event or list, by kind.',
      ['kind'],
      () =>
        health()
          .filter((h) => h.lastEventAt !== undefined)
          .map((h) => ({ labels: { kind: h.kind }, value: (now() - h.lastEventAt!) / 1000 })),
    );
    counterFrom(
      r,
      'netpol_audit_inventory_relists_total',
      'Lists after the first one (410 Gone, a CRD back), by kind.',
      ['kind'],
      () => health().map((h) => ({ labels: { kind: h.kind }, value: h.relists })),
    );
    counterFrom(
      r,
      'netpol_audit_inventory_errors_total',
      'Failed requests and broken watches, by kind.',
      ['kind'],
      () => health().map((h) => ({ labels: { kind: h.kind }, value: h.errors })),
    );
    return this;
  }
}

/** Serves `GET /metrics` on `listen` (`host:port` or `:port`). */
export async function serveMetrics(
  listen: string,
  metrics: Metrics,
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m)
    throw new AuditError(
      'METRICS_LISTEN_FAILED',
      `--metrics-listen must be HOST:PORT or :PORT, not '${listen}'`,
    );
  const host = m[1] === '' ? '0.0.0.0' : m[1]!.replace(/^\[|\]$/g, '');
  const server = createServer((req, res) => {
    if (req.url !== '/metrics' && req.url !== '/metrics/') {
      res.writeHead(404).end('see /metrics\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new AuditError(
          'METRICS_LISTEN_FAILED',
          `cannot listen on ${listen}: ${(err as NodeJS.ErrnoException).code ?? err.message}`,
        ),
      ),
    );
    server.listen(Number(m[2]), host, resolve);
  });
  const port = (server.address() as { port: number }).port;
  return {
    server,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/metrics`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

import type { ConntrackSummary } from '../../collectors/conntrack/index.js';
import { emptyConntrackSummary } from '../../collectors/conntrack/index.js';
import {
  CONNTRACK_EVENT_SOURCES,
  type ConntrackEventSource,
  DEFAULT_CONNTRACK_EVENT_SOURCE,
} from '../../collectors/conntrack/reliable.js';
import { collectConntrackLive, collectConntrackLog } from '../../collectors/conntrack/run.js';
import { formatIssue } from '../../lib/errors.js';
import { parse, positiveInteger, positiveNumber, secondsAsMs } from '../args.js';
import { type Command, EXIT_INPUT_PROBLEMS, EXIT_OK, UsageError } from '../command.js';
import { METRICS_OPTION, METRICS_USAGE, startMetrics } from '../metrics-option.js';
import { jsonlOutput, KAFKA_SINK_OPTIONS, KAFKA_SINK_USAGE, openFlowSink } from '../sink-options.js';

const usage = `usage: netpol-audit collect conntrack [options]

Turns the kernel's connection tracking into FlowRecords (JSONL). Without --input it runs
'conntrack -L -o extended,id' (flows already open) and listens to the new, updated and destroyed
connections until SIGINT/SIGTERM, then flushes the flows still open.

options:
  -i, --input FILE         read a saved 'conntrack -E -o timestamp,extended,id' log (or a
                           'conntrack -L -o extended,id' dump) instead; '-' is standard input
      --netns NAME         run conntrack in network namespace NAME ('ip netns exec NAME conntrack ...')
      --no-dump            live: do not list the flows open before the start
      --events SOURCE      live: where events come from (default reliable):
                             reliable   netpol-audit's listener (python3, libnetfilter_conntrack)
                                        asks the kernel for reliable delivery: a DESTROY that did
                                        not fit is sent again, so no connection ends unseen
                             conntrack  'conntrack -E -o timestamp,extended,id', which loses
                                        events under load (ENOBUFS)
      --event-buffer BYTES live: the netlink receive buffer for events (default 8388608, as
                           conntrack's -b)
      --state FILE         live: remember the flows reported in part in FILE (written every second and
                           at the end), so a restarted collector goes on with them instead of
                           reporting them again as new flows; keep FILE where a restart finds it
      --save-events FILE   live: append every line conntrack printed (events and table listings) to
                           FILE, as read: the evidence behind the records, to keep or to replay
                           with --input
      --node NAME          observer.node of every record
  -o, --output FILE        write the records to FILE instead of standard output
      --time T             with --input: the time of lines without a timestamp (dump lines), as
                           epoch milliseconds or an ISO date (default: the file's modification time)
      --active-timeout S   a record every S seconds for flows that stay open (default 300)
      --max-flows N        flows held at once; beyond it the least recently updated is exported
                           (default 1000000)
${KAFKA_SINK_USAGE}
${METRICS_USAGE}

Turn on accounting for packet and byte counts: sysctl -w net.netfilter.nf_conntrack_acct=1.
A summary goes to standard error. Exit status: 0 ok, 1 malformed lines were skipped or records
were dropped because the Kafka spool was full, 2 usage
error, 3 conntrack could not run.`;

function parseTime(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n))
    throw new UsageError(`--time must be epoch milliseconds or an ISO date, got '${v}'`);
  return n;
}

function conntrackSummaryLines(s: ConntrackSummary, reliable: boolean): string[] {
  return [
    `collect conntrack: ${s.lines} lines: ${s.dumpEntries} dump entries, ${s.events.NEW} NEW, ${s.events.UPDATE} UPDATE, ` +
      `${s.events.DESTROY} DESTROY, ${s.malformed} malformed, ${s.ignored} ignored`,
    `collect conntrack: ${s.flows} flows in ${s.records} records (${s.recordsWithoutCounters} without counters); ` +
      `${s.issues} issue(s), ${s.errors} error(s)`,
    ...(s.eventLosses > 0
      ? [
          reliable
            ? `collect conntrack: conntrack lost events ${s.eventLosses} time(s) (ENOBUFS; NEW and UPDATE only: the kernel ` +
              `sends a DESTROY again until it is read, so no flow was lost); ${s.resyncs} table dump(s) to catch up`
            : `collect conntrack: conntrack lost events ${s.eventLosses} time(s) (ENOBUFS); ${s.resyncs} table dump(s) to catch up ` +
              `found ${s.gone} flow(s) gone whose end was lost (written as 'conntrack-gone', counters of their last event); ` +
              `a connection whose NEW and DESTROY were both lost is not in the output (--events reliable prevents it)`,
        ]
      : []),
    ...(s.repeatedDestroys > 0
      ? [
          `collect conntrack: ${s.repeatedDestroys} DESTROY event(s) the kernel sent again for a flow already ended were ignored`,
        ]
      : []),
    ...(s.listedAfterEnd > 0
      ? [
          `collect conntrack: ${s.listedAfterEnd} table line(s) listed connections whose DESTROY had been read already: ignored`,
        ]
      : []),
  ];
}

export const collectConntrackCommand: Command = {
  path: ['collect', 'conntrack'],
  summary: 'turn conntrack events (live or a saved log) into FlowRecords (JSONL)',
  usage,
  async run(argv) {
    const { values } = parse(argv, {
      input: { type: 'string', short: 'i' },
      netns: { type: 'string' },
      'no-dump': { type: 'boolean' },
      events: { type: 'string' },
      'event-buffer': { type: 'string' },
      state: { type: 'string' },
      'save-events': { type: 'string' },
      node: { type: 'string' },
      output: { type: 'string', short: 'o' },
      time: { type: 'string' },
      'active-timeout': { type: 'string' },
      'max-flows': { type: 'string' },
      ...KAFKA_SINK_OPTIONS,
      ...METRICS_OPTION,
    });
    const active = positiveNumber('active-timeout', values['active-timeout']);
    const maxFlows = positiveInteger('max-flows', values['max-flows']);
    const eventBuffer = positiveInteger('event-buffer', values['event-buffer']);
    if (eventBuffer !== undefined && values.input !== undefined)
      throw new UsageError('--event-buffer applies to a live collection, not to --input');
    const timeMs = parseTime(values.time);
    if (values.input !== undefined && values.netns !== undefined) {
      throw new UsageError('--netns applies to a live collection, not to --input');
    }
    if (values.input === undefined && timeMs !== undefined)
      throw new UsageError('--time applies to --input only');
    if (values.input !== undefined && values.state !== undefined)
      throw new UsageError('--state applies to a live collection, not to --input');
    if (values.input !== undefined && values['save-events'] !== undefined)
      throw new UsageError('--save-events applies to a live collection, not to --input');
    const eventSource = values.events;
    if (eventSource !== undefined) {
      if (values.input !== undefined)
        throw new UsageError('--events applies to a live collection, not to --input');
      if (!(CONNTRACK_EVENT_SOURCES as readonly string[]).includes(eventSource))
        throw new UsageError(
          `--events must be one of ${CONNTRACK_EVENT_SOURCES.join(', ')}, got '${eventSource}'`,
        );
    }

    const opened = openFlowSink('collect conntrack', values, () =>
      jsonlOutput('collect conntrack', values.output, values.input === undefined ? [] : [values.input]),
    );
    const sink = opened.sink;
    const issues: string[] = [];
    const counts = emptyConntrackSummary();
    const stopMetrics = await startMetrics('collect conntrack', values['metrics-listen'], (m) => {
      m.conntrack(counts);
      if (opened.kafkaStats) m.kafkaSink(opened.kafkaStats);
    });
    const common = {
      summary: counts,
      node: values.node,
      activeTimeoutMs: secondsAsMs(active),
      maxFlows,
      onIssue: (i: Parameters<typeof formatIssue>[0]) => {
        issues.push(formatIssue(i));
      },
    };

    let summary: ConntrackSummary;
    let toolMessages: string[] = [];
    // A fatal error must not leave the metrics server (or the Kafka client) holding the process
    // open: in a pod, a collector that cannot run has to exit and be restarted, not hang.
    try {
      if (values.input !== undefined) {
        summary = await collectConntrackLog(values.input, sink, { ...common, timeMs });
      } else {
        const ac = new AbortController();
        const onSignal = () => ac.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        try {
          const live = await collectConntrackLive(sink, {
            ...common,
            netns: values.netns,
            dump: values['no-dump'] !== true,
            eventSource: eventSource as ConntrackEventSource | undefined,
            bufferBytes: eventBuffer,
            stateFile: values.state,
            saveEventsFile: values['save-events'],
            signal: ac.signal,
            onReady: () => process.stderr.write('collect conntrack: listening\n'),
          });
          summary = live;
          toolMessages = live.toolMessages;
          if (values.state !== undefined)
            toolMessages.push(
              `state ${values.state}: ${live.resumed} flow(s) taken up from the previous run, ${live.resumeGone} of its open flow(s) had ended meanwhile`,
            );
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      }
    } catch (err) {
      await sink.close().catch(() => undefined);
      throw err;
    } finally {
      await stopMetrics();
    }
    await sink.flush();
    await sink.close();
    process.stderr.write(
      `${[...conntrackSummaryLines(summary, values.input === undefined && (eventSource ?? DEFAULT_CONNTRACK_EVENT_SOURCE) === 'reliable'), ...toolMessages.map((m) => `collect conntrack: ${m}`), ...opened.report(), ...issues].join('\n')}\n`,
    );
    return summary.errors > 0 || opened.lost() ? EXIT_INPUT_PROBLEMS : EXIT_OK;
  },
};

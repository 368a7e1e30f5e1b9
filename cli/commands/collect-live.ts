import { emptySummary } from '../../collectors/flow/collect.js';
import { collectLive, type TcpdumpCounts } from '../../collectors/live/index.js';
import { formatIssue } from '../../lib/errors.js';
import { parse, positiveInteger, positiveNumber, secondsAsMs } from '../args.js';
import { type Command, EXIT_INPUT_PROBLEMS, EXIT_OK, UsageError } from '../command.js';
import { METRICS_OPTION, METRICS_USAGE, startMetrics } from '../metrics-option.js';
import { jsonlOutput, KAFKA_SINK_OPTIONS, KAFKA_SINK_USAGE, openFlowSink } from '../sink-options.js';

const usage = `usage: netpol-audit collect live --iface IF [options] [-- BPF FILTER WORDS]

Captures on interface IF with tcpdump ('tcpdump -i IF -w - -U -n') and writes one FlowRecord per
line (JSONL) as flows end, until SIGINT/SIGTERM; then tcpdump's last packets are read and every
open flow is written ('end-of-input').

options:
  -i, --iface IF           the interface to capture on (required)
  -f, --filter BPF         a capture filter, e.g. 'tcp or udp' (words after '--' are added to it)
      --netns NAME         capture in network namespace NAME ('ip netns exec NAME tcpdump ...')
  -s, --snaplen N          bytes captured per packet (tcpdump -s; 128 is enough for the headers)
      --node NAME          observer.node of every record
  -o, --output FILE        write the records to FILE instead of standard output
      --idle-timeout S     export a flow after S seconds without packets
      --active-timeout S   export long flows every S seconds as numbered slices (default 300)
      --max-flows N        flows held at once (default 1000000)
${KAFKA_SINK_USAGE}
${METRICS_USAGE}

A summary (with tcpdump's packets captured / dropped by kernel) goes to standard error. While it
runs, tcpdump is asked for its counts every 10 s (SIGUSR1); --metrics-listen serves them.
Exit status: 0 ok, 1 input problems, packets dropped by the kernel or records dropped because
the Kafka spool was full, 2 usage error, 3 tcpdump
could not capture (no such interface, no permission).`;

export const collectLiveCommand: Command = {
  path: ['collect', 'live'],
  summary: 'capture live with tcpdump and write FlowRecords (JSONL)',
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      {
        iface: { type: 'string', short: 'i' },
        filter: { type: 'string', short: 'f' },
        netns: { type: 'string' },
        snaplen: { type: 'string', short: 's' },
        node: { type: 'string' },
        output: { type: 'string', short: 'o' },
        'idle-timeout': { type: 'string' },
        'active-timeout': { type: 'string' },
        'max-flows': { type: 'string' },
        ...KAFKA_SINK_OPTIONS,
        ...METRICS_OPTION,
      },
      true,
    );
    if (values.iface === undefined || values.iface === '') throw new UsageError('--iface is required');
    const snaplen = positiveInteger('snaplen', values.snaplen);
    const idle = positiveNumber('idle-timeout', values['idle-timeout']);
    const active = positiveNumber('active-timeout', values['active-timeout']);
    const maxFlows = positiveInteger('max-flows', values['max-flows']);
    const filter = [...(values.filter ? values.filter.split(/\s+/) : []), ...positionals].filter(
      (w) => w !== '',
    );

    const opened = openFlowSink('collect live', values, () => jsonlOutput('collect live', values.output));
    const sink = opened.sink;
    const issues: string[] = [];
    const counts = emptySummary();
    const tcpdumpCounts: TcpdumpCounts = {};
    const stopMetrics = await startMetrics('collect live', values['metrics-listen'], (m) => {
      m.collector(counts);
      m.tcpdump(tcpdumpCounts);
      if (opened.kafkaStats) m.kafkaSink(opened.kafkaStats);
    });
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let summary: Awaited<ReturnType<typeof collectLive>>;
    try {
      summary = await collectLive(sink, {
        iface: values.iface,
        filter,
        netns: values.netns,
        snaplen,
        node: values.node,
        idleTimeoutMs: secondsAsMs(idle),
        activeTimeoutMs: secondsAsMs(active),
        maxFlows,
        summary: counts,
        counts: tcpdumpCounts,
        signal: ac.signal,
        onReady: () => process.stderr.write(`collect live: listening on ${values.iface}\n`),
        onIssue: (i) => {
          issues.push(formatIssue(i));
        },
      });
    } catch (err) {
      // As collect conntrack: a fatal error exits, whatever the Kafka client still holds open.
      await sink.close().catch(() => undefined);
      throw err;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await stopMetrics();
    }
    await sink.flush();
    await sink.close();
    const t = summary.tcpdump;
    const lines = [
      `collect live: ${summary.packets} packets read, ${summary.flowPackets} in flows; ` +
        `${summary.flows} flows in ${summary.records} records; ${summary.issues} issue(s), ${summary.errors} error(s)`,
      `collect live: tcpdump: ${t.captured ?? '?'} packets captured, ${t.receivedByFilter ?? '?'} received by filter, ` +
        `${t.droppedByKernel ?? '?'} dropped by kernel`,
      ...opened.report(),
      ...issues,
    ];
    process.stderr.write(`${lines.join('\n')}\n`);
    return summary.errors > 0 || (t.droppedByKernel ?? 0) > 0 || opened.lost()
      ? EXIT_INPUT_PROBLEMS
      : EXIT_OK;
  },
};

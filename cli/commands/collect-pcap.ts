import { collectCaptureFiles, emptySummary } from '../../collectors/flow/collect.js';
import { formatIssue } from '../../lib/errors.js';
import { stopOnSignals } from '../../lib/signals.js';
import { parse, positiveInteger, positiveNumber, secondsAsMs } from '../args.js';
import { type Command, EXIT_INPUT_PROBLEMS, EXIT_OK, UsageError } from '../command.js';
import { METRICS_OPTION, METRICS_USAGE, startMetrics } from '../metrics-option.js';
import { jsonlOutput, KAFKA_SINK_OPTIONS, KAFKA_SINK_USAGE, openFlowSink } from '../sink-options.js';

const usage = `usage: netpol-audit collect pcap FILE... [options]

Reads pcap/pcapng captures (FILE '-' is standard input) and writes one FlowRecord per line (JSONL).

options:
  -o, --output FILE        write the records to FILE instead of standard output
      --node NAME          observer.node of every record (the node the capture was taken on)
      --idle-timeout S     export a flow after S seconds without packets
                           (default per protocol: TCP 300, unanswered TCP 60, UDP 60, ICMP 30, other 60)
      --active-timeout S   export long flows every S seconds as numbered slices (default 300)
      --max-flows N        flows held at once; beyond it the least recently seen is exported (default 1000000)
      --bytes ip|wire      count IP packet bytes (default) or whole frames as captured on the wire
${KAFKA_SINK_USAGE}
${METRICS_USAGE}

SIGINT or SIGTERM stops reading: the flows read so far are written (a second signal exits at once).
A summary goes to standard error. Exit status: 0 ok, 1 input problems were found (records were
still written for everything readable, or records were dropped because the Kafka spool was
full), 2 usage error.`;

export const collectPcapCommand: Command = {
  path: ['collect', 'pcap'],
  summary: 'turn pcap/pcapng captures into FlowRecords (JSONL)',
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      {
        output: { type: 'string', short: 'o' },
        node: { type: 'string' },
        'idle-timeout': { type: 'string' },
        'active-timeout': { type: 'string' },
        'max-flows': { type: 'string' },
        bytes: { type: 'string' },
        ...KAFKA_SINK_OPTIONS,
        ...METRICS_OPTION,
      },
      true,
    );
    if (positionals.length === 0) throw new UsageError('no capture file given');
    const idle = positiveNumber('idle-timeout', values['idle-timeout']);
    const active = positiveNumber('active-timeout', values['active-timeout']);
    const maxFlows = positiveInteger('max-flows', values['max-flows']);
    if (values.bytes !== undefined && values.bytes !== 'ip' && values.bytes !== 'wire') {
      throw new UsageError(`--bytes must be 'ip' or 'wire', got '${values.bytes}'`);
    }
    const opened = openFlowSink('collect pcap', values, () =>
      jsonlOutput('collect pcap', values.output, positionals),
    );
    const sink = opened.sink;
    const issues: string[] = [];
    // SIGINT/SIGTERM (the end of a piped live capture): stop reading, flush every flow, summarise.
    const stop = stopOnSignals();
    const counts = emptySummary();
    const stopMetrics = await startMetrics('collect pcap', values['metrics-listen'], (m) => {
      m.collector(counts);
      if (opened.kafkaStats) m.kafkaSink(opened.kafkaStats);
    });
    const summary = await collectCaptureFiles(positionals, sink, {
      summary: counts,
      signal: stop.signal,
      node: values.node,
      idleTimeoutMs: secondsAsMs(idle),
      activeTimeoutMs: secondsAsMs(active),
      maxFlows,
      bytes: values.bytes as 'ip' | 'wire' | undefined,
      onIssue: (i) => {
        issues.push(formatIssue(i));
      },
    });
    await sink.flush();
    await sink.close();
    stop.dispose();
    await stopMetrics();
    const skipped = summary.packets - summary.flowPackets;
    const truncatedInFlows = summary.flowPackets - summary.decoded;
    const lines = [
      `collect pcap: ${summary.inputs} input(s), ${summary.packets} packets, ${summary.flowPackets} in flows ` +
        `(${truncatedInFlows} of them truncated after the IP header), ${skipped} skipped ` +
        `(${summary.notIp} not IP, ${summary.unsupportedLinktype} unsupported link type, ` +
        `${summary.truncated - truncatedInFlows} truncated, ${summary.malformed} malformed)`,
      `collect pcap: ${summary.flows} flows in ${summary.records} records; ${summary.issues} issue(s), ${summary.errors} error(s)` +
        (summary.failedInputs > 0 ? `, ${summary.failedInputs} unreadable input(s)` : ''),
      ...opened.report(),
      ...issues,
    ];
    if (stop.by) lines.push(`collect pcap: stopped by ${stop.by}: every flow read until then was written`);
    process.stderr.write(`${lines.join('\n')}\n`);
    // Input problems: the reader found damage, or packets could not be placed in any flow.
    const lost = summary.malformed + summary.truncated - truncatedInFlows;
    return summary.errors > 0 || lost > 0 || opened.lost() ? EXIT_INPUT_PROBLEMS : EXIT_OK;
  },
};

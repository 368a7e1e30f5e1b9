import type { Writable } from 'node:stream';
import { AuditError, formatIssue, type InputIssue, issue } from '../../lib/errors.js';
import { readLines } from '../../lib/jsonl.js';
import { CLUSTER_OPTIONS, clusterOptionsFrom, openCluster } from '../../pipeline/cluster.js';
import { judgeFlow } from '../../processor/judge/index.js';
import { FLOW_RECORD_VERSION, validateFlowRecord } from '../../schema/flow-record.js';
import { parse } from '../args.js';
import { type Command, EXIT_INPUT_PROBLEMS, EXIT_OK } from '../command.js';

/** Stable codes of the error records `check` writes for input lines it cannot judge. */
const CHECK_ERROR = {
  /** The line is not JSON. */
  jsonSyntax: 'FLOW_JSON_SYNTAX',
  /** The record's `v` is not a FlowRecord version this build reads. */
  unsupportedVersion: 'FLOW_UNSUPPORTED_VERSION',
  /** JSON, but not a valid FlowRecord (missing field, bad address, end before start...). */
  invalidRecord: 'FLOW_INVALID_RECORD',
  /** The flow input cannot be read at all. */
  unreadable: 'FLOW_INPUT_UNREADABLE',
} as const;

const USAGE = `usage: netpol-audit check (--cluster SNAPSHOT [--cluster MORE...] | --kubeconfig FILE [--context C]) [--flows FILE|-] [options]

Judges each FlowRecord (JSON Lines) against the NetworkPolicies of a cluster snapshot and writes one
JSON line per flow: the flow, its ends named (pod, DNS name, kind) and the verdict. See docs/check.md.

  --cluster FILE             kubectl get ... -o yaml|json output; repeat to combine files
  --kubeconfig FILE          instead of a snapshot, follow the live cluster (list + watch); each flow is
                             judged against the cluster as it was at the flow's start
  --context NAME             kubeconfig context (default: the current one)
  --in-cluster               follow the live cluster with the pod's service account (docs/deploy.md)
  --history-hours H          live cluster history kept for late flows (default 6)
  --flows FILE|-             FlowRecords, one per line; standard input when absent or -
  --cluster-domain D         cluster DNS domain for names (default cluster.local)
  --ipblock-matches-pods B   true (default, upstream) or false (Cilium): ipBlock peers match pod IPs
  --host-network M           node (default): hostNetwork pods count as their node; pod: as pods

Malformed input lines produce {"error": {...}} records and a message on standard error; the run goes
on. Exit status: 0 clean, 1 input problems (flows, snapshot or policies), 2 usage, 3 fatal.`;

/** Writes snapshot/policy issues to standard error, one line each; returns whether any is an error. */
export function reportIssues(command: string, issues: InputIssue[]): boolean {
  for (const i of issues) process.stderr.write(`netpol-audit ${command}: ${formatIssue(i)}\n`);
  return issues.some((i) => i.severity === 'error');
}

function lineIssue(source: string, line: number, text: string): InputIssue | { value: unknown } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return issue(CHECK_ERROR.jsonSyntax, `not JSON: ${(err as Error).message}`, { source, line });
  }
  return { value };
}

/**
 * Output lines gathered per input chunk: one write per line cost a tenth of the run. Lines go out when
 * 64 KiB are pending or as soon as the event loop turns (the input has no more lines ready), so a
 * slow trickle of flows still gets its verdicts without delay. Respects back-pressure.
 */
class BatchedLines {
  private pending: string[] = [];
  private bytes = 0;
  private scheduled = false;
  private drained: Promise<void> | undefined;

  constructor(private readonly out: Writable) {}

  async write(line: string): Promise<void> {
    if (this.drained) await this.drained;
    this.pending.push(line);
    this.bytes += line.length + 1;
    if (this.bytes >= 65536) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  flush(): void {
    if (this.pending.length === 0) return;
    const text = `${this.pending.join('\n')}\n`;
    this.pending = [];
    this.bytes = 0;
    if (!this.out.write(text) && !this.drained) {
      this.drained = new Promise((resolve) =>
        this.out.once('drain', () => {
          this.drained = undefined;
          resolve();
        }),
      );
    }
  }

  async end(): Promise<void> {
    this.flush();
    if (this.drained) await this.drained;
  }
}

export const checkCommand: Command = {
  path: ['check'],
  summary: 'judge FlowRecords against the NetworkPolicies of a cluster snapshot',
  usage: USAGE,
  async run(argv) {
    const { values } = parse(argv, { ...CLUSTER_OPTIONS, flows: { type: 'string' } });
    let problems = false;
    const cluster = await openCluster(clusterOptionsFrom(values), (i) => {
      problems = reportIssues('check', [i]) || problems;
    });
    const view = cluster.view;
    const source = values.flows === undefined || values.flows === '-' ? '<stdin>' : values.flows;
    const out = new BatchedLines(process.stdout);
    const tally = { flows: 0, allowed: 0, denied: 0, ambiguous: 0, errors: 0 };
    try {
      for await (const { line, text } of readLines(values.flows)) {
        if (text.trim() === '') continue; // blank lines carry nothing; JSONL writers often end with one
        const parsed = lineIssue(source, line, text);
        let bad: InputIssue | undefined;
        if ('code' in parsed) bad = parsed;
        else {
          const v = validateFlowRecord(parsed.value);
          if (v.ok) {
            const { inventory, index } = view.at(v.value.start);
            const record = judgeFlow(v.value, inventory, index);
            tally.flows++;
            tally[record.verdict.result]++;
            await out.write(JSON.stringify(record));
            continue;
          }
          const unsupported =
            typeof parsed.value === 'object' &&
            parsed.value !== null &&
            'v' in parsed.value &&
            parsed.value.v !== FLOW_RECORD_VERSION;
          bad = issue(
            unsupported ? CHECK_ERROR.unsupportedVersion : CHECK_ERROR.invalidRecord,
            v.errors.join('; '),
            { source, line },
          );
        }
        tally.errors++;
        problems = true;
        process.stderr.write(`netpol-audit check: ${formatIssue(bad)}\n`);
        await out.write(JSON.stringify({ error: { code: bad.code, line, source, message: bad.message } }));
      }
      await out.end();
    } catch (err) {
      await out.end();
      await cluster.close();
      if (err instanceof AuditError) throw err;
      throw new AuditError(CHECK_ERROR.unreadable, `cannot read flows: ${(err as Error).message}`, {
        source,
      });
    }
    process.stderr.write(
      `netpol-audit check: ${tally.flows} flows judged (${tally.allowed} allowed, ${tally.denied} denied, ` +
        `${tally.ambiguous} ambiguous), ${tally.errors} bad input lines; ${cluster.describe()}\n`,
    );
    await cluster.close();
    return problems ? EXIT_INPUT_PROBLEMS : EXIT_OK;
  },
};

import { writeFileSync } from 'node:fs';
import { loadAlertsConfig } from '../../alerts/config.js';
import { AuditError } from '../../lib/errors.js';
import { isoTime, parseSince } from '../../lib/format.js';
import { AuditStore } from '../../processor/store/index.js';
import { writeEvidencePack } from '../../report/evidence-pack.js';
import {
  buildReport,
  csvSections,
  evidenceFor,
  isoWeekStart,
  noDataMessage,
  parseFormat,
  REPORT_FORMATS,
  REPORT_RENDERERS,
  renderCsv,
} from '../../report/index.js';
import { notifyReport } from '../../report/notify.js';
import { htmlToPdf } from '../../report/pdf.js';
import { renderHtml } from '../../report/render/html.js';
import { asUsage, parse } from '../args.js';
import { type Command, EXIT_INPUT_PROBLEMS, EXIT_NO_DATA, EXIT_OK, UsageError } from '../command.js';

const DAY = 86_400_000;

const USAGE = `usage: netpol-audit report --db FILE [--week YYYY-Www | --since 7d|DATE [--until DATE]]
       [--format markdown|text|json|csv|html|pdf] [--section NAME] [--out FILE]
       [--evidence DIR [--pdf] [--sign-key KEY.pem]] [--notify ALERTS.yaml] [--fail-on-violation]

The compliance report for a period (default: the 7 days up to the newest data in the store; --week
takes an ISO week, UTC), compared with the previous period of the same length: whether the
NetworkPolicies held (violations: flows they deny that were observed to flow) and why, in one
sentence; key figures; flows per day; violations and denied attempts with their evidence; isolation
coverage; unused rules and policy changes; and what the evidence does not cover (completeness).
A period with no flow stored, or written to by an audit run that did not finish, is reported as
"no data: cannot assess", never as compliant; one with flows whose verdict depends on what was not
observed (a direction the capture did not see) as "cannot fully assess".

--format html writes one self-contained page (no script, no network); pdf prints it through a
headless Chromium (needs --out, or standard output redirected); csv writes one section (--section,
default findings). --evidence DIR writes the evidence pack for the period under DIR (one directory
per period: report in every format, the policies in force as YAML, a manifest of SHA-256 hashes
chained to the previous pack, signed with an Ed25519 key if --sign-key); check it with
netpol-audit verify-evidence. --notify sends the summary to the alert receivers of ALERTS.yaml
(docs/alerts.md; routes may match kind report); a receiver that does not take it makes the exit
status 1. With --fail-on-violation the exit status is 1 when the period has a
violation and 4 when it cannot be (fully) assessed, for CI jobs and alerting.`;

export const reportCommand: Command = {
  path: ['report'],
  summary: 'compliance report (Markdown, HTML, PDF, JSON, CSV) and evidence packs from the store',
  usage: USAGE,
  async run(argv) {
    const { values } = parse(argv, {
      db: { type: 'string' },
      week: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      format: { type: 'string' },
      section: { type: 'string' },
      out: { type: 'string', short: 'o' },
      evidence: { type: 'string' },
      pdf: { type: 'boolean' },
      'sign-key': { type: 'string' },
      notify: { type: 'string' },
      'fail-on-violation': { type: 'boolean' },
    });
    if (!values.db) throw new UsageError('--db is required');
    const format = asUsage(() => parseFormat(values.format, [...REPORT_FORMATS, 'pdf'], 'markdown'));
    if (values.week && (values.since || values.until))
      throw new UsageError('--week excludes --since and --until');
    if (values.section && format !== 'csv') throw new UsageError('--section goes with --format csv');
    if ((values.pdf || values['sign-key']) && !values.evidence)
      throw new UsageError('--pdf and --sign-key go with --evidence DIR');
    if (format === 'pdf' && !values.out && process.stdout.isTTY)
      throw new UsageError('--format pdf writes binary: give --out FILE or redirect standard output');
    if (values.out && values.out === values.db)
      throw new UsageError('--out names the store: refusing to overwrite it');
    // A broken alerts file stops the job before anything is written (ALERTS_CONFIG_INVALID).
    const alerts = values.notify ? loadAlertsConfig(values.notify) : undefined;
    const store = AuditStore.open(values.db, { readonly: true });
    try {
      const newest = store.latestDataTime() ?? 0;
      let since: number;
      let until: number;
      let label: string;
      if (values.week) {
        since = asUsage(() => isoWeekStart(values.week!));
        until = since + 7 * DAY;
        label = values.week;
      } else {
        until = values.until ? asUsage(() => parseSince(values.until!, newest)) : newest;
        since = values.since ? asUsage(() => parseSince(values.since!, newest)) : until - 7 * DAY;
        label =
          values.since || values.until
            ? `${isoTime(since)} to ${isoTime(until)}`
            : store.latestDataTime() === undefined
              ? 'the last 7 days (the store holds no data)'
              : `the 7 days to ${isoTime(until)}`;
      }
      if (since >= until) throw new UsageError('the period is empty (--since must be before --until)');
      const report = buildReport(store, since, until, label);
      // Chromium prints the PDF once, for standard output and the pack alike.
      const pdf = format === 'pdf' || values.pdf ? await htmlToPdf(renderHtml(report)) : undefined;
      let output: string | Buffer;
      if (format === 'pdf') output = pdf!;
      else if (format === 'csv') {
        const section = values.section ?? 'findings';
        if (!csvSections(report).some((s) => s.name === section))
          throw new UsageError(
            `--section must be one of ${csvSections(report)
              .map((s) => s.name)
              .join(', ')}`,
          );
        output = renderCsv(report, section);
      } else output = REPORT_RENDERERS[format]!(report);
      if (values.out) writeOutput(values.out, output);
      else process.stdout.write(output);
      if (values.evidence) {
        const dir = writeEvidencePack(report, {
          root: values.evidence,
          storePath: values.db,
          policies: store.facts
            .policyHistory()
            .filter((p) => p.lastSeen >= since && p.firstSeen < until)
            .map((p) => ({
              kind: p.kind,
              policy: p.policy,
              hash: p.hash,
              spec: JSON.parse(p.spec) as unknown,
            })),
          runs: report.completeness.runs.map((r) => r.id),
          pdf: values.pdf ? pdf : undefined,
          signingKey: values['sign-key'],
        });
        process.stderr.write(`report: evidence pack written to ${dir}\n`);
      }
      let undelivered = 0;
      if (alerts)
        for (const n of await notifyReport(report, alerts)) {
          if (n.outcome !== 'sent') undelivered++;
          process.stderr.write(
            `report: summary to ${n.receiver}: ${n.outcome}${n.status ? ` (HTTP ${n.status})` : ''}${n.error && n.outcome !== 'sent' ? `: ${n.error}` : ''}\n`,
          );
        }
      if (report.assessment === 'no-data' || report.assessment === 'incomplete')
        process.stderr.write(`report: ${noDataMessage(evidenceFor(store, since, until), label)}\n`);
      if (report.assessment === 'unsettled')
        process.stderr.write(
          `report: cannot fully assess ${label}: ${report.unsettled.length} connection(s) have a verdict that depends on what was not observed\n`,
        );
      const status = !values['fail-on-violation']
        ? EXIT_OK
        : report.assessment === 'not-compliant'
          ? EXIT_INPUT_PROBLEMS
          : report.assessment === 'compliant'
            ? EXIT_OK
            : EXIT_NO_DATA;
      return status === EXIT_OK && undelivered > 0 ? EXIT_INPUT_PROBLEMS : status;
    } finally {
      store.close();
    }
  },
};

function writeOutput(path: string, data: string | Buffer): void {
  try {
    writeFileSync(path, data);
  } catch (err) {
    throw new AuditError('OUTPUT_WRITE_FAILED', (err as Error).message, { source: path });
  }
}

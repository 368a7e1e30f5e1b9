import { isoTime, parseSince } from '../../lib/format.js';
import { AuditStore } from '../../processor/store/index.js';
import {
  buildReport,
  evidenceFor,
  isoWeekStart,
  noDataMessage,
  parseFormat,
  REPORT_FORMATS,
  REPORT_RENDERERS,
} from '../../report/index.js';
import { asUsage, parse } from '../args.js';
import { type Command, EXIT_INPUT_PROBLEMS, EXIT_NO_DATA, EXIT_OK, UsageError } from '../command.js';

const DAY = 86_400_000;

const USAGE = `usage: netpol-audit report --db FILE [--week YYYY-Www | --since 7d|DATE [--until DATE]] [--format markdown|text|json|csv] [--fail-on-violation]

The compliance report for a period (default: the 7 days up to the newest data in the store; --week
takes an ISO week, UTC): traffic judged, whether the NetworkPolicies held (violations: flows they
deny that were observed to flow), denied attempts, rules unused in the period, and the policy
versions in force. A period with no flow stored, or written to by an audit run that did not finish,
is reported as "no data: cannot assess", never as compliant; one with flows whose verdict depends on
what was not observed (a direction the capture did not see) as "cannot fully assess". With
--fail-on-violation the exit status is 1 when the period has a violation and 4 when it cannot be
(fully) assessed, for CI jobs and alerting.`;

export const reportCommand: Command = {
  path: ['report'],
  summary: 'weekly compliance report (Markdown or JSON) from the store',
  usage: USAGE,
  async run(argv) {
    const { values } = parse(argv, {
      db: { type: 'string' },
      week: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      format: { type: 'string' },
      'fail-on-violation': { type: 'boolean' },
    });
    if (!values.db) throw new UsageError('--db is required');
    const format = asUsage(() => parseFormat(values.format, REPORT_FORMATS, 'markdown'));
    if (values.week && (values.since || values.until))
      throw new UsageError('--week excludes --since and --until');
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
      process.stdout.write(REPORT_RENDERERS[format]!(report));
      if (report.assessment === 'no-data' || report.assessment === 'incomplete')
        process.stderr.write(`report: ${noDataMessage(evidenceFor(store, since, until), label)}\n`);
      if (report.assessment === 'unsettled')
        process.stderr.write(
          `report: cannot fully assess ${label}: ${report.unsettled.length} connection(s) have a verdict that depends on what was not observed\n`,
        );
      if (!values['fail-on-violation']) return EXIT_OK;
      if (report.assessment === 'not-compliant') return EXIT_INPUT_PROBLEMS;
      return report.assessment === 'compliant' ? EXIT_OK : EXIT_NO_DATA;
    } finally {
      store.close();
    }
  },
};

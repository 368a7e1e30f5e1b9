import { isoTime, parseSince } from '../../lib/format.js';
import { type AggregateRow, AuditStore } from '../../processor/store/index.js';
import { type Column, evidenceFor, noDataMessage, parseFormat, renderTable } from '../../report/index.js';
import { asUsage, parse } from '../args.js';
import { type Command, EXIT_NO_DATA, UsageError } from '../command.js';

const USAGE = `usage: netpol-audit violations --db FILE [--since 7d|DATE] [--until DATE] [--attempts] [--limit N] [--format text|json|csv]

Lists violations: flows the NetworkPolicies deny that were observed to flow (established or
closed), deduplicated by window, source workload, destination, protocol and port. With --attempts,
lists denied attempts instead (denied flows that were only attempted or rejected: enforcement
worked). Relative times count back from the newest data in the store. When the period holds no
flow, or rests on audit runs that did not finish, an empty list would read as "none": the command
says "no data: cannot assess" on standard error and exits with 4.`;

const columns: Column<AggregateRow>[] = [
  { header: 'window', value: (r) => isoTime(r.windowStart) },
  { header: 'source', value: (r) => r.srcWorkload },
  { header: 'destination', value: (r) => r.dstWorkload },
  { header: 'proto', value: (r) => r.proto },
  { header: 'port', value: (r) => (r.port < 0 ? '' : r.port) },
  { header: 'flows', value: (r) => r.flows },
  { header: 'bytes', value: (r) => r.bytes },
  { header: 'first_seen', value: (r) => isoTime(r.firstSeen) },
  { header: 'last_seen', value: (r) => isoTime(r.lastSeen) },
];

export const violationsCommand: Command = {
  path: ['violations'],
  summary: 'list denied-but-observed flows (or denied attempts) from the store',
  usage: USAGE,
  async run(argv) {
    const { values } = parse(argv, {
      db: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      attempts: { type: 'boolean' },
      limit: { type: 'string' },
      format: { type: 'string' },
    });
    if (!values.db) throw new UsageError('--db is required');
    const format = asUsage(
      () => parseFormat(values.format, ['text', 'json', 'csv'], 'text') as 'text' | 'json' | 'csv',
    );
    const store = AuditStore.open(values.db, { readonly: true });
    try {
      const ref = store.latestDataTime() ?? 0;
      const range = {
        since: values.since ? asUsage(() => parseSince(values.since!, ref)) : undefined,
        until: values.until ? asUsage(() => parseSince(values.until!, ref)) : undefined,
      };
      const limit = values.limit ? Number(values.limit) : 1000;
      if (!Number.isInteger(limit) || limit <= 0) throw new UsageError('--limit must be a positive integer');
      const rows = values.attempts ? store.deniedAttempts(range, limit) : store.violations(range, limit);
      process.stdout.write(renderTable(rows, columns, format, (r) => r));
      // Rows found are evidence on their own; an empty answer is only one when the period had data.
      if (rows.length > 0) return 0;
      const evidence = evidenceFor(store, range.since ?? 0, range.until ?? Number.MAX_SAFE_INTEGER);
      if (evidence.status === 'ok') return 0;
      process.stderr.write(`violations: ${noDataMessage(evidence, 'the period')}\n`);
      return EXIT_NO_DATA;
    } finally {
      store.close();
    }
  },
};

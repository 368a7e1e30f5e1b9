import { type Column, isoTime, parseFormat, parseSince, render } from '../../lib/format.js';
import { type AggregateRow, AuditStore } from '../../processor/store/index.js';
import { asUsage, parse } from '../args.js';
import { type Command, UsageError } from '../command.js';

const USAGE = `usage: netpol-audit violations --db FILE [--since 7d|DATE] [--until DATE] [--attempts] [--limit N] [--format table|json|csv]

Lists violations: flows the NetworkPolicies deny that were observed to flow (established or
closed), deduplicated by window, source workload, destination, protocol and port. With --attempts,
lists denied attempts instead (denied flows that were only attempted or rejected: enforcement
worked). Relative times count back from the newest data in the store.`;

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
    const format = asUsage(() => parseFormat(values.format));
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
      process.stdout.write(render(rows, columns, format, (r) => r));
      return 0;
    } finally {
      store.close();
    }
  },
};

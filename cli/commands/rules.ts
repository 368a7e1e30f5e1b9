import { isoTime, parseSince } from '../../lib/format.js';
import { AuditStore, type RuleRow } from '../../processor/store/index.js';
import { type Column, evidenceFor, noDataMessage, parseFormat, renderTable } from '../../report/index.js';
import { asUsage, parse } from '../args.js';
import { type Command, EXIT_NO_DATA, UsageError } from '../command.js';

const USAGE = `usage: netpol-audit rules --db FILE [--unused] [--since 7d|DATE] [--format text|json|csv]

Lists every rule of every policy seen, with hits, bytes, first and last hit. With --unused, only
the rules in force since --since (default 7d) that no flow used since then. Relative times count
back from the newest data in the store. "Unused" needs traffic to be unused by: when the period holds
no flow, or rests on audit runs that did not finish, --unused lists nothing, says "no data: cannot
assess" on standard error and exits with 4.`;

const columns: Column<RuleRow>[] = [
  { header: 'policy', value: (r) => r.policy },
  { header: 'kind', value: (r) => r.kind },
  { header: 'direction', value: (r) => r.direction },
  { header: 'rule', value: (r) => r.rule },
  { header: 'hits', value: (r) => r.hits },
  { header: 'bytes', value: (r) => r.bytes },
  { header: 'first_hit', value: (r) => isoTime(r.firstHit) },
  { header: 'last_hit', value: (r) => isoTime(r.lastHit) },
  { header: 'summary', value: (r) => r.summary },
];

export const rulesCommand: Command = {
  path: ['rules'],
  summary: 'per-rule usage from the store; --unused lists rules nothing used',
  usage: USAGE,
  async run(argv) {
    const { values } = parse(argv, {
      db: { type: 'string' },
      unused: { type: 'boolean' },
      since: { type: 'string' },
      format: { type: 'string' },
    });
    if (!values.db) throw new UsageError('--db is required');
    if (values.since !== undefined && !values.unused)
      throw new UsageError('--since applies to --unused (rules not used since then)');
    const format = asUsage(
      () => parseFormat(values.format, ['text', 'json', 'csv'], 'text') as 'text' | 'json' | 'csv',
    );
    const store = AuditStore.open(values.db, { readonly: true });
    try {
      const ref = store.latestDataTime() ?? 0;
      if (!values.unused) {
        process.stdout.write(renderTable(store.rules(), columns, format, (r) => r));
        return 0;
      }
      const since = asUsage(() => parseSince(values.since ?? '7d', ref));
      const evidence = evidenceFor(store, since, Number.MAX_SAFE_INTEGER);
      if (evidence.status !== 'ok') {
        // With no traffic every rule is "unused": listing them would claim what no data shows.
        process.stdout.write(renderTable([], columns, format, (r) => r));
        process.stderr.write(`rules: ${noDataMessage(evidence, 'which rules are unused')}\n`);
        return EXIT_NO_DATA;
      }
      process.stdout.write(renderTable(store.rules({ unusedSince: since }), columns, format, (r) => r));
      return 0;
    } finally {
      store.close();
    }
  },
};

import { AlertDispatcher, loadAlertsConfig, makeReceivers } from '../../alerts/index.js';
import { isoTime, parseDuration } from '../../lib/format.js';
import { AuditStore } from '../../processor/store/index.js';
import type { OutboxRow, OutboxState } from '../../processor/store/outbox.js';
import { type Column, parseFormat, renderTable } from '../../report/index.js';
import { asUsage, parse } from '../args.js';
import { type Command, EXIT_INPUT_PROBLEMS, UsageError } from '../command.js';

const USAGE = `usage: netpol-audit alerts --db FILE [--state pending|sent|failed] [--format text|json|csv]
       netpol-audit alerts --db FILE --deliver --alerts FILE [--drain 30s]

Lists the alert notifications in the store's outbox, one per receiver: what was sent, what is
still pending (with its attempts, next attempt and last error) and what failed for good (the
receiver refused it: its status and answer are kept). With --deliver, delivers what is pending to
the receivers of --alerts for up to --drain, then lists. Exit status 1 when a notification failed
for good.`;

const STATES: readonly OutboxState[] = ['pending', 'sent', 'failed'];

interface Shown {
  id: number;
  receiver: string;
  event: string;
  state: OutboxState;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  nextAttempt: string;
  createdAt: string;
  alert: { kind: string; src: string; dst?: string; proto?: string; port?: number; summary: string };
  idempotencyKey: string;
}

function shown(r: OutboxRow): Shown {
  const p = JSON.parse(r.payload) as { kind: string; key: Shown['alert']; summary: string };
  return {
    id: r.id,
    receiver: r.receiver,
    event: r.event,
    state: r.state,
    attempts: r.attempts,
    lastStatus: r.lastStatus,
    lastError: r.lastError,
    nextAttempt: r.state === 'pending' ? isoTime(r.nextAttemptWall) : '',
    createdAt: isoTime(r.createdWall),
    alert: { ...p.key, kind: p.kind, summary: p.summary },
    idempotencyKey: r.idempotencyKey,
  };
}

const columns: Column<Shown>[] = [
  { header: 'id', value: (r) => r.id },
  { header: 'receiver', value: (r) => r.receiver },
  { header: 'event', value: (r) => r.event },
  { header: 'state', value: (r) => r.state },
  { header: 'attempts', value: (r) => r.attempts },
  { header: 'status', value: (r) => r.lastStatus },
  { header: 'kind', value: (r) => r.alert.kind },
  { header: 'source', value: (r) => r.alert.src },
  { header: 'destination', value: (r) => r.alert.dst },
  { header: 'port', value: (r) => (r.alert.proto ? `${r.alert.proto}/${r.alert.port}` : '') },
  { header: 'next_attempt', value: (r) => r.nextAttempt },
  { header: 'last_error', value: (r) => r.lastError },
];

export const alertsCommand: Command = {
  path: ['alerts'],
  summary: 'list (and deliver) the alert notifications in the store',
  usage: USAGE,
  async run(argv) {
    const { values } = parse(argv, {
      db: { type: 'string' },
      state: { type: 'string' },
      format: { type: 'string' },
      deliver: { type: 'boolean' },
      alerts: { type: 'string' },
      drain: { type: 'string' },
    });
    if (!values.db) throw new UsageError('--db is required');
    const format = asUsage(
      () => parseFormat(values.format, ['text', 'json', 'csv'], 'text') as 'text' | 'json' | 'csv',
    );
    if (values.state !== undefined && !STATES.includes(values.state as OutboxState))
      throw new UsageError(`--state must be ${STATES.join(', ')}`);
    if (values.deliver && !values.alerts)
      throw new UsageError('--deliver needs --alerts FILE (the receivers)');
    const drainMs = values.drain ? asUsage(() => parseDuration(values.drain!)) : 30_000;
    const config = values.deliver ? loadAlertsConfig(values.alerts!) : undefined;
    const store = AuditStore.open(values.db, { readonly: !values.deliver });
    try {
      if (config) {
        const dispatcher = new AlertDispatcher(store.outbox, makeReceivers(config.receivers));
        await dispatcher.drain(Date.now() + drainMs);
      }
      const rows = store.outbox.list(values.state as OutboxState | undefined).map(shown);
      process.stdout.write(renderTable(rows, columns, format, (r) => r));
      return store.outbox.counts().failed > 0 ? EXIT_INPUT_PROBLEMS : 0;
    } finally {
      store.close();
    }
  },
};

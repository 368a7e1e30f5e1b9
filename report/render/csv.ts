import { isoTime } from '../../lib/format.js';
import type { AggregateRow } from '../../processor/store/index.js';
import type { ComplianceReport } from '../model.js';
import { renderTable } from '../table.js';

/**
 * The report's rows as one CSV table for a spreadsheet: violations, denied attempts, unsettled
 * verdicts and unused rules, each row with its section and the period's assessment.
 */

interface Row {
  section: string;
  src: string;
  dst: string;
  port: string;
  flows: number | '';
  bytes: number | '';
  first: string;
  last: string;
  note: string;
}

export function renderCsv(r: ComplianceReport): string {
  const rows: Row[] = [];
  const agg = (section: string, list: AggregateRow[]) => {
    for (const v of list)
      rows.push({
        section,
        src: v.srcWorkload,
        dst: v.dstWorkload,
        port: v.port < 0 ? v.proto : `${v.proto}/${v.port}`,
        flows: v.flows,
        bytes: v.bytes,
        first: isoTime(v.firstSeen),
        last: isoTime(v.lastSeen),
        note: v.directionGuessed > 0 ? `direction guessed for ${v.directionGuessed}` : '',
      });
  };
  agg('violation', r.violations);
  agg('denied-attempt', r.deniedAttempts);
  agg('unsettled', r.unsettled);
  for (const u of r.rules.unused)
    rows.push({
      section: 'unused-rule',
      src: '',
      dst: `${u.policy} ${u.direction}[${u.rule}]`,
      port: '',
      flows: '',
      bytes: '',
      first: '',
      last: '',
      note: u.summary,
    });
  const col = (header: string, value: (x: Row) => string | number) => ({ header, value });
  return renderTable(
    rows,
    [
      col('assessment', () => r.assessment),
      col('section', (x) => x.section),
      col('source', (x) => x.src),
      col('destination', (x) => x.dst),
      col('port', (x) => x.port),
      col('flows', (x) => x.flows),
      col('bytes', (x) => x.bytes),
      col('first_seen', (x) => x.first),
      col('last_seen', (x) => x.last),
      col('note', (x) => x.note),
    ],
    'csv',
    (x) => x,
  );
}

import { escapeMarkdown, escapeTerminal } from '../lib/escape.js';
import { isoTime } from '../lib/format.js';
import type { PairChange, WhatIfResult } from './compare.js';

/**
 * What-if output: a table for a terminal, JSON for tools, Markdown that reads well as a pull-request
 * comment. Names come from the cluster: escaped for each output.
 */

const PROTO: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };

export function portText(proto: number, port: number): string {
  const p = PROTO[proto] ?? String(proto);
  return port >= 0 ? `${p}/${port}` : p;
}

function notes(r: WhatIfResult): string[] {
  const out: string[] = [];
  const missing = r.daysWithoutReplay.reduce((n, d) => n + d.flows, 0);
  if (missing > 0)
    out.push(
      `${missing} flow(s) on ${r.daysWithoutReplay.length} day(s) (${r.daysWithoutReplay.map((d) => isoTime(d.day).slice(0, 10)).join(', ')}) were recorded before this store kept replay data: not replayed, not assumed unaffected`,
    );
  for (const s of r.notReplayable)
    out.push(`${s.flows} flow(s) not replayable (${s.reason}): not replayed, not assumed unaffected`);
  if (r.drift.flows > 0)
    out.push(
      `${r.drift.flows} recorded flow(s) are judged differently today without any draft: the policies changed since they were recorded (the comparison is against today's policies)`,
    );
  return out;
}

export function verdictLine(r: WhatIfResult): string {
  const broken = r.becomeDenied.reduce((n, c) => n + c.flows, 0);
  const loosened = r.becomeAllowed.reduce((n, c) => n + c.flows, 0);
  if (r.replayed.flows === 0)
    return 'No recorded traffic could be replayed: nothing can be said about these drafts.';
  return `${broken} recorded flow(s) in ${r.becomeDenied.length} pair(s) would become denied; ${loosened} denied flow(s) in ${r.becomeAllowed.length} pair(s) would become allowed (replayed ${r.replayed.flows} flows).`;
}

type Esc = (s: string) => string;

/** What a classification means in a what-if: denied is denied, whether the flow was answered or not. */
const NAME: Record<PairChange['before'], string> = {
  allowed: 'allowed',
  'denied-but-observed': 'denied',
  'denied-attempt': 'denied',
  ambiguous: 'ambiguous',
};
const BEFORE: Record<PairChange['before'], string> = {
  allowed: 'allowed',
  'denied-but-observed': 'violation',
  'denied-attempt': 'denied attempt',
  ambiguous: 'ambiguous',
};

function changeRows(list: PairChange[], esc: Esc, withRules: 'before' | 'after'): string[][] {
  return list.map((c) => [
    esc(c.src),
    esc(c.dst),
    portText(c.proto, c.port),
    String(c.flows),
    String(c.bytes),
    isoTime(c.lastSeen),
    `${BEFORE[c.before]} → ${NAME[c.after]}`,
    esc((withRules === 'before' ? c.rulesBefore : c.rulesAfter).join('; ') || '(none: not isolated)'),
  ]);
}

const CHANGE_HEADER = ['source', 'destination', 'port', 'flows', 'bytes', 'last seen', 'change'];

function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function renderWhatIfText(r: WhatIfResult): string {
  const esc = escapeTerminal;
  const out: string[] = [`what-if ${isoTime(r.since)} to ${isoTime(r.until)}`];
  if (r.added.length) out.push(`added: ${r.added.map(esc).join(', ')}`);
  if (r.replaced.length) out.push(`replaced: ${r.replaced.map(esc).join(', ')}`);
  if (r.deleted.length) out.push(`deleted: ${r.deleted.map(esc).join(', ')}`);
  out.push(verdictLine(r));
  for (const n of notes(r)) out.push(`note: ${n}`);
  out.push('', 'Would become denied (breakage):');
  out.push(
    r.becomeDenied.length
      ? textTable([...CHANGE_HEADER, 'allowed before by'], changeRows(r.becomeDenied, esc, 'before'))
      : '  none',
  );
  out.push('', 'Would become allowed (loosening):');
  out.push(
    r.becomeAllowed.length
      ? textTable([...CHANGE_HEADER, 'allowed by'], changeRows(r.becomeAllowed, esc, 'after'))
      : '  none',
  );
  if (r.otherChanges.length) {
    out.push('', 'Other changes:');
    out.push(textTable([...CHANGE_HEADER, 'rules after'], changeRows(r.otherChanges, esc, 'after')));
  }
  out.push('', 'Draft rules no recorded traffic would use:');
  out.push(
    r.unusedRules.length
      ? r.unusedRules.map((u) => `  ${esc(u.policy)} ${u.direction}[${u.rule}]: ${esc(u.summary)}`).join('\n')
      : '  none',
  );
  out.push('', 'Draft rules shadowed by precedence (match recorded traffic, never decide it):');
  out.push(
    r.shadowedRules.length
      ? r.shadowedRules
          .map(
            (s) =>
              `  ${esc(s.policy)} ${s.direction}[${s.rule}]: ${esc(s.summary)} (${s.flows} flows; decided by ${s.by.map(esc).join('; ')})`,
          )
          .join('\n')
      : '  none',
  );
  for (const i of r.issues) out.push(`issue: ${esc(i.code)} ${esc(i.object ?? '')} ${esc(i.message)}`);
  return `${out.join('\n')}\n`;
}

function mdTable(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

export function renderWhatIfMarkdown(r: WhatIfResult): string {
  const esc = (s: string) => escapeMarkdown(s);
  const broken = r.becomeDenied.length > 0;
  const out: string[] = [
    `### netpol-audit what-if: ${broken ? '⚠️ breaks recorded traffic' : 'no recorded traffic breaks'}`,
    '',
    `Replayed ${isoTime(r.since)} to ${isoTime(r.until)}. ${esc(verdictLine(r))}`,
  ];
  const changed = [
    ...r.added.map((x) => `added \`${esc(x)}\``),
    ...r.replaced.map((x) => `replaced \`${esc(x)}\``),
    ...r.deleted.map((x) => `deleted \`${esc(x)}\``),
  ];
  if (changed.length) out.push('', `Drafts: ${changed.join(', ')}.`);
  const n = notes(r);
  if (n.length) out.push('', ...n.map((x) => `> **Note:** ${esc(x)}`));
  out.push('', '#### Would become denied (breakage)', '');
  out.push(
    r.becomeDenied.length
      ? mdTable([...CHANGE_HEADER, 'allowed before by'], changeRows(r.becomeDenied, esc, 'before'))
      : 'None.',
  );
  out.push('', '#### Would become allowed (loosening)', '');
  out.push(
    r.becomeAllowed.length
      ? mdTable([...CHANGE_HEADER, 'allowed by'], changeRows(r.becomeAllowed, esc, 'after'))
      : 'None.',
  );
  if (r.otherChanges.length)
    out.push(
      '',
      '#### Other changes',
      '',
      mdTable([...CHANGE_HEADER, 'rules after'], changeRows(r.otherChanges, esc, 'after')),
    );
  out.push('', '#### Draft rules', '');
  const ruleRows = [
    ...r.unusedRules.map((u) => [
      esc(u.policy),
      `${u.direction}[${u.rule}]`,
      esc(u.summary),
      'unused by recorded traffic',
    ]),
    ...r.shadowedRules.map((s) => [
      esc(s.policy),
      `${s.direction}[${s.rule}]`,
      esc(s.summary),
      `shadowed: matches ${s.flows} flows, decided by ${s.by.map(esc).join('; ')}`,
    ]),
  ];
  out.push(
    ruleRows.length
      ? mdTable(['policy', 'rule', 'summary', 'finding'], ruleRows)
      : 'Every draft rule decides some recorded traffic.',
  );
  return `${out.join('\n')}\n`;
}

/**
 * Names and labels come from the cluster (issue #10): a snapshot can carry anything, so every output
 * must keep them as text. A pod named with Markdown table syntax, HTML, a newline that would start a
 * heading, a terminal escape sequence and a spreadsheet formula goes through audit, report,
 * violations and rules, and must come out inert in each format.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'netpol-names-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HOSTILE = '=cmd|debug <img src=x onerror=alert(1)>\n# pwned \u001b[31mred';
const db = join(dir, 'names.db');
let audit: { code: number | null; stdout: string; stderr: string };

beforeAll(async () => {
  const shop = readFileSync(join(ROOT, 'examples/shop/cluster.yaml'), 'utf8');
  // The debug pod (the source of both violations) gets the hostile name; a policy's label too.
  const cluster = shop
    .replace('    name: debug-shell\n', `    name: ${JSON.stringify(HOSTILE)}\n`)
    .replace(/team: batch/g, `team: ${JSON.stringify(`batch|<b>${'\u001b'}]0;title${'\u0007'}`)}`);
  expect(cluster).not.toBe(shop);
  const clusterFile = join(dir, 'cluster.yaml');
  writeFileSync(clusterFile, cluster);
  audit = await runCli([
    'audit',
    join(ROOT, 'examples/shop/capture.pcap'),
    '--cluster',
    clusterFile,
    '--db',
    db,
  ]);
});

/** No raw control character but the newlines between lines. */
const noControl = (s: string) => {
  for (const ch of s.replace(/\n/g, '')) {
    const c = ch.charCodeAt(0);
    expect(c < 0x20 || (c >= 0x7f && c <= 0x9f), `control character ${c} in output`).toBe(false);
  }
};

describe('a hostile pod name and label value', () => {
  it('audit summary (terminal): control characters shown, not obeyed; one line per violation', () => {
    expect(audit.code).toBe(1); // the policy with the hostile label is an input problem
    noControl(audit.stdout);
    const lines = audit.stdout.split('\n').filter((l) => l.includes('onerror'));
    expect(lines).toHaveLength(3); // two violations and a denied attempt, each on one line
    expect(lines[0]).toContain('\\u000a# pwned \\u001b[31mred');
    expect(audit.stdout).not.toMatch(/^# pwned/m);
  });

  it('report (Markdown): no HTML, no extra table cell, no heading, no control character', async () => {
    const r = await runCli(['report', '--db', db]);
    expect(r.code).toBe(0);
    noControl(r.stdout);
    expect(r.stdout).not.toContain('<img');
    expect(r.stdout).not.toContain('<b>');
    expect(r.stdout).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(r.stdout).not.toMatch(/^# pwned/m);
    // Every row of the violations table has as many cells as its header.
    const table = r.stdout.split('## Violations')[1]!.split('\n## ')[0]!;
    const rows = table.split('\n').filter((l) => l.startsWith('|'));
    const cells = (l: string) => l.replace(/\\\|/g, '').split('|').length;
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const row of rows) expect(cells(row)).toBe(cells(rows[0]!));
  });

  it('violations --format csv: the formula prefix neutralised, the cell quoted', async () => {
    const r = await runCli(['violations', '--db', db, '--format', 'csv']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('dev/=cmd|debug');
    // The workload cell begins with "dev/" so it is not a formula; the names cell may start with '='.
    const records = r.stdout.trim().split(/\r?\n(?=[^\s])/);
    expect(records.length).toBeGreaterThanOrEqual(3);
    expect(r.stdout).not.toMatch(/(^|,)=cmd/m);
  });

  it('violations --format table and json keep the name exactly (json) or shown (table)', async () => {
    const t = await runCli(['violations', '--db', db]);
    noControl(t.stdout);
    const j = await runCli(['violations', '--db', db, '--format', 'json']);
    const rows = JSON.parse(j.stdout) as { srcWorkload: string }[];
    expect(rows.map((x) => x.srcWorkload)).toContain(`dev/${HOSTILE}`);
  });

  it('a hostile label value in a policy: the policy is rejected, and the problem is shown as text', async () => {
    // The label value is invalid, so the policy is rejected (POLICY_INVALID_LABEL); its message
    // quotes the value, in the audit's summary and in the report's input problems.
    const line = audit.stdout.split('\n').find((l) => l.includes('POLICY_INVALID_LABEL'));
    expect(line).toContain('batch|<b>\\u001b]0;title\\u0007');
    const r = await runCli(['report', '--db', db]);
    noControl(r.stdout);
    const problem = r.stdout.split('\n').find((l) => l.includes('POLICY_INVALID_LABEL'));
    // Markdown: | and ] escaped, HTML as entities, and the shown escape's backslash escaped too.
    expect(problem).toContain('batch\\|&lt;b&gt;\\\\u001b\\]0;title\\\\u0007');
    const rules = await runCli(['rules', '--db', db]);
    noControl(rules.stdout);
    expect(rules.stdout).not.toContain('allow-batch-to-cart');
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isoWeekOf, isoWeekStart } from '../report/index.js';
import { ROOT, runCli } from './support/cli.js';

const capture = join(ROOT, 'examples/shop/capture.pcap');
const cluster = join(ROOT, 'examples/shop/cluster.yaml');
let dir: string;
let db: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'npa-report-'));
  db = join(dir, 'shop.db');
  const r = await runCli(['audit', capture, '--cluster', cluster, '--db', db, '--format', 'json']);
  expect(r.code).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ISO weeks', () => {
  it('starts week 1 on the Monday of the week holding January 4th', () => {
    expect(new Date(isoWeekStart('2026-W01')).toISOString()).toBe('2025-12-29T00:00:00.000Z');
    expect(new Date(isoWeekStart('2026-W48')).toISOString()).toBe('2026-11-23T00:00:00.000Z');
    expect(new Date(isoWeekStart('2020-W53')).toISOString()).toBe('2020-12-28T00:00:00.000Z');
    expect(() => isoWeekStart('2021-W53')).toThrow(/weeks 1 to 52/);
    expect(() => isoWeekStart('2026-48')).toThrow(/2026-W47/);
  });

  it('numbers a date with the year its Thursday falls in', () => {
    expect(isoWeekOf(Date.UTC(2027, 0, 1))).toEqual({ year: 2026, week: 53 });
    expect(isoWeekOf(Date.UTC(2025, 11, 31))).toEqual({ year: 2026, week: 1 });
    expect(isoWeekOf(Date.UTC(2026, 10, 29, 23))).toEqual({ year: 2026, week: 48 });
  });
});

describe('netpol-audit report', () => {
  it('reports the week of the shop capture as not compliant, with its violations and unused rule', async () => {
    const r = await runCli(['report', '--db', db, '--week', '2026-W48', '--format', 'json']);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.compliant).toBe(false);
    expect(rep.traffic.flows).toBe(23);
    expect(rep.traffic.byResult).toEqual({ allowed: 19, denied: 4 });
    expect(
      rep.violations
        .map((v: { src: string; dst: string; port: number }) => `${v.src}>${v.dst}:${v.port}`)
        .sort(),
    ).toEqual(['dev/debug-shell>shop/cart:8080', 'dev/debug-shell>shop/payments:9000']);
    expect(rep.deniedAttempts).toHaveLength(2);
    expect(rep.rules.total).toBe(4);
    expect(rep.rules.used).toBe(3);
    expect(rep.rules.unused.map((u: { policy: string }) => u.policy)).toEqual(['shop/allow-batch-to-cart']);
    expect(rep.policyVersions).toHaveLength(5);
  });

  it('renders Markdown a person can read, and --fail-on-violation turns violations into exit status 1', async () => {
    const r = await runCli(['report', '--db', db, '--fail-on-violation']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('**Not compliant.** 2 connection(s) (2 flows) that the NetworkPolicies deny');
    expect(r.stdout).toContain('| dev/debug-shell | shop/payments | TCP/9000 | 1 |');
    expect(r.stdout).toContain('## Rules (3 of 4 used)');
    expect(r.stdout).toContain('shop/allow-batch-to-cart | ingress\\[0\\]');
    // Issue #13: the report states its coverage and what the evidence covers.
    expect(r.stdout).toContain('3 of 6 workloads isolated for ingress');
    expect(r.stdout).toContain('## Evidence completeness');
    expect(r.stdout).toContain('1 of 168 hours of the period hold flows');
  });

  // Issue #10: a period with no data is not evidence of compliance (docs/trust.md).
  it('a week without data cannot be assessed: not compliant, exit 4 under --fail-on-violation', async () => {
    const r = await runCli([
      'report',
      '--db',
      db,
      '--week',
      '2026-W47',
      '--format',
      'json',
      '--fail-on-violation',
    ]);
    expect(r.code).toBe(4);
    const rep = JSON.parse(r.stdout);
    expect(rep.compliant).toBe(false);
    expect(rep.assessment).toBe('no-data');
    expect(rep.traffic.flows).toBe(0);
    expect(rep.violations).toEqual([]);
  });

  it('refuses a malformed week with a usage error', async () => {
    const r = await runCli(['report', '--db', db, '--week', 'last']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--week must look like 2026-W47, got 'last'");
  });

  it('renders one model in every format: the same violations in text, Markdown, JSON and CSV', async () => {
    const out: Record<string, string> = {};
    for (const f of ['text', 'markdown', 'json', 'csv']) {
      const r = await runCli(['report', '--db', db, '--week', '2026-W48', '--format', f]);
      expect(r.code).toBe(0);
      out[f] = r.stdout;
    }
    const model = JSON.parse(out.json!) as { violations: { src: string; dst: string }[] };
    expect(model.violations).toHaveLength(2);
    for (const v of model.violations) {
      expect(out.text).toContain(`${v.src} -> ${v.dst}`);
      expect(out.markdown).toContain(`| ${v.src} | ${v.dst} |`);
      expect(out.csv).toContain(`not-compliant,violation,${v.src},${v.dst},`);
    }
    expect(out.text).toMatch(/^NOT COMPLIANT/m);
    expect(out.csv!.split('\r\n').filter((l) => l.includes(',unused-rule,'))).toHaveLength(1);
    const bad = await runCli(['report', '--db', db, '--format', 'xml']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--format must be text, markdown, json, csv, html, pdf');
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from './support/cli.js';

// Expectations come from the example's design (examples/shop/README.md): which traffic
// make-capture.sh sends, and what the policies of cluster.yaml say about it.
const capture = join(ROOT, 'examples/shop/capture.pcap');
const cluster = join(ROOT, 'examples/shop/cluster.yaml');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'npa-audit-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('netpol-audit audit (embedded)', () => {
  it('finds the violations, denied attempts and unused rule of the shop example', async () => {
    const db = join(dir, 'shop.db');
    const r = await runCli(['audit', capture, '--cluster', cluster, '--db', db, '--format', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    const pairs = (rows: { srcWorkload: string; dstWorkload: string; proto: string; port: number }[]) =>
      rows.map((v) => `${v.srcWorkload} -> ${v.dstWorkload} ${v.proto}/${v.port}`).sort();
    expect(pairs(s.violations)).toEqual([
      'dev/debug-shell -> shop/cart TCP/8080',
      'dev/debug-shell -> shop/payments TCP/9000',
    ]);
    expect(pairs(s.deniedAttempts)).toEqual([
      'dev/debug-shell -> shop/cart TCP/5432',
      'shop/frontend -> shop/payments TCP/9000',
    ]);
    expect(s.unusedRules.map((u: { policy: string; rule: number }) => `${u.policy}#${u.rule}`)).toEqual([
      'shop/allow-batch-to-cart#0',
    ]);
    expect(s.flows.deniedButObserved).toBe(2);
    expect(s.flows.deniedAttempts).toBe(2);
    expect(s.flows.ambiguous).toBe(0);
    expect(s.issues).toEqual([]);

    // The store answers the same questions afterwards.
    const v = await runCli(['violations', '--db', db, '--format', 'json']);
    expect(pairs(JSON.parse(v.stdout))).toEqual(pairs(s.violations));
    const rules = JSON.parse((await runCli(['rules', '--db', db, '--format', 'json'])).stdout);
    const hits = Object.fromEntries(
      rules.map((x: { policy: string; rule: number; hits: number }) => [`${x.policy}#${x.rule}`, x.hits]),
    );
    expect(hits).toEqual({
      'shop/allow-frontend-to-cart#0': 2,
      'shop/allow-cart-to-payments#0': 1,
      'shop/allow-monitoring-scrape#0': 1,
      'shop/allow-batch-to-cart#0': 0,
    });
  });

  it('prints a readable summary', async () => {
    const r = await runCli(['audit', capture, '--cluster', cluster, '--db', join(dir, 'text.db')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('VIOLATIONS: denied by the policies, observed to flow (2)');
    expect(r.stdout).toContain('  dev/debug-shell -> shop/payments TCP/9000: 1 flow');
    expect(r.stdout).toContain('UNUSED RULES: in force, used by no flow (1)');
  });

  it('reports a missing capture and still audits the good one, exiting 1', async () => {
    const r = await runCli([
      'audit',
      join(dir, 'nope.pcap'),
      capture,
      '--cluster',
      cluster,
      '--db',
      join(dir, 'x.db'),
      '--format',
      'json',
    ]);
    expect(r.code).toBe(1);
    const s = JSON.parse(r.stdout);
    expect(s.issues.map((i: { code: string }) => i.code)).toContain('CAPTURE_UNREADABLE');
    expect(s.violations).toHaveLength(2);
  });
});

/**
 * The HTML report in a real headless Chromium (Debian's chromium, driven by playwright-core), as
 * an auditor opens it: it loads with no console error and no request, the charts draw (their
 * marks have size and the colours of the stylesheet the Content-Security-Policy admits), the
 * numbers on the page are the store's, a hostile name renders as inert text, and the PDF has a page
 * per part. Screenshots of each section go to test-artifacts/report/ (NETPOL_AUDIT_ARTIFACTS).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath } from '../report/pdf.js';
import { ROOT, runCli } from './support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'netpol-html-'));
const ARTIFACTS = process.env.NETPOL_AUDIT_ARTIFACTS ?? join(ROOT, 'test-artifacts');
const shots = join(ARTIFACTS, 'report');
const HOSTILE = '=cmd|debug <img src=x onerror=alert(1)>';
let browser: Browser;

async function auditInto(db: string, cluster: string): Promise<void> {
  const r = await runCli([
    'audit',
    join(ROOT, 'examples/shop/capture.pcap'),
    '--cluster',
    cluster,
    '--db',
    db,
  ]);
  expect(r.code, r.stderr).toBeLessThanOrEqual(1);
}

async function html(db: string): Promise<string> {
  const file = join(dir, `${db.split('/').pop()}.html`);
  const r = await runCli(['report', '--db', db, '--format', 'html', '--out', file]);
  expect(r.code, r.stderr).toBe(0);
  return file;
}

beforeAll(async () => {
  const exe = chromiumPath();
  expect(exe, 'Debian chromium is installed by scripts/bootstrap.sh --tests').toBeTruthy();
  browser = await chromium.launch({ executablePath: exe, args: ['--no-sandbox'] });
  await auditInto(join(dir, 'shop.db'), join(ROOT, 'examples/shop/cluster.yaml'));
  const hostile = readFileSync(join(ROOT, 'examples/shop/cluster.yaml'), 'utf8').replace(
    '    name: debug-shell\n',
    `    name: ${JSON.stringify(HOSTILE)}\n`,
  );
  writeFileSync(join(dir, 'hostile.yaml'), hostile);
  await auditInto(join(dir, 'hostile.db'), join(dir, 'hostile.yaml'));
  mkdirSync(shots, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function open(file: string) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const console: string[] = [];
  const requests: string[] = [];
  const dialogs: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console.push(m.text());
  });
  page.on('pageerror', (e) => console.push(e.message));
  page.on('request', (r) => requests.push(r.url()));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  const url = `file://${file}`;
  await page.goto(url, { waitUntil: 'load' });
  return { page, console, requests: requests.filter((u) => u !== url), dialogs };
}

describe('the HTML report in headless Chromium', () => {
  it('loads with no console error and no request, and the charts draw with the admitted stylesheet', async () => {
    const { page, console, requests } = await open(await html(join(dir, 'shop.db')));
    expect(console).toEqual([]);
    expect(requests).toEqual([]);
    const charts = await page.$$eval('svg.chart', (svgs) =>
      svgs.map((s) => {
        const marks = [...s.querySelectorAll('rect')].filter((r) => {
          const b = r.getBoundingClientRect();
          return b.width > 0 && b.height > 0;
        });
        return {
          title: s.querySelector('title')?.textContent,
          marks: marks.length,
          fills: [
            ...new Set(
              marks.map(
                (r) =>
                  (
                    globalThis as unknown as { getComputedStyle(e: unknown): { fill: string } }
                  ).getComputedStyle(r).fill,
              ),
            ),
          ],
        };
      }),
    );
    expect(charts.map((c) => c.title)).toEqual([
      'Flows per day by classification',
      'Violations per day',
      'Top violating workload pairs',
    ]);
    for (const c of charts) expect(c.marks, c.title ?? '').toBeGreaterThan(0);
    // The stylesheet applied (its hash is in the CSP): violations are drawn red, allowed green.
    expect(charts[0]!.fills).toEqual(expect.arrayContaining(['rgb(26, 127, 55)', 'rgb(207, 34, 46)']));
    const csp = await page.$eval('meta[http-equiv="Content-Security-Policy"]', (m) =>
      m.getAttribute('content'),
    );
    expect(csp).toContain("script-src 'none'");
    expect(await page.$$('script')).toHaveLength(0);
    for (const id of ['summary', 'charts', 'violations', 'coverage', 'rules', 'completeness'])
      await page.locator(`#${id}`).screenshot({ path: join(shots, `${id}.png`) });
    await page.screenshot({ path: join(shots, 'full.png'), fullPage: true });
    await page.close();
  });

  it("shows the store's numbers: flows judged, violations, denied attempts, coverage", async () => {
    const db = new Database(join(dir, 'shop.db'), { readonly: true });
    const flows = (db.prepare('SELECT sum(flows) AS n FROM edges_hourly').get() as { n: number }).n;
    const violations = (db.prepare('SELECT sum(flows) AS n FROM violations').get() as { n: number }).n;
    const denied = (db.prepare('SELECT sum(flows) AS n FROM denied_attempts').get() as { n: number }).n;
    const snapshot = JSON.parse(
      (db.prepare('SELECT snapshot FROM coverage_daily').get() as { snapshot: string }).snapshot,
    ) as { workloads: { pods: number; ingressIsolated: number }[] };
    db.close();
    const { page } = await open(await html(join(dir, 'shop.db')));
    const figure = (name: string) => page.$eval(`[data-figure="${name}"] .value`, (e) => e.textContent);
    expect(await figure('flows')).toBe(String(flows));
    expect(await figure('violations')).toBe(String(violations));
    expect(await figure('deniedAttempts')).toBe(String(denied));
    const isolated = snapshot.workloads.filter((w) => w.ingressIsolated === w.pods).length;
    expect(await figure('workloadsIsolated')).toBe(String(isolated));
    expect(await page.locator('#coverage').textContent()).toContain(
      `${isolated} of ${snapshot.workloads.length} workloads isolated for ingress`,
    );
    expect(await page.$eval('[data-assessment]', (e) => e.getAttribute('data-assessment'))).toBe(
      'not-compliant',
    );
    expect(await page.$$eval('table[data-section="violations"] tbody tr', (rows) => rows.length)).toBe(2);
    await page.close();
  });

  it('renders a hostile pod name as inert text: no element made, no script run, no request', async () => {
    const { page, console, requests, dialogs } = await open(await html(join(dir, 'hostile.db')));
    expect(await page.$$('img')).toHaveLength(0);
    expect(dialogs).toEqual([]);
    expect(requests).toEqual([]);
    expect(console).toEqual([]);
    const text = await page.locator('#violations').textContent();
    expect(text).toContain('dev/=cmd|debug <img src=x onerror=alert(1)>');
    await page.locator('#violations').screenshot({ path: join(shots, 'hostile-violations.png') });
    await page.close();
  });

  it('prints to PDF through Chromium: a page per part at least', async () => {
    const out = join(dir, 'shop.pdf');
    const r = await runCli(['report', '--db', join(dir, 'shop.db'), '--format', 'pdf', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const pdf = readFileSync(out);
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    const pages = (pdf.toString('latin1').match(/\/Type\s*\/Page(?!s)/g) ?? []).length;
    // Six parts, each starting a page; the evidence tables may run over.
    expect(pages).toBeGreaterThanOrEqual(6);
    expect(pages).toBeLessThan(40);
  });

  it('says clearly when there is no Chromium for a PDF', async () => {
    const r = await runCli(
      ['report', '--db', join(dir, 'shop.db'), '--format', 'pdf', '--out', join(dir, 'x.pdf')],
      {
        env: { NETPOL_AUDIT_CHROMIUM: join(dir, 'no-such-chromium') },
      },
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('REPORT_PDF_UNAVAILABLE');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

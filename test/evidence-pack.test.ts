/**
 * Two weeks of the shop example (the capture, and the same capture a week later under an edited
 * policy), reported week by week into an evidence pack root: the second report compares itself
 * with the first, shows the policy change as a diff, and its pack chains to the first one's.
 * verify-evidence holds on the untouched packs, and names every file changed, removed or added,
 * a manifest changed under the chain, and a signature that does not match.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import {
  appendFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../schema/migrations.js';
import { ReportModelSchema } from '../schema/report.js';
import { ROOT, runCli } from './support/cli.js';
import { requirePrograms } from './support/programs.js';

const dir = mkdtempSync(join(tmpdir(), 'netpol-pack-'));
const db = join(dir, 'two-weeks.db');
const root = join(dir, 'packs');
const WEEK_S = 7 * 86_400;
let keys: { priv: string; pub: string; otherPub: string };

beforeAll(async () => {
  requirePrograms('test/evidence-pack.test.ts', ['editcap']);
  const shifted = join(dir, 'next-week.pcap');
  execFileSync('editcap', ['-t', String(WEEK_S), join(ROOT, 'examples/shop/capture.pcap'), shifted]);
  const shop = readFileSync(join(ROOT, 'examples/shop/cluster.yaml'), 'utf8');
  // Week 2: payments also accepts the frontend (the denied attempt of week 1 becomes allowed).
  const edited = shop.replace(
    /(name: allow-cart-to-payments[\s\S]*?- from:\n)/,
    '$1      - podSelector:\n          matchLabels:\n            app: frontend\n',
  );
  expect(edited).not.toBe(shop);
  writeFileSync(join(dir, 'edited.yaml'), edited);
  const a = await runCli([
    'audit',
    join(ROOT, 'examples/shop/capture.pcap'),
    '--cluster',
    join(ROOT, 'examples/shop/cluster.yaml'),
    '--db',
    db,
  ]);
  expect(a.code, a.stderr).toBe(0);
  const b = await runCli(['audit', shifted, '--cluster', join(dir, 'edited.yaml'), '--db', db]);
  expect(b.code, b.stderr).toBe(0);
  const pair = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');
  keys = { priv: join(dir, 'key.pem'), pub: join(dir, 'key.pub'), otherPub: join(dir, 'other.pub') };
  writeFileSync(keys.priv, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(keys.pub, pair.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(keys.otherPub, other.publicKey.export({ type: 'spki', format: 'pem' }));
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('week over week', () => {
  it('the report model is the published schema, compares with the previous week and diffs the policy change', async () => {
    const r = await runCli(['report', '--db', db, '--week', '2026-W49', '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const model = JSON.parse(r.stdout);
    expect([...Value.Errors(ReportModelSchema, model)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
    const fig = Object.fromEntries(
      model.keyFigures.map((k: { name: string; value: number; previous: number }) => [k.name, k]),
    );
    expect(fig.flows).toMatchObject({ value: 23, previous: 23 });
    expect(fig.violations).toMatchObject({ value: 2, previous: 2 });
    // frontend -> payments is allowed from week 49 on: one denied attempt fewer.
    expect(fig.deniedAttempts).toMatchObject({ value: 1, previous: 2 });
    expect(model.policyChanges).toHaveLength(1);
    const change = model.policyChanges[0];
    expect(change).toMatchObject({
      kind: 'NetworkPolicy',
      policy: 'shop/allow-cart-to-payments',
      change: 'changed',
    });
    // Three lines added (which of the two equal podSelector blocks counts as new is the diff's choice).
    const added = change.diff
      .filter((l: string) => l.startsWith('+'))
      .map((l: string) => l.replace(/^\+\s+/, '+'));
    expect(added.sort()).toEqual(['+- podSelector:', '+app: frontend', '+matchLabels:']);
    expect(change.diff.some((l: string) => l.startsWith('-'))).toBe(false);
    // Week 48's violations occurred again in week 49: still occurring, as the week-48 report says.
    const w48 = JSON.parse(
      (await runCli(['report', '--db', db, '--week', '2026-W48', '--format', 'json'])).stdout,
    );
    expect(w48.violations.every((v: { since: { stillOccurring: boolean } }) => v.since.stillOccurring)).toBe(
      true,
    );
    expect(w48.policyChanges.map((p: { change: string }) => p.change)).toEqual(Array(5).fill('first-seen'));
  });

  it('CSV sections one at a time; an unknown section is a usage error naming the sections', async () => {
    const cov = await runCli([
      'report',
      '--db',
      db,
      '--week',
      '2026-W48',
      '--format',
      'csv',
      '--section',
      'coverage',
    ]);
    expect(cov.code).toBe(0);
    expect(cov.stdout.split('\r\n')[0]).toBe(
      'workload,namespace,pods,pods isolated for ingress,pods isolated for egress',
    );
    expect(cov.stdout).toContain('dev/debug-shell,dev,1,0,0');
    const bad = await runCli(['report', '--db', db, '--format', 'csv', '--section', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--section must be one of findings, summary, key-figures');
  });
});

describe('evidence packs', () => {
  it('writes a pack per week, each chained to the previous, signed; verify-evidence holds', async () => {
    for (const week of ['2026-W48', '2026-W49']) {
      const r = await runCli([
        'report',
        '--db',
        db,
        '--week',
        week,
        '--evidence',
        root,
        '--sign-key',
        keys.priv,
        '--format',
        'text',
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`evidence pack written to ${join(root, week)}`);
    }
    expect(readdirSync(root).sort()).toEqual(['2026-W48', '2026-W49']);
    const files = readdirSync(join(root, '2026-W49'), { recursive: true }).map(String).sort();
    for (const f of [
      'report.html',
      'report.md',
      'report.json',
      'csv/violations.csv',
      'manifest.json',
      'manifest.sig',
    ])
      expect(files).toContain(f);
    // The policies in force during the week, as YAML: week 49 has the edited one.
    const policies = files.filter((f) => f.startsWith('policies/'));
    expect(policies).toHaveLength(5);
    const edited = readFileSync(
      join(root, '2026-W49', policies.find((p) => p.includes('allow-cart-to-payments'))!),
      'utf8',
    );
    expect(edited).toContain('app: frontend');
    const m48 = JSON.parse(readFileSync(join(root, '2026-W48/manifest.json'), 'utf8'));
    const m49 = JSON.parse(readFileSync(join(root, '2026-W49/manifest.json'), 'utf8'));
    expect(m48.previous).toBeNull();
    expect(m49.previous.dir).toBe('2026-W48');
    expect(m49.inputs).toMatchObject({ storeSchemaVersion: SCHEMA_VERSION, reportVersion: 1 });
    const ok = await runCli(['verify-evidence', root, '--public-key', keys.pub]);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toBe('2 pack(s) checked, 0 problem(s), 2 signature(s) valid\n');
    expect(ok.code).toBe(0);
  });

  it('a pack is never rewritten', async () => {
    const r = await runCli([
      'report',
      '--db',
      db,
      '--week',
      '2026-W48',
      '--evidence',
      root,
      '--format',
      'text',
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('EVIDENCE_PACK_EXISTS');
  });

  it('names each file changed, removed or added, a broken chain and a foreign signature', async () => {
    const wrongKey = await runCli(['verify-evidence', root, '--public-key', keys.otherPub]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain('2026-W48/manifest.json: signature does not match the manifest');
    appendFileSync(join(root, '2026-W48/csv/violations.csv'), 'x,y\r\n');
    unlinkSync(join(root, '2026-W49/report.md'));
    writeFileSync(join(root, '2026-W49/extra.txt'), 'slipped in');
    const r = await runCli(['verify-evidence', root]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n').sort();
    expect(lines).toEqual([
      expect.stringMatching(
        /^verify-evidence: EVIDENCE_PACK_CHANGED 2026-W48\/csv\/violations\.csv: changed \(sha256 [0-9a-f]{64}, manifest says [0-9a-f]{64}\)$/,
      ),
      'verify-evidence: EVIDENCE_PACK_CHANGED 2026-W49/extra.txt: not in the manifest (added after the pack was made)',
      'verify-evidence: EVIDENCE_PACK_CHANGED 2026-W49/report.md: missing',
    ]);
    // Rewriting week 48's manifest to match its changed file breaks the chain instead.
    const manifest = join(root, '2026-W48/manifest.json');
    writeFileSync(
      manifest,
      readFileSync(manifest, 'utf8').replace('"assessment": "not-compliant"', '"assessment": "compliant"'),
    );
    const chain = await runCli(['verify-evidence', join(root, '2026-W49')]);
    expect(chain.code).toBe(1);
    expect(chain.stderr).toContain('../2026-W48/manifest.json: changed since this pack chained to it');
  });

  it('refuses a path that holds no pack, with its code', async () => {
    const r = await runCli(['verify-evidence', dir]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('EVIDENCE_NOT_FOUND');
  });
});

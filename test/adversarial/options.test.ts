/**
 * Hostile and mistyped options, for every command (issue #10): each is a usage error (exit 2) that
 * names the option and what it expects, before anything is read or written; never a stack trace,
 * never a silent default.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../support/cli.js';

const CAPTURE = join(ROOT, 'examples/shop/capture.pcap');
const CLUSTER = join(ROOT, 'examples/shop/cluster.yaml');
const dir = mkdtempSync(join(tmpdir(), 'netpol-options-'));
const db = join(dir, 'shop.db');
const fresh = join(dir, 'never-created.db');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(async () => {
  expect((await runCli(['audit', CAPTURE, '--cluster', CLUSTER, '--db', db])).code).toBe(0);
});

const audit = ['audit', CAPTURE, '--cluster', CLUSTER, '--db', fresh];
const CASES: [string, string[], RegExp][] = [
  ['audit without a capture', ['audit', '--cluster', CLUSTER], /capture/],
  ['audit without --cluster', ['audit', CAPTURE], /--cluster is required/],
  ['audit --window 0', [...audit, '--window', '0'], /duration/],
  ['audit --window abc', [...audit, '--window', 'abc'], /not a duration: 'abc'/],
  ['audit --format xml', [...audit, '--format', 'xml'], /--format must be text or json/],
  [
    'audit --ipblock-matches-pods maybe',
    [...audit, '--ipblock-matches-pods', 'maybe'],
    /--ipblock-matches-pods must be true or false/,
  ],
  ['audit --host-network both', [...audit, '--host-network', 'both'], /--host-network must be node or pod/],
  [
    'audit --alerts-drain without --alerts',
    [...audit, '--alerts-drain', '5s'],
    /--alerts-drain needs --alerts/,
  ],
  ['audit --bogus', [...audit, '--bogus'], /bogus/],
  ['collect pcap without a file', ['collect', 'pcap'], /no capture file given/],
  ['collect pcap --idle-timeout -1', ['collect', 'pcap', CAPTURE, '--idle-timeout', '-1'], /idle-timeout/],
  ['collect pcap --max-flows 0', ['collect', 'pcap', CAPTURE, '--max-flows', '0'], /max-flows/],
  [
    'collect pcap --bytes frames',
    ['collect', 'pcap', CAPTURE, '--bytes', 'frames'],
    /--bytes must be 'ip' or 'wire'/,
  ],
  ['violations --limit 0', ['violations', '--db', db, '--limit', '0'], /--limit must be a positive integer/],
  [
    'violations --since yesterday',
    ['violations', '--db', db, '--since', 'yesterday'],
    /not a time: 'yesterday'/,
  ],
  [
    'violations --format xml',
    ['violations', '--db', db, '--format', 'xml'],
    /--format must be text, json, csv/,
  ],
  ['violations without --db', ['violations'], /--db is required/],
  ['rules --unused --since 7x', ['rules', '--db', db, '--unused', '--since', '7x'], /not a time: '7x'/],
  ['rules --since without --unused', ['rules', '--db', db, '--since', '7d'], /--since applies to --unused/],
  ['report --week 2026-W99', ['report', '--db', db, '--week', '2026-W99'], /2026 has weeks 1 to 53/],
  [
    'report --since after --until',
    ['report', '--db', db, '--since', '2026-11-24', '--until', '2026-11-23'],
    /the period is empty/,
  ],
  [
    'report --week with --since',
    ['report', '--db', db, '--week', '2026-W48', '--since', '7d'],
    /--week excludes --since/,
  ],
  [
    'report --format xml',
    ['report', '--db', db, '--format', 'xml'],
    /--format must be text, markdown, json, csv, html, pdf/,
  ],
  [
    'report --section without --format csv',
    ['report', '--db', db, '--section', 'coverage'],
    /--section goes with --format csv/,
  ],
  ['alerts --state lost', ['alerts', '--db', db, '--state', 'lost'], /--state must be pending, sent, failed/],
  ['alerts --deliver without --alerts', ['alerts', '--db', db, '--deliver'], /--deliver needs --alerts/],
  [
    'process --format xml',
    ['process', '--brokers', '127.0.0.1:1', '--cluster', CLUSTER, '--format', 'xml'],
    /--format must be text or json/,
  ],
  [
    'process --ipblock-matches-pods maybe (the same cluster options as audit and check)',
    ['process', '--brokers', '127.0.0.1:1', '--cluster', CLUSTER, '--ipblock-matches-pods', 'maybe'],
    /--ipblock-matches-pods must be true or false/,
  ],
  [
    'process --host-network both',
    ['process', '--brokers', '127.0.0.1:1', '--cluster', CLUSTER, '--host-network', 'both'],
    /--host-network must be node or pod/,
  ],
  [
    'explain --kubeconfig (snapshots only)',
    ['explain', '--kubeconfig', '/dev/null', '--from', 'a/b', '--to', 'c/d', '--port', '80'],
    /--kubeconfig is not available here/,
  ],
];

describe('mistyped options are usage errors that say what is expected', () => {
  for (const [what, args, message] of CASES)
    it(what, async () => {
      const r = await runCli(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(r.stdout).toBe('');
      expect(existsSync(fresh)).toBe(false);
    });
});

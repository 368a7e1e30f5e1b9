/**
 * Hostile and unlucky inputs around the store and the outputs (issue #10, "io" part): every failure
 * is a clear message with the path and a stable code, the README's exit statuses hold (3 for a
 * fatal error, never 1, which means input problems), no stack trace reaches the user, and an output
 * never destroys an input. Every case runs the real CLI on real files and real SQLite stores.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSince } from '../../lib/format.js';
import { ROOT, runCli } from '../support/cli.js';

const SHOP_PCAP = join(ROOT, 'examples/shop/capture.pcap');
const SHOP_CLUSTER = join(ROOT, 'examples/shop/cluster.yaml');
const CONNTRACK_LOG = join(ROOT, 'collectors/conntrack/fixtures/events-pod-traffic.log');
const dir = mkdtempSync(join(tmpdir(), 'netpol-io-'));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** No stack trace: no "    at f (file:line)" frames and no "node:internal" paths. */
function expectNoStack(stderr: string): void {
  expect(stderr).not.toMatch(/^\s+at .+[:(]/m);
  expect(stderr).not.toContain('node:internal');
}

/** The CLI with its standard output on a given file descriptor (for /dev/full and closed pipes). */
function runWithStdout(
  args: string[],
  stdout: number | 'pipe',
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', resolve(ROOT, 'cli/index.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, NETPOL_AUDIT_LOG_PRETTY: '0' },
      stdio: ['ignore', stdout, 'pipe'],
    });
    const err: Buffer[] = [];
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    // A reader that goes away after the first bytes, as `| head -c 1` does.
    if (stdout === 'pipe') child.stdout!.once('data', () => child.stdout!.destroy());
    child.on('error', fail);
    child.on('close', (code) => done({ code, stderr: Buffer.concat(err).toString('utf8') }));
  });
}

let store: string;
beforeAll(async () => {
  store = join(dir, 'shop.db');
  const r = await runCli(['audit', SHOP_PCAP, '--cluster', SHOP_CLUSTER, '--db', store]);
  expect(r.code).toBe(0);
}, 120_000);

describe('store failures are fatal (exit 3) with a stable code and the path, never a stack trace', () => {
  const cases: [string, () => string, string][] = [
    [
      'a store that does not exist (and is not created by a reader)',
      () => join(dir, 'nope.db'),
      'STORE_NOT_FOUND',
    ],
    ['a directory', () => dir, 'STORE_NOT_A_FILE'],
    [
      'a file that is not SQLite',
      () => {
        const p = join(dir, 'text.db');
        writeFileSync(p, 'not a database at all, just text\n'.repeat(200));
        return p;
      },
      'STORE_NOT_A_DATABASE',
    ],
    [
      "another application's SQLite database",
      () => {
        const p = join(dir, 'foreign.db');
        const db = new Database(p);
        db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)');
        db.close();
        return p;
      },
      'STORE_FOREIGN_DATABASE',
    ],
  ];
  for (const [what, make, code] of cases) {
    it(`violations --db on ${what}: ${code}`, async () => {
      const p = make();
      const r = await runCli(['violations', '--db', p]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(code);
      expect(r.stderr).toContain(p);
      expectNoStack(r.stderr);
      if (code === 'STORE_NOT_FOUND') expect(existsSync(p)).toBe(false);
    });
  }

  it("audit refuses to write into another application's SQLite database and leaves it untouched", async () => {
    const p = join(dir, 'foreign-audit.db');
    const db = new Database(p);
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)');
    db.close();
    const r = await runCli(['audit', SHOP_PCAP, '--cluster', SHOP_CLUSTER, '--db', p]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('STORE_FOREIGN_DATABASE');
    const after = new Database(p, { readonly: true });
    const tables = after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all();
    after.close();
    expect(tables).toEqual([{ name: 'users' }]);
  });

  it('a store locked by another writer: STORE_LOCKED after the busy timeout, exit 3', async () => {
    const p = join(dir, 'locked.db');
    copyFileSync(store, p);
    const holder = new Database(p);
    holder.exec('BEGIN EXCLUSIVE');
    try {
      const r = await runCli(['audit', SHOP_PCAP, '--cluster', SHOP_CLUSTER, '--db', p]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('STORE_LOCKED');
      expect(r.stderr).toContain(p);
      expectNoStack(r.stderr);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
  }, 60_000);
});

describe('standard output that fails', () => {
  it('/dev/full: OUTPUT_WRITE_FAILED, exit 3, no stack trace', async () => {
    const fd = openSync('/dev/full', 'w');
    try {
      const r = await runWithStdout(['violations', '--db', store], fd);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('OUTPUT_WRITE_FAILED');
      expectNoStack(r.stderr);
    } finally {
      closeSync(fd);
    }
  });

  it('a reader that goes away (| head): a quiet end, no error message', async () => {
    const r = await runWithStdout(['collect', 'pcap', SHOP_PCAP], 'pipe');
    expect(r.stderr).not.toContain('EPIPE');
    expectNoStack(r.stderr);
    expect(r.code === 0 || r.code === 1).toBe(true);
  });
});

describe('a reader who may read the store but not write its directory', () => {
  const nobody = /^nobody:/m.test(readFileSync('/etc/passwd', 'utf8')) && process.getuid?.() === 0;
  it('can query it (the writer leaves the file out of WAL mode when it closes)', () => {
    expect(nobody, 'this case runs the CLI as the user nobody: run the tests as root').toBe(true);
    const ro = join(dir, 'readonly');
    mkdirSync(ro, { mode: 0o755 });
    const p = join(ro, 'shop.db');
    copyFileSync(store, p);
    chmodSync(p, 0o644);
    expect(existsSync(`${p}-wal`)).toBe(false);
    const r = spawnSync(
      'setpriv',
      [
        '--reuid=nobody',
        '--regid=nogroup',
        '--clear-groups',
        process.execPath,
        join(ROOT, 'dist/cli/index.js'),
        'violations',
        '--db',
        p,
        '--format',
        'json',
      ],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const rows = JSON.parse(r.stdout) as { srcWorkload: string }[];
    expect(rows.map((x) => x.srcWorkload)).toEqual(['dev/debug-shell', 'dev/debug-shell']);
    expect(statSync(ro).mode & 0o777).toBe(0o755);
  });
});

describe('an output that is one of the inputs is refused before anything is written', () => {
  it('collect pcap X -o X: usage error, X unchanged', async () => {
    const p = join(dir, 'in.pcap');
    copyFileSync(SHOP_PCAP, p);
    const before = readFileSync(p);
    const r = await runCli(['collect', 'pcap', p, '-o', p]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is the input');
    expect(readFileSync(p).equals(before)).toBe(true);
  });

  it('collect pcap X -o ./other-name-of-X (a hard link): refused too', async () => {
    const p = join(dir, 'in2.pcap');
    copyFileSync(SHOP_PCAP, p);
    const link = join(dir, 'in2-link.pcap');
    linkSync(p, link);
    const r = await runCli(['collect', 'pcap', p, '-o', link]);
    expect(r.code).toBe(2);
    expect(statSync(p).size).toBe(statSync(SHOP_PCAP).size);
  });

  it('collect conntrack --input X -o X: usage error, X unchanged', async () => {
    const p = join(dir, 'events.log');
    copyFileSync(CONNTRACK_LOG, p);
    const before = readFileSync(p);
    const r = await runCli(['collect', 'conntrack', '--input', p, '-o', p]);
    expect(r.code).toBe(2);
    expect(readFileSync(p).equals(before)).toBe(true);
  });
});

describe('a conntrack log cut in its last line', () => {
  it('the cut line is an error and makes no flow (no phantom second flow from a cut id=)', async () => {
    const full = readFileSync(CONNTRACK_LOG, 'utf8');
    const lines = full.split('\n').filter((l) => l !== '');
    const last = lines[lines.length - 1]!;
    // Cut inside the last field, the conntrack id: `id=1559436897` becomes `id=15594`.
    const cut = last.slice(0, last.lastIndexOf('id=') + 8);
    const p = join(dir, 'cut.log');
    writeFileSync(p, `${lines.slice(0, -1).join('\n')}\n${cut}`);
    const whole = await runCli(['collect', 'conntrack', '--input', CONNTRACK_LOG]);
    const r = await runCli(['collect', 'conntrack', '--input', p]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CONNTRACK_TRUNCATED_LINE');
    expect(r.stderr).toContain(`line ${lines.length}`);
    const ids = (out: string) =>
      new Set(
        out
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => (JSON.parse(l) as { id?: string }).id),
      );
    // Every flow of the cut log is a flow of the whole log: nothing was invented from the cut id.
    const wholeIds = ids(whole.stdout);
    for (const id of ids(r.stdout)) expect(wholeIds.has(id)).toBe(true);
  });
});

describe('--since and --until without a time zone are UTC, as the docs say', () => {
  it('parseSince reads a zoneless date-time as UTC whatever TZ is', () => {
    expect(parseSince('2026-11-23T07:00', 0)).toBe(Date.UTC(2026, 10, 23, 7, 0));
    expect(parseSince('2026-11-23 07:00:30', 0)).toBe(Date.UTC(2026, 10, 23, 7, 0, 30));
    expect(parseSince('2026-11-23T07:00+02:00', 0)).toBe(Date.UTC(2026, 10, 23, 5, 0));
    expect(parseSince('2026-11-23', 0)).toBe(Date.UTC(2026, 10, 23));
  });

  it('violations --until/--since without a zone count in UTC under any TZ', async () => {
    // The shop's violations are at 07:15:59 UTC. Read in Tokyo time, --until 07:16 would mean
    // 22:16 UTC the day before (no violation); read in New York time, --since 07:15 would mean
    // 12:15 UTC (no violation). In UTC both include the two violations.
    const until = await runCli(
      ['violations', '--db', store, '--until', '2026-11-23T07:16', '--format', 'json'],
      {
        env: { TZ: 'Asia/Tokyo' },
      },
    );
    expect(until.code).toBe(0);
    expect((JSON.parse(until.stdout) as unknown[]).length).toBe(2);
    const since = await runCli(
      ['violations', '--db', store, '--since', '2026-11-23T07:15', '--format', 'json'],
      {
        env: { TZ: 'America/New_York' },
      },
    );
    expect(since.code).toBe(0);
    expect((JSON.parse(since.stdout) as unknown[]).length).toBe(2);
  });
});

import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli.js';

/**
 * Idempotent ingestion, through the built CLI: the same data fed twice, whichever way, is counted
 * once (docs/store.md, "Ingestion identity"). Every case compares the store with the store of one
 * clean run of the shop example.
 */

const CLI = resolve(ROOT, 'dist/cli/index.js');
const CAPTURE = resolve(ROOT, 'examples/shop/capture.pcap');
const CLUSTER = resolve(ROOT, 'examples/shop/cluster.yaml');

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function audit(db: string, ...captures: string[]): string {
  const r = cli(['audit', ...captures, '--cluster', CLUSTER, '--db', db]);
  expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
  expect(r.code).toBe(0);
  return r.stdout;
}

/** What the store says: violations, denied attempts and rule usage, counts included. */
function contents(db: string): unknown {
  const json = (args: string[]) => {
    const r = cli([...args, '--db', db, '--format', 'json']);
    expect(r.code).toBe(0);
    return (JSON.parse(r.stdout) as Record<string, unknown>[]).map((row) => {
      const { evidence: _evidence, ...rest } = row;
      return rest;
    });
  };
  return {
    violations: json(['violations']),
    attempts: json(['violations', '--attempts']),
    rules: json(['rules']).map((r) => ({ ...r, definedFirst: 0, definedLast: 0 })),
  };
}

/** A classic little-endian microsecond pcap, split into its records. */
function pcapRecords(buf: Buffer): { header: Buffer; records: Buffer[] } {
  expect(buf.readUInt32LE(0)).toBe(0xa1b2c3d4);
  const records: Buffer[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const len = buf.readUInt32LE(off + 8);
    records.push(buf.subarray(off, off + 16 + len));
    off += 16 + len;
  }
  return { header: buf.subarray(0, 24), records };
}

/** The capture with every packet's timestamp moved by `ms` (another node's clock). */
function shifted(buf: Buffer, ms: number): Buffer {
  const { header, records } = pcapRecords(buf);
  const out = records.map((r) => {
    const c = Buffer.from(r);
    const us = c.readUInt32LE(0) * 1_000_000 + c.readUInt32LE(4) + ms * 1000;
    c.writeUInt32LE(Math.floor(us / 1_000_000), 0);
    c.writeUInt32LE(us % 1_000_000, 4);
    return c;
  });
  return Buffer.concat([header, ...out]);
}

let dir: string;
let reference: unknown;
const capture = readFileSync(CAPTURE);
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'npa-idem-'));
  const db = join(dir, 'reference.db');
  audit(db, CAPTURE);
  reference = contents(db);
  // 200,000 generated packets: ~27,500 flows, several batches of 5000, for the interrupted runs.
  const big = join(dir, 'big.pcap');
  const gen = spawnSync(
    process.execPath,
    ['--import', 'tsx', resolve(ROOT, 'bench/gen-capture.ts'), '--packets', '200000', '--out', big],
    { cwd: ROOT, encoding: 'utf8' },
  );
  expect(gen.status).toBe(0);
  audit(join(dir, 'big-clean.db'), big);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('idempotent ingestion (CLI)', () => {
  it('the same capture audited twice into one store is counted once, and the second run says so', () => {
    const db = join(dir, 'twice.db');
    audit(db, CAPTURE);
    const second = audit(db, CAPTURE);
    expect(second).toMatch(/23 flows already in the store/);
    expect(contents(db)).toEqual(reference);
  });

  it('the same capture given twice in one run (a copy under another name) is counted once', () => {
    const db = join(dir, 'copy.db');
    const copy = join(dir, 'copy.pcap');
    writeFileSync(copy, capture);
    audit(db, CAPTURE, copy);
    expect(contents(db)).toEqual(reference);
  });

  it('one flow seen by two observers, their clocks 400 ms apart, is counted once', () => {
    const db = join(dir, 'observers.db');
    const other = join(dir, 'node-b.pcap');
    writeFileSync(other, shifted(capture, 400));
    audit(db, CAPTURE);
    const r = cli(['audit', other, '--cluster', CLUSTER, '--db', db, '--node', 'node-b']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/23 flows already in the store/);
    expect(contents(db)).toEqual(reference);
  });

  it('the same conversations 10 s later are new flows (beyond the tolerance), and are counted', () => {
    const db = join(dir, 'later.db');
    const later = join(dir, 'later.pcap');
    writeFileSync(later, shifted(capture, 10_000));
    audit(db, CAPTURE, later);
    const v = (contents(db) as { violations: { flows: number }[] }).violations;
    expect(v.reduce((n, r) => n + r.flows, 0)).toBe(4);
  });

  it('overlapping captures (a rotation cut, then the whole capture again): each flow counted once', () => {
    const db = join(dir, 'overlap.db');
    const { header, records } = pcapRecords(capture);
    const head = join(dir, 'head.pcap');
    writeFileSync(head, Buffer.concat([header, ...records.slice(0, Math.floor(records.length * 0.6))]));
    audit(db, head);
    const second = audit(db, CAPTURE);
    // The run says which flows it saw larger than the store kept.
    expect(second).toMatch(
      /already in the store .* \(\d+ seen here with more packets: the store keeps the first observation\)/,
    );
    // Flow counts are those of one clean run. Packets and bytes of a flow cut by the first capture
    // are those of the first observation stored (the documented rule: the first one counted stays).
    const strip = (c: unknown) => {
      const x = c as Record<string, { flows?: number; hits?: number }[]>;
      return {
        violations: x.violations!.map((r) => r.flows),
        attempts: x.attempts!.map((r) => r.flows),
        rules: x.rules!.map((r) => r.hits),
      };
    };
    expect(strip(contents(db))).toEqual(strip(reference));
  });

  it('a run SIGKILLed mid-way, then run again, leaves the store of one clean run', async () => {
    // The kill usually lands after some batches committed. Wherever it lands, the rerun must end
    // with the clean store.
    const big = join(dir, 'big.pcap');
    const clean = join(dir, 'big-clean.db');

    const db = join(dir, 'big-killed.db');
    const child = spawn(process.execPath, [CLI, 'audit', big, '--cluster', CLUSTER, '--db', db], {
      cwd: ROOT,
      stdio: 'ignore',
    });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    let atKill = 0;
    for (let i = 0; i < 3000 && child.exitCode === null; i++) {
      atKill = edgeTotals(db).flows;
      if (atKill > 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGKILL');
    await exited;
    const unfinished = new Database(db, { readonly: true });
    const runs = unfinished.prepare('SELECT finished_wall FROM runs').all();
    unfinished.close();
    // Either killed with a partial store (the case this is about) or it had finished: both must converge.
    expect(runs).toHaveLength(1);

    const rerun = audit(db, big);
    if (atKill > 0) expect(rerun).toMatch(/flows? already in the store/);
    // The interrupted run is marked as completed by the rerun (runs.resumed_by).
    if ((runs[0] as { finished_wall: number | null }).finished_wall === null) {
      expect(rerun).toMatch(/completes interrupted run 1 of the same inputs/);
      const d = new Database(db, { readonly: true });
      expect(d.prepare('SELECT id, resumed_by FROM runs ORDER BY id').all()).toEqual([
        { id: 1, resumed_by: 2 },
        { id: 2, resumed_by: null },
      ]);
      d.close();
    }
    expect(edgeTotals(db)).toEqual(edgeTotals(clean));
    expect(contents(db)).toEqual(contents(clean));
  }, 60_000);

  it('a run stopped by a full disk (3 MB tmpfs), rerun once there is room, leaves the store of one clean run', () => {
    const big = join(dir, 'big.pcap');
    const mnt = join(dir, 'small-disk');
    mkdirSync(mnt);
    // Like test/netns: needs root (a tmpfs mount); the suite runs as root in CI.
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (mount.status !== 0)
      throw new Error(`the full-disk case must run as root (mount tmpfs): ${mount.stderr}`);
    const db = join(mnt, 'full.db');
    try {
      const r = cli(['audit', big, '--cluster', CLUSTER, '--db', db]);
      // A full disk is a fatal store failure: its code, the path, exit 3, no stack trace.
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('STORE_FULL');
      expect(r.stderr).toContain(db);
      expect(r.stderr).not.toMatch(/^\s+at /m);
      // A full disk under the store is not a problem of the capture.
      expect(r.stderr).not.toContain('CAPTURE_UNREADABLE');
      // Some batches committed before the disk filled: the case a rerun must not count twice.
      expect(edgeTotals(db).flows).toBeGreaterThan(0);
    } finally {
      // "There is room again": the store moves to a roomy disk, as an operator would.
      for (const ext of ['', '-wal', '-shm'])
        if (existsSync(db + ext)) copyFileSync(db + ext, join(dir, `moved.db${ext}`));
      spawnSync('umount', [mnt]);
    }
    const moved = join(dir, 'moved.db');
    const rerun = audit(moved, big);
    expect(rerun).toMatch(/flows already in the store/);
    expect(rerun).toMatch(/completes interrupted run 1 of the same inputs/);
    expect(edgeTotals(moved)).toEqual(edgeTotals(join(dir, 'big-clean.db')));
    expect(contents(moved)).toEqual(contents(join(dir, 'big-clean.db')));
  }, 60_000);
});

/** Flows, packets and bytes of every edge in the store (0 when it cannot be read yet). */
function edgeTotals(db: string): { flows: number; packets: number; bytes: number } {
  try {
    const d = new Database(db, { readonly: true, fileMustExist: true });
    try {
      return d
        .prepare(
          'SELECT coalesce(sum(flows), 0) AS flows, coalesce(sum(packets), 0) AS packets, coalesce(sum(bytes), 0) AS bytes FROM edges_hourly',
        )
        .get() as { flows: number; packets: number; bytes: number };
    } finally {
      d.close();
    }
  } catch {
    return { flows: 0, packets: 0, bytes: 0 };
  }
}

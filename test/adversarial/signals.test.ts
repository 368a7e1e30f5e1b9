/**
 * SIGINT and SIGTERM on a stream input (issue #10): `tcpdump -w - | netpol-audit collect pcap -` and
 * `audit -` are stopped by a signal, and must flush the flows they hold, record the run and print
 * the summary, as if the input had ended there. Real processes (the built CLI); standard input is
 * kept open, as a live capture's pipe is.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli.js';

const CLI = resolve(ROOT, 'dist/cli/index.js');
const CAPTURE = join(ROOT, 'examples/shop/capture.pcap');
const CLUSTER = join(ROOT, 'examples/shop/cluster.yaml');
const dir = mkdtempSync(join(tmpdir(), 'netpol-signals-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function bytesRead(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(/^rchar: (\d+)$/m.exec(io)![1]);
}

/**
 * Starts the CLI with `input` on a standard input that stays open, waits until it has read it all
 * (its read count has grown past the input and stopped growing: it waits on the pipe), then sends
 * `signal` and collects what it wrote.
 */
async function stopAfterReading(args: string[], input: Buffer, signal: NodeJS.Signals): Promise<Exit> {
  const child: ChildProcess = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NETPOL_AUDIT_LOG_PRETTY: '0' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.stdin!.write(input);
  let last = -1;
  let stable = 0;
  for (let i = 0; i < 600 && stable < 5; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const n = bytesRead(child.pid!);
    stable = n === last && n >= input.length ? stable + 1 : 0;
    last = n;
  }
  child.kill(signal);
  const code = await exited;
  child.stdin!.destroy();
  return { code, stdout, stderr };
}

const capture = readFileSync(CAPTURE);

function fromFile(args: string[]): Exit {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('collect pcap - stopped by a signal', () => {
  const expected = fromFile(['collect', 'pcap', CAPTURE]).stdout.trim().split('\n');

  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    it(`${sig}: every flow read is written, the summary printed, exit 0`, async () => {
      expect(expected.length).toBeGreaterThan(10);
      const r = await stopAfterReading(['collect', 'pcap', '-'], capture, sig);
      expect(r.code).toBe(0);
      const got = r.stdout.trim().split('\n');
      // The same flows as from the file (the file's name is not in them: observer.file is absent for stdin).
      const key = (l: string) => {
        const f = JSON.parse(l);
        return `${f.proto} ${f.src.ip}:${f.src.port} ${f.dst.ip}:${f.dst.port} ${f.packets.fwd}/${f.packets.rev}`;
      };
      expect(got.map(key).sort()).toEqual(expected.map(key).sort());
      expect(r.stderr).toMatch(/collect pcap: 1 input\(s\), \d+ packets/);
      expect(r.stderr).toContain(`stopped by ${sig}`);
      expect(r.stderr).not.toContain('    at ');
    });
});

describe('audit - stopped by a signal', () => {
  it('SIGINT: the flows read are judged and stored, the run finished, the summary printed', async () => {
    const db = join(dir, 'stdin.db');
    const r = await stopAfterReading(
      ['audit', '-', '--cluster', CLUSTER, '--db', db, '--format', 'json'],
      capture,
      'SIGINT',
    );
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    const whole = JSON.parse(
      fromFile(['audit', CAPTURE, '--cluster', CLUSTER, '--db', join(dir, 'file.db'), '--format', 'json'])
        .stdout,
    );
    expect(s.flows).toEqual(whole.flows);
    expect(s.input.stopped).toBe(true);
    expect(s.violations.map((v: { dstWorkload: string }) => v.dstWorkload).sort()).toEqual([
      'shop/cart',
      'shop/payments',
    ]);
    // The run is recorded as finished, stopped by the signal: the report can assess the period.
    const rep = fromFile(['report', '--db', db, '--format', 'json']);
    expect(JSON.parse(rep.stdout).assessment).toBe('not-compliant');
    const Database = (await import('better-sqlite3')).default;
    const sql = new Database(db, { readonly: true });
    const run = sql.prepare('SELECT finished_wall, stats FROM runs').get() as {
      finished_wall: number | null;
      stats: string;
    };
    sql.close();
    expect(run.finished_wall).not.toBeNull();
    expect(JSON.parse(run.stats).stoppedBy).toBe('SIGINT');
  });

  it('a file cut by the signal: what was read is stored, the run stays unfinished: violations stand, unused rules cannot be assessed', async () => {
    // A capture file that is a named pipe: the audit reads what is written and waits for more.
    const fifo = join(dir, 'capture-fifo.pcap');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const db = join(dir, 'cut-file.db');
    const child = spawn(process.execPath, [CLI, 'audit', fifo, '--cluster', CLUSTER, '--db', db], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const { createWriteStream } = await import('node:fs');
    const writer = createWriteStream(fifo);
    writer.write(capture);
    let last = -1;
    let stable = 0;
    for (let i = 0; i < 600 && stable < 5; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const n = bytesRead(child.pid!);
      stable = n === last && n >= capture.length ? stable + 1 : 0;
      last = n;
    }
    child.kill('SIGINT');
    // A read from a pipe blocks a thread until data or the end comes (a regular file never does):
    // once the signal has cut the input, let the pending read return.
    await new Promise((r) => setTimeout(r, 300));
    writer.end();
    const code = await exited;
    expect(code).toBe(0);
    expect(stdout).toContain('stopped by a signal before the end of');
    expect(stdout).toContain('the run stays unfinished');
    const Database = (await import('better-sqlite3')).default;
    const sql = new Database(db, { readonly: true });
    const run = sql.prepare('SELECT finished_wall, stats FROM runs').get() as {
      finished_wall: number | null;
      stats: string;
    };
    const flows = (sql.prepare('SELECT sum(flows) AS n FROM edges_hourly').get() as { n: number }).n;
    sql.close();
    expect(run.finished_wall).toBeNull();
    expect(JSON.parse(run.stats)).toMatchObject({ interrupted: true, stoppedBy: 'SIGINT' });
    expect(flows).toBeGreaterThan(10);
    const rep = fromFile(['report', '--db', db, '--format', 'json']);
    expect(JSON.parse(rep.stdout).assessment).toBe('not-compliant');
    const none = fromFile(['rules', '--db', db, '--unused', '--since', '7d']);
    expect(none.code).toBe(4);
  });
});

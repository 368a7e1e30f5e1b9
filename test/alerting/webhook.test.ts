/**
 * Alerts through a signed webhook (issue #12), end to end: the real CLI audits the shop capture with
 * --alerts, a receiver in this test (a real HTTP server on loopback) verifies every signature and
 * answers as scripted: 500 then 200 (retried with the same idempotency key), 429 with Retry-After
 * (honoured), a hang (timed out, retried), 400 (kept as failed, visible in `netpol-audit alerts`).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AlertPayload, AlertPayloadSchema } from '../../schema/alert.js';
import { ROOT, runCli } from '../support/cli.js';

const SECRET = 'test-secret-9f2c';
const dir = mkdtempSync(join(tmpdir(), 'netpol-webhook-'));
const CAPTURE = join(ROOT, 'examples/shop/capture.pcap');
const CLUSTER = join(ROOT, 'examples/shop/cluster.yaml');

interface Received {
  path: string;
  key: string;
  payload: AlertPayload;
  at: number;
}

/** A webhook receiver: verifies signatures, then answers per path with the script given. */
class Receiver {
  server!: Server;
  received: Received[] = [];
  badSignatures = 0;
  /** Per path: the answers to give in turn (the last one repeats). */
  script = new Map<string, ((res: ServerResponse) => void)[]>();
  private seen = new Map<string, number>();

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const sig = String(req.headers['x-netpol-audit-signature'] ?? '');
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig);
      const expected = m ? createHmac('sha256', SECRET).update(`${m[1]}.${body}`).digest() : undefined;
      if (
        !m ||
        !expected ||
        !timingSafeEqual(expected, Buffer.from(m[2]!, 'hex')) ||
        Math.abs(Date.now() / 1000 - Number(m[1])) > 300
      ) {
        this.badSignatures++;
        res.writeHead(401).end('bad signature');
        return;
      }
      const path = req.url ?? '/';
      this.received.push({
        path,
        key: String(req.headers['idempotency-key']),
        payload: JSON.parse(body),
        at: Date.now(),
      });
      const answers = this.script.get(path) ?? [];
      const n = this.seen.get(path) ?? 0;
      this.seen.set(path, n + 1);
      const answer = answers[Math.min(n, answers.length - 1)];
      if (answer) answer(res);
      else res.writeHead(200).end('ok');
    });
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const receiver = new Receiver();
let base: string;
beforeAll(async () => {
  base = await receiver.start();
});
afterAll(async () => {
  await receiver.stop();
  rmSync(dir, { recursive: true, force: true });
});

function config(name: string, path: string, extra = ''): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `receivers:\n  - name: hook\n    type: webhook\n    url: ${base}${path}\n    secret: {env: HOOK_SECRET}\n    timeout: 1s\n${extra}`,
  );
  return file;
}

const env = { HOOK_SECRET: SECRET };

describe('alerts to a signed webhook', () => {
  it('each violation of the shop capture arrives once, signed, with the payload schema', async () => {
    const db = join(dir, 'ok.db');
    const r = await runCli(
      ['audit', CAPTURE, '--cluster', CLUSTER, '--db', db, '--alerts', config('ok', '/ok')],
      { env },
    );
    expect(r.stderr).not.toContain('    at ');
    expect(r.stdout).toMatch(
      /ALERTS: 2 raised, 0 repeated, 0 resolved, 2 firing; 2 notifications: 2 sent, 0 failed, 0 pending/,
    );
    const got = receiver.received.filter((x) => x.path === '/ok');
    expect(
      got
        .map(
          (x) => `${x.payload.key.src} -> ${x.payload.key.dst} ${x.payload.key.proto}/${x.payload.key.port}`,
        )
        .sort(),
    ).toEqual(['dev/debug-shell -> shop/cart TCP/8080', 'dev/debug-shell -> shop/payments TCP/9000']);
    for (const x of got) {
      expect(x.payload).toMatchObject({ v: 1, kind: 'violation', status: 'firing', severity: 'critical' });
      expect(x.key).toBe(x.payload.id);
      expect(x.payload.policies).toContain('shop/default-deny-ingress');
      expect(x.payload.names.src).toEqual(['10-244-2-40.dev.pod.cluster.local']);
    }
    expect(receiver.badSignatures).toBe(0);
    // The same capture again: counted once, so alerted once.
    const again = await runCli(
      ['audit', CAPTURE, '--cluster', CLUSTER, '--db', db, '--alerts', config('ok', '/ok')],
      { env },
    );
    expect(again.stdout).toMatch(/ALERTS: 0 raised/);
    expect(receiver.received.filter((x) => x.path === '/ok')).toHaveLength(2);
  });

  it('500 then 200: retried with the same idempotency key; 429 Retry-After honoured', async () => {
    receiver.script.set('/flaky', [
      (res) => res.writeHead(500).end('boom'),
      (res) => res.writeHead(200).end(),
    ]);
    receiver.script.set('/busy', [
      (res) => res.writeHead(429, { 'retry-after': '2' }).end('slow down'),
      (res) => res.writeHead(200).end(),
    ]);
    const db = join(dir, 'retry.db');
    const both = `  - name: busy\n    type: webhook\n    url: ${base}/busy\n    secret: {env: HOOK_SECRET}\n`;
    const r = await runCli(
      [
        'audit',
        CAPTURE,
        '--cluster',
        CLUSTER,
        '--db',
        db,
        '--alerts',
        config('retry', '/flaky', both),
        '--alerts-drain',
        '20s',
      ],
      { env },
    );
    expect(r.stdout).toMatch(/4 notifications: 4 sent, 0 failed, 0 pending/);
    const flaky = receiver.received.filter((x) => x.path === '/flaky');
    // Two alerts, the first attempt of each answered 500... only the first request overall was.
    expect(flaky.length).toBe(3);
    const byKey = new Map<string, number>();
    for (const x of flaky) byKey.set(x.key, (byKey.get(x.key) ?? 0) + 1);
    expect([...byKey.values()].sort()).toEqual([1, 2]);
    const busy = receiver.received.filter((x) => x.path === '/busy');
    expect(busy.length).toBe(3);
    const retried = busy.find((x, i) => busy.findIndex((y) => y.key === x.key) !== i)!;
    const firstTry = busy.find((x) => x.key === retried.key)!;
    expect(retried.at - firstTry.at).toBeGreaterThanOrEqual(1900);
  });

  it('a receiver that hangs is timed out and retried; one that answers 400 is kept as failed and listed', async () => {
    receiver.script.set('/hang', [() => {}, (res) => res.writeHead(200).end()]);
    receiver.script.set('/reject', [(res) => res.writeHead(400).end('unknown field')]);
    const reject = `  - name: reject\n    type: webhook\n    url: ${base}/reject\n    secret: {env: HOOK_SECRET}\n`;
    const db = join(dir, 'hang.db');
    const r = await runCli(
      [
        'audit',
        CAPTURE,
        '--cluster',
        CLUSTER,
        '--db',
        db,
        '--alerts',
        config('hang', '/hang', reject),
        '--alerts-drain',
        '20s',
      ],
      { env },
    );
    expect(r.stdout).toMatch(/4 notifications: 2 sent, 2 failed, 0 pending/);
    expect(receiver.received.filter((x) => x.path === '/hang').length).toBe(3);
    const list = await runCli(['alerts', '--db', db, '--state', 'failed', '--format', 'json']);
    expect(list.code).toBe(1);
    const failed = JSON.parse(list.stdout) as {
      receiver: string;
      lastStatus: number;
      lastError: string;
      attempts: number;
    }[];
    expect(failed).toHaveLength(2);
    for (const f of failed)
      expect(f).toMatchObject({
        receiver: 'reject',
        lastStatus: 400,
        attempts: 1,
        lastError: 'HTTP 400: unknown field',
      });
    const hang = JSON.parse((await runCli(['alerts', '--db', db, '--format', 'json'])).stdout) as {
      receiver: string;
      attempts: number;
      state: string;
    }[];
    expect(hang.filter((x) => x.receiver === 'hook').map((x) => x.state)).toEqual(['sent', 'sent']);
  });

  it('a secret never appears in output, and a bad config names the file and the key', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      `receivers:\n  - name: hook\n    type: webhook\n    url: ${base}/x\n    secret: {env: NOT_SET_ANYWHERE}\n`,
    );
    const r = await runCli([
      'audit',
      CAPTURE,
      '--cluster',
      CLUSTER,
      '--db',
      join(dir, 'bad.db'),
      '--alerts',
      bad,
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('ALERTS_CONFIG_INVALID');
    expect(r.stderr).toContain(bad);
    expect(r.stderr).toContain('receivers[0].secret.env');
    const typo = join(dir, 'typo.yaml');
    writeFileSync(typo, `receivers:\n  - name: hook\n    type: webhok\n    url: ${base}/x\n`);
    const t = await runCli([
      'audit',
      CAPTURE,
      '--cluster',
      CLUSTER,
      '--db',
      join(dir, 'typo.db'),
      '--alerts',
      typo,
    ]);
    expect(t.stderr).toMatch(
      /receivers\[0\]\.type: expected one of alertmanager, webhook, slack, got "webhok"/,
    );
    const ok = await runCli(
      [
        'audit',
        CAPTURE,
        '--cluster',
        CLUSTER,
        '--db',
        join(dir, 's.db'),
        '--alerts',
        config('s', '/s'),
        '--format',
        'json',
      ],
      { env },
    );
    expect(ok.stdout + ok.stderr).not.toContain(SECRET);
  });

  it('SIGKILLed with deliveries pending: nothing is lost; the next delivery sends each notification once', async () => {
    // The receiver hangs: the audit is killed while it waits for it (its rows are pending in SQLite).
    receiver.script.set('/kill', [() => {}]);
    const db = join(dir, 'kill.db');
    const { spawn } = await import('node:child_process');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'cli/index.ts'),
        'audit',
        CAPTURE,
        '--cluster',
        CLUSTER,
        '--db',
        db,
        '--alerts',
        config('kill', '/kill'),
        '--alerts-drain',
        '60s',
      ],
      { cwd: ROOT, env: { ...process.env, ...env }, stdio: 'ignore' },
    );
    const exited = new Promise((r) => child.once('exit', r));
    for (let i = 0; i < 600 && receiver.received.filter((x) => x.path === '/kill').length === 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGKILL');
    await exited;
    const pending = JSON.parse(
      (await runCli(['alerts', '--db', db, '--state', 'pending', '--format', 'json'])).stdout,
    );
    expect(pending).toHaveLength(2);
    // The receiver is back: delivery resumes from the store.
    receiver.script.set('/kill', [(res) => res.writeHead(200).end()]);
    const before = receiver.received.filter((x) => x.path === '/kill').length;
    const r = await runCli(
      ['alerts', '--db', db, '--deliver', '--alerts', config('kill', '/kill'), '--format', 'json'],
      { env },
    );
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as { state: string }[];
    expect(rows.map((x) => x.state)).toEqual(['sent', 'sent']);
    const after = receiver.received.filter((x) => x.path === '/kill').slice(before);
    expect(after).toHaveLength(2);
    expect(new Set(after.map((x) => x.key)).size).toBe(2);
    // Delivering again sends nothing more.
    await runCli(['alerts', '--db', db, '--deliver', '--alerts', config('kill', '/kill')], { env });
    expect(receiver.received.filter((x) => x.path === '/kill').length).toBe(before + 2);
  });

  it('Slack: Block Kit a phone can read, and names that cannot forge links or mentions', async () => {
    const bodies: { text: string; blocks: { type: string; text?: { type: string; text: string } }[] }[] = [];
    const { createServer: cs } = await import('node:http');
    const slack = cs((req, res) => {
      let b = '';
      req.on('data', (d) => (b += d));
      req.on('end', () => {
        bodies.push(JSON.parse(b));
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => slack.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(slack.address() as AddressInfo).port}/services/T0/B0/x`;
    const { readFileSync } = await import('node:fs');
    const hostile = readFileSync(CLUSTER, 'utf8').replace(
      '    name: debug-shell\n',
      '    name: "<!channel> <https://evil.example|click> & co"\n',
    );
    const cluster = join(dir, 'hostile.yaml');
    writeFileSync(cluster, hostile);
    const file = join(dir, 'slack.yaml');
    writeFileSync(file, `receivers:\n  - name: chat\n    type: slack\n    url: ${url}\n`);
    const r = await runCli([
      'audit',
      CAPTURE,
      '--cluster',
      cluster,
      '--db',
      join(dir, 'slack.db'),
      '--alerts',
      file,
    ]);
    slack.close();
    expect(r.stdout).toMatch(/2 notifications: 2 sent/);
    expect(bodies).toHaveLength(2);
    for (const b of bodies) {
      const section = b.blocks[0]!;
      expect(section.type).toBe('section');
      expect(section.text!.type).toBe('mrkdwn');
      const text = section.text!.text;
      expect(text).toContain('Violation: dev/');
      expect(text.split('\n').length).toBeLessThanOrEqual(5);
      // Slack's control characters from the cluster are escaped: no mention, no link.
      expect(text).not.toContain('<!channel>');
      expect(text).not.toContain('<https://evil.example');
      expect(text).toContain('&lt;!channel&gt;');
      expect(b.text).not.toContain('<!channel>');
    }
  });
});

describe('report --notify: the compliance summary through the receivers', () => {
  it('sends one signed notification of kind report, keyed by the week, critical when not compliant', async () => {
    const db = join(dir, 'report.db');
    const a = await runCli(['audit', CAPTURE, '--cluster', CLUSTER, '--db', db]);
    expect(a.code, a.stderr).toBe(0);
    const before = receiver.received.length;
    const r = await runCli(
      [
        'report',
        '--db',
        db,
        '--week',
        '2026-W48',
        '--format',
        'text',
        '--notify',
        config('report', '/report'),
      ],
      { env },
    );
    expect(r.stderr).toContain('report: summary to hook: sent (HTTP 200)');
    expect(r.code).toBe(0);
    const got = receiver.received.slice(before);
    expect(got).toHaveLength(1);
    const p = got[0]!.payload;
    expect(Value.Errors(AlertPayloadSchema, p).First()).toBeUndefined();
    expect(p).toMatchObject({
      kind: 'report',
      severity: 'critical',
      key: { src: '2026-W48' },
      status: 'firing',
    });
    expect(p.summary).toMatch(/^Not compliant: 2 connection\(s\)/);
    expect(p.counts.flows).toBe(23);
    expect(got[0]!.key).toBe('report|2026-W48|not-compliant');
  });

  it('a receiver that refuses the summary makes the job fail (exit 1), saying which and why', async () => {
    receiver.script.set('/refuse', [(res) => res.writeHead(400).end('no thanks')]);
    const r = await runCli(
      [
        'report',
        '--db',
        join(dir, 'report.db'),
        '--week',
        '2026-W48',
        '--format',
        'json',
        '--notify',
        config('refuse', '/refuse'),
      ],
      { env },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/report: summary to hook: failed \(HTTP 400\)/);
  });
});

/**
 * Alerts into a real Alertmanager (issue #12), built from its Go module: the shop capture's
 * violations arrive with the right labels; a silence made through its API suppresses one; the data
 * moving past the resolve timeout resolves them; an Alertmanager down during the run gets every
 * alert once it is back, none twice.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../support/cli.js';
import { freePort } from '../support/net.js';
import { Alertmanager, alertmanagerBinary } from './alertmanager.js';

const CAPTURE = join(ROOT, 'examples/shop/capture.pcap');
const CLUSTER = join(ROOT, 'examples/shop/cluster.yaml');
const dir = mkdtempSync(join(tmpdir(), 'netpol-am-test-'));
let bin: string;
const instances: Alertmanager[] = [];

beforeAll(async () => {
  bin = alertmanagerBinary();
}, 900_000);
afterAll(async () => {
  for (const a of instances) {
    await a.stop();
    a.cleanup();
  }
  rmSync(dir, { recursive: true, force: true });
});

async function alertmanager(): Promise<Alertmanager> {
  const am = new Alertmanager(bin, await freePort());
  instances.push(am);
  await am.start();
  return am;
}

function config(name: string, urls: string[]): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `receivers:\n  - name: am\n    type: alertmanager\n    urls: [${urls.join(', ')}]\n    timeout: 2s\n`,
  );
  return file;
}

/** The shop capture's first `n` packets, moved `hours` later (pcap, little-endian headers). */
function shifted(n: number, hours: number): string {
  const d = Buffer.from(readFileSync(CAPTURE));
  let off = 24;
  for (let i = 0; i < n; i++) {
    d.writeUInt32LE(d.readUInt32LE(off) + hours * 3600, off);
    off += 16 + d.readUInt32LE(off + 8);
  }
  const p = join(dir, `shifted-${n}-${hours}.pcap`);
  writeFileSync(p, d.subarray(0, off));
  return p;
}

describe('alerts into a real Alertmanager', () => {
  let am: Alertmanager;
  const db = join(dir, 'am.db');

  it('the shop violations arrive as NetworkPolicyViolation alerts with their labels', async () => {
    am = await alertmanager();
    const r = await runCli([
      'audit',
      CAPTURE,
      '--cluster',
      CLUSTER,
      '--db',
      db,
      '--alerts',
      config('one', [am.url]),
    ]);
    expect(r.stdout).toMatch(/ALERTS: 2 raised.*2 sent, 0 failed, 0 pending/);
    const alerts = await am.alerts();
    expect(
      alerts.map((a) => `${a.labels.dst_namespace}/${a.labels.dst_workload}:${a.labels.port}`).sort(),
    ).toEqual(['shop/cart:8080', 'shop/payments:9000']);
    for (const a of alerts) {
      expect(a.labels).toMatchObject({
        alertname: 'NetworkPolicyViolation',
        severity: 'critical',
        src_namespace: 'dev',
        src_workload: 'debug-shell',
        protocol: 'TCP',
      });
      expect(a.annotations.src_names).toBe('10-244-2-40.dev.pod.cluster.local');
      expect(a.annotations.policies).toContain('shop/default-deny-ingress');
      expect(a.startsAt.startsWith('2026-11-23T07:15:59')).toBe(true);
      expect(a.status.state).toBe('active');
    }
  });

  it('a silence created through its API suppresses the matching alert', async () => {
    const id = await am.silence({ alertname: 'NetworkPolicyViolation', dst_workload: 'cart' });
    const alerts = await am.alerts();
    const cart = alerts.find((a) => a.labels.dst_workload === 'cart')!;
    const payments = alerts.find((a) => a.labels.dst_workload === 'payments')!;
    expect(cart.status).toMatchObject({ state: 'suppressed', silencedBy: [id] });
    expect(payments.status.state).toBe('active');
  });

  it('data that moves past the resolve timeout resolves them: Alertmanager holds them no more', async () => {
    // Two hours later, only allowed traffic (the packets before the debug pod's): the violations are
    // quiet for more than the 1 h resolve timeout.
    const later = shifted(39, 2);
    const r = await runCli([
      'audit',
      later,
      '--cluster',
      CLUSTER,
      '--db',
      db,
      '--alerts',
      config('one', [am.url]),
    ]);
    expect(r.stdout).toMatch(/ALERTS: 0 raised, 0 repeated, 2 resolved, 0 firing; 2 notifications: 2 sent/);
    expect(await am.alerts()).toEqual([]);
    const outbox = JSON.parse((await runCli(['alerts', '--db', db, '--format', 'json'])).stdout) as {
      event: string;
    }[];
    expect(outbox.map((x) => x.event)).toEqual(['firing', 'firing', 'resolved', 'resolved']);
  });

  it('an Alertmanager down during the run gets every alert once it is back, none twice; HA: each instance gets all', async () => {
    const a = await alertmanager();
    const b = await alertmanager();
    await b.stop();
    const db2 = join(dir, 'down.db');
    const run = runCli([
      'audit',
      CAPTURE,
      '--cluster',
      CLUSTER,
      '--db',
      db2,
      '--alerts',
      config('ha', [a.url, b.url]),
      '--alerts-drain',
      '60s',
    ]);
    // b comes back once the audit has tried it and failed (read from the outbox as it runs).
    const Database = (await import('better-sqlite3')).default;
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        const sql = new Database(db2, { readonly: true, fileMustExist: true });
        const tried = sql
          .prepare(
            "SELECT count(*) AS n FROM alert_outbox WHERE receiver = 'am[1]' AND attempts >= 1 AND state = 'pending'",
          )
          .get() as { n: number };
        sql.close();
        if (tried.n > 0) break;
      } catch {
        // The store or its outbox is not there yet.
      }
    }
    await b.start();
    const r = await run;
    expect(r.stdout).toMatch(/4 notifications: 4 sent, 0 failed, 0 pending/);
    for (const inst of [a, b]) expect((await inst.alerts()).length).toBe(2);
    const rows = JSON.parse((await runCli(['alerts', '--db', db2, '--format', 'json'])).stdout) as {
      receiver: string;
      attempts: number;
    }[];
    expect(rows.filter((x) => x.receiver === 'am[1]').every((x) => x.attempts >= 2)).toBe(true);
    expect(rows.filter((x) => x.receiver === 'am[0]').every((x) => x.attempts === 1)).toBe(true);
  });
});

/**
 * Hostile and unlucky inputs against the audit's honesty (issue #10, "honesty" part): an audit never
 * reports Compliant on evidence it does not have. Every case runs the real CLI on real files and a
 * real SQLite store, and asserts the outcome (exit status, what was stored, what was said).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../support/cli.js';

const SHOP_PCAP = join(ROOT, 'examples/shop/capture.pcap');
const SHOP_CLUSTER = join(ROOT, 'examples/shop/cluster.yaml');
const dir = mkdtempSync(join(tmpdir(), 'netpol-honesty-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const path = (name: string) => join(dir, `${n++}-${name}`);

function file(name: string, content: string | Buffer): string {
  const p = path(name);
  writeFileSync(p, content);
  return p;
}

/** The shop capture with one packet's seconds field replaced (pcap, little-endian headers). */
function shopWithPacketTime(index: number, seconds: number): string {
  const d = Buffer.from(readFileSync(SHOP_PCAP));
  let off = 24;
  for (let i = 0; i < index; i++) off += 16 + d.readUInt32LE(off + 8);
  d.writeUInt32LE(seconds, off);
  return file('skewed.pcap', d);
}

describe('a bad cluster snapshot stops audit before anything is stored', () => {
  const cases: [string, () => string, string][] = [
    ['missing', () => join(dir, 'does-not-exist.yaml'), 'AUDIT_SNAPSHOT_UNUSABLE'],
    ['0 bytes (a failed kubectl get > cluster.yaml)', () => file('empty.yaml', ''), 'AUDIT_SNAPSHOT_EMPTY'],
    ['invalid YAML', () => file('bad.yaml', 'items: [\n  - kind: Pod\n'), 'AUDIT_SNAPSHOT_UNUSABLE'],
    ['invalid JSON', () => file('bad.json', '{"kind": "List", "items": [}'), 'AUDIT_SNAPSHOT_UNUSABLE'],
    ['only comments', () => file('comments.yaml', '# nothing here\n---\n'), 'AUDIT_SNAPSHOT_EMPTY'],
    ['a directory', () => dir, 'AUDIT_SNAPSHOT_UNUSABLE'],
  ];
  for (const [what, make, code] of cases)
    it(`${what}: exit 3, ${code}, no store created`, async () => {
      const db = path('snap.db');
      const r = await runCli(['audit', SHOP_PCAP, '--cluster', make(), '--db', db]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(code);
      expect(r.stdout).not.toContain('VIOLATIONS');
      expect(existsSync(db)).toBe(false);
    });

  it('a bad second snapshot also stops the run, even when the first is good', async () => {
    const db = path('snap2.db');
    const r = await runCli([
      'audit',
      SHOP_PCAP,
      '--cluster',
      SHOP_CLUSTER,
      '--cluster',
      file('e.yaml', 'a: ['),
      '--db',
      db,
    ]);
    expect(r.code).toBe(3);
    expect(existsSync(db)).toBe(false);
  });

  it('process (the Kafka wiring) refuses an empty snapshot too, before any broker or store is touched', async () => {
    const db = path('process.db');
    const r = await runCli([
      'process',
      '--cluster',
      file('empty.yaml', ''),
      '--brokers',
      '127.0.0.1:1',
      '--db',
      db,
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('AUDIT_SNAPSHOT_EMPTY');
    expect(existsSync(db)).toBe(false);
  });

  it('a later good run is not polluted by an earlier bad one (nothing was stored)', async () => {
    const db = path('later.db');
    await runCli(['audit', SHOP_PCAP, '--cluster', file('empty.yaml', ''), '--db', db]);
    const good = await runCli([
      'audit',
      SHOP_PCAP,
      '--cluster',
      SHOP_CLUSTER,
      '--db',
      db,
      '--format',
      'json',
    ]);
    expect(good.code).toBe(0);
    const s = JSON.parse(good.stdout);
    expect(s.flows.allowed).toBe(19);
    expect(s.violations).toHaveLength(2);
    // The store holds the good run's 23 flows only: the bad run left no "allowed" rows behind.
    const rep = JSON.parse((await runCli(['report', '--db', db, '--format', 'json'])).stdout);
    expect(rep.traffic.flows).toBe(23);
    expect(rep.traffic.byResult.allowed).toBe(19);
  });

  it('a snapshot that knows none of the captured addresses is reported, in the summary and the run record', async () => {
    const db = path('other.db');
    const other = file(
      'other.yaml',
      'apiVersion: v1\nkind: Pod\nmetadata: {name: lone, namespace: elsewhere}\nstatus: {podIP: 192.0.2.77, phase: Running}\n',
    );
    const r = await runCli(['audit', SHOP_PCAP, '--cluster', other, '--db', db]);
    expect(r.stdout).toContain('AUDIT_SNAPSHOT_MATCHES_NO_FLOW');
    const report = await runCli(['report', '--db', db]);
    expect(report.stdout).toContain('## Input problems');
    expect(report.stdout).toContain('AUDIT_SNAPSHOT_MATCHES_NO_FLOW');
  });
});

describe('empty means unknown, not compliant', () => {
  it('a 0-byte capture is CAPTURE_UNKNOWN_FORMAT, exit 1, and no policy is stamped "in force since 1970"', async () => {
    const db = path('empty-cap.db');
    const r = await runCli(['audit', file('empty.pcap', ''), '--cluster', SHOP_CLUSTER, '--db', db]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('CAPTURE_UNKNOWN_FORMAT');
    const sql = new Database(db, { readonly: true });
    const versions = sql.prepare('SELECT count(*) AS n FROM policy_versions').get() as { n: number };
    const rules = sql.prepare('SELECT count(*) AS n FROM rules').get() as { n: number };
    sql.close();
    expect(versions.n).toBe(0);
    expect(rules.n).toBe(0);
  });

  it('empty standard input is CAPTURE_UNKNOWN_FORMAT too (audit -)', async () => {
    const r = await runCli(['audit', '-', '--cluster', SHOP_CLUSTER, '--db', path('stdin.db')], {
      input: '',
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('CAPTURE_UNKNOWN_FORMAT');
  });

  it('collect pcap of empty standard input reports CAPTURE_UNKNOWN_FORMAT and exits 1', async () => {
    const r = await runCli(['collect', 'pcap', '-', '-o', path('out.jsonl')], { input: '' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CAPTURE_UNKNOWN_FORMAT');
  });

  it('report on a store with no data: "no data: cannot assess", never Compliant; --fail-on-violation exits 4', async () => {
    const db = path('nodata.db');
    await runCli(['audit', file('empty.pcap', ''), '--cluster', SHOP_CLUSTER, '--db', db]);
    const md = await runCli(['report', '--db', db, '--fail-on-violation']);
    expect(md.code).toBe(4);
    expect(md.stdout).toContain('No data: cannot assess');
    expect(md.stdout).not.toContain('**Compliant**');
    expect(md.stdout).not.toContain('Every rule in force was used');
    const json = await runCli(['report', '--db', db, '--format', 'json']);
    expect(json.code).toBe(0);
    const rep = JSON.parse(json.stdout);
    expect(rep.compliant).toBe(false);
    expect(rep.assessment).toBe('no-data');
  });

  it('report on a period without data in a store that has data elsewhere: no data, exit 4', async () => {
    const db = path('period.db');
    await runCli(['audit', SHOP_PCAP, '--cluster', SHOP_CLUSTER, '--db', db]);
    const r = await runCli([
      'report',
      '--db',
      db,
      '--since',
      '2020-01-01T00:00:00Z',
      '--until',
      '2020-01-08T00:00:00Z',
      '--fail-on-violation',
    ]);
    expect(r.code).toBe(4);
    expect(r.stdout).toContain('No data: cannot assess');
    // The shop data itself still reports its two violations: exit 1, not 4.
    const shop = await runCli(['report', '--db', db, '--fail-on-violation']);
    expect(shop.code).toBe(1);
    expect(shop.stdout).toContain('**Not compliant.**');
  });

  it('violations and rules --unused on an empty period say so and exit 4 instead of an empty "none"', async () => {
    const db = path('vr.db');
    await runCli(['audit', SHOP_PCAP, '--cluster', SHOP_CLUSTER, '--db', db]);
    const v = await runCli([
      'violations',
      '--db',
      db,
      '--since',
      '2020-01-01T00:00:00Z',
      '--until',
      '2020-01-02T00:00:00Z',
    ]);
    expect(v.code).toBe(4);
    expect(v.stderr).toContain('no data: cannot assess');
    const u = await runCli(['rules', '--unused', '--db', db, '--since', '2027-01-01T00:00:00Z']);
    expect(u.code).toBe(4);
    expect(u.stdout).not.toContain('allow-batch-to-cart');
    // With data, the same commands answer as before.
    const v2 = await runCli(['violations', '--db', db]);
    expect(v2.code).toBe(0);
    expect(v2.stdout).toContain('debug-shell');
    const u2 = await runCli(['rules', '--unused', '--db', db]);
    expect(u2.code).toBe(0);
    expect(u2.stdout).toContain('allow-batch-to-cart');
  });

  it('a period written to by an unfinished (interrupted) run is not assessed as compliant', async () => {
    const db = path('unfinished.db');
    // Data of a finished run with no violation: the allowed flows only (the shop with every pod allowed).
    await runCli(['audit', SHOP_PCAP, '--cluster', SHOP_CLUSTER, '--db', db]);
    const sql = new Database(db);
    // What a killed run leaves behind: a run row without finished_wall.
    sql.prepare("INSERT INTO runs (mode, started_wall, inputs) VALUES ('embedded', 1, '[]')").run();
    // Drop the violations so the only thing between the report and "Compliant" is the unfinished run.
    sql.prepare('DELETE FROM violations').run();
    sql.prepare("DELETE FROM edges_hourly WHERE result = 'denied'").run();
    sql.close();
    const r = await runCli(['report', '--db', db, '--fail-on-violation', '--format', 'json']);
    expect(r.code).toBe(4);
    const rep = JSON.parse(r.stdout);
    expect(rep.assessment).toBe('incomplete');
    expect(rep.compliant).toBe(false);
    expect(rep.unfinishedRuns).toBe(1);
  });

  it('an interrupted run re-run to the end on the same inputs no longer makes the period incomplete', async () => {
    const db = path('rerun.db');
    await runCli(['audit', SHOP_PCAP, '--cluster', SHOP_CLUSTER, '--db', db]);
    const sql = new Database(db);
    const inputs = (sql.prepare('SELECT inputs FROM runs').get() as { inputs: string }).inputs;
    // The killed first attempt, on the same inputs, before the finished one.
    sql.prepare("INSERT INTO runs (id, mode, started_wall, inputs) VALUES (0, 'embedded', 1, ?)").run(inputs);
    sql.close();
    const r = await runCli(['report', '--db', db, '--format', 'json']);
    expect(JSON.parse(r.stdout).unfinishedRuns).toBe(0);
  });
});

describe('one error policy for the cluster: an unusable snapshot stops every judging command', () => {
  const empty = () => file('empty-for-all.yaml', '');
  const broken = () => file('broken-for-all.yaml', 'items: [\n  - kind: Pod\n');
  for (const [what, make, code] of [
    ['0 bytes', empty, 'AUDIT_SNAPSHOT_EMPTY'],
    ['invalid YAML', broken, 'AUDIT_SNAPSHOT_UNUSABLE'],
  ] as const) {
    it(`check, ${what}: ${code}, exit 3, no verdict written`, async () => {
      const r = await runCli(['check', '--cluster', make()], {
        input:
          '{"v":1,"start":1,"end":2,"proto":"TCP","src":{"ip":"10.0.0.1","port":1},"dst":{"ip":"10.0.0.2","port":2},"packets":{"fwd":1,"rev":1},"bytes":{"fwd":1,"rev":1},"state":"established","observer":{"source":"pcap"}}\n',
      });
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(code);
      expect(r.stdout).toBe('');
    });
    it(`explain, ${what}: ${code}, exit 3`, async () => {
      const r = await runCli([
        'explain',
        '--cluster',
        make(),
        '--from',
        '10.0.0.1',
        '--to',
        '10.0.0.2',
        '--port',
        '80',
      ]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(code);
    });
    it(`process, ${what}: ${code}, exit 3, before any broker is contacted`, async () => {
      const db = path('process.db');
      const r = await runCli(['process', '--brokers', '127.0.0.1:1', '--cluster', make(), '--db', db]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(code);
      expect(existsSync(db)).toBe(false);
    });
  }
});

describe('plausible time', () => {
  it('one packet stamped in 2106 is an issue, makes no flow, and does not move the default period', async () => {
    const db = path('future.db');
    const r = await runCli([
      'audit',
      shopWithPacketTime(123, 0xfffffff0),
      '--cluster',
      SHOP_CLUSTER,
      '--db',
      db,
      '--format',
      'json',
    ]);
    const s = JSON.parse(r.stdout);
    expect(s.input.implausibleTime).toBe(1);
    expect(s.issues.map((i: { code: string }) => i.code)).toContain('PACKET_IMPLAUSIBLE_TIME');
    expect(s.data.last.startsWith('2026-')).toBe(true);
    const rep = await runCli(['report', '--db', db, '--format', 'json']);
    const report = JSON.parse(rep.stdout);
    expect(new Date(report.period.until).getUTCFullYear()).toBe(2026);
    expect(report.violations).toHaveLength(2);
    const v = await runCli(['violations', '--db', db, '--since', '7d']);
    expect(v.stdout).toContain('debug-shell');
  });

  it('a packet two days ahead of the wall clock (beyond clock skew) is kept out, mid-capture too', async () => {
    const ahead = Math.floor(Date.now() / 1000) + 2 * 86_400;
    const r = await runCli([
      'audit',
      shopWithPacketTime(60, ahead),
      '--cluster',
      SHOP_CLUSTER,
      '--db',
      path('ahead.db'),
      '--format',
      'json',
    ]);
    const s = JSON.parse(r.stdout);
    expect(s.input.implausibleTime).toBe(1);
    expect(s.data.last.startsWith('2026-11-23')).toBe(true);
  });
});

describe('plausible time: far from the data around it', () => {
  for (const [where, index] of [
    ['first', 0],
    ['in the middle', 60],
    ['last', 123],
  ] as const)
    it(`one packet stamped 1970 (${where}) is an issue, makes no flow, and does not stretch the data back`, async () => {
      const db = path('past.db');
      const r = await runCli([
        'audit',
        shopWithPacketTime(index, 5),
        '--cluster',
        SHOP_CLUSTER,
        '--db',
        db,
        '--format',
        'json',
      ]);
      const s = JSON.parse(r.stdout);
      expect(s.input.implausibleTime).toBe(1);
      const issue = s.issues.find((i: { code: string }) => i.code === 'PACKET_IMPLAUSIBLE_TIME');
      expect(issue.message).toContain('1970-01-01T00:00:05');
      expect(issue.message).toContain('from the packets around it');
      expect(issue.record).toBe(index);
      expect(s.data.first.startsWith('2026-11-23')).toBe(true);
      const sql = new Database(db, { readonly: true });
      const oldest = sql.prepare('SELECT min(hour) AS h FROM edges_hourly').get() as { h: number };
      sql.close();
      expect(new Date(oldest.h).getUTCFullYear()).toBe(2026);
    });

  it('a capture merged from two days a year apart keeps every packet of both', async () => {
    // The shop capture, then the same packets a year earlier: each part is long, so both hold.
    const d = readFileSync(SHOP_PCAP);
    const early = Buffer.from(d);
    let off = 24;
    while (off < early.length) {
      early.writeUInt32LE(early.readUInt32LE(off) - 365 * 86_400, off);
      off += 16 + early.readUInt32LE(off + 8);
    }
    const merged = file('merged.pcap', Buffer.concat([early, d.subarray(24)]));
    const r = await runCli([
      'audit',
      merged,
      '--cluster',
      SHOP_CLUSTER,
      '--db',
      path('merged.db'),
      '--format',
      'json',
    ]);
    const s = JSON.parse(r.stdout);
    expect(s.input.implausibleTime).toBe(0);
    expect(s.data.first.startsWith('2025-11-23')).toBe(true);
    expect(s.data.last.startsWith('2026-11-23')).toBe(true);
  });
});

describe('plausible time in conntrack logs', () => {
  it('a conntrack line stamped in 2100 is CONNTRACK_IMPLAUSIBLE_TIME and makes no flow', async () => {
    const log = readFileSync(join(ROOT, 'collectors/conntrack/fixtures/events-pod-traffic.log'), 'utf8');
    const bogus =
      '[4102444800.000001]\t    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=10.240.1.9 dst=10.240.2.9 sport=41111 dport=8080 [UNREPLIED] src=10.240.2.9 dst=10.240.1.9 sport=8080 dport=41111 id=77\n';
    const out = path('ct.jsonl');
    const r = await runCli(['collect', 'conntrack', '--input', file('ct.log', log + bogus), '-o', out]);
    expect(r.stderr).toContain('CONNTRACK_IMPLAUSIBLE_TIME');
    const records = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { start: number; src: { ip: string } });
    expect(records.length).toBeGreaterThan(0);
    expect(records.some((x) => x.src.ip === '10.240.1.9')).toBe(false);
    expect(Math.max(...records.map((x) => x.start))).toBeLessThan(Date.UTC(2100, 0, 1));
  });
});

describe('plausible time in conntrack logs: far from the lines around it', () => {
  it('a line stamped 1970 amid lines of 2026 is CONNTRACK_IMPLAUSIBLE_TIME and makes no flow', async () => {
    const lines = readFileSync(join(ROOT, 'collectors/conntrack/fixtures/events-pod-traffic.log'), 'utf8')
      .trimEnd()
      .split('\n');
    const bogus =
      '[5.000001]\t    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=10.240.1.9 dst=10.240.2.9 sport=41111 dport=8080 [UNREPLIED] src=10.240.2.9 dst=10.240.1.9 sport=8080 dport=41111 id=77';
    const log = [...lines.slice(0, 10), bogus, ...lines.slice(10)].join('\n');
    const out = path('ct-past.jsonl');
    const r = await runCli(['collect', 'conntrack', '--input', file('ct-past.log', `${log}\n`), '-o', out]);
    expect(r.stderr).toContain('CONNTRACK_IMPLAUSIBLE_TIME');
    expect(r.stderr).toContain('line 11');
    const records = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { start: number; src: { ip: string } });
    expect(records.some((x) => x.src.ip === '10.240.1.9')).toBe(false);
    expect(Math.min(...records.map((x) => x.start))).toBeGreaterThan(Date.UTC(2026, 0, 1));
    // Every other line still makes its flows: the same records as the log without the bogus line.
    const plain = path('ct-plain.jsonl');
    await runCli([
      'collect',
      'conntrack',
      '--input',
      file('ct-plain.log', `${lines.join('\n')}\n`),
      '-o',
      plain,
    ]);
    const count = (f: string) => readFileSync(f, 'utf8').trim().split('\n').length;
    expect(count(out)).toBe(count(plain));
  });
});

describe('policies in force', () => {
  it('a rejected (invalid) policy is not listed as in force', async () => {
    const bad = `${readFileSync(SHOP_CLUSTER, 'utf8')}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: broken, namespace: shop}\nspec:\n  podSelector: {}\n  ingress:\n    - from:\n        - ipBlock: {cidr: not-a-cidr}\n`;
    const db = path('rejected.db');
    const r = await runCli(['audit', SHOP_PCAP, '--cluster', file('rejected.yaml', bad), '--db', db]);
    expect(r.stdout).toContain('shop/broken');
    const rep = await runCli(['report', '--db', db, '--format', 'json']);
    const names = JSON.parse(rep.stdout).policyVersions.map((p: { policy: string }) => p.policy);
    expect(names).not.toContain('shop/broken');
    expect(names.length).toBeGreaterThan(0);
  });

  it('the same policy with its keys in another order is the same version', async () => {
    const a =
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n  podSelector: {matchLabels: {app: cart}}\n  policyTypes: [Ingress]\n';
    const b =
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n  policyTypes: [Ingress]\n  podSelector: {matchLabels: {app: cart}}\n';
    const shop = readFileSync(SHOP_CLUSTER, 'utf8');
    const db = path('order.db');
    await runCli(['audit', SHOP_PCAP, '--cluster', file('a.yaml', `${shop}\n---\n${a}`), '--db', db]);
    await runCli(['audit', SHOP_PCAP, '--cluster', file('b.yaml', `${shop}\n---\n${b}`), '--db', db]);
    const sql = new Database(db, { readonly: true });
    const rows = sql.prepare("SELECT count(*) AS n FROM policy_versions WHERE policy = 'shop/p'").get() as {
      n: number;
    };
    sql.close();
    expect(rows.n).toBe(1);
  });
});

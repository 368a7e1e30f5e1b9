/**
 * A capture that begins mid-connection (issue #10, "direction from the cluster"): the first packet
 * seen may be a reply. The audit must not turn a reply into a violation in the reverse direction;
 * what the cluster's declared ports settle is judged the right way round, and what nothing settles
 * is marked (docs/check.md, "Direction").
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type PcapRecordSpec, pcapFile } from '../../collectors/capture/craft.js';
import { ethernet, ipv4, tcp } from '../../collectors/decode/craft.js';
import { ROOT, runCli } from '../support/cli.js';

const SHOP_PCAP = join(ROOT, 'examples/shop/capture.pcap');
const SHOP_CLUSTER = join(ROOT, 'examples/shop/cluster.yaml');
const dir = mkdtempSync(join(tmpdir(), 'netpol-direction-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FRONTEND = '10.244.1.10';
const CART = '10.244.1.11';
const DEBUG = '10.244.2.40';
/** 2026-11-23T07:16:00Z, the shop capture's day: plausible, and in the past. */
const T0 = 1_795_418_160;

/** The shop capture without its first `skip` packets (pcap, little-endian headers). */
function shopFrom(skip: number): string {
  const d = readFileSync(SHOP_PCAP);
  let off = 24;
  for (let i = 0; i < skip; i++) off += 16 + d.readUInt32LE(off + 8);
  const p = join(dir, `shop-from-${skip}.pcap`);
  writeFileSync(p, Buffer.concat([d.subarray(0, 24), d.subarray(off)]));
  return p;
}

const ACK = 0x10;
const PSH_ACK = 0x18;

/** Packets of a TCP connection already under way: `a` speaks first, then they alternate. */
function midConnection(a: string, aport: number, b: string, bport: number, at: number): PcapRecordSpec[] {
  const out: PcapRecordSpec[] = [];
  for (let i = 0; i < 6; i++) {
    const [s, sp, d, dp] = i % 2 === 0 ? [a, aport, b, bport] : [b, bport, a, aport];
    out.push({
      sec: at,
      frac: i * 1000,
      data: ethernet(
        0x0800,
        ipv4(s, d, { proto: 6 }, tcp(sp, dp, i === 5 ? ACK : PSH_ACK, new Uint8Array(100))),
      ),
    });
  }
  return out;
}

function capture(name: string, records: PcapRecordSpec[]): string {
  const p = join(dir, name);
  writeFileSync(p, pcapFile({}, records));
  return p;
}

describe('a shop capture that begins after the frontend -> cart SYN', () => {
  // Packet 40 is cart's reply on the second frontend -> cart connection (port 50470); the first
  // connection, whose SYN-ACK would have shown cart listening, is cut away too.
  const cut = shopFrom(39);

  it('reports no violation cart -> frontend: the reply is judged as the connection it answers', async () => {
    const db = join(dir, 'cut.db');
    const r = await runCli(['audit', cut, '--cluster', SHOP_CLUSTER, '--db', db]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('shop/cart -> shop/frontend');
    expect(r.stdout).toMatch(
      /began before the capture did: direction from the cluster's declared ports for [1-9]/,
    );
    // The rule that admits frontend -> cart was used: the flow counts for it.
    expect(r.stdout).not.toMatch(/UNUSED RULES[\s\S]*allow-frontend-to-cart/);
    const v = await runCli(['violations', '--db', db, '--format', 'json']);
    const rows = JSON.parse(v.stdout) as { srcWorkload: string; dstWorkload: string }[];
    expect(rows.map((x) => `${x.srcWorkload} -> ${x.dstWorkload}`).sort()).toEqual([
      'dev/debug-shell -> shop/cart',
      'dev/debug-shell -> shop/payments',
    ]);
  });
});

describe('a direction nothing settles is marked, never a plain verdict', () => {
  it('allowed one way, denied the other: unsettled; the report cannot fully assess (exit 4)', async () => {
    // debug:7777 <-> cart:45000, cart heard first; neither port is declared. debug -> cart is denied
    // (cart is ingress-isolated), cart -> debug allowed (nothing isolates either for that).
    const pcap = capture('unsettled.pcap', midConnection(CART, 45000, DEBUG, 7777, T0));
    const db = join(dir, 'unsettled.db');
    const r = await runCli(['audit', pcap, '--cluster', SHOP_CLUSTER, '--db', db]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('0 denied but observed (violations), 0 denied attempts, 1 ambiguous');
    expect(r.stdout).toMatch(/guessed for 1/);
    expect(r.stdout).toMatch(
      /UNSETTLED[^\n]*\(1\)\n {2}shop\/cart -> dev\/debug-shell TCP\/7777: 1 flow, direction not seen/,
    );
    const rep = await runCli(['report', '--db', db, '--fail-on-violation']);
    expect(rep.code).toBe(4);
    expect(rep.stdout).toContain('**Cannot fully assess.**');
    expect(rep.stdout).not.toContain('**Compliant**');
    expect(rep.stdout).toContain('## Unsettled verdicts (1)');
    expect(rep.stderr).toContain('cannot fully assess');
    const json = JSON.parse((await runCli(['report', '--db', db, '--format', 'json'])).stdout);
    expect(json.assessment).toBe('unsettled');
    expect(json.compliant).toBe(false);
    expect(json.unsettled[0]).toMatchObject({ flows: 1, directionGuessed: 1 });
  });

  it('denied both ways: a violation whoever initiated, marked as resting on a guessed direction', async () => {
    // frontend:41000 <-> cart:7000: both ingress-isolated, neither admits the other on these ports.
    const pcap = capture('both-denied.pcap', midConnection(FRONTEND, 41000, CART, 7000, T0));
    const db = join(dir, 'both-denied.db');
    const r = await runCli(['audit', pcap, '--cluster', SHOP_CLUSTER, '--db', db]);
    expect(r.stdout).toContain('1 denied but observed (violations)');
    expect(r.stdout).toMatch(
      /shop\/frontend -> shop\/cart TCP\/7000: 1 flow.*\(direction guessed for 1: denied either way\)/,
    );
    const rep = await runCli(['report', '--db', db, '--fail-on-violation']);
    expect(rep.code).toBe(1);
    expect(rep.stdout).toContain('guessed for 1 flow(s): same result either way');
  });

  it('the same connection seen from its start is judged plainly (no guess, no mark)', async () => {
    const SYN = 0x02;
    const records: PcapRecordSpec[] = [
      { sec: T0, frac: 0, data: ethernet(0x0800, ipv4(DEBUG, CART, { proto: 6 }, tcp(7777, 45000, SYN))) },
      {
        sec: T0,
        frac: 10,
        data: ethernet(0x0800, ipv4(CART, DEBUG, { proto: 6 }, tcp(45000, 7777, SYN | ACK))),
      },
      ...midConnection(DEBUG, 7777, CART, 45000, T0 + 1),
    ];
    const db = join(dir, 'seen.db');
    const r = await runCli(['audit', capture('seen.pcap', records), '--cluster', SHOP_CLUSTER, '--db', db]);
    expect(r.stdout).toContain('1 denied but observed (violations)');
    expect(r.stdout).not.toContain('began before the capture');
    expect(r.stdout).not.toContain('direction guessed');
  });
});

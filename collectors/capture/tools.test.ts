/**
 * Files written by real tools (editcap, mergecap, tcpdump) read back: the same packets must come out
 * of every format a tool converts a corpus capture into.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CORPUS } from '../../test/support/cli.js';
import { requirePrograms } from '../../test/support/programs.js';
import { type CaptureSummary, readCaptureFile, readCaptureStream } from './index.js';

interface Packet {
  ts: number;
  wireLen: number;
  linkType: number;
  iface: number;
  data: string;
}

async function read(path: string): Promise<{ packets: Packet[]; summary: CaptureSummary; issues: string[] }> {
  const packets: Packet[] = [];
  const issues: string[] = [];
  const summary = await readCaptureFile(path, {
    onRecord: (r) =>
      packets.push({
        ts: r.ts,
        wireLen: r.wireLen,
        linkType: r.linkType,
        iface: r.iface,
        data: Buffer.from(r.data).toString('hex'),
      }),
    onIssue: (i) => issues.push(i.code),
  });
  return { packets, summary, issues };
}

const dir = mkdtempSync(join(tmpdir(), 'netpol-capture-tools-'));
const SOURCE = join(CORPUS, 'zeek__dns-edns-ecs.pcap');

function sameExceptTime(a: Packet[], b: Packet[], tolMs: number): void {
  expect(b.length).toBe(a.length);
  for (let i = 0; i < a.length; i++) {
    expect(b[i].data).toBe(a[i].data);
    expect(b[i].wireLen).toBe(a[i].wireLen);
    expect(Math.abs(b[i].ts - a[i].ts)).toBeLessThanOrEqual(tolMs);
  }
}

describe('captures written by real tools', () => {
  beforeAll(() => requirePrograms('collectors/capture/tools.test.ts', ['editcap', 'mergecap', 'tcpdump']));

  it('editcap -F pcapng, nsecpcap and modpcap give the same packets as the original', async () => {
    const orig = await read(SOURCE);
    expect(orig.packets.length).toBe(89);
    for (const [format, ext] of [
      ['pcapng', 'pcapng'],
      ['nsecpcap', 'pcap'],
      ['modpcap', 'pcap'],
    ] as const) {
      const out = join(dir, `dns.${format}.${ext}`);
      execFileSync('editcap', ['-F', format, SOURCE, out]);
      const got = await read(out);
      expect(got.issues, format).toEqual([]);
      expect(got.summary.format).toBe(ext);
      sameExceptTime(orig.packets, got.packets, 0.001);
    }
  });

  it('editcap -s cuts packets to the snaplen and keeps the wire length', async () => {
    const out = join(dir, 'dns.s64.pcap');
    execFileSync('editcap', ['-s', '64', SOURCE, out]);
    const orig = await read(SOURCE);
    const got = await read(out);
    expect(got.issues).toEqual([]);
    expect(got.packets.length).toBe(orig.packets.length);
    got.packets.forEach((p, i) => {
      expect(p.data.length / 2).toBe(Math.min(64, orig.packets[i].data.length / 2));
      expect(p.wireLen).toBe(orig.packets[i].wireLen);
    });
  });

  it('mergecap of two link types writes one pcapng with two interfaces', async () => {
    const a = join(CORPUS, 'zeek__rotation.pcap'); // raw IP (101)
    const b = join(CORPUS, 'zeek__icmp_dot1q.pcap'); // Ethernet
    const out = join(dir, 'merged.pcapng');
    execFileSync('mergecap', ['-F', 'pcapng', '-w', out, a, b]);
    const got = await read(out);
    expect(got.issues).toEqual([]);
    expect(got.summary.format).toBe('pcapng');
    expect(got.summary.interfaces.map((i) => i.linkType).sort((x, y) => x - y)).toEqual([1, 101]);
    expect(got.packets.length).toBe(20 + 15);
    const byIface = new Map<number, number>();
    for (const p of got.packets) {
      expect(p.linkType).toBe(got.summary.interfaces[p.iface].linkType);
      byIface.set(p.linkType, (byIface.get(p.linkType) ?? 0) + 1);
    }
    expect(byIface.get(101)).toBe(20);
    expect(byIface.get(1)).toBe(15);
    const times = got.packets.map((p) => p.ts);
    expect([...times].sort((x, y) => x - y)).toEqual(times);
  });

  it('reads `tcpdump -r FILE -w -` from a pipe like the file itself', async () => {
    const child = spawn('tcpdump', ['-r', SOURCE, '-w', '-'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const fromPipe: string[] = [];
    const summary = await readCaptureStream(child.stdout, '<tcpdump>', {
      onRecord: (r) => fromPipe.push(Buffer.from(r.data).toString('hex')),
      onIssue: (i) => fromPipe.push(`issue ${i.code}`),
    });
    const orig = await read(SOURCE);
    expect(summary.records).toBe(89);
    expect(fromPipe).toEqual(orig.packets.map((p) => p.data));
    // tcpdump rewrote the file header and records; the bytes are the same size.
    expect(summary.bytes).toBe(readFileSync(SOURCE).length);
  });
});

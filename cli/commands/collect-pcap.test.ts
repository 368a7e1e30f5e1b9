import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateFlowRecord } from '../../schema/flow-record.js';
import { CORPUS, ROOT, runCli } from '../../test/support/cli.js';

const capture = (name: string) => join(CORPUS, name);
const parseLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as unknown);

describe('netpol-audit collect pcap', () => {
  it('writes valid FlowRecords to a file and a summary to stderr', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'collect-pcap-'));
    const out = join(dir, 'flows.jsonl');
    const r = await runCli([
      'collect',
      'pcap',
      capture('tcpdump__resp_1_benchmark.pcap'),
      '--output',
      out,
      '--node',
      'worker-1',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    const records = parseLines(readFileSync(out, 'utf8'));
    // The ground truth lists 15 TCP connections in this capture (README / .json).
    expect(records).toHaveLength(15);
    for (const rec of records) {
      const v = validateFlowRecord(rec);
      expect(v.ok, JSON.stringify(v)).toBe(true);
      expect(rec).toMatchObject({
        proto: 'TCP',
        observer: { node: 'worker-1', source: 'pcap' },
        initiator: 'handshake',
      });
    }
    expect(r.stderr).toMatch(/150 packets, 150 in flows/);
    expect(r.stderr).toMatch(/15 flows in 15 records/);
  });

  it('reads standard input for -, and reports pcapng as the observer source', async () => {
    const r = await runCli(['collect', 'pcap', '-'], {
      input: readFileSync(capture('zeek__pcapng-multi-interface.pcapng')),
    });
    expect(r.code).toBe(0);
    const records = parseLines(r.stdout) as { observer: { source: string; file?: string } }[];
    expect(records).toHaveLength(3);
    expect(records.every((x) => x.observer.source === 'pcapng' && x.observer.file === undefined)).toBe(true);
  });

  it('exits 1 on damaged input, names file/offset/record, and still collects the rest', async () => {
    const r = await runCli([
      'collect',
      'pcap',
      capture('libpcap__pcap-invalid-version-1.pcap'),
      join(CORPUS, 'no-such-file.pcap'),
      capture('dpkt__truncated_dns_2.pcap'),
      capture('zeek__get-to-ssh-server.pcap'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/PCAP_BAD_VERSION: .*libpcap__pcap-invalid-version-1\.pcap: offset 4/);
    expect(r.stderr).toMatch(/CAPTURE_UNREADABLE: .*no-such-file\.pcap: .*ENOENT/);
    expect(r.stderr).toMatch(/PCAP_TRUNCATED_RECORD: .*dpkt__truncated_dns_2\.pcap: offset 240, record 1/);
    const records = parseLines(r.stdout) as { observer: { file: string }; proto: string }[];
    const files = records.map((x) => x.observer.file.split('/').pop());
    expect(files).toEqual(['dpkt__truncated_dns_2.pcap', 'zeek__get-to-ssh-server.pcap']);
  });

  it('counts an IPv6 packet whose options overrun their extension header as malformed, with its location', async () => {
    // test/fuzz/corpus/ipv6-option-overrun.bin: 4 IPv6/UDP packets to port 53 from ports 5000..5003;
    // records 1 (Hop-by-Hop) and 2 (Destination Options) have an option running past the header.
    const file = join(ROOT, 'test/fuzz/corpus/ipv6-option-overrun.bin');
    const r = await runCli(['collect', 'pcap', file]);
    expect(r.code).toBe(1);
    const records = parseLines(r.stdout) as { src: { port: number } }[];
    expect(records.map((x) => x.src.port)).toEqual([5000, 5003]);
    expect(r.stderr).toMatch(/2 malformed/);
    // 24-byte file header, then records of 16 + 70 bytes.
    const warnings = r.stderr.split('\n').filter((l) => l.includes('PACKET_MALFORMED'));
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain(`PACKET_MALFORMED: ${file}: offset 110, record 1: an option of its IPv6`);
    expect(warnings[1]).toContain(`PACKET_MALFORMED: ${file}: offset 196, record 2: an option of its IPv6`);
  });

  it('splits a conversation by idle timeout when asked', async () => {
    // modbusBig: 3 TCP conversations over ~13.6k packets; a 1 ms idle timeout cuts them into many.
    const whole = await runCli(['collect', 'pcap', capture('zeek__modbusBig.pcap')]);
    const cut = await runCli(['collect', 'pcap', capture('zeek__modbusBig.pcap'), '--idle-timeout', '0.001']);
    expect(whole.code).toBe(0);
    expect(cut.code).toBe(0);
    const a = parseLines(whole.stdout) as { packets: { fwd: number; rev: number } }[];
    const b = parseLines(cut.stdout) as { packets: { fwd: number; rev: number } }[];
    expect(a).toHaveLength(3);
    expect(b.length).toBeGreaterThan(3);
    const total = (xs: typeof a) => xs.reduce((n, x) => n + x.packets.fwd + x.packets.rev, 0);
    expect(total(b)).toBe(total(a));
    expect(total(a)).toBe(13622);
  });

  it('rejects bad usage with exit 2', async () => {
    expect((await runCli(['collect', 'pcap'])).code).toBe(2);
    expect((await runCli(['collect', 'pcap', 'x.pcap', '--max-flows', '-3'])).code).toBe(2);
    expect((await runCli(['collect', 'pcap', 'x.pcap', '--bytes', 'frames'])).code).toBe(2);
  });
});

import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ArraySink } from '../sink.js';
import {
  collectLive,
  parseTcpdumpRunningStats,
  parseTcpdumpStats,
  type TcpdumpCounts,
  tcpdumpArgs,
} from './index.js';

describe('tcpdump arguments', () => {
  it('writes pcap to standard output, packet-buffered, no name lookups', () => {
    expect(tcpdumpArgs({ iface: 'eth0' })).toEqual(['-i', 'eth0', '-w', '-', '-U', '-n']);
  });

  it('the filter goes as separate words after --, never through a shell', () => {
    expect(tcpdumpArgs({ iface: 'cni0', filter: 'tcp  or udp', snaplen: 128 })).toEqual([
      '-i',
      'cni0',
      '-w',
      '-',
      '-U',
      '-n',
      '-s',
      '128',
      '--',
      'tcp',
      'or',
      'udp',
    ]);
    expect(tcpdumpArgs({ iface: 'x', filter: ['port', '53;', 'rm', '-rf'] }).slice(-5)).toEqual([
      '--',
      'port',
      '53;',
      'rm',
      '-rf',
    ]);
  });
});

describe('tcpdump closing counts', () => {
  it('reads what tcpdump 4.99 prints on SIGINT', () => {
    const stderr = [
      'tcpdump: listening on vpa, link-type EN10MB (Ethernet), snapshot length 262144 bytes',
      '28 packets captured',
      '30 packets received by filter',
      '2 packets dropped by kernel',
      '',
    ].join('\n');
    expect(parseTcpdumpStats(stderr)).toEqual({ captured: 28, receivedByFilter: 30, droppedByKernel: 2 });
  });

  it('singular forms and the interface drop count', () => {
    expect(
      parseTcpdumpStats(
        '1 packet captured\n1 packet received by filter\n0 packets dropped by kernel\n3 packets dropped by interface\n',
      ),
    ).toEqual({ captured: 1, receivedByFilter: 1, droppedByKernel: 0, droppedByInterface: 3 });
  });

  it('nothing when tcpdump failed before counting', () => {
    expect(parseTcpdumpStats('tcpdump: nosuch0: No such device exists\n')).toEqual({});
  });
});

describe('tcpdump counts while it runs', () => {
  it('reads the line tcpdump prints on SIGUSR1, and no other', () => {
    expect(
      parseTcpdumpRunningStats(
        'tcpdump: 150 packets captured, 306 packets received by filter, 7 packets dropped by kernel',
      ),
    ).toEqual({ captured: 150, receivedByFilter: 306, droppedByKernel: 7 });
    expect(
      parseTcpdumpRunningStats(
        'tcpdump: 1 packet captured, 1 packet received by filter, 0 packets dropped by kernel, 2 packets dropped by interface',
      ),
    ).toEqual({ captured: 1, receivedByFilter: 1, droppedByKernel: 0, droppedByInterface: 2 });
    // The closing counts (one per line) and tcpdump's other words are not running counts.
    expect(parseTcpdumpRunningStats('150 packets captured')).toBeUndefined();
    expect(
      parseTcpdumpRunningStats(
        'tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes',
      ),
    ).toBeUndefined();
  });

  it('a real tcpdump on loopback reports its counts while it runs; they stay out of its messages', async () => {
    // Loopback traffic of this test's own: a local server and requests to it.
    const server = createServer((_, res) => res.end('ok')).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const counts: TcpdumpCounts = {};
    const ac = new AbortController();
    let ready = false;
    const done = collectLive(new ArraySink(), {
      iface: 'lo',
      filter: `tcp port ${port}`,
      statsIntervalMs: 200,
      counts,
      signal: ac.signal,
      onReady: () => {
        ready = true;
      },
    });
    try {
      const until = Date.now() + 20_000;
      while (!ready && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      // Until tcpdump said it captured some: packets still in the kernel's buffer at SIGINT are not read.
      while ((counts.captured ?? 0) === 0 && Date.now() < until) {
        await (await fetch(`http://127.0.0.1:${port}/`)).text();
        await new Promise((r) => setTimeout(r, 100));
      }
      // Counted before the capture stopped: from the running reports, not the closing ones.
      expect(counts.captured).toBeGreaterThan(0);
      expect(counts.receivedByFilter).toBeGreaterThanOrEqual(counts.captured!);
      expect(counts.droppedByKernel).toBe(0);
    } finally {
      ac.abort();
    }
    const summary = await done;
    server.close();
    expect(summary.tcpdump.receivedByFilter).toBeGreaterThanOrEqual(counts.receivedByFilter!);
    expect(counts).toMatchObject({ receivedByFilter: summary.tcpdump.receivedByFilter });
    expect(summary.tcpdump.messages.filter((m) => m.startsWith('tcpdump: ') && /captured,/.test(m))).toEqual(
      [],
    );
    expect(summary.packets).toBeGreaterThan(0);
  }, 60_000);
});

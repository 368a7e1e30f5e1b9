import { describe, expect, it } from 'vitest';
import { parseTcpdumpStats, tcpdumpArgs } from './index.js';

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

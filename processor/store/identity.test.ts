import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../schema/flow-record.js';
import { flowIdentity, identityOf } from './identity.js';

const base: FlowRecord = {
  v: 1,
  start: 1_000,
  end: 2_000,
  proto: 'TCP',
  src: { ip: '10.244.1.5', port: 50470 },
  dst: { ip: '10.244.2.7', port: 8080 },
  packets: { fwd: 3, rev: 2 },
  bytes: { fwd: 300, rev: 200 },
  state: 'closed',
  observer: { source: 'pcap', node: 'a', file: 'a.pcap' },
};

describe('flowIdentity', () => {
  it('does not depend on the observer, the counts, or which side was taken for the initiator', () => {
    const other: FlowRecord = {
      ...base,
      src: base.dst,
      dst: base.src,
      packets: { fwd: 9, rev: 9 },
      bytes: { fwd: 1, rev: 1 },
      observer: { source: 'conntrack', node: 'b' },
      initiator: 'first-packet',
    };
    expect(flowIdentity(other)).toEqual(flowIdentity(base));
    expect(flowIdentity(base)).toEqual({ tuple: '6|10.244.1.5#50470|10.244.2.7#8080', seq: 0, start: 1_000 });
  });

  it('uses the real destination behind a Service address, so a node seeing the ClusterIP agrees', () => {
    const viaService: FlowRecord = {
      ...base,
      dst: { ip: '10.96.0.10', port: 80 },
      nat: { dst: { ip: '10.244.2.7', port: 8080 } },
    };
    expect(flowIdentity(viaService).tuple).toBe(flowIdentity(base).tuple);
  });

  it('tells apart protocols, ports, slices and ICMP echo identifiers', () => {
    expect(flowIdentity({ ...base, proto: 'UDP' }).tuple).not.toBe(flowIdentity(base).tuple);
    expect(flowIdentity({ ...base, src: { ip: '10.244.1.5', port: 50471 } }).tuple).not.toBe(
      flowIdentity(base).tuple,
    );
    expect(flowIdentity({ ...base, seq: 2 }).seq).toBe(2);
    const ping = (id: number): FlowRecord => ({
      ...base,
      proto: 'ICMP',
      src: { ip: '10.244.1.5' },
      dst: { ip: '10.244.2.7' },
      icmp: { type: 8, code: 0, id },
    });
    expect(flowIdentity(ping(1)).tuple).not.toBe(flowIdentity(ping(2)).tuple);
  });

  it('keeps flows of two overlay networks (VNIs) apart, as the flow table does', () => {
    const inVni = (vni: number): FlowRecord => ({
      ...base,
      tunnel: { type: 'geneve', src: '20.0.0.1', dst: '20.0.0.2', vni },
    });
    expect(flowIdentity(inVni(10)).tuple).not.toBe(flowIdentity(inVni(11)).tuple);
    expect(flowIdentity(inVni(10)).tuple).not.toBe(flowIdentity(base).tuple);
    expect(flowIdentity(inVni(10)).tuple).toBe(
      flowIdentity({ ...inVni(10), tunnel: { type: 'geneve', src: '20.0.0.2', dst: '20.0.0.1', vni: 10 } })
        .tuple,
    );
  });

  it('identityOf accepts only something shaped like a flow record', () => {
    expect(identityOf({ n: 1 })).toBeUndefined();
    expect(identityOf(undefined)).toBeUndefined();
    expect(identityOf(base)).toEqual(flowIdentity(base));
  });
});

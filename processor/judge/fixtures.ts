import type { FlowRecord } from '../../schema/flow-record.js';

/** An established TCP FlowRecord for the judge's tests; `p` sets the endpoints and anything else. */
export function flow(p: Partial<FlowRecord> & Pick<FlowRecord, 'src' | 'dst'>): FlowRecord {
  return {
    v: 1,
    start: 1_700_000_000_000,
    end: 1_700_000_000_500,
    proto: 'TCP',
    packets: { fwd: 3, rev: 2 },
    bytes: { fwd: 200, rev: 100 },
    state: 'established',
    observer: { source: 'conntrack' },
    ...p,
  };
}

/** A 10 ms TCP flow from src:40000 to dst:port starting at `at`. */
export function flowAt(
  at: number,
  src: string,
  dst: string,
  port: number,
  p: Partial<FlowRecord> = {},
): FlowRecord {
  return flow({ start: at, end: at + 10, src: { ip: src, port: 40000 }, dst: { ip: dst, port }, ...p });
}

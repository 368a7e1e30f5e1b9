import type { FlowRecord } from '../../schema/flow-record.js';

/**
 * A deterministic FlowRecord for load and compatibility tests: record i of flow (i % flows), so each
 * flow id (the Kafka key) gets an increasing seq that lets consumers check per-key order.
 * Serialized it is about 300 bytes, like the collectors' output.
 */
export function syntheticFlowRecord(i: number, flows = 1000): FlowRecord {
  const flow = i % flows;
  const seq = Math.floor(i / flows);
  const start = 1_767_225_600_000 + i * 7;
  return {
    v: 1,
    start,
    end: start + 1500,
    proto: flow % 5 === 0 ? 'UDP' : 'TCP',
    src: { ip: `10.244.${(flow >> 8) & 255}.${flow & 255}`, port: 30000 + (flow % 20000) },
    dst: { ip: `10.96.${(flow >> 4) & 255}.${(flow * 7) & 255}`, port: flow % 5 === 0 ? 53 : 8080 },
    packets: { fwd: 10 + (i % 50), rev: 8 + (i % 40) },
    bytes: { fwd: 1200 + (i % 5000), rev: 900 + (i % 7000) },
    state: 'established',
    observer: { node: `node-${flow % 8}`, source: 'conntrack' },
    id: `flow-${flow}`,
    seq,
    reason: 'conntrack-update',
  };
}

import type { FlowRecord } from '../../schema/flow-record.js';
import { protocolNumber } from '../../schema/flow-record.js';

/**
 * The identity of one ingested flow (or one slice of a long flow), so the store can tell a flow it
 * has already counted from a new one. The store keeps aggregates, not flows: without this, feeding
 * the same data twice (the same capture again, a rerun after an interrupted run, overlapping
 * captures, or one flow seen on two nodes) adds it twice. docs/store.md ("Ingestion identity")
 * states the rules.
 *
 * The identity is observer-independent on purpose:
 * - the two endpoints are sorted, so two observers that guessed the initiator differently agree;
 * - the destination is the real one (the NAT'd address the reply revealed, when known), so a node
 *   that saw the Service ClusterIP and a node that saw the pod agree;
 * - the observer (node, file, interface) is not part of it; the tunnel (type and VNI or key) is, as
 *   in the flow table: an overlay's inner addresses are only unique within it;
 * - the start time is compared with a tolerance (clock skew between two observers), not equal.
 */
export interface FlowIdentity {
  /** Protocol number and the two endpoints, sorted: `6|10.0.0.1#443|10.0.0.2#50000`. */
  tuple: string;
  /** Index of the slice of a long flow (active-timeout exports); 0 for a whole flow. */
  seq: number;
  /** Start of the flow (or slice), epoch ms of the data. */
  start: number;
}

/** Two observations of one flow may disagree on its start by this much (clock skew, capture start). */
export const DEFAULT_DEDUPE_TOLERANCE_MS = 2000;

export function flowIdentity(record: FlowRecord): FlowIdentity {
  const proto = protocolNumber(record.proto);
  const dst = record.nat?.dst?.ip
    ? { ip: record.nat.dst.ip, port: record.nat.dst.port ?? record.dst.port }
    : record.dst;
  // ICMP has no ports: the echo identifier tells two pings between the same hosts apart.
  const icmpId = record.icmp?.id;
  const a = endpoint(record.src.ip, record.src.port, icmpId);
  const b = endpoint(dst.ip, dst.port, icmpId);
  const tuple = a < b ? `${proto}|${a}|${b}` : `${proto}|${b}|${a}`;
  // As the flow table keys flows (flowKey, collectors/flow/flow-key.ts): overlays reuse inner
  // addresses, so the same addresses in two VNIs (or GRE keys) are two conversations, not one seen twice.
  const t = record.tunnel;
  return {
    tuple: t ? `${tuple}|${t.type}:${t.vni ?? t.key ?? 0}` : tuple,
    seq: record.seq ?? 0,
    start: record.start,
  };
}

function endpoint(ip: string, port: number | undefined, icmpId: number | undefined): string {
  return `${ip.toLowerCase()}#${port ?? (icmpId === undefined ? '' : `i${icmpId}`)}`;
}

/** The identity of a flow as it travels (a judged record, or a verdict message's evidence), if it has one. */
export function identityOf(record: unknown): FlowIdentity | undefined {
  const r = record as Partial<FlowRecord> | undefined;
  if (!r || typeof r !== 'object' || typeof r.start !== 'number' || r.proto === undefined) return undefined;
  if (typeof r.src?.ip !== 'string' || typeof r.dst?.ip !== 'string') return undefined;
  return flowIdentity(r as FlowRecord);
}

/**
 * How many flows a record adds: 1 when it begins a flow, 0 when it is a later slice (seq > 0) of a
 * flow already reported (an active-timeout export, or the end of a connection a restarted conntrack
 * collector first reported from its table dump). A flow is counted once however many records report
 * it; every slice adds its packets, bytes and times. A record without an identity counts as a flow.
 */
export function flowsIn(f: { identity?: FlowIdentity | undefined }): 0 | 1 {
  return (f.identity?.seq ?? 0) === 0 ? 1 : 0;
}

/** A flow's slice (the packets since its last record) as a FlowRecord. */
import type { FlowRecord } from '../../schema/flow-record.js';
import { protocolValue } from '../../schema/flow-record.js';
import { flowHash, flowKey } from './flow-key.js';
import { BASIS_NAMES } from './initiator.js';
import { hasPorts, TCP } from './protocols.js';
import {
  B_CONTINUED,
  C_BASIS,
  C_CLOSE_REASON,
  C_ICMP_CODE,
  C_ICMP_ID,
  C_ICMP_TYPE,
  C_SEQ,
  COLD_STRIDE,
  F_BYTES_FWD,
  F_BYTES_REV,
  F_FIRST,
  F_LAST,
  F_PKT_FWD,
  F_PKT_REV,
  F_SLICE,
  type FlowStore,
  I_BITS,
  I_FLAGS_FWD,
  I_FLAGS_REV,
  I_IPORT,
  I_PROTO,
  I_RPORT,
  I_STATE,
  STRIDE_F64,
  STRIDE_I32,
} from './storage.js';

export type ExportReason = NonNullable<FlowRecord['reason']>;
type State = FlowRecord['state'];

/** By I_STATE (ST_*). */
const STATE_NAMES: readonly State[] = ['attempted', 'established', 'closed', 'rejected'];
/** By C_CLOSE_REASON (CLOSE_*). */
const CLOSE_NAMES: readonly ExportReason[] = ['fin', 'rst'];

/** How closed TCP flow f ended. */
export function closeReasonOf(store: FlowStore, f: number): ExportReason {
  return CLOSE_NAMES[store.cold[f * COLD_STRIDE + C_CLOSE_REASON]!]!;
}

/**
 * The record of flow f's current slice, ended for `reason`; starts the next slice's counts (packets,
 * bytes, TCP flags, seq + 1). The flow id is computed on the first export and kept.
 */
export function sliceRecord(
  store: FlowStore,
  f: number,
  reason: ExportReason,
  observer: FlowRecord['observer'],
): FlowRecord {
  const d = f * STRIDE_F64;
  const i = f * STRIDE_I32;
  const c = f * COLD_STRIDE;
  const f64 = store.f64;
  const i32 = store.i32;
  const cold = store.cold;
  const proto = i32[i + I_PROTO]!;
  const iIp = store.iIp[f]!;
  const rIp = store.rIp[f]!;
  const iPort = i32[i + I_IPORT]!;
  const rPort = i32[i + I_RPORT]!;
  const t = store.tunnels[f] ?? null;
  let id = store.ids[f]!;
  if (id === '') {
    id = flowHash(
      `${flowKey(proto, iIp, iPort, rIp, rPort, t === null ? '' : t.type, t === null ? -1 : t.id)}|${f64[d + F_FIRST]}`,
    );
    store.ids[f] = id;
  }
  const seq = cold[c + C_SEQ]!;
  const rec: FlowRecord = {
    v: 1,
    start: f64[d + F_SLICE]!,
    end: f64[d + F_LAST]!,
    proto: protocolValue(proto),
    src: iPort >= 0 && hasPorts(proto) ? { ip: iIp, port: iPort } : { ip: iIp },
    dst: rPort >= 0 && hasPorts(proto) ? { ip: rIp, port: rPort } : { ip: rIp },
    packets: { fwd: f64[d + F_PKT_FWD]!, rev: f64[d + F_PKT_REV]! },
    bytes: { fwd: f64[d + F_BYTES_FWD]!, rev: f64[d + F_BYTES_REV]! },
    state: STATE_NAMES[i32[i + I_STATE]!]!,
    observer,
    id,
    seq,
    initiator: BASIS_NAMES[cold[c + C_BASIS]!]!,
    reason,
  };
  if (proto === TCP) rec.tcpFlags = { fwd: i32[i + I_FLAGS_FWD]!, rev: i32[i + I_FLAGS_REV]! };
  const icmpType = cold[c + C_ICMP_TYPE]!;
  if (icmpType >= 0) {
    const icmpId = cold[c + C_ICMP_ID]!;
    const icmpCode = cold[c + C_ICMP_CODE]!;
    rec.icmp =
      icmpId >= 0
        ? { type: icmpType, code: icmpCode, id: icmpId }
        : { type: icmpType, code: Math.max(0, icmpCode) };
  }
  if (t !== null) {
    const tunnel: NonNullable<FlowRecord['tunnel']> = {
      type: t.type as NonNullable<FlowRecord['tunnel']>['type'],
      src: t.src,
      dst: t.dst,
    };
    if (t.id >= 0) {
      if (t.type === 'gre') tunnel.key = t.id;
      else tunnel.vni = t.id;
    }
    if (t.port >= 0) tunnel.port = t.port;
    rec.tunnel = tunnel;
  }
  const vlans = store.vlans[f] ?? null;
  if (vlans !== null) rec.vlan = vlans;
  if (i32[i + I_BITS]! & B_CONTINUED) rec.continued = true;
  cold[c + C_SEQ] = seq + 1;
  f64[d + F_PKT_FWD] = 0;
  f64[d + F_PKT_REV] = 0;
  f64[d + F_BYTES_FWD] = 0;
  f64[d + F_BYTES_REV] = 0;
  i32[i + I_FLAGS_FWD] = 0;
  i32[i + I_FLAGS_REV] = 0;
  return rec;
}

import type { FlowRecord } from '../../schema/flow-record.js';
import type { Inventory, Resolution } from '../inventory/index.js';
import type { L4Protocol } from '../inventory/model.js';
import { L4 } from './l4.js';

/**
 * Which side initiated a flow whose start was not observed. Policies are directional: judged the
 * wrong way round, a reply (`shop/cart:8080 -> shop/frontend:50470`) looks like a connection the
 * frontend's ingress policy denies, a false violation at the start of every capture and rotation.
 *
 * The collector knows the direction from the handshake (TCP SYN), the ICMP type, conntrack's original
 * direction, a listener it saw answer elsewhere in the data, or a flow that began after the
 * observation did (its first packet is the first sent). Otherwise (`continued`, with basis
 * `first-packet` or `well-known-port`) it guessed, and the cluster settles it: the side that declares
 * the port (a container port of the pod holding the address, a port of the Service whose ClusterIP it
 * is, a hostNetwork pod's container port on its node) is the responder. When both or neither side
 * declares its port the direction stays a guess, and the judge says so (docs/check.md, "Direction").
 */

export type DirectionBasis = 'observed' | 'declared-port' | 'guessed';

export interface Oriented {
  flow: FlowRecord;
  basis: DirectionBasis;
  /** The cluster said the collector had it the wrong way round: sides and counters were swapped. */
  swapped: boolean;
}

/** Whether the collector's direction rests on something it saw. */
export function observedDirection(flow: FlowRecord): boolean {
  if (!flow.continued) return true;
  const basis = flow.initiator;
  // A record without a basis comes from a producer that states the direction (docs/flow-record.md).
  return basis !== 'first-packet' && basis !== 'well-known-port';
}

function declares(r: Resolution, port: number, l4: L4Protocol, inventory: Inventory): boolean {
  if (r.pod) return r.pod.ports.some((p) => p.containerPort === port && p.protocol === l4);
  if (r.service) return inventory.servicePort(r.service, port, l4) !== undefined;
  if (r.hostNetworkPods)
    return r.hostNetworkPods.some((pod) =>
      pod.ports.some((p) => p.containerPort === port && p.protocol === l4),
    );
  return false;
}

/** The flow seen from the other side: initiator and responder swapped, with their counters. */
export function reversed(flow: FlowRecord): FlowRecord {
  const out: FlowRecord = {
    ...flow,
    src: flow.dst,
    dst: flow.src,
    packets: { fwd: flow.packets.rev, rev: flow.packets.fwd },
    bytes: { fwd: flow.bytes.rev, rev: flow.bytes.fwd },
  };
  if (flow.tcpFlags) out.tcpFlags = { fwd: flow.tcpFlags.rev, rev: flow.tcpFlags.fwd };
  if (flow.tunnel) out.tunnel = { ...flow.tunnel, src: flow.tunnel.dst, dst: flow.tunnel.src };
  // Only the responder was heard: it answered, so the connection was under way.
  if (flow.state === 'attempted' && out.packets.fwd === 0 && out.packets.rev > 0) out.state = 'established';
  return out;
}

/** The flow oriented as the cluster says, when the collector could only guess. */
export function orient(flow: FlowRecord, inventory: Inventory): Oriented {
  if (observedDirection(flow)) return { flow, basis: 'observed', swapped: false };
  const l4 = L4[flow.proto];
  const sport = flow.src.port;
  const dport = flow.dst.port;
  if (!l4 || sport === undefined || dport === undefined) return { flow, basis: 'guessed', swapped: false };
  const dstDeclares = declares(inventory.resolve(flow.dst.ip, flow.start), dport, l4, inventory);
  const srcDeclares = declares(inventory.resolve(flow.src.ip, flow.start), sport, l4, inventory);
  if (dstDeclares === srcDeclares) return { flow, basis: 'guessed', swapped: false };
  if (dstDeclares) return { flow, basis: 'declared-port', swapped: false };
  return { flow: reversed(flow), basis: 'declared-port', swapped: true };
}

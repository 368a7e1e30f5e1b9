import type { Initiators } from './initiator.js';
import { FIN, RST, SYN, TCP } from './protocols.js';
import {
  B_CLOSED,
  B_FIN_FWD,
  B_FIN_REV,
  C_CLOSE_REASON,
  CLOSE_FIN,
  CLOSE_RST,
  COLD_STRIDE,
  type FlowStore,
  I_BITS,
  I_FLAGS_FWD,
  I_FLAGS_REV,
  I_RPORT,
  I_STATE,
  ST_ATTEMPTED,
  ST_CLOSED,
  ST_ESTABLISHED,
  ST_REJECTED,
  STRIDE_I32,
} from './storage.js';

/**
 * A TCP packet with `flags` in flow f (`fwd`: sent by the initiator): ORs the flags into the
 * direction's flags and moves the state (attempted, established, closed, rejected; B_CLOSED once
 * FIN went both ways or an RST came). An answer makes the responder a listener (initiators).
 */
export function tcpTransition(
  store: FlowStore,
  initiators: Initiators,
  f: number,
  flags: number,
  fwd: boolean,
): void {
  const i = f * STRIDE_I32;
  const i32 = store.i32;
  if (fwd) i32[i + I_FLAGS_FWD]! |= flags;
  else i32[i + I_FLAGS_REV]! |= flags;
  let bits = i32[i + I_BITS]!;
  if (bits & B_CLOSED) return;
  const state = i32[i + I_STATE]!;
  if (flags & RST) {
    if (state === ST_ATTEMPTED && !fwd && i32[i + I_FLAGS_FWD]! & SYN) {
      i32[i + I_STATE] = ST_REJECTED;
    } else if (state === ST_ESTABLISHED) {
      i32[i + I_STATE] = ST_CLOSED;
    }
    store.cold[f * COLD_STRIDE + C_CLOSE_REASON] = CLOSE_RST;
    i32[i + I_BITS] = bits | B_CLOSED;
    return;
  }
  if (!fwd && state === ST_ATTEMPTED) {
    i32[i + I_STATE] = ST_ESTABLISHED;
    const rPort = i32[i + I_RPORT]!;
    if (rPort >= 0) initiators.learnListener(store, TCP, f, rPort);
  }
  if (flags & FIN) {
    bits |= fwd ? B_FIN_FWD : B_FIN_REV;
    if ((bits & (B_FIN_FWD | B_FIN_REV)) === (B_FIN_FWD | B_FIN_REV)) {
      if (i32[i + I_STATE] === ST_ESTABLISHED) i32[i + I_STATE] = ST_CLOSED;
      store.cold[f * COLD_STRIDE + C_CLOSE_REASON] = CLOSE_FIN;
      bits |= B_CLOSED;
    }
    i32[i + I_BITS] = bits;
  }
}

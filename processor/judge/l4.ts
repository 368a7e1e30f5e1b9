import type { L4Protocol } from '../inventory/model.js';

/** The Service/container-port protocol of a FlowRecord protocol (by name or number), if it has one. */
export const L4: Partial<Record<string | number, L4Protocol>> = {
  TCP: 'TCP',
  UDP: 'UDP',
  SCTP: 'SCTP',
  6: 'TCP',
  17: 'UDP',
  132: 'SCTP',
};

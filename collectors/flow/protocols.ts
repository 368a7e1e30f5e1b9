/** IP protocol numbers and TCP flags the flow table tells apart. */
export const TCP = 6;
export const UDP = 17;
export const SCTP = 132;
export const ICMP = 1;
export const ICMPV6 = 58;

export const FIN = 1;
export const SYN = 2;
export const RST = 4;
export const ACK = 16;

export function isIcmpError(proto: number, type: number): boolean {
  if (proto === ICMP) return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
  if (proto === ICMPV6) return type >= 1 && type <= 4;
  return false;
}

export function isUnreachable(proto: number, type: number): boolean {
  return (proto === ICMP && type === 3) || (proto === ICMPV6 && type === 1);
}

export function hasPorts(proto: number): boolean {
  return proto === TCP || proto === UDP || proto === SCTP;
}

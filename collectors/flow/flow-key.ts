/** 64-bit FNV-1a of a string, as 16 hex digits: a stable flow id without crypto cost. */
export function flowHash(s: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0xcbf29ce4;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c ^ (h1 >>> 7), 0x01000193);
  }
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

/**
 * The flow key as a string: both directions give the same one (the lower address/port first). The
 * tunnel identity is part of it because overlay networks reuse inner addresses: the same pod CIDR in
 * two VNIs is two different conversations. Used for tunnelled flows and the flow id; untunnelled
 * lookups go through the table's numeric hash index (flow-index.ts).
 */
export function flowKey(
  proto: number,
  src: string,
  sport: number,
  dst: string,
  dport: number,
  tunnelType: string,
  tunnelId: number,
): string {
  const k =
    src < dst || (src === dst && sport <= dport)
      ? `${src}|${sport}|${dst}|${dport}|${proto}`
      : `${dst}|${dport}|${src}|${sport}|${proto}`;
  return tunnelType === '' ? k : `${k}|${tunnelType}|${tunnelId}`;
}

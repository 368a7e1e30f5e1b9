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

/** flowId's running hash (module-level: no allocation per record). */
let h1 = 0;
let h2 = 0;
const digits = new Int32Array(24);

function mix(c: number): void {
  h1 = Math.imul(h1 ^ c, 0x01000193);
  h2 = Math.imul(h2 ^ c ^ (h1 >>> 7), 0x01000193);
}

function mixText(s: string): void {
  for (let i = 0; i < s.length; i++) mix(s.charCodeAt(i));
}

/** The characters String(n) gives for an integer n (|n| < 2^53). */
function mixInt(n: number): void {
  if (n < 0) {
    mix(45);
    n = -n;
  }
  let k = 0;
  do {
    digits[k++] = n % 10;
    n = Math.floor(n / 10);
  } while (n > 0);
  while (k > 0) mix(48 + digits[--k]!);
}

/** Hashes `a|aPort|b|bPort|proto`, as flowKey writes the key. */
function mixKey(a: string, aPort: number, b: string, bPort: number, proto: number): void {
  mixText(a);
  mix(124);
  mixInt(aPort);
  mix(124);
  mixText(b);
  mix(124);
  mixInt(bPort);
  mix(124);
  mixInt(proto);
}

/**
 * A flow's id: flowHash(`${flowKey(...)}|${first}`), computed without building the key's text (every
 * exported flow needs one; the strings and their flattening cost more than the hash).
 */
export function flowId(
  proto: number,
  src: string,
  sport: number,
  dst: string,
  dport: number,
  tunnelType: string,
  tunnelId: number,
  first: number,
): string {
  h1 = 0x811c9dc5;
  h2 = 0xcbf29ce4;
  if (src < dst || (src === dst && sport <= dport)) mixKey(src, sport, dst, dport, proto);
  else mixKey(dst, dport, src, sport, proto);
  if (tunnelType !== '') {
    mix(124);
    mixText(tunnelType);
    mix(124);
    mixInt(tunnelId);
  }
  mix(124);
  mixText(String(first));
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

/**
 * IP addresses and CIDRs for ipBlock peers. Addresses are bigints so IPv4 and IPv6 share one code
 * path; parsing is strict (as Go's net.ParseIP/ParseCIDR, which the API server uses): no leading zeros
 * in IPv4 octets, no zones.
 */

export type IpFamily = 4 | 6;

export interface ParsedIp {
  family: IpFamily;
  value: bigint;
}

export interface Cidr {
  family: IpFamily;
  prefix: number;
  /** The network address (host bits cleared). */
  network: bigint;
  /** network >> (width - prefix): compared against the address shifted the same way. */
  networkShifted: bigint;
  shift: bigint;
  text: string;
}

const V4_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const V6_GROUP = /^[0-9a-fA-F]{1,4}$/;

export function parseIpv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!V4_OCTET.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseIpv6(text: string): bigint | undefined {
  if (text.length === 0 || text.includes('%')) return undefined;
  let head = text;
  let tailV4: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.indexOf('.', lastColon) > lastColon) {
    tailV4 = parseIpv4(text.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    // Keep the colon(s) before the IPv4 tail so '::1.2.3.4' still splits around '::'.
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = head.indexOf('::');
  if (dbl !== head.lastIndexOf('::')) return undefined;
  let groups: string[];
  if (dbl >= 0) {
    const left = head.slice(0, dbl);
    const right = head.slice(dbl + 2);
    const l = left === '' ? [] : left.split(':');
    const r = right === '' ? [] : right.split(':');
    const missing = 8 - l.length - r.length;
    if (missing < 1) return undefined;
    groups = [...l, ...new Array<string>(missing).fill('0'), ...r];
  } else {
    groups = head.split(':');
  }
  if (groups.length !== 8) return undefined;
  let v = 0n;
  for (const g of groups) {
    if (!V6_GROUP.test(g)) return undefined;
    v = (v << 16n) | BigInt(Number.parseInt(g, 16));
  }
  if (tailV4 !== undefined) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

export function parseIp(text: string): ParsedIp | undefined {
  if (typeof text !== 'string') return undefined;
  if (text.includes(':')) {
    const v = parseIpv6(text);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  const v = parseIpv4(text);
  return v === undefined ? undefined : { family: 4, value: v };
}

function widthOf(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

/** Parses `addr/prefix`. Host bits are cleared, as net.ParseCIDR does (the API server accepts them). */
export function parseCidr(text: string): Cidr | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  const width = widthOf(ip.family);
  if (prefix > width) return undefined;
  const shift = BigInt(width - prefix);
  const networkShifted = ip.value >> shift;
  return { family: ip.family, prefix, network: networkShifted << shift, networkShifted, shift, text };
}

export function cidrContains(c: Cidr, ip: ParsedIp): boolean {
  return c.family === ip.family && ip.value >> c.shift === c.networkShifted;
}

/** `inner` lies inside `outer` and is strictly smaller (upstream: "a strict subset of cidr"). */
export function cidrStrictlyInside(inner: Cidr, outer: Cidr): boolean {
  return (
    inner.family === outer.family &&
    inner.prefix > outer.prefix &&
    inner.network >> outer.shift === outer.networkShifted
  );
}

/** Whether host bits were set in the CIDR text (accepted, but worth a warning). */
export function cidrHasHostBits(c: Cidr): boolean {
  const ip = parseIp(c.text.slice(0, c.text.indexOf('/')));
  return ip !== undefined && ip.value !== c.network;
}

interface TrieNode {
  zero?: TrieNode;
  one?: TrieNode;
  /** Entries whose cidr is exactly this prefix. */
  include?: number[];
  /** Entries with an except that is exactly this prefix. */
  exclude?: number[];
}

/**
 * A binary trie per family over all ipBlock cidrs and excepts. A lookup walks one path (at most 32 or
 * 128 steps) and yields the entries whose cidr holds the address minus those with an except holding it:
 * the address's "ipBlock class". Addresses of one class are indistinguishable to every ipBlock.
 */
export class CidrTrie {
  private readonly roots: Record<IpFamily, TrieNode> = { 4: {}, 6: {} };

  private nodeFor(c: Cidr): TrieNode {
    let node = this.roots[c.family];
    const bits = c.network.toString(2).padStart(widthOf(c.family), '0');
    for (let i = 0; i < c.prefix; i++) {
      if (bits.charCodeAt(i) === 48) node = node.zero ??= {};
      else node = node.one ??= {};
    }
    return node;
  }

  addInclude(c: Cidr, entry: number): void {
    const n = this.nodeFor(c);
    n.include ??= [];
    n.include.push(entry);
  }

  addExclude(c: Cidr, entry: number): void {
    const n = this.nodeFor(c);
    n.exclude ??= [];
    n.exclude.push(entry);
  }

  /** Sorted entry ids matching the address (cidr holds it, no except of the same entry does). */
  lookup(ip: ParsedIp): number[] {
    const width = widthOf(ip.family);
    const bits = ip.value.toString(2).padStart(width, '0');
    const included: number[] = [];
    let excluded: Set<number> | undefined;
    let node: TrieNode | undefined = this.roots[ip.family];
    for (let i = 0; node !== undefined; i++) {
      if (node.include) for (const e of node.include) included.push(e);
      if (node.exclude) {
        excluded ??= new Set();
        for (const e of node.exclude) excluded.add(e);
      }
      if (i === width) break;
      node = bits.charCodeAt(i) === 48 ? node.zero : node.one;
    }
    const out = excluded ? included.filter((e) => !excluded.has(e)) : included;
    return [...new Set(out)].sort((a, b) => a - b);
  }
}

/**
 * Hand-built packets for tests (decoder unit tests, flow-table tests, fuzz seeds). Every builder returns
 * fresh bytes; lengths and next-header fields are filled in, checksums are left zero (nothing here
 * verifies them).
 */

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

function put32(b: Uint8Array, o: number, v: number): void {
  put16(b, o, (v >>> 16) & 0xffff);
  put16(b, o + 2, v & 0xffff);
}

export function ip4Bytes(addr: string): Uint8Array {
  return Uint8Array.from(addr.split('.').map(Number));
}

export function ip6Bytes(addr: string): Uint8Array {
  const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = new Uint8Array(16);
  for (let i = 0; i < 8; i++) put16(b, i * 2, Number.parseInt(groups[i], 16));
  return b;
}

export function ethernet(
  etherType: number,
  payload: Uint8Array,
  vlans: number[] = [],
  vlanTpid = 0x8100,
): Uint8Array {
  const h = new Uint8Array(14 + 4 * vlans.length);
  h.set([0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2], 0);
  let o = 12;
  for (const v of vlans) {
    put16(h, o, vlanTpid);
    put16(h, o + 2, v);
    o += 4;
  }
  put16(h, o, etherType);
  return concat(h, payload);
}

export interface Ipv4Options {
  proto: number;
  id?: number;
  /** Fragment offset in bytes (multiple of 8). */
  fragOffset?: number;
  moreFragments?: boolean;
  /** IP options (padded to 4 bytes by the caller). */
  options?: Uint8Array;
  ttl?: number;
  /** Override the total length field. */
  totalLength?: number;
}

export function ipv4(src: string, dst: string, o: Ipv4Options, payload: Uint8Array): Uint8Array {
  const opts = o.options ?? new Uint8Array(0);
  const h = new Uint8Array(20 + opts.length);
  h[0] = 0x40 | ((20 + opts.length) / 4);
  put16(h, 2, o.totalLength ?? h.length + payload.length);
  put16(h, 4, o.id ?? 1);
  put16(h, 6, ((o.fragOffset ?? 0) / 8) | (o.moreFragments ? 0x2000 : 0));
  h[8] = o.ttl ?? 64;
  h[9] = o.proto;
  h.set(ip4Bytes(src), 12);
  h.set(ip4Bytes(dst), 16);
  h.set(opts, 20);
  return concat(h, payload);
}

/** An IPv6 extension header: { next header, raw body after the 2-byte next/length prefix }. */
export interface Ipv6Extension {
  type: number;
  /** Body for generic extensions; padded to a multiple of 8 bytes in total. */
  body?: Uint8Array;
  /** For type 44 (fragment). */
  fragOffset?: number;
  moreFragments?: boolean;
  fragId?: number;
}

export function ipv6(
  src: string,
  dst: string,
  proto: number,
  payload: Uint8Array,
  ext: Ipv6Extension[] = [],
): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < ext.length; i++) {
    const e = ext[i];
    const next = i + 1 < ext.length ? ext[i + 1].type : proto;
    if (e.type === 44) {
      const f = new Uint8Array(8);
      f[0] = next;
      put16(f, 2, (e.fragOffset ?? 0) | (e.moreFragments ? 1 : 0));
      put32(f, 4, e.fragId ?? 0x1234);
      parts.push(f);
    } else if (e.type === 51) {
      const body = e.body ?? new Uint8Array(10);
      const len = 2 + body.length;
      const f = new Uint8Array(len + ((4 - (len % 4)) % 4));
      f[0] = next;
      f[1] = f.length / 4 - 2;
      f.set(body, 2);
      parts.push(f);
    } else {
      const body = e.body ?? new Uint8Array(6);
      const len = 2 + body.length;
      const f = new Uint8Array(len + ((8 - (len % 8)) % 8));
      f[0] = next;
      f[1] = f.length / 8 - 1;
      f.set(body, 2);
      parts.push(f);
    }
  }
  const rest = concat(...parts, payload);
  const h = new Uint8Array(40);
  h[0] = 0x60;
  put16(h, 4, rest.length);
  h[6] = ext.length > 0 ? ext[0].type : proto;
  h[7] = 64;
  h.set(ip6Bytes(src), 8);
  h.set(ip6Bytes(dst), 24);
  return concat(h, rest);
}

export function tcp(
  sport: number,
  dport: number,
  flags: number,
  payload: Uint8Array = new Uint8Array(0),
  dataOffsetWords = 5,
): Uint8Array {
  const h = new Uint8Array(Math.max(20, dataOffsetWords * 4));
  put16(h, 0, sport);
  put16(h, 2, dport);
  h[12] = dataOffsetWords << 4;
  h[13] = flags;
  put16(h, 14, 65535);
  return concat(h, payload);
}

export function udp(sport: number, dport: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = new Uint8Array(8);
  put16(h, 0, sport);
  put16(h, 2, dport);
  put16(h, 4, 8 + payload.length);
  return concat(h, payload);
}

export function sctp(sport: number, dport: number): Uint8Array {
  const h = new Uint8Array(12);
  put16(h, 0, sport);
  put16(h, 2, dport);
  return h;
}

export function icmp(type: number, code: number, rest: Uint8Array = new Uint8Array(4)): Uint8Array {
  const h = new Uint8Array(4);
  h[0] = type;
  h[1] = code;
  return concat(h, rest);
}

export function icmpEcho(type: number, id: number, seq = 1): Uint8Array {
  const r = new Uint8Array(4);
  put16(r, 0, id);
  put16(r, 2, seq);
  return icmp(type, 0, r);
}

/** ICMP error: 4 unused bytes, then the quoted packet. */
export function icmpError(type: number, code: number, quoted: Uint8Array): Uint8Array {
  return icmp(type, code, concat(new Uint8Array(4), quoted));
}

export function vxlan(vni: number, inner: Uint8Array): Uint8Array {
  const h = new Uint8Array(8);
  h[0] = 0x08;
  h[4] = (vni >> 16) & 0xff;
  h[5] = (vni >> 8) & 0xff;
  h[6] = vni & 0xff;
  return concat(h, inner);
}

export function geneve(
  vni: number,
  protocol: number,
  inner: Uint8Array,
  options = new Uint8Array(0),
): Uint8Array {
  const h = new Uint8Array(8);
  h[0] = options.length / 4;
  put16(h, 2, protocol);
  h[4] = (vni >> 16) & 0xff;
  h[5] = (vni >> 8) & 0xff;
  h[6] = vni & 0xff;
  return concat(h, options, inner);
}

export interface GreOptions {
  protocol: number;
  key?: number;
  seq?: number;
  checksum?: boolean;
  version?: number;
}

export function gre(o: GreOptions, inner: Uint8Array): Uint8Array {
  let flags = o.version ?? 0;
  const extra: Uint8Array[] = [];
  if (o.checksum) {
    flags |= 0x8000;
    extra.push(new Uint8Array(4));
  }
  if (o.key !== undefined) {
    flags |= 0x2000;
    const k = new Uint8Array(4);
    put32(k, 0, o.key);
    extra.push(k);
  }
  if (o.seq !== undefined) {
    flags |= 0x1000;
    const s = new Uint8Array(4);
    put32(s, 0, o.seq);
    extra.push(s);
  }
  const h = new Uint8Array(4);
  put16(h, 0, flags);
  put16(h, 2, o.protocol);
  return concat(h, ...extra, inner);
}

/** Linux cooked header v1 (LINKTYPE_LINUX_SLL, 113). */
export function sll(protocol: number, payload: Uint8Array, addrLen = 6): Uint8Array {
  const h = new Uint8Array(16);
  put16(h, 2, 1);
  put16(h, 4, addrLen);
  put16(h, 14, protocol);
  return concat(h, payload);
}

/** Linux cooked header v2 (LINKTYPE_LINUX_SLL2, 276). */
export function sll2(protocol: number, payload: Uint8Array): Uint8Array {
  const h = new Uint8Array(20);
  put16(h, 0, protocol);
  put32(h, 4, 3);
  put16(h, 8, 1);
  h[11] = 6;
  return concat(h, payload);
}

/** BSD loopback (LINKTYPE_NULL 0 in host order, LINKTYPE_LOOP 108 in network order). */
export function nullHeader(af: number, payload: Uint8Array, bigEndian: boolean): Uint8Array {
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, af, !bigEndian);
  return concat(h, payload);
}

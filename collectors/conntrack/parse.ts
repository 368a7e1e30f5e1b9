import ipaddr from 'ipaddr.js';
import { type InputIssue, issue } from '../../lib/errors.js';

/**
 * Parser for the text conntrack-tools prints: `conntrack -E -o timestamp,extended,id` event lines and
 * `conntrack -L -o extended,id` dump lines. The layout is libnetfilter_conntrack's
 * __snprintf_conntrack_default (see docs/conntrack.md):
 *
 *   [1795419757.438630]\t[DESTROY] ipv4     2 tcp      6 120 CLOSE src=.. dst=.. sport=.. dport=..
 *     packets=1 bytes=60 [UNREPLIED] src=.. dst=.. sport=.. dport=.. packets=1 bytes=40 [ASSURED]
 *     mark=0 zone=0 delta-time=3 use=1 id=3153723020
 *
 * Pure: one line in, one parsed entry (or an issue) out.
 */

export type ConntrackEvent = 'NEW' | 'UPDATE' | 'DESTROY';

export interface ConntrackTuple {
  src: string;
  dst: string;
  /** TCP, UDP, UDP-Lite, SCTP, DCCP. */
  sport?: number;
  dport?: number;
  /** ICMP and ICMPv6. */
  icmpType?: number;
  icmpCode?: number;
  icmpId?: number;
  /** GRE keys. */
  srcKey?: number;
  dstKey?: number;
  /** Accounting (nf_conntrack_acct=1); always printed as a pair. */
  packets?: number;
  bytes?: number;
  /** Per-direction zone (zone-orig= / zone-reply=). */
  zone?: number;
}

export interface ConntrackEntry {
  /** Absent for dump (`-L`) lines. */
  event?: ConntrackEvent;
  /** Epoch milliseconds from the `[sec.usec]` prefix of `-o timestamp`. */
  timeMs?: number;
  l3: 'ipv4' | 'ipv6';
  /** Layer-4 protocol name as conntrack prints it ('tcp', 'udp', 'icmp', 'icmpv6', 'sctp', 'gre', 'unknown', ...). */
  protoName: string;
  protoNumber: number;
  /** Seconds left before expiry; absent on most DESTROY events. */
  timeout?: number;
  /** TCP / SCTP / DCCP state name (SYN_SENT, ESTABLISHED, TIME_WAIT, CLOSE, COOKIE_WAIT, ...). */
  state?: string;
  orig: ConntrackTuple;
  reply: ConntrackTuple;
  /** [UNREPLIED]: no packet seen in the reply direction (IPS_SEEN_REPLY clear). */
  unreplied: boolean;
  /** [ASSURED], [OFFLOAD] or [HW_OFFLOAD]: conntrack prints only the strongest; both offloads imply assured. */
  assured: boolean;
  offload?: 'sw' | 'hw';
  mark?: number;
  secmark?: number;
  zone?: number;
  use?: number;
  id?: number;
  /** Seconds from creation to destruction (or to now), with nf_conntrack_timestamp=1. */
  deltaTime?: number;
  helper?: string;
  labels?: string[];
  /**
   * `[USERSPACE] portid=N progname=NAME`: the event was caused by a program (conntrack -D/-F,
   * kube-proxy clearing stale UDP entries), not by traffic or expiry.
   */
  userspace?: { portid?: number; progname?: string };
}

export type ParsedLine =
  | { kind: 'entry'; entry: ConntrackEntry }
  /** Blank lines and conntrack's own summary lines ("conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown."). */
  | { kind: 'ignored' }
  | { kind: 'issue'; issue: InputIssue };

export const CONNTRACK_MALFORMED_LINE = 'CONNTRACK_MALFORMED_LINE';

const PROTO_NUMBERS: Record<string, number> = {
  icmp: 1,
  igmp: 2,
  tcp: 6,
  udp: 17,
  dccp: 33,
  gre: 47,
  icmpv6: 58,
  sctp: 132,
  udplite: 136,
};
const PORTED = new Set([6, 17, 33, 132, 136]);
const ICMP = new Set([1, 58]);
const L3: Record<string, { name: 'ipv4' | 'ipv6'; num: number }> = {
  ipv4: { name: 'ipv4', num: 2 },
  ipv6: { name: 'ipv6', num: 10 },
};
const STATE_RE = /^[A-Z][A-Z_]*$/;
const UINT_RE = /^\d+$/;
const TIMESTAMP_RE = /^\[(\d+)(?:\.(\d{1,9}))?\]\s*/;
const EVENT_RE = /^\[(NEW|UPDATE|DESTROY)\]$/;
const TOOL_SUMMARY_RE = /^conntrack v[\d.]+ \(conntrack-tools\):/;

class LineError extends Error {}

function uint(key: string, v: string, max: number): number {
  if (!UINT_RE.test(v)) throw new LineError(`${key}=${v}: expected an unsigned integer`);
  const n = Number(v);
  if (n > max) throw new LineError(`${key}=${v}: expected at most ${max}`);
  return n;
}

function hexOrUint(key: string, v: string, max: number): number {
  const n = /^0x[0-9a-f]+$/i.test(v) ? Number.parseInt(v.slice(2), 16) : uint(key, v, max);
  if (!Number.isFinite(n) || n > max) throw new LineError(`${key}=${v}: expected at most ${max}`);
  return n;
}

function address(key: string, v: string, l3: 'ipv4' | 'ipv6'): string {
  const ok = l3 === 'ipv4' ? ipaddr.IPv4.isValidFourPartDecimal(v) : ipaddr.IPv6.isValid(v);
  if (!ok) throw new LineError(`${key}=${v}: expected an ${l3 === 'ipv4' ? 'IPv4' : 'IPv6'} address`);
  return v;
}

/** Splits on blanks, keeping `[start=Mon Nov 23 07:42:36 2026]` (which has blanks inside) as one token. */
function tokens(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
    if (i >= s.length) break;
    let j = i;
    if (s[i] === '[') {
      const close = s.indexOf(']', i);
      j = close < 0 ? s.length : close + 1;
    } else {
      while (j < s.length && s[j] !== ' ' && s[j] !== '\t') j++;
    }
    out.push(s.slice(i, j));
    i = j;
  }
  return out;
}

const U64 = Number.MAX_SAFE_INTEGER;
const U32 = 0xffffffff;

/** Parses one line. `line` is 1-based; `source` names the input in issues. */
export function parseConntrackLine(text: string, line: number, source?: string): ParsedLine {
  const trimmed = text.trim();
  if (trimmed === '' || TOOL_SUMMARY_RE.test(trimmed)) return { kind: 'ignored' };
  try {
    return { kind: 'entry', entry: parseEntry(trimmed) };
  } catch (err) {
    if (!(err instanceof LineError)) throw err;
    return {
      kind: 'issue',
      issue: issue(CONNTRACK_MALFORMED_LINE, `${err.message} (in '${clip(trimmed)}')`, { source, line }),
    };
  }
}

function clip(s: string): string {
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

function parseEntry(s: string): ConntrackEntry {
  let rest = s;
  let timeMs: number | undefined;
  const ts = TIMESTAMP_RE.exec(rest);
  if (ts) {
    const frac = (ts[2] ?? '').padEnd(9, '0');
    // Whole milliseconds plus the sub-millisecond part as a fraction: exact enough and never rounds up a second.
    timeMs = Number(ts[1]) * 1000 + Number(frac.slice(0, 3)) + Number(frac.slice(3)) / 1e6;
    rest = rest.slice(ts[0].length);
  }
  const t = tokens(rest);
  let i = 0;
  let event: ConntrackEvent | undefined;
  const ev = EVENT_RE.exec(t[0] ?? '');
  if (ev) {
    event = ev[1] as ConntrackEvent;
    i++;
  } else if (t[0]?.startsWith('[')) {
    throw new LineError(`${t[0]}: expected an event [NEW], [UPDATE] or [DESTROY]`);
  }

  // `-o extended` adds the layer-3 name and number; without it the line starts at the layer-4 protocol.
  let l3: 'ipv4' | 'ipv6' | undefined;
  const l3info = L3[t[i] ?? ''];
  if (l3info) {
    if (t[i + 1] !== String(l3info.num)) {
      throw new LineError(`'${t[i]} ${t[i + 1] ?? ''}': expected layer-3 number ${l3info.num} after ${t[i]}`);
    }
    l3 = l3info.name;
    i += 2;
  }

  const protoName = t[i];
  const protoNumText = t[i + 1];
  if (
    protoName === undefined ||
    !/^[a-z][a-z0-9-]*$/.test(protoName) ||
    protoNumText === undefined ||
    !UINT_RE.test(protoNumText)
  ) {
    throw new LineError(
      `expected ${l3 ? '' : "'ipv4 2' / 'ipv6 10' or "}a layer-4 protocol name and number (e.g. 'tcp 6'), got '${t.slice(i, i + 2).join(' ')}'`,
    );
  }
  const protoNumber = uint('protocol', protoNumText, 255);
  const known = PROTO_NUMBERS[protoName];
  if (known !== undefined && known !== protoNumber) {
    throw new LineError(`'${protoName} ${protoNumText}': expected ${protoName} ${known}`);
  }
  i += 2;

  let timeout: number | undefined;
  if (UINT_RE.test(t[i] ?? '')) timeout = uint('timeout', t[i++]!, U32);
  let state: string | undefined;
  if (STATE_RE.test(t[i] ?? '')) state = t[i++];

  const tuples: Partial<ConntrackTuple>[] = [];
  let cur: Partial<ConntrackTuple> | undefined;
  const entry: Omit<ConntrackEntry, 'orig' | 'reply' | 'l3'> & { l3?: 'ipv4' | 'ipv6' } = {
    event,
    timeMs,
    l3,
    protoName,
    protoNumber,
    timeout,
    state,
    unreplied: false,
    assured: false,
  };
  if (event === undefined) delete entry.event;
  if (timeMs === undefined) delete entry.timeMs;
  if (l3 === undefined) delete entry.l3;
  if (timeout === undefined) delete entry.timeout;
  if (state === undefined) delete entry.state;

  for (; i < t.length; i++) {
    const tok = t[i]!;
    if (tok.startsWith('[')) {
      if (tok === '[UNREPLIED]') entry.unreplied = true;
      else if (tok === '[ASSURED]') entry.assured = true;
      else if (tok === '[OFFLOAD]') {
        entry.assured = true;
        entry.offload = 'sw';
      } else if (tok === '[HW_OFFLOAD]') {
        entry.assured = true;
        entry.offload = 'hw';
      } else if (tok === '[USERSPACE]') {
        entry.userspace = {};
      } else if (tok.startsWith('[start=') || tok.startsWith('[stop=')) {
        // Local-time text with one-second resolution: the event timestamp and delta-time say it better.
      } else
        throw new LineError(
          `${tok}: unknown flag (expected [UNREPLIED], [ASSURED], [OFFLOAD], [HW_OFFLOAD], [USERSPACE])`,
        );
      continue;
    }
    const eq = tok.indexOf('=');
    if (eq <= 0) throw new LineError(`'${tok}': expected key=value`);
    const key = tok.slice(0, eq);
    const v = tok.slice(eq + 1);
    switch (key) {
      case 'src':
        if (tuples.length === 2)
          throw new LineError(`a third src=: expected only the original and reply tuples`);
        cur = {};
        tuples.push(cur);
        cur.src = v;
        break;
      case 'dst':
      case 'sport':
      case 'dport':
      case 'type':
      case 'code':
      case 'srckey':
      case 'dstkey':
      case 'packets':
      case 'bytes':
      case 'zone-orig':
      case 'zone-reply': {
        if (!cur)
          throw new LineError(
            `${key}= before the first src=: expected the original tuple to start with src=`,
          );
        if (key === 'dst') cur.dst = v;
        else if (key === 'sport') cur.sport = uint(key, v, 65535);
        else if (key === 'dport') cur.dport = uint(key, v, 65535);
        else if (key === 'type') cur.icmpType = uint(key, v, 255);
        else if (key === 'code') cur.icmpCode = uint(key, v, 255);
        else if (key === 'srckey') cur.srcKey = hexOrUint(key, v, 0xffff);
        else if (key === 'dstkey') cur.dstKey = hexOrUint(key, v, 0xffff);
        else if (key === 'packets') cur.packets = uint(key, v, U64);
        else if (key === 'bytes') cur.bytes = uint(key, v, U64);
        else cur.zone = uint(key, v, 0xffff);
        break;
      }
      case 'id':
        // Inside an ICMP tuple `id=` is the echo identifier; after the tuples it is the conntrack id.
        if (cur && ICMP.has(protoNumber) && cur.icmpType !== undefined && cur.icmpId === undefined) {
          cur.icmpId = uint('icmp id', v, 65535);
        } else {
          entry.id = uint(key, v, U32);
        }
        break;
      case 'mark':
        entry.mark = uint(key, v, U32);
        break;
      case 'secmark':
        entry.secmark = uint(key, v, U32);
        break;
      case 'zone':
        entry.zone = uint(key, v, 0xffff);
        break;
      case 'use':
        entry.use = uint(key, v, U32);
        break;
      case 'delta-time':
        entry.deltaTime = uint(key, v, U64);
        break;
      case 'helper':
        entry.helper = v;
        break;
      case 'labels':
        entry.labels = v.split(',').filter((x) => x !== '');
        break;
      case 'portid':
        if (entry.userspace) entry.userspace.portid = uint(key, v, U32);
        break;
      case 'progname':
        if (entry.userspace) entry.userspace.progname = v;
        break;
      case 'secctx':
        break;
      default:
        // Newer conntrack-tools may add fields; an unknown key=value is not worth losing the flow over.
        break;
    }
  }

  if (tuples.length !== 2) {
    throw new LineError(
      `found ${tuples.length} address tuple(s): expected the original and the reply tuple (src= dst= twice)`,
    );
  }
  const [o, r] = tuples as [Partial<ConntrackTuple>, Partial<ConntrackTuple>];
  const family = entry.l3 ?? (o.src?.includes(':') ? 'ipv6' : 'ipv4');
  const names = ['original', 'reply'];
  for (const [k, tp] of [o, r].entries()) {
    const which = names[k];
    if (tp.dst === undefined) throw new LineError(`${which} tuple: expected dst= after src=`);
    address('src', tp.src!, family);
    address('dst', tp.dst, family);
    if (PORTED.has(protoNumber) && (tp.sport === undefined || tp.dport === undefined)) {
      throw new LineError(`${which} tuple: expected sport= and dport= for ${protoName}`);
    }
    if (ICMP.has(protoNumber) && (tp.icmpType === undefined || tp.icmpCode === undefined)) {
      throw new LineError(`${which} tuple: expected type= and code= for ${protoName}`);
    }
    if ((tp.packets === undefined) !== (tp.bytes === undefined)) {
      throw new LineError(`${which} tuple: expected packets= and bytes= together`);
    }
  }
  return { ...entry, l3: family, orig: o as ConntrackTuple, reply: r as ConntrackTuple };
}

/**
 * Generates a large, realistic, deterministic pcap for the collector benchmark (bench/collect.ts):
 * thousands of concurrent TCP connections (handshake, request/response data, FIN teardown; some
 * refused with RST, some unanswered SYNs, some long-lived), DNS-like UDP queries/responses, and
 * ICMP echo. Same arguments, same bytes: the PRNG is seeded and time comes from a counter.
 *
 *   npx tsx bench/gen-capture.ts [--packets N] [--out FILE]
 *
 * Prints the path. Reuses an existing file of the right size/seed (the name encodes both).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PcapWriter } from '../collectors/capture/writer.js';
import { rng } from './policy-cluster.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BENCH_OUT = resolve(ROOT, 'bench/out');
const SEED = 0x5eed1234;

const FIN = 1;
const SYN = 2;
const RST = 4;
const PSH = 8;
const ACK = 16;

const SNAPLEN = 128;
const frame = Buffer.alloc(SNAPLEN);

function ipChecksum(b: Buffer, off: number): number {
  let sum = 0;
  for (let i = off; i < off + 20; i += 2) sum += b.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

let ipId = 1;

/**
 * Writes an Ethernet/IPv4 frame header + transport header into `frame`; returns the captured
 * length (at most SNAPLEN, like `tcpdump -s 128`) and the length on the wire.
 */
function build(
  src: number,
  dst: number,
  proto: number,
  sport: number,
  dport: number,
  flags: number,
  payload: number,
  icmpType = 0,
): { capLen: number; wireLen: number } {
  const l4 = proto === 6 ? 20 : 8;
  const ipLen = 20 + l4 + payload;
  const wireLen = 14 + ipLen;
  frame.fill(0);
  // Ethernet: synthetic locally administered MACs derived from the addresses.
  frame.writeUInt16BE(0x0200, 0);
  frame.writeUInt32BE(dst >>> 0, 2);
  frame.writeUInt16BE(0x0200, 6);
  frame.writeUInt32BE(src >>> 0, 8);
  frame.writeUInt16BE(0x0800, 12);
  const ip = 14;
  frame[ip] = 0x45;
  frame.writeUInt16BE(ipLen, ip + 2);
  frame.writeUInt16BE(ipId, ip + 4);
  ipId = (ipId + 1) & 0xffff;
  frame.writeUInt16BE(0x4000, ip + 6); // DF
  frame[ip + 8] = 64;
  frame[ip + 9] = proto;
  frame.writeUInt32BE(src >>> 0, ip + 12);
  frame.writeUInt32BE(dst >>> 0, ip + 16);
  frame.writeUInt16BE(ipChecksum(frame, ip), ip + 10);
  const t = ip + 20;
  if (proto === 6) {
    frame.writeUInt16BE(sport, t);
    frame.writeUInt16BE(dport, t + 2);
    frame.writeUInt32BE((sport * 7919 + dport) >>> 0, t + 4);
    frame.writeUInt32BE(flags & ACK ? (dport * 104729) >>> 0 : 0, t + 8);
    frame[t + 12] = 5 << 4;
    frame[t + 13] = flags;
    frame.writeUInt16BE(65535, t + 14);
  } else if (proto === 17) {
    frame.writeUInt16BE(sport, t);
    frame.writeUInt16BE(dport, t + 2);
    frame.writeUInt16BE(8 + payload, t + 4);
  } else {
    frame[t] = icmpType;
    frame.writeUInt16BE(sport, t + 4); // echo identifier
    frame.writeUInt16BE(dport, t + 6); // sequence
  }
  return { capLen: Math.min(wireLen, SNAPLEN), wireLen };
}

/** One conversation in progress: a list of packets still to send. */
interface Conversation {
  next: number;
  steps: Int32Array; // per packet: direction (0 fwd / 1 rev) | flags << 1 | payload << 9
  proto: number;
  a: number;
  b: number;
  aport: number;
  bport: number;
  /** Earliest capture time of the next packet (lets long-lived flows idle between packets). */
  due: number;
  gapMs: number;
}

const ip4 = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

export interface GenSummary {
  path: string;
  packets: number;
  conversations: number;
  bytes: number;
}

export async function generateCapture(packets: number, out?: string): Promise<GenSummary> {
  mkdirSync(BENCH_OUT, { recursive: true });
  const path = out ?? resolve(BENCH_OUT, `synthetic-${packets}-${SEED.toString(16)}.pcap`);
  const meta = `${path}.done`;
  if (existsSync(path) && existsSync(meta)) {
    return { path, ...(JSON.parse(readFileSync(meta, 'utf8')) as Omit<GenSummary, 'path'>) };
  }
  const rnd = rng(SEED);
  const int = (n: number) => Math.floor(rnd() * n);
  const tmp = `${path}.tmp`;
  const writer = new PcapWriter(tmp, { snaplen: SNAPLEN, linkType: 1 });

  const servers: { ip: number; port: number }[] = [];
  for (let i = 0; i < 400; i++) {
    servers.push({
      ip: ip4(10, 96 + (i % 4), int(256), 1 + int(250)),
      port: [80, 443, 8080, 5432, 6379, 9090][i % 6]!,
    });
  }
  const dns = ip4(10, 96, 0, 10);
  let nextEphemeral = 32768;
  const client = () => ip4(10, 244, int(64), 1 + int(250));
  const ephemeral = () => {
    nextEphemeral = nextEphemeral >= 60999 ? 32768 : nextEphemeral + 1;
    return nextEphemeral;
  };

  const step = (dir: number, flags: number, payload: number) => dir | (flags << 1) | (payload << 9);

  function newConversation(now: number): Conversation {
    const r = rnd();
    const s: number[] = [];
    if (r < 0.8) {
      const srv = servers[int(servers.length)]!;
      const kind = rnd();
      if (kind < 0.04) {
        s.push(step(0, SYN, 0), step(1, RST | ACK, 0)); // refused
      } else if (kind < 0.07) {
        s.push(step(0, SYN, 0), step(0, SYN, 0), step(0, SYN, 0)); // unanswered, retried
      } else {
        s.push(step(0, SYN, 0), step(1, SYN | ACK, 0), step(0, ACK, 0));
        const exchanges = 1 + int(kind > 0.98 ? 200 : 6);
        for (let i = 0; i < exchanges; i++) {
          s.push(step(0, PSH | ACK, 40 + int(600)));
          const segs = 1 + int(4);
          for (let k = 0; k < segs; k++) s.push(step(1, k === segs - 1 ? PSH | ACK : ACK, 200 + int(1248)));
          s.push(step(0, ACK, 0));
        }
        if (rnd() < 0.95) s.push(step(0, FIN | ACK, 0), step(1, FIN | ACK, 0), step(0, ACK, 0));
        else s.push(step(1, RST | ACK, 0));
      }
      const longLived = s.length > 100;
      return {
        next: 0,
        steps: Int32Array.from(s),
        proto: 6,
        a: client(),
        b: srv.ip,
        aport: ephemeral(),
        bport: srv.port,
        due: now,
        gapMs: longLived ? 2000 : 0,
      };
    }
    if (r < 0.97) {
      const answered = rnd() < 0.97;
      s.push(step(0, 0, 30 + int(40)));
      if (answered) s.push(step(1, 0, 60 + int(400)));
      return {
        next: 0,
        steps: Int32Array.from(s),
        proto: 17,
        a: client(),
        b: dns,
        aport: ephemeral(),
        bport: 53,
        due: now,
        gapMs: 0,
      };
    }
    const pings = 1 + int(5);
    for (let i = 0; i < pings; i++) s.push(step(0, 8, 56), step(1, 0, 56));
    return {
      next: 0,
      steps: Int32Array.from(s),
      proto: 1,
      a: client(),
      b: servers[int(servers.length)]!.ip,
      aport: int(65536),
      bport: 0,
      due: now,
      gapMs: 1000,
    };
  }

  const CONCURRENT = 20_000;
  const active: Conversation[] = [];
  let tsUs = Date.UTC(2026, 0, 15, 12, 0, 0) * 1000;
  for (let i = 0; i < CONCURRENT; i++) active.push(newConversation(tsUs / 1000));
  let written = 0;
  let conversations = CONCURRENT;
  let bytes = 0;
  let seq = 0;
  while (written < packets) {
    // ~50k packets per second of capture time on average.
    tsUs += int(40);
    const nowMs = tsUs / 1000;
    const i = int(active.length);
    const c = active[i]!;
    if (c.due > nowMs) continue;
    const st = c.steps[c.next++]!;
    const rev = (st & 1) === 1;
    const flags = (st >>> 1) & 0xff;
    const payload = st >>> 9;
    let len: { capLen: number; wireLen: number };
    if (c.proto === 1) {
      len = build(rev ? c.b : c.a, rev ? c.a : c.b, 1, c.aport, seq++ & 0xffff, 0, payload, flags);
    } else {
      len = rev
        ? build(c.b, c.a, c.proto, c.bport, c.aport, flags, payload)
        : build(c.a, c.b, c.proto, c.aport, c.bport, flags, payload);
    }
    writer.writePacket(nowMs, frame.subarray(0, len.capLen), len.wireLen);
    bytes += len.wireLen;
    written++;
    c.due = nowMs + c.gapMs;
    if (c.next >= c.steps.length) {
      active[i] = newConversation(nowMs);
      conversations++;
    }
  }
  await writer.close();
  renameSync(tmp, path);
  writeFileSync(meta, JSON.stringify({ packets: written, conversations, bytes }));
  return { path, packets: written, conversations, bytes };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { packets: { type: 'string' }, out: { type: 'string' } } });
  const n = Number(values.packets ?? 3_000_000);
  const t0 = performance.now();
  const s = await generateCapture(n, values.out);
  process.stderr.write(
    `generated ${s.packets} packets, ${s.conversations} conversations, ${(s.bytes / 1e6).toFixed(0)} MB on the wire in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  process.stdout.write(`${s.path}\n`);
}

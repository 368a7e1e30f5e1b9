/**
 * Capture reader throughput: `npx tsx bench/capture.ts [file]`.
 *
 * Without a file, builds /tmp/netpol-audit-bench-capture.pcap (~128 MiB) by repeating the Ethernet
 * packets of the corpus with increasing timestamps (PcapWriter). Measures, best of 3 runs each:
 *   1. our CaptureParser, read only (records counted)
 *   2. our CaptureParser + decodePacket on every record
 *   3. the `pcap-parser` npm package (EventEmitter, per-packet objects), read only
 * and prints packets/s, MiB/s (per CPU second) and the ratio ours/pcap-parser. Numbers go to docs/capture.md.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { CaptureParser, PcapWriter, readCaptureFile } from '../collectors/capture/index.js';
import { decodePacket, newDecodedPacket } from '../collectors/decode/index.js';
import { CORPUS } from '../test/support/cli.js';

const require = createRequire(import.meta.url);

interface PcapParserModule {
  parse(input: string): {
    on(ev: 'packet', cb: (p: { header: unknown; data: Buffer }) => void): void;
    on(ev: 'end', cb: () => void): void;
    on(ev: 'error', cb: (e: Error) => void): void;
  };
}

const DEFAULT_FILE = '/tmp/netpol-audit-bench-capture.pcap';
const TARGET_BYTES = 128 * 1024 * 1024;

/** Collects the Ethernet packets of the corpus's pcap files (our own reader, whole-file). */
function corpusPackets(): Uint8Array[] {
  const files = [
    'gopacket__cip.pcap',
    'zeek__modbusBig.pcap',
    'zeek__dns-edns-ecs.pcap',
    'tcpdump__vxlan.pcap',
  ];
  const packets: Uint8Array[] = [];
  for (const f of files) {
    const parser = new CaptureParser(f, {
      onRecord(rec) {
        if (rec.linkType === 1) packets.push(rec.data.slice());
      },
      onIssue() {},
    });
    parser.push(readFileSync(join(CORPUS, f)));
    parser.end();
  }
  return packets;
}

async function buildFile(path: string): Promise<void> {
  const packets = corpusPackets();
  const w = new PcapWriter(path, { snaplen: 65535 });
  let ts = Date.UTC(2026, 0, 1);
  for (let i = 0; w.bytes < TARGET_BYTES; i++) {
    const p = packets[i % packets.length];
    ts += 0.05;
    w.writePacket(ts, p);
  }
  await w.close();
  console.log(`built ${path}: ${w.packets} packets, ${(w.bytes / 1048576).toFixed(1)} MiB`);
}

async function ours(path: string, decode: boolean): Promise<number> {
  let n = 0;
  let ok = 0;
  const out = newDecodedPacket();
  await readCaptureFile(path, {
    onRecord(rec) {
      n++;
      if (decode && decodePacket(rec, out) === 0) ok++;
    },
    onIssue() {},
  });
  if (decode && ok === 0) throw new Error('nothing decoded');
  return n;
}

function theirs(path: string): Promise<number> {
  const pcapParser = require('pcap-parser') as PcapParserModule;
  return new Promise((resolve, reject) => {
    let n = 0;
    const parser = pcapParser.parse(path);
    parser.on('packet', () => {
      n++;
    });
    parser.on('end', () => resolve(n));
    parser.on('error', reject);
  });
}

/**
 * Best of 3 runs. Rates use process CPU time (user + system, all threads), which is far steadier than
 * wall time on a machine shared with other jobs; wall time is printed too.
 */
async function best(label: string, bytes: number, run: () => Promise<number>): Promise<number> {
  let bestCpu = Number.POSITIVE_INFINITY;
  let bestWall = Number.POSITIVE_INFINITY;
  let packets = 0;
  for (let i = 0; i < 3; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    packets = await run();
    const wall = Number(process.hrtime.bigint() - t0) / 1e6;
    const cu = process.cpuUsage(c0);
    bestCpu = Math.min(bestCpu, (cu.user + cu.system) / 1000);
    bestWall = Math.min(bestWall, wall);
  }
  const pps = packets / (bestCpu / 1000);
  const mbs = bytes / 1048576 / (bestCpu / 1000);
  console.log(
    `${label.padEnd(36)} ${packets} packets  cpu ${bestCpu.toFixed(0).padStart(5)} ms  wall ${bestWall.toFixed(0).padStart(5)} ms  ${(pps / 1e6).toFixed(2)} Mpkt/s  ${mbs.toFixed(0)} MiB/s`,
  );
  return bestCpu;
}

async function main(): Promise<void> {
  let file = process.argv[2];
  if (!file) {
    file = DEFAULT_FILE;
    if (!existsSync(file) || statSync(file).size < TARGET_BYTES) await buildFile(file);
  }
  const bytes = statSync(file).size;
  console.log(`file ${file}: ${(bytes / 1048576).toFixed(1)} MiB, node ${process.version}`);
  const readOnly = await best('netpol-audit reader (read only)', bytes, () => ours(file, false));
  await best('netpol-audit reader + decodePacket', bytes, () => ours(file, true));
  const magic = readFileSync(file).subarray(0, 4).toString('hex');
  if (magic !== 'd4c3b2a1' && magic !== 'a1b2c3d4') {
    console.log(`pcap-parser cannot read magic ${magic} (it knows only microsecond pcap): no comparison`);
    return;
  }
  const other = await best('pcap-parser 0.2.1 (read only)', bytes, () => theirs(file));
  console.log(`ratio read-only: netpol-audit is ${(other / readOnly).toFixed(1)}x faster than pcap-parser`);
}

await main();

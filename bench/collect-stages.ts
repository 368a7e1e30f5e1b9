/**
 * Where the collector's CPU goes, stage by stage, on one capture: each mode runs the pipeline up to
 * a stage and prints the CPU seconds it took after start-up (process.cpuUsage, so module loading and
 * TypeScript transpiling are not counted; bench/collect.ts times the whole CLI).
 *
 *   npx tsx bench/collect-stages.ts [--packets 3000000] [--rounds 3]
 *
 * Modes, each including the ones before: read (capture reader), decode (decodePacket), table (flow
 * table and its exported records, no sink), stringify (JSON.stringify of each record), jsonl (the
 * JSONL sink writing to /dev/null). Every mode runs in its own process, rounds times; the least CPU
 * is kept.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readCaptureFile } from '../collectors/capture/index.js';
import { decodePacket, newDecodedPacket } from '../collectors/decode/index.js';
import { collectCaptureFiles } from '../collectors/flow/collect.js';
import { type FlowSink, JsonlSink } from '../collectors/sink.js';
import { generateCapture } from './gen-capture.js';

const MODES = ['read', 'decode', 'table', 'stringify', 'jsonl'] as const;
type Mode = (typeof MODES)[number];

/** Runs one mode in this process; returns CPU seconds and a count that keeps the work from being skipped. */
async function runMode(mode: Mode, file: string): Promise<{ cpu: number; count: number }> {
  const t0 = process.cpuUsage();
  let count = 0;
  if (mode === 'read') {
    await readCaptureFile(file, {
      onRecord() {
        count++;
      },
      onIssue() {},
    });
  } else if (mode === 'decode') {
    const p = newDecodedPacket();
    await readCaptureFile(file, {
      onRecord(r) {
        if (decodePacket(r, p) === 0) count++;
      },
      onIssue() {},
    });
  } else {
    const sink: FlowSink =
      mode === 'jsonl'
        ? new JsonlSink(createWriteStream('/dev/null'))
        : {
            write(r) {
              count += mode === 'stringify' ? JSON.stringify(r).length : 1;
            },
            async flush() {},
            async close() {},
          };
    const s = await collectCaptureFiles([file], sink, {});
    await sink.flush();
    await sink.close();
    if (mode === 'jsonl') count = s.records;
  }
  const u = process.cpuUsage(t0);
  return { cpu: (u.user + u.system) / 1e6, count };
}

const self = fileURLToPath(import.meta.url);
const { values } = parseArgs({
  options: {
    packets: { type: 'string', default: '3000000' },
    rounds: { type: 'string', default: '3' },
    mode: { type: 'string' },
    file: { type: 'string' },
  },
});

if (values.mode !== undefined) {
  // A child: one mode, one line of JSON.
  const r = await runMode(values.mode as Mode, values.file!);
  process.stdout.write(`${JSON.stringify(r)}\n`);
} else {
  const gen = await generateCapture(Number(values.packets));
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const loadAtStart = load();
  const best = new Map<Mode, { cpu: number; count: number }>();
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const mode of MODES) {
      const r = spawnSync(process.execPath, [...process.execArgv, self, '--mode', mode, '--file', gen.path], {
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`${mode} failed: ${r.stderr}`);
      const got = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { cpu: number; count: number };
      const b = best.get(mode);
      if (!b || got.cpu < b.cpu) best.set(mode, got);
    }
  }
  let prev = 0;
  process.stdout.write(
    `${gen.path}: ${gen.packets} packets; CPU seconds after start-up, least of ${values.rounds}\n`,
  );
  for (const mode of MODES) {
    const b = best.get(mode)!;
    process.stdout.write(
      `${mode.padEnd(10)} ${b.cpu.toFixed(2).padStart(6)} s  (+${(b.cpu - prev).toFixed(2)} s for this stage)  ${b.count}\n`,
    );
    prev = b.cpu;
  }
  process.stdout.write(`load average at the start: ${loadAtStart}, at the end: ${load()}\n`);
}

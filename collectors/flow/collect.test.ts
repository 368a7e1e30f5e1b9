import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { InputIssue } from '../../lib/errors.js';
import type { FlowRecord } from '../../schema/flow-record.js';
import { PcapWriter } from '../capture/writer.js';
import type { FlowSink } from '../sink.js';
import { collectCaptureFiles, collectCaptureStream } from './collect.js';

/** Ethernet + IPv4 + UDP frame, enough for the decoder. */
function udpFrame(src: number, dst: number, sport: number, dport: number, payload: number): Uint8Array {
  const b = Buffer.alloc(14 + 20 + 8 + payload);
  b.writeUInt16BE(0x0800, 12);
  b[14] = 0x45;
  b.writeUInt16BE(20 + 8 + payload, 16);
  b[22] = 64;
  b[23] = 17;
  b.writeUInt32BE(src >>> 0, 26);
  b.writeUInt32BE(dst >>> 0, 30);
  b.writeUInt16BE(sport, 34);
  b.writeUInt16BE(dport, 36);
  b.writeUInt16BE(8 + payload, 38);
  return b;
}

const A = 0x0a000001;
const B = 0x0a000002;

function writeCapture(path: string, conversations: number): void {
  const w = new PcapWriter(path);
  for (let i = 0; i < conversations; i++) {
    w.writePacket(1_700_000_000_000 + i, udpFrame(A, B, 40000 + i, 53, 30));
    w.writePacket(1_700_000_000_000 + i + 0.5, udpFrame(B, A, 53, 40000 + i, 100));
  }
  w.close();
}

/** A sink that makes the collector wait on every write, and checks it never writes while waiting. */
class SlowSink implements FlowSink {
  readonly records: FlowRecord[] = [];
  private busy = false;
  overlapped = false;
  write(record: FlowRecord): Promise<void> {
    if (this.busy) this.overlapped = true;
    this.busy = true;
    this.records.push(record);
    return new Promise((resolve) =>
      setImmediate(() => {
        this.busy = false;
        resolve();
      }),
    );
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

describe('collectCaptureStream / collectCaptureFiles', () => {
  it('collects a stream fed in tiny chunks, awaiting a slow sink', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'collect-'));
    const file = join(dir, 'udp.pcap');
    writeCapture(file, 300);
    const bytes = readFileSync(file);
    const stream = new PassThrough();
    const sink = new SlowSink();
    const done = collectCaptureStream(stream, 'tcpdump', sink, { observerSource: 'live', node: 'n1' });
    for (let i = 0; i < bytes.length; i += 7) stream.write(bytes.subarray(i, i + 7));
    stream.end();
    const summary = await done;
    expect(sink.overlapped).toBe(false);
    expect(summary).toMatchObject({
      inputs: 1,
      packets: 600,
      decoded: 600,
      flowPackets: 600,
      records: 300,
      flows: 300,
    });
    expect(sink.records).toHaveLength(300);
    for (const r of sink.records) {
      expect(r).toMatchObject({
        proto: 'UDP',
        src: { ip: '10.0.0.1' },
        dst: { ip: '10.0.0.2', port: 53 },
        packets: { fwd: 1, rev: 1 },
        bytes: { fwd: 58, rev: 128 },
        state: 'established',
        observer: { source: 'live', node: 'n1' },
      });
    }
  });

  it('a live capture exports an idle flow by the wall clock, with no later packet to expire it (the lab found flows waiting for the next traffic)', async () => {
    const stream = new PassThrough();
    const sink = new SlowSink();
    const done = collectCaptureStream(stream, 'tcpdump', sink, {
      observerSource: 'live',
      live: true,
      idleTimeoutMs: { udp: 500 },
    });
    const dir = mkdtempSync(join(tmpdir(), 'collect-'));
    const file = join(dir, 'one.pcap');
    const w = new PcapWriter(file);
    const now = Date.now();
    w.writePacket(now, udpFrame(A, B, 40000, 53, 30));
    w.writePacket(now + 1, udpFrame(B, A, 53, 40000, 100));
    w.close();
    stream.write(readFileSync(file));
    // The stream stays open: only the wall clock can end the flow.
    const deadline = Date.now() + 10_000;
    while (sink.records.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(sink.records).toHaveLength(1);
    expect(sink.records[0]).toMatchObject({ reason: 'idle-timeout', packets: { fwd: 1, rev: 1 } });
    stream.end();
    const summary = await done;
    expect(summary).toMatchObject({ records: 1, flows: 1 });
    expect(sink.records).toHaveLength(1);
  });

  it('goes on with the next file after a bad one, reporting issues with their location', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'collect-'));
    const good = join(dir, 'good.pcap');
    writeCapture(good, 2);
    const issues: InputIssue[] = [];
    const sink = new SlowSink();
    const summary = await collectCaptureFiles([join(dir, 'missing.pcap'), good], sink, {
      onIssue: (i) => issues.push(i),
    });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({
      code: 'CAPTURE_UNREADABLE',
      severity: 'error',
      source: join(dir, 'missing.pcap'),
    });
    expect(summary).toMatchObject({ inputs: 2, failedInputs: 1, errors: 1, packets: 4, records: 2 });
    expect(sink.records.every((r) => r.observer.file === good && r.observer.source === 'pcap')).toBe(true);
  });
});

import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../schema/flow-record.js';
import { JsonlSink } from './sink.js';

function record(i: number): FlowRecord {
  return {
    v: 1,
    start: 1700000000000 + i,
    end: 1700000000000.5 + i,
    proto: 'UDP',
    src: { ip: '10.0.0.1', port: 1024 + (i % 60000) },
    dst: { ip: 'fd00::"quoted"', port: 53 },
    packets: { fwd: i, rev: 1 },
    bytes: { fwd: i * 100, rev: 80 },
    state: 'established',
    observer: { source: 'pcap', file: 'a\\b.pcap' },
    id: `${i}`.padStart(16, '0'),
    seq: 0,
  };
}

/** A stream that keeps what it is given, optionally slowly (to make the sink wait for 'drain'). */
function collector(highWaterMark: number, slow: boolean) {
  const chunks: string[] = [];
  const out = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      if (slow) setTimeout(done, 1);
      else done();
    },
  });
  return { out, chunks };
}

describe('JsonlSink', () => {
  it('writes one JSON line per record, in order, in few large writes', async () => {
    const { out, chunks } = collector(1 << 20, false);
    const sink = new JsonlSink(out);
    const n = 2000;
    for (let i = 0; i < n; i++) {
      const wait = sink.write(record(i));
      if (wait) await wait;
    }
    await sink.flush();
    await sink.close();
    const expected = Array.from({ length: n }, (_, i) => `${JSON.stringify(record(i))}\n`).join('');
    expect(chunks.join('')).toBe(expected);
    expect(chunks.length).toBeLessThan(n / 50);
  });

  it('hands a few records to the stream by the next event-loop turn without flush', async () => {
    const { out, chunks } = collector(1 << 20, false);
    const sink = new JsonlSink(out);
    sink.write(record(1));
    sink.write(record(2));
    expect(chunks).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(chunks.join('')).toBe(`${JSON.stringify(record(1))}\n${JSON.stringify(record(2))}\n`);
    await sink.close();
  });

  it('makes the writer wait when the stream is full, and loses nothing', async () => {
    const { out, chunks } = collector(1024, true);
    const sink = new JsonlSink(out);
    let waits = 0;
    const n = 3000;
    for (let i = 0; i < n; i++) {
      const wait = sink.write(record(i));
      if (wait) {
        waits++;
        await wait;
      }
    }
    await sink.close();
    expect(waits).toBeGreaterThan(0);
    const lines = chunks.join('').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(n);
    expect(lines.map((l) => (JSON.parse(l) as FlowRecord).packets.fwd)).toEqual(
      Array.from({ length: n }, (_, i) => i),
    );
  });
});

describe('JsonlSink encoding', () => {
  it('writes exactly the UTF-8 of JSON.stringify, for any text and lines longer than a batch', async () => {
    const chunks: Buffer[] = [];
    const out = new Writable({
      write(chunk: Buffer, _enc, done) {
        chunks.push(Buffer.from(chunk));
        done();
      },
    });
    const sink = new JsonlSink(out);
    const texts = ['é', '日本', '😀', '\ud800', 'a\u0000b\n"\\'];
    const long = '€'.repeat(300_000);
    const records: FlowRecord[] = [];
    for (let i = 0; i < 3000; i++) {
      const r = record(i);
      r.observer = { source: 'pcap', node: i === 7 || i === 2500 ? long : texts[i % texts.length]! };
      records.push(r);
      const wait = sink.write(r);
      if (wait) await wait;
    }
    await sink.flush();
    await sink.close();
    const expected = Buffer.from(records.map((r) => `${JSON.stringify(r)}\n`).join(''), 'utf8');
    expect(Buffer.concat(chunks).equals(expected)).toBe(true);
  });
});

// Small readers of Kafka's wire and on-disk formats, so tests can check what the broker really holds
// without trusting the client under test.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';

export interface ApiVersionRange {
  apiKey: number;
  minVersion: number;
  maxVersion: number;
}

/** ApiVersions v0 over a raw socket: the broker's advertised [min, max] per API key. */
export function brokerApiVersions(
  bootstrap: string,
  timeoutMs = 10_000,
): Promise<Map<number, ApiVersionRange>> {
  const [host, portText] = bootstrap.split(':');
  const clientId = Buffer.from('netpol-audit-wire');
  const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length);
  body.writeInt16BE(18, 0); // ApiVersions
  body.writeInt16BE(0, 2);
  body.writeInt32BE(42, 4);
  body.writeInt16BE(clientId.length, 8);
  clientId.copy(body, 10);
  const frame = Buffer.alloc(4 + body.length);
  frame.writeInt32BE(body.length, 0);
  body.copy(frame, 4);

  return new Promise((resolve, reject) => {
    const socket = connect(Number(portText), host);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`ApiVersions to ${bootstrap} timed out`));
    }, timeoutMs);
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('connect', () => socket.write(frame));
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      const buf = Buffer.concat(chunks);
      if (buf.length < 4 || buf.length < 4 + buf.readInt32BE(0)) return;
      clearTimeout(timer);
      socket.destroy();
      const correlationId = buf.readInt32BE(4);
      const errorCode = buf.readInt16BE(8);
      if (correlationId !== 42 || errorCode !== 0) {
        reject(new Error(`ApiVersions reply: correlationId=${correlationId} errorCode=${errorCode}`));
        return;
      }
      const count = buf.readInt32BE(10);
      const ranges = new Map<number, ApiVersionRange>();
      for (let i = 0, at = 14; i < count; i++, at += 6) {
        const apiKey = buf.readInt16BE(at);
        ranges.set(apiKey, {
          apiKey,
          minVersion: buf.readInt16BE(at + 2),
          maxVersion: buf.readInt16BE(at + 4),
        });
      }
      resolve(ranges);
    });
  });
}

export interface KafkajsApi {
  name: string;
  apiKey: number;
  versions: number[];
}

/**
 * The request versions kafkajs implements, read from its own request table (not public API, hence
 * createRequire). kafkajs picks min(its highest, broker max) and never looks at the broker's min, so an API
 * whose highest kafkajs version is below the broker's min is sent anyway and fails.
 */
export function kafkajsApis(): KafkajsApi[] {
  const require = createRequire(import.meta.url);
  const { requests } = require('kafkajs/src/protocol/requests') as {
    requests: Record<string, { versions: string[] }>;
  };
  const apiKeys = require('kafkajs/src/protocol/requests/apiKeys') as Record<string, number>;
  return Object.entries(apiKeys)
    .filter(([name]) => (requests[name]?.versions.length ?? 0) > 0)
    .map(([name, apiKey]) => ({ name, apiKey, versions: requests[name].versions.map(Number) }));
}

export interface RecordBatchHeader {
  filePosition: number;
  baseOffset: bigint;
  magic: number;
  /** Low 3 bits of attributes: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd. */
  compression: number;
  transactional: boolean;
  control: boolean;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/** Walks the v2 record-batch headers of a partition's segment file (.log) as the broker wrote it. */
export function readSegmentBatches(segmentFile: string): RecordBatchHeader[] {
  const buf = readFileSync(segmentFile);
  const batches: RecordBatchHeader[] = [];
  let at = 0;
  // 61 bytes = fixed v2 batch header; a shorter tail is preallocated space or a write in progress.
  while (at + 61 <= buf.length) {
    const batchLength = buf.readInt32BE(at + 8);
    if (batchLength <= 0) break;
    const attributes = buf.readInt16BE(at + 21);
    batches.push({
      filePosition: at,
      baseOffset: buf.readBigInt64BE(at),
      magic: buf.readInt8(at + 16),
      compression: attributes & 0x7,
      transactional: (attributes & 0x10) !== 0,
      control: (attributes & 0x20) !== 0,
      producerId: buf.readBigInt64BE(at + 43),
      producerEpoch: buf.readInt16BE(at + 51),
      baseSequence: buf.readInt32BE(at + 53),
      recordCount: buf.readInt32BE(at + 57),
    });
    at += 12 + batchLength;
  }
  return batches;
}

import { promisify } from 'node:util';
import zlib from 'node:zlib';
import kafkajs from 'kafkajs';

// A CommonJS module whose exports Node.js' ESM loader cannot list: read them off the default export.
const { CompressionCodecs, CompressionTypes } = kafkajs;

/**
 * kafkajs implements gzip only and has a hook for the other codecs (CompressionCodecs). Node.js has
 * zstd in zlib since 22.15 and 23.8: netpol-audit registers it there, so its producers can send
 * zstd and, above all, its consumers can read zstd batches (from another client, or rewritten by a
 * broker or topic with compression.type=zstd), with no new dependency. On an older Node.js, zstd
 * stays unavailable (`zstdAvailable` false) and behaves as kafkajs alone does. No lz4 or snappy:
 * that would take a native or wasm dependency (docs/kafka.md).
 */
const z = zlib as unknown as {
  zstdCompress?: (b: Buffer, cb: (err: Error | null, out: Buffer) => void) => void;
  zstdDecompress?: (b: Buffer, cb: (err: Error | null, out: Buffer) => void) => void;
};

export const zstdAvailable = typeof z.zstdCompress === 'function' && typeof z.zstdDecompress === 'function';

let registered = false;

export function registerCodecs(): void {
  if (registered || !zstdAvailable) return;
  registered = true;
  const compress = promisify(z.zstdCompress!);
  const decompress = promisify(z.zstdDecompress!);
  const codec = {
    compress: (encoder: { buffer: Buffer }) => compress(encoder.buffer),
    decompress: (buffer: Buffer) => decompress(buffer),
  };
  (CompressionCodecs as Record<number, () => typeof codec>)[CompressionTypes.ZSTD] = () => codec;
}

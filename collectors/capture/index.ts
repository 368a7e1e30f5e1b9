import { open } from 'node:fs/promises';
import type { CaptureHandlers, CaptureSummary } from './parser.js';
import { CaptureParser } from './parser.js';

export { CaptureIssueCode } from './issues.js';
export type { CaptureHandlers, CaptureInterface, CaptureSummary } from './parser.js';
export { CaptureParser, MAX_BLOCK_LEN, MAX_CAPLEN, WARNINGS_PER_CODE } from './parser.js';
export type { CaptureRecord } from './record.js';
export { PcapWriter } from './writer.js';

/** Read size for files: large enough that per-chunk overhead vanishes, small enough to stay cache-friendly. */
export const READ_CHUNK = 2 * 1024 * 1024;

/**
 * Reads a pcap/pcapng file in large chunks, reusing one buffer (records are views into it, valid only
 * during onRecord). I/O errors (missing file, permission) reject the promise; bad data never does.
 */
export async function readCaptureFile(path: string, handlers: CaptureHandlers): Promise<CaptureSummary> {
  const parser = new CaptureParser(path, handlers);
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(READ_CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      parser.push(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return parser.end();
}

/** Reads a capture from a stream (stdin, a pipe from tcpdump -w -, a socket). */
export async function readCaptureStream(
  stream: NodeJS.ReadableStream,
  source: string,
  handlers: CaptureHandlers,
): Promise<CaptureSummary> {
  const parser = new CaptureParser(source, handlers);
  for await (const chunk of stream as AsyncIterable<Uint8Array | string>) {
    parser.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
  }
  return parser.end();
}

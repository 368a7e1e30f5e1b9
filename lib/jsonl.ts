import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

/** Reads a file (or standard input for `-`/undefined) line by line, with 1-based line numbers. */
export async function* readLines(path: string | undefined): AsyncGenerator<{ line: number; text: string }> {
  const input: Readable = path === undefined || path === '-' ? process.stdin : createReadStream(path);
  const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  for await (const text of rl) {
    line++;
    yield { line, text };
  }
}

/** Writes with back-pressure: resolves once the stream can take more. */
export function writeLine(out: Writable, text: string): Promise<void> | undefined {
  if (out.write(`${text}\n`)) return undefined;
  return new Promise((resolve) => out.once('drain', resolve));
}

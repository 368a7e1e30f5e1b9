import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/**
 * Reads a file (or standard input for `-`/undefined) line by line, with 1-based line numbers.
 * `complete` is false only for a last line that the input ended inside (no newline after it): a file
 * cut while it was written, whose last line may be cut short. CRLF line ends are accepted.
 */
export async function* readLines(
  path: string | undefined,
): AsyncGenerator<{ line: number; text: string; complete: boolean }> {
  const input: Readable = path === undefined || path === '-' ? process.stdin : createReadStream(path);
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let line = 0;
  const text = (s: string) => (s.endsWith('\r') ? s.slice(0, -1) : s);
  for await (const chunk of input) {
    const buf = rest + (typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer));
    let from = 0;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n', from)) {
      line++;
      yield { line, text: text(buf.slice(from, nl)), complete: true };
      from = nl + 1;
    }
    rest = buf.slice(from);
  }
  rest += decoder.end();
  if (rest.length > 0) yield { line: line + 1, text: text(rest), complete: false };
}

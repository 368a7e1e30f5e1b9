import { describe, expect, it } from 'vitest';
import type { WireMessage } from '../transport/codec.js';
import { sideOutputParts } from './kafka.js';

const messages = (topic: string, n: number): WireMessage[] =>
  Array.from({ length: n }, (_, i) => ({ key: `${topic}-${i}`, value: String(i), headers: {} }));

describe('sideOutputParts', () => {
  it('splits side outputs into requests of at most the size, every message once, in order', () => {
    const out = [
      { topic: 'dead', messages: messages('dead', 3) },
      { topic: 'violations', messages: messages('violations', 1201) },
      { topic: 'verdicts', messages: messages('verdicts', 496) },
    ];
    const parts = sideOutputParts(out, 500);
    expect(parts.map((p) => p.reduce((n, t) => n + t.messages.length, 0))).toEqual([500, 500, 500, 200]);
    // The first request: the 3 dead letters and 497 violations; topics keep their order.
    expect(parts[0]!.map((t) => [t.topic, t.messages.length])).toEqual([
      ['dead', 3],
      ['violations', 497],
    ]);
    const flat = parts.flatMap((p) => p.flatMap((t) => t.messages.map((m) => m.key)));
    expect(flat).toEqual(out.flatMap((t) => t.messages.map((m) => m.key)));
  });

  it('makes no request of nothing, and one of a small batch', () => {
    expect(sideOutputParts([])).toEqual([]);
    const small = [{ topic: 'violations', messages: messages('v', 7) }];
    expect(sideOutputParts(small)).toEqual([small]);
  });

  it('keeps each request under the byte bound, a larger message alone in its own', () => {
    const sized = (n: number, bytes: number): WireMessage[] =>
      Array.from({ length: n }, (_, i) => ({ key: String(i), value: 'x'.repeat(bytes), headers: {} }));
    const out = [
      { topic: 'verdicts', messages: sized(5, 400) },
      { topic: 'dead', messages: [...sized(1, 2000), ...sized(2, 100)] },
    ];
    const parts = sideOutputParts(out, 500, 1000);
    const bytes = parts.map((p) =>
      p.reduce((n, t) => n + t.messages.reduce((k, m) => k + String(m.value).length, 0), 0),
    );
    expect(bytes).toEqual([800, 800, 400, 2000, 200]);
    expect(parts.flatMap((p) => p.flatMap((t) => t.messages))).toEqual(out.flatMap((t) => t.messages));
  });
});

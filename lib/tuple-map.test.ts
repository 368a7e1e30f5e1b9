import { describe, expect, it } from 'vitest';
import { TupleMap } from './tuple-map.js';

describe('TupleMap', () => {
  it('finds a value by every position of its key, and keeps the order keys were first set in', () => {
    const m = new TupleMap<string>();
    m.set([1, 'a', 'b'], 'x');
    m.set([1, 'a', 'c'], 'y');
    m.set([2, 'a', 'b'], 'z');
    m.set([1, 'a', 'b'], 'x2');
    expect(m.get([1, 'a', 'b'])).toBe('x2');
    expect(m.get([1, 'a', 'c'])).toBe('y');
    expect(m.get([2, 'a', 'b'])).toBe('z');
    expect(m.get([2, 'a', 'c'])).toBeUndefined();
    expect(m.get([3, 'a', 'b'])).toBeUndefined();
    expect(m.values()).toEqual(['x2', 'y', 'z']);
    expect(m.size).toBe(3);
  });

  it('tells apart keys that a joined string would have merged or confused', () => {
    const m = new TupleMap<number>();
    m.set(['a\u0000b', 'c'], 1);
    m.set(['a', 'b\u0000c'], 2);
    expect(m.get(['a\u0000b', 'c'])).toBe(1);
    expect(m.get(['a', 'b\u0000c'])).toBe(2);
    expect(m.size).toBe(2);
  });

  it('agrees with a map of joined keys on random tuples of one type per position', () => {
    const m = new TupleMap<number>();
    const joined = new Map<string, number>();
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed;
    };
    for (let i = 0; i < 5000; i++) {
      const key = [next() % 3, `w${next() % 5}`, next() % 4, `r${next() % 2}`];
      const k = key.join('\u0000');
      const sum = (joined.get(k) ?? 0) + 1;
      joined.set(k, sum);
      m.set(key, (m.get(key) ?? 0) + 1);
    }
    expect([...m.values()]).toEqual([...joined.values()]);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VerdictTable } from './verdict-table.js';

describe('VerdictTable', () => {
  it('behaves as a Map over four-int keys through growth', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.integer({ min: 0, max: 40 }),
            fc.integer({ min: 0, max: 3 }),
            fc.integer({ min: 0, max: 2 ** 30 }),
            fc.integer({ min: 0, max: 9 }),
          ),
          {
            maxLength: 400,
          },
        ),
        (keys) => {
          const table = new VerdictTable<string>(16);
          const model = new Map<string, string>();
          for (const [a, b, c, d] of keys) {
            const k = `${a},${b},${c},${d}`;
            if (table.get(a, b, c, d) === undefined) table.set(a, b, c, d, k);
            if (!model.has(k)) model.set(k, k);
          }
          expect(table.size).toBe(model.size);
          for (const [a, b, c, d] of keys) expect(table.get(a, b, c, d)).toBe(`${a},${b},${c},${d}`);
          // Keys differing in one component only are distinct entries.
          for (const [a, b, c, d] of keys) {
            const other = `${a},${b},${c},${d + 10}`;
            expect(table.get(a, b, c, d + 10)).toBe(model.get(other));
          }
          table.clear();
          expect(table.size).toBe(0);
          for (const [a, b, c, d] of keys) expect(table.get(a, b, c, d)).toBeUndefined();
        },
      ),
    );
  });
});

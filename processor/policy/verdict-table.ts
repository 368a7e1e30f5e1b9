/**
 * An open-addressing hash table from a four-int32 key to a value, for the verdict cache. Each bucket
 * is one row of five int32s (the key and the value's index) in a single Int32Array, so a hit costs
 * one probe into contiguous memory plus the value itself; a chain of Map objects cost more than
 * everything else on the hit path. Index 0 of the value list is never used, so 0 marks an empty row.
 */
const ROW = 5;

export class VerdictTable<V> {
  private rows: Int32Array;
  private values: V[] = [undefined as V];
  private mask: number;

  constructor(initialCapacity = 1 << 12) {
    let cap = 16;
    while (cap < initialCapacity) cap <<= 1;
    this.rows = new Int32Array(cap * ROW);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.values.length - 1;
  }

  private static hash(a: number, b: number, c: number, d: number): number {
    let h = Math.imul(a ^ 0x2c1b3c6d, 0x9e3779b1);
    h = Math.imul(h ^ b ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ c ^ (h >>> 13), 0xc2b2ae35);
    h = Math.imul(h ^ d ^ (h >>> 16), 0x27d4eb2f);
    return h ^ (h >>> 15);
  }

  get(a: number, b: number, c: number, d: number): V | undefined {
    const rows = this.rows;
    const mask = this.mask;
    let i = VerdictTable.hash(a, b, c, d) & mask;
    for (;;) {
      const r = i * ROW;
      const s = rows[r + 4] as number;
      if (s === 0) return undefined;
      if (rows[r] === a && rows[r + 1] === b && rows[r + 2] === c && rows[r + 3] === d) return this.values[s];
      i = (i + 1) & mask;
    }
  }

  /** Inserts a key that is not present (callers look up first). */
  set(a: number, b: number, c: number, d: number, v: V): void {
    if (this.values.length * 2 > this.mask + 1) this.grow();
    this.place(this.rows, this.mask, a, b, c, d, this.values.length);
    this.values.push(v);
  }

  private place(
    rows: Int32Array,
    mask: number,
    a: number,
    b: number,
    c: number,
    d: number,
    slot: number,
  ): void {
    let i = VerdictTable.hash(a, b, c, d) & mask;
    while ((rows[i * ROW + 4] as number) !== 0) i = (i + 1) & mask;
    const r = i * ROW;
    rows[r] = a;
    rows[r + 1] = b;
    rows[r + 2] = c;
    rows[r + 3] = d;
    rows[r + 4] = slot;
  }

  private grow(): void {
    const old = this.rows;
    const cap = (this.mask + 1) * 2;
    const rows = new Int32Array(cap * ROW);
    const mask = cap - 1;
    for (let r = 0; r < old.length; r += ROW) {
      const s = old[r + 4] as number;
      if (s !== 0)
        this.place(
          rows,
          mask,
          old[r] as number,
          old[r + 1] as number,
          old[r + 2] as number,
          old[r + 3] as number,
          s,
        );
    }
    this.rows = rows;
    this.mask = mask;
  }

  clear(): void {
    this.rows = new Int32Array(16 * ROW);
    this.mask = 15;
    this.values = [undefined as V];
  }
}

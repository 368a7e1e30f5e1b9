/**
 * A map keyed by a tuple of values (strings, numbers), nested one Map per position, iterated in the
 * order keys were first set. Made for the hot paths that group flows: the judge's conversation cache,
 * and the store, which aggregates each batch by keys such as (hour, source workload,
 * destination workload, protocol, port, result): joined into one string per flow, every lookup built
 * and hashed a new string, and that was most of what aggregating cost. Nested, each lookup hashes
 * values the flow already holds (strings keep their hash), and nothing is built per flow.
 *
 * Values are compared as Map keys compare them (SameValueZero): the number 1 and the string '1' are
 * two keys, where a joined string made them one. Every caller puts one type at each position.
 */
export class TupleMap<V> {
  /** Nested Maps; the last level holds the value's index in `list`. */
  private readonly root = new Map<unknown, unknown>();
  private readonly list: V[] = [];

  get size(): number {
    return this.list.length;
  }

  get(key: readonly unknown[]): V | undefined {
    let m: Map<unknown, unknown> | undefined = this.root;
    const last = key.length - 1;
    for (let i = 0; i < last; i++) {
      m = m.get(key[i]) as Map<unknown, unknown> | undefined;
      if (!m) return undefined;
    }
    const at = m.get(key[last]) as number | undefined;
    return at === undefined ? undefined : this.list[at];
  }

  /** Sets the value under `key`; a key set before keeps its place in the order. */
  set(key: readonly unknown[], value: V): this {
    let m = this.root;
    const last = key.length - 1;
    for (let i = 0; i < last; i++) {
      let next = m.get(key[i]) as Map<unknown, unknown> | undefined;
      if (!next) {
        next = new Map();
        m.set(key[i], next);
      }
      m = next;
    }
    const at = m.get(key[last]) as number | undefined;
    if (at === undefined) {
      m.set(key[last], this.list.length);
      this.list.push(value);
    } else this.list[at] = value;
    return this;
  }

  /** The values, in the order their keys were first set. */
  values(): readonly V[] {
    return this.list;
  }
}

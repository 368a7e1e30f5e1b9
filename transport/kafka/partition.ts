/**
 * The partition kafkajs' default partitioner (and the Java client's) gives a keyed message:
 * toPositive(murmur2(utf8(key))) % partitions. A v2 collector packs the records of one partition
 * together, so it must place each key exactly where a v1 collector put it: during an upgrade a
 * flow's v1 and v2 records then share a partition, and its order holds. This is the same hash in
 * 32-bit arithmetic (kafkajs computes it with 64-bit Longs and keeps the low 32 bits: the same
 * value, a test compares them), without a Buffer per ASCII key.
 */
const M = 0x5bd1e995;
const SEED = 0x9747b28c;

function bytesOf(key: string): Uint8Array | string {
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) > 127) return Buffer.from(key, 'utf8');
  return key;
}

export function murmur2(key: string): number {
  const data = bytesOf(key);
  const at: (i: number) => number = typeof data === 'string' ? (i) => data.charCodeAt(i) : (i) => data[i]!;
  const length = data.length;
  let h = (SEED ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = at(i4) | (at(i4 + 1) << 8) | (at(i4 + 2) << 16) | (at(i4 + 3) << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  // The 1 to 3 bytes left, mixed in as murmur2's fall-through switch does.
  const tail = length & ~3;
  const rest = length % 4;
  if (rest === 3) h ^= at(tail + 2) << 16;
  if (rest >= 2) h ^= at(tail + 1) << 8;
  if (rest >= 1) {
    h ^= at(tail);
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition of a keyed message among `partitions`, as kafkajs' DefaultPartitioner chooses it. */
export function partitionOf(key: string, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

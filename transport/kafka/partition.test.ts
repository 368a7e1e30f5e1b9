// The v2 sink's partitioner must place every key where kafkajs' default partitioner (and the Java
// client's) puts it, or a flow's v1 and v2 records would land in two partitions during an upgrade.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { shopFlow } from '../../test/pipeline/support.js';
import { decodeMessage, encodePack, flowKey } from '../codec.js';
import { murmur2, partitionOf } from './partition.js';
import { requestParts } from './sink.js';

const require = createRequire(import.meta.url);
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (
  k: string,
) => number;

describe('partitionOf', () => {
  it('equals kafkajs murmur2 on ASCII, non-ASCII and empty keys of every length mod 4', () => {
    const keys = [
      '',
      'a',
      'ab',
      'abc',
      'abcd',
      'flow-1999',
      'TCP|10.244.1.10|30001|10.244.2.20|9000',
      'é',
      'ü→★',
      '日本語キー',
    ];
    for (let i = 0; i < 5000; i++) {
      let k = '';
      for (let j = 0; j < i % 41; j++)
        k += String.fromCharCode(32 + ((i * 31 + j * 17) % (i % 7 === 0 ? 3000 : 95)));
      keys.push(k);
    }
    for (const k of keys) expect(murmur2(k), JSON.stringify(k)).toBe(kafkajsMurmur2(k));
    for (const k of keys) expect(partitionOf(k, 6)).toBe((kafkajsMurmur2(k) & 0x7fffffff) % 6);
  });
});

describe('v2 packs', () => {
  it('round-trip; a bad line fails alone, with its index and bytes', () => {
    const flows = [shopFlow(1), shopFlow(2), shopFlow(3)];
    const lines = flows.map((f) => JSON.stringify(f));
    lines.splice(1, 0, '{"v":1');
    const d = decodeMessage(encodePack(lines));
    expect(d.ok && d.packed).toBe(true);
    if (!d.ok || !d.packed) return;
    expect(d.items.map((i) => i.ok)).toEqual([true, false, true, true]);
    expect(d.items[1]).toMatchObject({ ok: false, index: 1, raw: '{"v":1', code: 'MESSAGE_BAD_JSON' });
    expect(d.items.filter((i) => i.ok).map((i) => (i.ok ? flowKey(i.record) : ''))).toEqual(
      flows.map(flowKey),
    );
  });

  it('an unknown pack version or encoding fails the whole message; a v1 message still decodes', () => {
    const p = encodePack([JSON.stringify(shopFlow(1))]);
    const headers = p.headers as Record<string, string>;
    expect(
      decodeMessage({ ...p, headers: { ...headers, 'netpol-audit-schema-version': '3' } }),
    ).toMatchObject({
      ok: false,
      code: 'MESSAGE_UNKNOWN_VERSION',
    });
    expect(decodeMessage({ ...p, headers: { ...headers, 'netpol-audit-encoding': 'avro' } })).toMatchObject({
      ok: false,
      code: 'MESSAGE_UNKNOWN_VERSION',
    });
    const v1 = decodeMessage({
      key: 'k',
      value: JSON.stringify(shopFlow(5)),
      headers: { 'netpol-audit-schema': 'flow-record', 'netpol-audit-schema-version': '1' },
    });
    expect(v1.ok && !v1.packed && v1.record.id).toBe(shopFlow(5).id);
  });
});

describe('produce requests of the sink', () => {
  const m = (partition: number | undefined, bytes: number, i: number) => ({
    topic: 't',
    key: null,
    value: 'x'.repeat(bytes),
    ...(partition === undefined ? {} : { partition }),
    count: i,
  });

  it('hold at most the bound of values per partition, in order, a larger message alone in its partition', () => {
    const batch = [
      m(0, 400, 1),
      m(1, 900, 2),
      m(0, 400, 3),
      m(0, 400, 4),
      m(1, 50, 5),
      m(2, 2000, 6),
      m(2, 10, 7),
    ];
    const parts = requestParts(batch, 1000);
    expect(parts.map((p) => p.map((x) => x.count))).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    expect(parts.flat()).toEqual(batch);
  });

  it('count v1 messages (the client picks their partition) together', () => {
    const parts = requestParts([m(undefined, 600, 1), m(undefined, 600, 2)], 1000);
    expect(parts.map((p) => p.length)).toEqual([1, 1]);
  });
});

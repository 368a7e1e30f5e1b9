import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FLOW_RECORD_VERSION, protocolNumber, protocolValue, validateFlowRecord } from './flow-record.js';
import { PUBLISHED_SCHEMAS, renderSchema } from './json-schema.js';

const here = dirname(fileURLToPath(import.meta.url));

const good = {
  v: 1,
  start: 1700000000000.5,
  end: 1700000001000,
  proto: 'TCP',
  src: { ip: '10.244.1.5', port: 43512 },
  dst: { ip: '10.244.2.7', port: 8080 },
  packets: { fwd: 6, rev: 5 },
  bytes: { fwd: 500, rev: 4000 },
  state: 'closed',
  observer: { source: 'pcap', node: 'node-1' },
};

describe('FlowRecord', () => {
  it('accepts a complete record and unknown extra fields', () => {
    expect(validateFlowRecord(good).ok).toBe(true);
    expect(validateFlowRecord({ ...good, extra: { anything: 1 } }).ok).toBe(true);
    expect(
      validateFlowRecord({ ...good, proto: 47, src: { ip: 'fd00::1' }, dst: { ip: '::ffff:10.0.0.1' } }).ok,
    ).toBe(true);
  });

  it.each([
    ['missing field', { ...good, state: undefined }, '/state'],
    ['bad state', { ...good, state: 'open' }, '/state'],
    ['bad address', { ...good, src: { ip: '10.244.1.300' } }, '/src/ip'],
    ['port out of range', { ...good, dst: { ip: '10.0.0.1', port: 70000 } }, '/dst/port'],
    ['end before start', { ...good, end: 1 }, '/end'],
    ['negative counter', { ...good, bytes: { fwd: -1, rev: 0 } }, '/bytes/fwd'],
    ['protocol number out of range', { ...good, proto: 300 }, '/proto'],
  ])('rejects %s, naming the field', (_name, value, path) => {
    const r = validateFlowRecord(value);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.join('\n')).toContain(path);
  });

  it('judges an address the same the first time and every time after, past the bound of remembered ones', () => {
    const addr = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    // More distinct valid addresses than are remembered, each checked twice, with invalid ones between.
    for (let i = 0; i < 70_000; i += 7) {
      for (let k = 0; k < 2; k++) {
        expect(validateFlowRecord({ ...good, src: { ip: addr(i) } }).ok).toBe(true);
        expect(validateFlowRecord({ ...good, dst: { ip: `${addr(i)}.1` } }).ok).toBe(false);
      }
    }
    for (let k = 0; k < 3; k++) {
      expect(validateFlowRecord({ ...good, src: { ip: '10.244.1.300' } }).ok).toBe(false);
      expect(validateFlowRecord({ ...good, src: { ip: 'fd00::1' } }).ok).toBe(true);
    }
  });

  it('names an unknown version as such', () => {
    const r = validateFlowRecord({ ...good, v: 2 });
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.errors[0]).toContain(`unsupported FlowRecord version 2, expected ${FLOW_RECORD_VERSION}`);
  });

  it('maps protocol names and numbers both ways', () => {
    for (const name of ['TCP', 'UDP', 'SCTP', 'ICMP', 'ICMPv6'] as const)
      expect(protocolValue(protocolNumber(name))).toBe(name);
    expect(protocolValue(47)).toBe(47);
    expect(protocolNumber(47)).toBe(47);
  });
});

describe('published JSON Schemas', () => {
  it.each(Object.keys(PUBLISHED_SCHEMAS))(
    '%s is up to date (npx tsx schema/write-json-schemas.ts)',
    (name) => {
      expect(readFileSync(join(here, name), 'utf8')).toBe(renderSchema(name));
    },
  );
});

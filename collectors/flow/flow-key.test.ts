import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { flowHash, flowId, flowKey } from './flow-key.js';

const address = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.constantFrom('10.0.0.1', '10.0.0.10', '::1', ''),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
const port = fc.oneof(fc.integer({ min: -1, max: 65535 }), fc.constantFrom(-1, 0, 9, 10, 65535));
const tunnel = fc.oneof(
  fc.constant({ type: '', id: -1 }),
  fc.record({
    type: fc.constantFrom('vxlan', 'geneve', 'gre', 'ipip'),
    id: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 0xffffffff }), fc.maxSafeNat()),
  }),
);
const first = fc.oneof(
  fc.double({ min: 0, max: 4e12, noNaN: true }),
  fc.integer({ min: 0, max: 2 ** 42 }),
  fc.constantFrom(0, 1768478400001.144, 1e21, 5e-7, 1700000000000.5),
);

describe('flowId', () => {
  it('is flowHash of the flow key and first-packet time, for any flow (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        address,
        port,
        address,
        port,
        tunnel,
        first,
        (proto, src, sport, dst, dport, t, ts) => {
          expect(flowId(proto, src, sport, dst, dport, t.type, t.id, ts)).toBe(
            flowHash(`${flowKey(proto, src, sport, dst, dport, t.type, t.id)}|${ts}`),
          );
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('gives both directions of a flow the same id, and different flows different ids', () => {
    const a = flowId(6, '10.0.0.1', 40000, '10.0.0.2', 80, '', -1, 1700000000000.5);
    expect(flowId(6, '10.0.0.2', 80, '10.0.0.1', 40000, '', -1, 1700000000000.5)).toBe(a);
    expect(flowId(6, '10.0.0.1', 40001, '10.0.0.2', 80, '', -1, 1700000000000.5)).not.toBe(a);
    expect(flowId(6, '10.0.0.1', 40000, '10.0.0.2', 80, 'vxlan', 7, 1700000000000.5)).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{16}$/);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseSnapshot } from './snapshot.js';

/**
 * Whatever a snapshot holds, the parser never throws, and every item is accounted for exactly once:
 * read (counted by kind), skipped as an unused kind (counted), or reported as an error.
 */

const anyValue = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -5, max: 70000 }),
  fc.string({ maxLength: 6 }),
  fc.constantFrom('10.0.0.1', 'fd00::1', '10.0.0.0/24', 'TCP', 'UDP', 'None', 'Pod', 'http', 'Running'),
  fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
);

const fields = (keys: string[]) =>
  fc.record(Object.fromEntries(keys.map((k) => [k, anyValue])), { requiredKeys: [] }) as fc.Arbitrary<
    Record<string, unknown>
  >;

const port = fields(['name', 'port', 'containerPort', 'targetPort', 'protocol', 'endPort']);
const kubeObject = fc.record(
  {
    apiVersion: fc.constantFrom(
      'v1',
      'discovery.k8s.io/v1',
      'networking.k8s.io/v1',
      'policy.networking.k8s.io/v1alpha1',
      'apps/v1',
    ),
    kind: fc.constantFrom(
      'Pod',
      'Service',
      'Node',
      'Namespace',
      'EndpointSlice',
      'NetworkPolicy',
      'AdminNetworkPolicy',
      'ConfigMap',
    ),
    metadata: fc.oneof(
      anyValue,
      fc.record({
        name: fc.oneof(fc.string({ minLength: 1, maxLength: 5 }), anyValue),
        namespace: anyValue,
        labels: anyValue,
      }),
    ),
    spec: fc.oneof(
      anyValue,
      fc.record(
        {
          nodeName: anyValue,
          hostNetwork: anyValue,
          clusterIP: anyValue,
          clusterIPs: fc.oneof(anyValue, fc.array(anyValue, { maxLength: 2 })),
          selector: anyValue,
          type: anyValue,
          podCIDRs: fc.oneof(anyValue, fc.array(anyValue, { maxLength: 2 })),
          ports: fc.oneof(anyValue, fc.array(port, { maxLength: 2 })),
          containers: fc.oneof(
            anyValue,
            fc.array(
              fc.record({ name: anyValue, ports: fc.oneof(anyValue, fc.array(port, { maxLength: 2 })) }),
              {
                maxLength: 2,
              },
            ),
          ),
        },
        { requiredKeys: [] },
      ),
    ),
    status: fc.oneof(
      anyValue,
      fc.record(
        {
          phase: anyValue,
          podIP: anyValue,
          podIPs: fc.oneof(anyValue, fc.array(fields(['ip']), { maxLength: 2 })),
          addresses: fc.oneof(anyValue, fc.array(fields(['type', 'address']), { maxLength: 2 })),
        },
        { requiredKeys: [] },
      ),
    ),
    addressType: anyValue,
    endpoints: fc.oneof(
      anyValue,
      fc.array(fields(['addresses', 'conditions', 'targetRef', 'nodeName']), { maxLength: 2 }),
    ),
    ports: fc.oneof(anyValue, fc.array(port, { maxLength: 2 })),
  },
  { requiredKeys: ['kind'] },
);

const item = fc.oneof(
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
  { weight: 6, arbitrary: kubeObject },
);

function accountedFor(text: string, items: number): void {
  const r = parseSnapshot([{ source: 'prop', text }]);
  const read = Object.values(r.kinds).reduce((a, b) => a + b, 0);
  const skipped = Object.values(r.ignored).reduce((a, b) => a + b, 0);
  const errors = r.issues.filter((i) => i.severity === 'error').length;
  expect(read + skipped + errors).toBe(items);
  for (const i of r.issues) expect(i.source).toBe('prop');
}

describe('parseSnapshot on arbitrary objects', () => {
  it('accounts for every List item exactly once (JSON)', () => {
    fc.assert(
      fc.property(fc.array(item, { maxLength: 8 }), (items) => {
        // JSON.stringify turns undefined items into null, which is still one item.
        accountedFor(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }), items.length);
      }),
      { numRuns: 300 },
    );
  });

  it('accounts for every List item exactly once (YAML)', () => {
    fc.assert(
      fc.property(fc.array(kubeObject, { maxLength: 5 }), (items) => {
        const clean = JSON.parse(JSON.stringify(items)) as unknown[];
        accountedFor(stringify({ apiVersion: 'v1', kind: 'List', items: clean }), clean.length);
      }),
      { numRuns: 100 },
    );
  });
});

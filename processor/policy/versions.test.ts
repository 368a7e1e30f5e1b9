import { describe, expect, it } from 'vitest';
import { canonicalJson, policySpecHash, policyVersions, policyVersionsInForce } from './versions.js';

const np = (spec: unknown, name = 'p') => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { namespace: 'shop', name },
  spec,
});

describe('policy versions: one definition for snapshots and the live timeline', () => {
  it('the same spec with its keys in another order is the same version', () => {
    const a = { podSelector: { matchLabels: { app: 'cart', tier: 'web' } }, policyTypes: ['Ingress'] };
    const b = { policyTypes: ['Ingress'], podSelector: { matchLabels: { tier: 'web', app: 'cart' } } };
    expect(JSON.stringify(a)).not.toBe(JSON.stringify(b));
    expect(policySpecHash(a)).toBe(policySpecHash(b));
    expect(policyVersions([np(a)])[0]!.hash).toBe(policyVersions([np(b)])[0]!.hash);
  });

  it('a different spec, or array order (rules are ordered), is another version', () => {
    const a = { policyTypes: ['Ingress', 'Egress'] };
    expect(policySpecHash(a)).not.toBe(policySpecHash({ policyTypes: ['Egress', 'Ingress'] }));
    expect(canonicalJson({ b: 1, a: [2, { d: 1, c: undefined }] })).toBe('{"a":[2,{"d":1}],"b":1}');
  });

  it('names NetworkPolicies namespace/name and cluster-scoped kinds by name; rejected ones are not in force', () => {
    const anp = { kind: 'AdminNetworkPolicy', metadata: { name: 'deny-all' }, spec: { priority: 1 } };
    expect(policyVersions([np({}), anp]).map((v) => `${v.kind} ${v.policy}`)).toEqual([
      'NetworkPolicy shop/p',
      'AdminNetworkPolicy deny-all',
    ]);
    const rejected = [
      { code: 'POLICY_INVALID_LABEL' as const, message: '', severity: 'error' as const, object: 'shop/p' },
    ];
    expect(policyVersionsInForce([np({}), anp], rejected).map((v) => v.policy)).toEqual(['deny-all']);
  });
});

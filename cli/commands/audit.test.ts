import { describe, expect, it } from 'vitest';
import { AuditError } from '../../lib/errors.js';
import { assertSnapshotUsable } from '../../pipeline/cluster.js';
import { emptyCluster } from '../../processor/inventory/model.js';
import { canonicalJson, policyVersions } from '../../processor/policy/versions.js';

describe('canonicalJson', () => {
  it('sorts keys at every level and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[2,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('gives one policy version whatever the key order of its spec', () => {
    const meta = { name: 'p', namespace: 'shop' };
    const a = { kind: 'NetworkPolicy', metadata: meta, spec: { podSelector: {}, policyTypes: ['Ingress'] } };
    const b = { kind: 'NetworkPolicy', metadata: meta, spec: { policyTypes: ['Ingress'], podSelector: {} } };
    expect(policyVersions([a])[0]!.hash).toBe(policyVersions([b])[0]!.hash);
    const c = { kind: 'NetworkPolicy', metadata: meta, spec: { policyTypes: ['Egress'], podSelector: {} } };
    expect(policyVersions([c])[0]!.hash).not.toBe(policyVersions([a])[0]!.hash);
  });
});

describe('assertSnapshotUsable', () => {
  it('refuses a snapshot with no object', () => {
    expect(() => assertSnapshotUsable(['x.yaml'], [], emptyCluster())).toThrow(AuditError);
  });

  it('refuses a snapshot with a syntax error even when other objects were read', () => {
    const cluster = emptyCluster();
    cluster.networkPolicies.push({});
    const syntax = {
      code: 'SNAPSHOT_SYNTAX' as const,
      message: 'bad',
      severity: 'error' as const,
      source: 'x.yaml',
    };
    expect(() => assertSnapshotUsable(['x.yaml'], [syntax], cluster)).toThrow(
      /AUDIT_SNAPSHOT_UNUSABLE|cannot be used/,
    );
  });

  it('accepts a snapshot with objects and only object-level problems', () => {
    const cluster = emptyCluster();
    cluster.networkPolicies.push({});
    const field = { code: 'SNAPSHOT_INVALID_FIELD' as const, message: 'bad', severity: 'error' as const };
    expect(() => assertSnapshotUsable(['x.yaml'], [field], cluster)).not.toThrow();
  });
});

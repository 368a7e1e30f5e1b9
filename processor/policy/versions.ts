import { createHash } from 'node:crypto';
import type { InputIssue } from '../../lib/errors.js';

/**
 * Policy versions: one definition for every wiring (a snapshot, the live timeline). A version is
 * the SHA-256 of the policy's `spec` as canonical JSON, so the same policy written with its keys in
 * another order, or read from the API server instead of a file, is the same version.
 */

export interface PolicyVersion {
  kind: string;
  /** `namespace/name` for NetworkPolicy, `name` for the cluster-scoped kinds (as the engine names them). */
  policy: string;
  hash: string;
  spec: unknown;
}

/** JSON with object keys sorted at every level. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x === undefined ? null : x)).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export function policySpecHash(spec: unknown): string {
  return createHash('sha256')
    .update(canonicalJson(spec ?? {}))
    .digest('hex')
    .slice(0, 16);
}

/** The version of each policy object (NetworkPolicy and the cluster-scoped kinds). */
export function policyVersions(raw: unknown[]): PolicyVersion[] {
  const out: PolicyVersion[] = [];
  for (const p of raw) {
    const meta = (p as { metadata?: { namespace?: string; name?: string } }).metadata;
    if (!meta?.name) continue;
    const kind = (p as { kind?: unknown }).kind;
    const spec = (p as { spec?: unknown }).spec ?? {};
    const hash = policySpecHash(spec);
    if (typeof kind === 'string' && kind !== 'NetworkPolicy')
      out.push({ kind, policy: meta.name, hash, spec });
    else
      out.push({ kind: 'NetworkPolicy', policy: `${meta.namespace ?? 'default'}/${meta.name}`, hash, spec });
  }
  return out;
}

/** The versions of the policies the engine enforces: a policy the validator rejected is not "in force". */
export function policyVersionsInForce(raw: unknown[], compileIssues: readonly InputIssue[]): PolicyVersion[] {
  const rejected = new Set(
    compileIssues.filter((i) => i.severity === 'error' && i.object !== undefined).map((i) => i.object!),
  );
  return policyVersions(raw).filter((p) => !rejected.has(p.policy));
}

import { AuditError, type InputIssue, issue } from '../lib/errors.js';
import { parseSnapshot, type SnapshotSource } from '../processor/inventory/index.js';
import type { PolicySet } from './replay.js';

/**
 * Drafts: the policies a what-if applies over those in force. A draft replaces the policy of the
 * same kind and name (and namespace, for a NetworkPolicy), or adds one; `--delete KIND/ns/name`
 * removes one. Policies are named as the engine names them in rule references.
 */

export const POLICY_KINDS = [
  'NetworkPolicy',
  'AdminNetworkPolicy',
  'BaselineAdminNetworkPolicy',
  'ClusterNetworkPolicy',
] as const;

/** `Kind/namespace/name` for a NetworkPolicy, `Kind/name` for the cluster-scoped kinds. */
export function policyId(raw: unknown): string {
  const o = raw as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  const kind = String(o?.kind ?? '');
  const name = String(o?.metadata?.name ?? '');
  return kind === 'NetworkPolicy'
    ? `${kind}/${String(o?.metadata?.namespace ?? '')}/${name}`
    : `${kind}/${name}`;
}

/** The rule-reference key of a policy id's rules: `Kind|policy` as the engine's RuleRef names it. */
export function ruleOwner(id: string): string {
  const slash = id.indexOf('/');
  return `${id.slice(0, slash)}|${id.slice(slash + 1)}`;
}

export interface DraftSet {
  policies: PolicySet;
  /** Ids of every policy the drafts bring (added or replacing). */
  ids: string[];
  issues: InputIssue[];
}

/** Reads draft files: policies only; anything else in them is an error naming the file and object. */
export function parseDrafts(sources: SnapshotSource[]): DraftSet {
  const parsed = parseSnapshot(sources);
  const issues = [...parsed.issues];
  for (const [kind, n] of Object.entries(parsed.kinds))
    if (!(POLICY_KINDS as readonly string[]).includes(kind))
      issues.push(
        issue('WHATIF_DRAFT_INVALID', `a draft holds only policies; found ${n} ${kind} object(s)`, {
          source: sources.map((s) => s.source).join(', '),
        }),
      );
  const policies: PolicySet = {
    networkPolicies: parsed.cluster.networkPolicies,
    clusterNetworkPolicies: parsed.cluster.clusterNetworkPolicies ?? [],
  };
  const ids = [...policies.networkPolicies, ...policies.clusterNetworkPolicies].map(policyId);
  if (ids.length === 0 && issues.length === 0)
    issues.push(
      issue('WHATIF_DRAFT_INVALID', 'no NetworkPolicy or cluster-scoped policy in the drafts', {
        source: sources.map((s) => s.source).join(', '),
      }),
    );
  return { policies, ids, issues };
}

export interface Applied {
  policies: PolicySet;
  added: string[];
  replaced: string[];
  deleted: string[];
}

/** The policies in force with the drafts applied and the deletions made. */
export function applyDrafts(base: PolicySet, drafts: PolicySet, deletes: readonly string[]): Applied {
  const byId = new Map<string, { raw: unknown; cluster: boolean }>();
  for (const raw of base.networkPolicies) byId.set(policyId(raw), { raw, cluster: false });
  for (const raw of base.clusterNetworkPolicies) byId.set(policyId(raw), { raw, cluster: true });
  const deleted: string[] = [];
  for (const d of deletes) {
    const id = normalizeDelete(d);
    if (!byId.delete(id))
      throw new AuditError('WHATIF_DELETE_UNKNOWN', `--delete ${d}: no such policy in force`, { source: d });
    deleted.push(id);
  }
  const added: string[] = [];
  const replaced: string[] = [];
  const put = (raw: unknown, cluster: boolean) => {
    const id = policyId(raw);
    (byId.has(id) ? replaced : added).push(id);
    byId.set(id, { raw, cluster });
  };
  for (const raw of drafts.networkPolicies) put(raw, false);
  for (const raw of drafts.clusterNetworkPolicies) put(raw, true);
  const out: PolicySet = { networkPolicies: [], clusterNetworkPolicies: [] };
  for (const { raw, cluster } of byId.values())
    (cluster ? out.clusterNetworkPolicies : out.networkPolicies).push(raw);
  return { policies: out, added, replaced, deleted };
}

/** `networkpolicy/ns/name`, `NetworkPolicy/ns/name`, `anp/name`...: the kind's case and short names. */
function normalizeDelete(spec: string): string {
  const [kind, ...rest] = spec.split('/');
  const k = (kind ?? '').toLowerCase();
  const full =
    k === 'networkpolicy' || k === 'netpol' || k === 'networkpolicies'
      ? 'NetworkPolicy'
      : k === 'adminnetworkpolicy' || k === 'anp'
        ? 'AdminNetworkPolicy'
        : k === 'baselineadminnetworkpolicy' || k === 'banp'
          ? 'BaselineAdminNetworkPolicy'
          : k === 'clusternetworkpolicy' || k === 'cnp'
            ? 'ClusterNetworkPolicy'
            : undefined;
  if (!full || rest.length !== (full === 'NetworkPolicy' ? 2 : 1) || rest.some((x) => x === ''))
    throw new AuditError(
      'WHATIF_DELETE_UNKNOWN',
      `--delete ${spec}: expected NetworkPolicy/NAMESPACE/NAME or AdminNetworkPolicy|BaselineAdminNetworkPolicy|ClusterNetworkPolicy/NAME`,
      { source: spec },
    );
  return `${full}/${rest.join('/')}`;
}

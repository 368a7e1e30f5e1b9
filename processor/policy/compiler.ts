import type { InputIssue } from '../../lib/errors.js';
import { issue } from '../../lib/errors.js';
import type { ClusterModel } from '../inventory/model.js';
import { compileAdminPolicies } from './admin.js';
import { type CompiledPolicy, compilePolicy, newRegistry } from './compile.js';
import { type CompileResult, DEFAULT_POLICY_OPTIONS, type PolicyOptions } from './types.js';
import { PolicyIndex } from './verdict-cache.js';

/**
 * The compiler: raw policies -> validated rules (compile.ts for NetworkPolicy, admin.ts for the
 * cluster-scoped tiers), selector peers and ipBlocks registered once, and a PolicyIndex over them.
 */

/**
 * Validates and compiles the cluster's NetworkPolicies. Invalid policies are rejected whole with an
 * issue each (object `namespace/name`, field path); the rest are compiled. Policies are ordered by
 * `namespace/name`, so verdicts do not depend on the order of the input.
 */
export function compilePolicyIndex(cluster: ClusterModel, options?: Partial<PolicyOptions>): CompileResult {
  return new PolicyCompiler().compile(cluster, options);
}

export interface PolicyCompilerStats {
  /** NetworkPolicy objects validated and lowered. */
  parsed: number;
  /** NetworkPolicy objects taken as compiled before (the same object, unchanged). */
  reused: number;
  /** Times the registry was started afresh because it had grown well beyond what is in use. */
  resets: number;
}

/** Past this many registry entries (and twice the live ones) the next compile starts afresh. */
const REGISTRY_SLACK = 1024;

/**
 * Compiles a cluster whose policies change a few at a time (a watched cluster): a NetworkPolicy object
 * seen before (the same object: the timeline keeps one per version of a policy) is not validated and
 * lowered again, and selector peers and ipBlocks keep their ids in one registry, so a policy edit costs
 * the edited policy and the index around it, not every policy. Compiled policies are immutable, and a
 * registry id never changes meaning, so indexes compiled earlier stay valid beside the new one.
 */
export class PolicyCompiler {
  private reg = newRegistry();
  private compiled = new WeakMap<object, { policy: CompiledPolicy; warnings: InputIssue[] }>();
  /** Registry entries after the last fresh start: what the policies in force needed then. */
  private baseline = 0;
  readonly stats: PolicyCompilerStats = { parsed: 0, reused: 0, resets: 0 };

  /** `registrySlack`: registry entries tolerated before a fresh start (tests set it low to force them). */
  constructor(private readonly registrySlack = REGISTRY_SLACK) {}

  compile(cluster: ClusterModel, options?: Partial<PolicyOptions>): CompileResult {
    const opts: PolicyOptions = { ...DEFAULT_POLICY_OPTIONS };
    if (options?.ipBlockMatchesPods !== undefined) opts.ipBlockMatchesPods = options.ipBlockMatchesPods;
    if (options?.hostNetwork !== undefined) opts.hostNetwork = options.hostNetwork;
    if (this.registrySize() > Math.max(this.registrySlack, 2 * this.baseline)) {
      // Edited and deleted policies leave their selectors behind; start afresh now and then.
      this.reg = newRegistry();
      this.compiled = new WeakMap();
      this.baseline = 0;
      this.stats.resets++;
    }
    const fresh = this.registrySize() === 0;
    const reg = this.reg;
    const issues: InputIssue[] = [];
    const accepted = new Map<string, CompiledPolicy>();
    (cluster.networkPolicies ?? []).forEach((raw, i) => {
      let r = typeof raw === 'object' && raw !== null ? this.compiled.get(raw) : undefined;
      if (r) this.stats.reused++;
      else {
        this.stats.parsed++;
        const parsed = compilePolicy(raw, i, reg);
        if (!parsed.ok) {
          issues.push(...parsed.issues);
          return;
        }
        r = { policy: parsed.policy, warnings: parsed.warnings };
        if (typeof raw === 'object' && raw !== null) this.compiled.set(raw, r);
      }
      issues.push(...r.warnings);
      if (accepted.has(r.policy.key)) {
        issues.push(
          issue(
            'POLICY_DUPLICATE',
            'a policy with this namespace/name came earlier; this one is ignored',
            { object: r.policy.key, record: i },
            'warning',
          ),
        );
        return;
      }
      accepted.set(r.policy.key, r.policy);
    });
    const policies = [...accepted.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const tiers = compileAdminPolicies(cluster, reg);
    issues.push(...tiers.issues);
    if (fresh) this.baseline = this.registrySize();
    const index = new PolicyIndex(cluster, policies, reg.selectorPeers, reg.ipBlocks, opts, tiers);
    return { index, issues };
  }

  private registrySize(): number {
    return this.reg.selectorPeers.length + this.reg.ipBlocks.length;
  }
}

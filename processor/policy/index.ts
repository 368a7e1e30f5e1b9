/**
 * The NetworkPolicy engine: a compiler (raw policies -> validated rules, selector peers and ipBlocks
 * registered once) and an evaluator behind an exact verdict cache; docs/policy-engine.md argues why.
 *
 *   compile.ts, admin.ts  validation and lowering of NetworkPolicy and the cluster-scoped tiers
 *   compiler.ts           compilePolicyIndex, PolicyCompiler (incremental recompiles)
 *   identities.ts         identities, named-port profiles and the selector cache
 *   evaluation.ts         the direct evaluation of a flow (admin tier, NetworkPolicy, baseline tier)
 *   explanation.ts        explain() and rules(): the same decision with its reasons
 *   verdict-cache.ts      PolicyIndex: the verdict cache in front of the evaluation
 */

export type { CompiledPolicy, CompiledRule } from './compile.js';
export { compilePolicyIndex, PolicyCompiler, type PolicyCompilerStats } from './compiler.js';
export * from './types.js';
export { PolicyIndex, type PolicyIndexStats } from './verdict-cache.js';

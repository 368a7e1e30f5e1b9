/**
 * What-if and suggestions from recorded traffic (docs/whatif.md):
 *
 *   replay.ts   the recorded edges judged again by the policy engine, under any set of policies
 *   drafts.ts   drafts read and applied over the policies in force (add, replace, delete)
 *   compare.ts  baseline against drafts: breakage, loosening, unused and shadowed draft rules
 *   render.ts   text, JSON and Markdown (a pull-request comment)
 *   suggest.ts  least-privilege NetworkPolicies from the allowed traffic, checked by replay
 */

export { type DraftRule, type PairChange, type ShadowedRule, type WhatIfResult, whatIf } from './compare.js';
export { type Applied, applyDrafts, type DraftSet, parseDrafts, policyId } from './drafts.js';
export { renderWhatIfMarkdown, renderWhatIfText } from './render.js';
export { endpointName, type PolicySet, replay } from './replay.js';
export { foldAddresses, type Suggestion, type SuggestStyle, suggest } from './suggest.js';

import type { InputIssue } from '../../lib/errors.js';
import type { PolicyKindName } from '../../schema/verdict.js';
import type { L4Protocol } from '../inventory/model.js';
import type { Direction, IpBlockPeer, SelectorPeer } from './compile.js';
import type { Selector } from './selector.js';

/** The compiled form of the cluster-scoped policies (admin.ts compiles them; admin-parse.ts validates). */

export type AdminTier = 'Admin' | 'Baseline';
/** The effect of a rule. ClusterNetworkPolicy's `Accept` is `Allow` here (`actionText` keeps the word). */
export type AdminAction = 'Allow' | 'Deny' | 'Pass';

/** An address peer: `networks` CIDRs, or the addresses of the nodes a `nodes` selector picks. */
export interface AddressPeer {
  kind: 'addresses';
  blocks: IpBlockPeer[];
  text: string;
}

/** A peer that can match nothing here: `domainNames` (flows carry addresses) or fail-closed Allow peers. */
export interface NoPeer {
  kind: 'nothing';
  text: string;
}

export type AdminPeer = SelectorPeer | AddressPeer | NoPeer;

export interface AdminPort {
  /** Undefined only for named ports, which match the protocol of the container port they name. */
  protocol?: L4Protocol;
  start?: number;
  end?: number;
  name?: string;
  text: string;
}

export interface AdminRule {
  direction: Direction;
  index: number;
  /** The rule's own `name`, when it has one. */
  name?: string;
  action: AdminAction;
  /** The action as written (`Accept` for ClusterNetworkPolicy). */
  actionText: string;
  /** undefined: every peer (only for a fail-closed Deny/Pass rule, which upstream turns into deny-all). */
  peers?: AdminPeer[];
  /** undefined: every port and protocol. */
  ports?: AdminPort[];
  summary: string;
}

export type AdminKind = Exclude<PolicyKindName, 'NetworkPolicy'>;

export interface AdminPolicy {
  kind: AdminKind;
  name: string;
  /** `Kind/name`: unique across the three kinds (their names are separate namespaces). */
  key: string;
  tier: AdminTier;
  /** spec.priority; BaselineAdminNetworkPolicy has none and counts as 1001 (after every CNP). */
  priority: number;
  /** Position in the tier's evaluation order, 0 first. */
  rank: number;
  subjectNamespaces: Selector;
  subjectPods?: Selector;
  subjectText: string;
  ingress: AdminRule[];
  egress: AdminRule[];
}

export interface AdminCompileResult {
  /** Admin tier, in evaluation order. */
  admin: AdminPolicy[];
  /** Baseline tier, in evaluation order. */
  baseline: AdminPolicy[];
  /** Port names some admin rule refers to (they enter the named-port profile of the verdict cache). */
  namedPorts: Set<string>;
  /** Some rule has a networks or nodes peer: pod addresses must then be told apart by CIDR class. */
  hasAddressPeers: boolean;
  issues: InputIssue[];
}

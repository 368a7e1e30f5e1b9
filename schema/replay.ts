import type { Classification } from '../processor/classify.js';

/**
 * What-if replay's records (docs/whatif.md): who each end of a flow was, as the policy engine reads
 * it, and the decisive engine question of a flow. The processor makes them, they travel in the Kafka
 * verdict messages, the store keeps them (migration 6, processor/store/replay.ts) and whatif/ reads
 * them back.
 */

/** A pod as policies see it: everything a selector, a named port or the hostNetwork rule reads. */
export interface ReplayPod {
  namespace: string;
  /** The workload (`namespace/name`), for people; not read by the engine. */
  workload: string;
  labels: Record<string, string>;
  namespaceLabels: Record<string, string>;
  namedPorts: { name: string; port: number; protocol: 'TCP' | 'UDP' | 'SCTP' }[];
  hostNetwork: boolean;
  /** The pod's node: traffic from its own node is allowed whatever the policies (node-local). */
  nodeName?: string;
}

/** A node as the cluster-scoped tiers see it (`nodes` peers, node addresses). */
export interface ReplayNode {
  name: string;
  labels: Record<string, string>;
  addresses: string[];
  podCIDRs: string[];
}

export interface ReplayEndpoint {
  ip: string;
  pod?: ReplayPod;
  node?: ReplayNode;
}

/** The one engine question that decided a flow. */
export interface ReplayFact {
  src: ReplayEndpoint;
  dst: ReplayEndpoint;
  proto: number;
  /** Destination port; -1 for none. */
  port: number;
  /** The peer answered (established or closed): denied, it is a violation, not an attempt. */
  answered: boolean;
}

/** A recorded edge, read back with its ends resolved. */
export interface RecordedEdge {
  day: number;
  src: ReplayEndpoint;
  dst: ReplayEndpoint;
  proto: number;
  port: number;
  answered: boolean;
  classification: Classification;
  flows: number;
  bytes: number;
  firstSeen: number;
  lastSeen: number;
}

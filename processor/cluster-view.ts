import type { Inventory } from './inventory/inventory.js';
import type { PolicyIndexApi } from './policy/types.js';

/**
 * The cluster state a flow is judged against: a snapshot (StaticClusterView) or the API server's
 * state over time (ClusterTimeline), answered per flow time. A leaf: the inventory's timeline
 * implements it without importing the processor.
 */
export interface ClusterView {
  at(ms: number): { inventory: Inventory; index: PolicyIndexApi };
}

export class StaticClusterView implements ClusterView {
  /** One answer for every flow: at() is asked once per flow. */
  private readonly state: { readonly inventory: Inventory; readonly index: PolicyIndexApi };
  constructor(inventory: Inventory, index: PolicyIndexApi) {
    this.state = Object.freeze({ inventory, index });
  }
  at(): { inventory: Inventory; index: PolicyIndexApi } {
    return this.state;
  }
}

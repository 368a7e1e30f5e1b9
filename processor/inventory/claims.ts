import { isTerminal, normalizeIp } from './inventory.js';
import type { PodModel } from './model.js';

/** A pod's hold on an address: from when it appeared with the IP until deleted, terminal, or readdressed. */
export interface IpClaim {
  ip: string;
  /** `namespace/name`. */
  pod: string;
  uid?: string;
  from: number;
  /** Exclusive; absent while the pod still holds the address. */
  to?: number;
}

/** Which pod held which address when: the claims of the timeline's pods, opened and closed as they change. */
export class IpClaims {
  private readonly claims = new Map<string, IpClaim[]>();
  /** Addresses with a closed claim, the only ones retention has to look at. */
  private readonly closedClaims = new Set<string>();

  /** Closes and opens address claims for a pod change; true when the pod holds exactly what it held. */
  update(ref: string, before: PodModel | undefined, after: PodModel | undefined, t: number): boolean {
    const held = (p: PodModel | undefined): string[] => {
      if (!p || p.hostNetwork || isTerminal(p)) return [];
      const out: string[] = [];
      for (const a of p.ips) {
        const ip = normalizeIp(a);
        if (ip && !out.includes(ip)) out.push(ip);
      }
      return out;
    };
    const was = held(before);
    const is = held(after);
    // Same name, new uid: a new pod (StatefulSets reuse names), so its claims start afresh.
    const samePod = before?.uid === after?.uid;
    for (const ip of was) {
      if (samePod && is.includes(ip)) continue;
      const list = this.claims.get(ip);
      if (!list) continue;
      for (let i = list.length - 1; i >= 0; i--) {
        const c = list[i]!;
        if (c.pod !== ref || c.to !== undefined) continue;
        if (c.from === t) list.splice(i, 1);
        else {
          c.to = t;
          this.closedClaims.add(ip);
        }
        break;
      }
      if (list.length === 0) this.claims.delete(ip);
    }
    for (const ip of is) {
      if (samePod && was.includes(ip)) continue;
      const claim: IpClaim = { ip, pod: ref, from: t };
      if (after?.uid) claim.uid = after.uid;
      const list = this.claims.get(ip);
      if (!list) this.claims.set(ip, [claim]);
      else {
        list.push(claim);
        // A backdated claim can start before claims already held: keep the history in time order.
        if (list[list.length - 2]!.from > t) list.sort((a, b) => a.from - b.from);
      }
    }
    return samePod && was.length === is.length && was.every((ip) => is.includes(ip)) && was.length > 0;
  }

  /** Which pods held `ip`, and when (claims by pods whose address was then taken by another overlap). */
  history(ip: string): readonly IpClaim[] {
    return this.claims.get(normalizeIp(ip) ?? ip) ?? [];
  }

  /** Drops claims that ended at or before `first`, the start of the oldest version held. */
  retain(first: number): void {
    for (const ip of this.closedClaims) {
      const list = this.claims.get(ip);
      if (!list) {
        this.closedClaims.delete(ip);
        continue;
      }
      const kept = list.filter((c) => c.to === undefined || c.to > first);
      if (kept.length === 0) this.claims.delete(ip);
      else this.claims.set(ip, kept);
      if (kept.every((c) => c.to === undefined)) this.closedClaims.delete(ip);
    }
  }
}

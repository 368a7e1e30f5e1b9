// A ClusterChangeSink for the tests: records every call, keeps the resulting state per kind, and lets a
// test wait for a call that matches.
import type { ClusterChangeSink, WatchedKind } from '../../processor/inventory/events.js';

export interface SinkCall {
  op: 'replace' | 'upsert' | 'remove';
  kind: WatchedKind;
  /** For upsert/remove: the object; for replace: undefined. */
  object?: K8sObject;
  objects?: K8sObject[];
  at: number;
}

export interface K8sObject {
  kind?: string;
  apiVersion?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    labels?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [k: string]: unknown;
}

export function keyOf(o: K8sObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

interface Waiter {
  match: (c: SinkCall) => boolean;
  resolve: (c: SinkCall) => void;
}

export class RecordingSink implements ClusterChangeSink {
  readonly calls: SinkCall[] = [];
  readonly state = new Map<WatchedKind, Map<string, K8sObject>>();
  private waiters: Waiter[] = [];

  replace(kind: WatchedKind, objects: unknown[], at: number): void {
    const list = objects as K8sObject[];
    this.state.set(kind, new Map(list.map((o) => [keyOf(o), o])));
    this.record({ op: 'replace', kind, objects: list, at });
  }

  upsert(kind: WatchedKind, object: unknown, at: number): void {
    const o = object as K8sObject;
    this.kindState(kind).set(keyOf(o), o);
    this.record({ op: 'upsert', kind, object: o, at });
  }

  remove(kind: WatchedKind, object: unknown, at: number): void {
    const o = object as K8sObject;
    this.kindState(kind).delete(keyOf(o));
    this.record({ op: 'remove', kind, object: o, at });
  }

  get(kind: WatchedKind, key: string): K8sObject | undefined {
    return this.state.get(kind)?.get(key);
  }

  keys(kind: WatchedKind, prefix = ''): string[] {
    return [...(this.state.get(kind)?.keys() ?? [])].filter((k) => k.startsWith(prefix)).sort();
  }

  /**
   * Resolves with the first call (already recorded at index >= `from`, or arriving later) that matches.
   * The timeout only turns a hang into a readable failure.
   */
  waitFor(match: (c: SinkCall) => boolean, what: string, from = 0, timeoutMs = 20_000): Promise<SinkCall> {
    const seen = this.calls.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (c) => {
          clearTimeout(timer);
          resolve(c);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`sink never received: ${what} (calls so far: ${this.calls.length})`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  private kindState(kind: WatchedKind): Map<string, K8sObject> {
    let m = this.state.get(kind);
    if (!m) {
      m = new Map();
      this.state.set(kind, m);
    }
    return m;
  }

  private record(call: SinkCall): void {
    this.calls.push(call);
    const ready = this.waiters.filter((w) => w.match(call));
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve(call);
  }
}

/** Median and max of a list of numbers (ms). */
export function latencyStats(values: number[]): { n: number; median: number; p90: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  return { n: s.length, median: at(0.5), p90: at(0.9), max: s[s.length - 1] ?? Number.NaN };
}

import type { CoverageSnapshot, NamespaceCoverage, WorkloadCoverage } from '../schema/report.js';
import type { Inventory } from './inventory/inventory.js';
import { isTerminal } from './inventory/inventory.js';
import { addNamedPorts } from './inventory/model.js';
import { compilePolicy, newRegistry } from './policy/compile.js';
import type { PolicyIndexApi } from './policy/types.js';
import { workloadOf } from './workload.js';

/**
 * Isolation coverage: which workloads a NetworkPolicy selects for ingress and egress, and which
 * namespaces have a default deny, in the cluster as in force at a moment. Linters know this but
 * cannot weigh it against traffic; the report does both (docs/report.md, "Isolation coverage").
 *
 * Isolation is asked of the policy engine itself (the verdict's `isolated`), so the report and the
 * verdicts share one implementation of the semantics: a pod is isolated for a direction when the
 * engine says a NetworkPolicy isolates it.
 */

/** A documentation address (RFC 5737): it belongs to no pod, so only the subject's isolation counts. */
const PROBE_PEER = '192.0.2.1';
const DAY = 86_400_000;

export function coverageOf(inventory: Inventory, index: PolicyIndexApi, atMs: number): CoverageSnapshot {
  const byWorkload = new Map<string, WorkloadCoverage>();
  const peer = { ip: PROBE_PEER };
  for (const pod of inventory.cluster.pods) {
    // Terminal and unscheduled pods hold no address; hostNetwork pods are their node's (by default).
    if (isTerminal(pod) || pod.ips.length === 0) continue;
    if (pod.hostNetwork && index.options.hostNetwork === 'node') continue;
    const self = { ip: pod.ips[0]!, pod };
    const ingress = index.evaluate({ src: peer, dst: self, proto: 6, port: 1 }).ingress.isolated;
    const egress = index.evaluate({ src: self, dst: peer, proto: 6, port: 1 }).egress.isolated;
    const workload = workloadOf(pod);
    let w = byWorkload.get(workload);
    if (!w) {
      w = {
        workload,
        namespace: pod.namespace,
        pods: 0,
        ingressIsolated: 0,
        egressIsolated: 0,
        labels: { ...pod.labels },
        namedPorts: [],
      };
      byWorkload.set(workload, w);
    } else {
      // Only the labels all its pods share identify the workload.
      for (const k of Object.keys(w.labels!)) if (pod.labels[k] !== w.labels![k]) delete w.labels![k];
    }
    addNamedPorts(w.namedPorts!, pod.ports);
    w.pods++;
    if (ingress) w.ingressIsolated++;
    if (egress) w.egressIsolated++;
  }
  return {
    day: Math.floor(atMs / DAY) * DAY,
    asOf: atMs,
    workloads: [...byWorkload.values()].sort((a, b) => (a.workload < b.workload ? -1 : 1)),
    namespaces: namespaceDefaults(inventory),
  };
}

/**
 * A default deny for a direction: a valid policy whose podSelector is empty (every pod of the
 * namespace), whose effective policyTypes include the direction, and that has no rule for it.
 */
function namespaceDefaults(inventory: Inventory): NamespaceCoverage[] {
  const out = new Map<string, NamespaceCoverage>();
  const names = new Set<string>(inventory.cluster.namespaces.map((n) => n.name));
  for (const p of inventory.cluster.pods) names.add(p.namespace);
  for (const name of names)
    out.set(name, {
      namespace: name,
      labels: { ...(inventory.namespace(name)?.labels ?? { 'kubernetes.io/metadata.name': name }) },
      defaultDenyIngress: false,
      defaultDenyEgress: false,
    });
  const reg = newRegistry();
  inventory.cluster.networkPolicies.forEach((raw, i) => {
    const parsed = compilePolicy(raw, i, reg);
    if (!parsed.ok) return; // rejected: not in force
    const p = parsed.policy;
    if (p.podSelector.requirements.length > 0) return;
    const ns = out.get(p.namespace) ?? {
      namespace: p.namespace,
      defaultDenyIngress: false,
      defaultDenyEgress: false,
    };
    if (p.isolatesIngress && p.ingress.length === 0) ns.defaultDenyIngress = true;
    if (p.isolatesEgress && p.egress.length === 0) ns.defaultDenyEgress = true;
    out.set(p.namespace, ns);
  });
  return [...out.values()].sort((a, b) => (a.namespace < b.namespace ? -1 : 1));
}

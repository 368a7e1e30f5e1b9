import { AuditError } from '../../lib/errors.js';
import { escapeTerminal } from '../../lib/escape.js';
import { parseSince } from '../../lib/format.js';
import { CLUSTER_OPTIONS, CLUSTER_USAGE, clusterOptionsFrom, openCluster } from '../../pipeline/cluster.js';
import { isTerminal } from '../../processor/inventory/inventory.js';
import { AuditStore } from '../../processor/store/index.js';
import { workloadOf } from '../../processor/workload.js';
import { evidenceFor, noDataMessage } from '../../report/index.js';
import type { ReplayPod } from '../../schema/replay.js';
import { type PolicySet, type SuggestStyle, suggest } from '../../whatif/index.js';
import { asUsage, parse } from '../args.js';
import { type Command, EXIT_NO_DATA, UsageError } from '../command.js';
import { reportIssues } from './check.js';

const USAGE = `usage: netpol-audit suggest --db FILE (--cluster SNAPSHOT | --kubeconfig FILE) [--namespace NS]...
       [--since 30d|DATE] [--until DATE] [--style per-workload|per-namespace] [--output FILE]

Writes NetworkPolicies (YAML, ready to apply) that allow exactly the traffic the policies in force
allowed in the period and isolate every workload they select, for ingress and egress: stable
selectors (app.kubernetes.io/name, app; never pod-template-hash), named ports where the pods declare
them, DNS egress to the cluster DNS, external peers folded into ipBlocks, and as YAML comments the
flows that justify each rule. Before printing, the suggestions are replayed over the period with
whatif: not one recorded allowed flow may become denied. Standard error says how tight they are: the
peers and ports they allow beyond what was observed (docs/whatif.md).

options:
      --db FILE            the store (read only)
      --namespace NS       write policies for this namespace (repeatable; default: every namespace seen)
      --since D            start of the period: 30d (default), 7d, or a date; relative to the newest data
      --until D            end of the period (default: the newest data)
      --style S            per-workload (default): one policy per workload; per-namespace: one per namespace
      --output FILE        write the YAML here instead of standard output
${CLUSTER_USAGE}

Exit status: 0 ok, 2 usage error, 3 fatal (the replay check found breakage: a bug, reported), 4 no
data: the period holds no replayable traffic.`;

export const suggestCommand: Command = {
  path: ['suggest'],
  summary: 'least-privilege NetworkPolicies from the recorded allowed traffic, checked by replay',
  usage: USAGE,
  async run(argv) {
    const { values } = parse(argv, {
      ...CLUSTER_OPTIONS,
      db: { type: 'string' },
      namespace: { type: 'string', multiple: true },
      since: { type: 'string' },
      until: { type: 'string' },
      style: { type: 'string' },
      output: { type: 'string' },
    });
    if (!values.db) throw new UsageError('--db is required');
    const style = (values.style ?? 'per-workload') as SuggestStyle;
    if (style !== 'per-workload' && style !== 'per-namespace')
      throw new UsageError(`--style must be per-workload or per-namespace, not '${values.style}'`);
    const options = clusterOptionsFrom(values);
    const store = AuditStore.open(values.db, { readonly: true });
    const cluster = await openCluster(options);
    try {
      reportIssues('suggest', cluster.issues);
      const { inventory } = cluster.view.at(Date.now());
      const c = inventory.cluster;
      const baseline: PolicySet = {
        networkPolicies: c.networkPolicies,
        clusterNetworkPolicies: c.clusterNetworkPolicies ?? [],
      };
      const knownPods: ReplayPod[] = c.pods
        .filter((p) => !isTerminal(p) && !p.hostNetwork)
        .map((p) => ({
          namespace: p.namespace,
          workload: workloadOf(p),
          labels: { ...p.labels },
          namespaceLabels: { ...(inventory.namespace(p.namespace)?.labels ?? {}) },
          namedPorts: p.ports
            .filter((x) => x.name)
            .map((x) => ({ name: x.name!, port: x.containerPort, protocol: x.protocol })),
          hostNetwork: false,
        }));
      const newest = store.latestDataTime() ?? 0;
      const until = values.until ? asUsage(() => parseSince(values.until!, newest)) : newest + 1;
      const since = asUsage(() => parseSince(values.since ?? '30d', newest));
      if (since >= until) throw new UsageError('the period is empty (--since must be before --until)');
      const edges = store.replay.edges(since, until);
      if (edges.length === 0) {
        process.stderr.write(
          `suggest: ${noDataMessage(evidenceFor(store, since, until), 'which traffic to allow')}\n`,
        );
        return EXIT_NO_DATA;
      }
      const dnsPod = c.pods.find((p) => p.labels['k8s-app'] === 'kube-dns');
      const s = suggest({
        edges,
        baseline,
        options: options.policy,
        style,
        ...(values.namespace ? { namespaces: values.namespace } : {}),
        knownPods,
        ...(dnsPod ? { dns: { namespace: dnsPod.namespace, labels: { 'k8s-app': 'kube-dns' } } } : {}),
        since,
        until,
      });
      if (s.check.becomeDenied.length > 0)
        throw new AuditError(
          'WHATIF_DRAFT_INVALID',
          `the suggestions would deny recorded allowed traffic (${s.check.becomeDenied
            .map((b) => `${b.src} -> ${b.dst}`)
            .join(', ')}): not printed`,
          { source: values.db },
        );
      const text = s.yaml;
      if (values.output) {
        const { writeFile } = await import('node:fs/promises');
        await writeFile(values.output, text);
      } else process.stdout.write(text);
      const err = process.stderr;
      err.write(
        `suggest: ${s.policies.length} NetworkPolicies; replayed ${s.check.replayed.flows} recorded flows with them applied: ${s.check.becomeDenied.length} pairs would become denied, ${s.check.becomeAllowed.length} would become allowed\n`,
      );
      const skipped = s.check.notReplayable.reduce((n, x) => n + x.flows, 0);
      if (skipped > 0) err.write(`suggest: ${skipped} flows could not be replayed and are not covered\n`);
      err.write(
        `suggest: beyond what was observed (${s.probes} probes of recorded peers and ports): ${s.beyond.length === 0 ? 'nothing' : ''}\n`,
      );
      for (const b of s.beyond)
        err.write(
          `  ${escapeTerminal(b.policy)} ${b.direction} ${escapeTerminal(b.peer)} ${b.port}: ${b.why}\n`,
        );
      return 0;
    } finally {
      store.close();
      await cluster.close();
    }
  },
};

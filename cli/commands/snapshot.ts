import { rename, writeFile } from 'node:fs/promises';
import { AuditError } from '../../lib/errors.js';
import { parse } from '../args.js';
import { type Command, EXIT_FATAL, EXIT_OK, UsageError } from '../command.js';

const USAGE = `usage: netpol-audit snapshot [--kubeconfig FILE | --in-cluster] [--context NAME] [--output FILE]

Lists the cluster's namespaces, pods, nodes, services, EndpointSlices, NetworkPolicies and, where their
CRDs are installed, AdminNetworkPolicies, BaselineAdminNetworkPolicies and ClusterNetworkPolicies, and
writes them as one \`List\` YAML: the snapshot format \`check\` and \`explain\` read with --cluster.

  --kubeconfig FILE   kubeconfig to use (default: the in-cluster service account inside a pod, else
                      $KUBECONFIG or ~/.kube/config)
  --context NAME      kubeconfig context (default: its current-context)
  --in-cluster        the pod's service account only (token and CA under
                      /var/run/secrets/kubernetes.io/serviceaccount), whatever $KUBECONFIG says
  -o, --output FILE   write to FILE (atomically: a temporary file renamed at the end) instead of
                      standard output

Needs get/list on those resources (deploy/base/rbac.yaml grants exactly that); a refusal (403) is
KUBE_FORBIDDEN, naming the resource. Exit status: 0 ok, 2 usage error, 3 the cluster could not be
listed or the file not written.`;

export const snapshotCommand: Command = {
  path: ['snapshot'],
  summary: 'write a cluster snapshot (List YAML) from the live API server',
  usage: USAGE,
  async run(argv) {
    const { values } = parse(argv, {
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      'in-cluster': { type: 'boolean' },
      output: { type: 'string', short: 'o' },
    });
    // Loaded here, not at the top: @kubernetes/client-node costs every other command ~0.7 CPU-s otherwise.
    const { loadKubeConfig, snapshotCluster, snapshotYaml } = await import(
      '../../processor/inventory/kube/index.js'
    );
    if (values['in-cluster'] && (values.kubeconfig !== undefined || values.context !== undefined))
      throw new UsageError('--in-cluster excludes --kubeconfig and --context');
    let text: string;
    try {
      const kc = loadKubeConfig({
        ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
        ...(values.context ? { context: values.context } : {}),
        ...(values['in-cluster'] ? { inCluster: true } : {}),
      });
      const snap = await snapshotCluster(kc);
      text = snapshotYaml(snap.items);
      const counts = Object.entries(snap.counts)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ');
      process.stderr.write(`netpol-audit snapshot: ${counts}\n`);
      if (snap.absent.length > 0) {
        process.stderr.write(
          `netpol-audit snapshot: not served here (CRD not installed): ${snap.absent.join(', ')}\n`,
        );
      }
    } catch (err) {
      // Catalogued failures (KUBE_FORBIDDEN, KUBE_IN_CLUSTER_UNAVAILABLE) are printed with their code.
      if (err instanceof AuditError) throw err;
      process.stderr.write(`netpol-audit snapshot: ${(err as Error).message}\n`);
      return EXIT_FATAL;
    }
    if (values.output === undefined || values.output === '-') {
      process.stdout.write(text);
      return EXIT_OK;
    }
    try {
      const tmp = `${values.output}.tmp-${process.pid}`;
      await writeFile(tmp, text);
      await rename(tmp, values.output);
    } catch (err) {
      process.stderr.write(
        `netpol-audit snapshot: cannot write ${values.output}: ${(err as Error).message}\n`,
      );
      return EXIT_FATAL;
    }
    return EXIT_OK;
  },
};

import { rename, writeFile } from 'node:fs/promises';
import { parse } from '../args.js';
import { type Command, EXIT_FATAL, EXIT_OK } from '../command.js';

const USAGE = `usage: netpol-audit snapshot [--kubeconfig FILE] [--context NAME] [--output FILE]

Lists the cluster's namespaces, pods, nodes, services, EndpointSlices, NetworkPolicies and, where their
CRDs are installed, AdminNetworkPolicies, BaselineAdminNetworkPolicies and ClusterNetworkPolicies, and
writes them as one \`List\` YAML: the snapshot format \`check\` and \`explain\` read with --cluster.

  --kubeconfig FILE   kubeconfig to use (default: the in-cluster service account inside a pod, else
                      $KUBECONFIG or ~/.kube/config)
  --context NAME      kubeconfig context (default: its current-context)
  -o, --output FILE   write to FILE (atomically: a temporary file renamed at the end) instead of
                      standard output

Needs get/list on those resources (deploy/rbac.yaml grants exactly that).`;

export const snapshotCommand: Command = {
  path: ['snapshot'],
  summary: 'write a cluster snapshot (List YAML) from the live API server',
  usage: USAGE,
  async run(argv) {
    const { values } = parse(argv, {
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      output: { type: 'string', short: 'o' },
    });
    // Loaded here, not at the top: @kubernetes/client-node costs every other command ~0.7 CPU-s otherwise.
    const { loadKubeConfig, snapshotCluster, snapshotYaml } = await import(
      '../../processor/inventory/kube/index.js'
    );
    let text: string;
    try {
      const kc = loadKubeConfig({
        ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
        ...(values.context ? { context: values.context } : {}),
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

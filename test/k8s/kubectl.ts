// Test helper: kubectl, built by apiserver.sh from the same k8s.io/kubernetes module as the test
// kube-apiserver (no registry here ships it), run against a test API server's admin kubeconfig.
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { type CliResult, runProgram } from '../support/cli.js';

const script = join(dirname(fileURLToPath(import.meta.url)), 'apiserver.sh');

function apiserverSh(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [script, ...args],
      { timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`apiserver.sh ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        else resolve(stdout.trim());
      },
    );
  });
}

/** Builds kubectl once per machine (cached next to kube-apiserver); its path. */
export function buildKubectl(): Promise<string> {
  return apiserverSh(['kubectl'], 60 * 60_000);
}

/** The Prometheus Operator's ServiceMonitor and PrometheusRule CRD files (fetched once). */
export async function monitoringCrdFiles(): Promise<string[]> {
  return (await apiserverSh(['monitoring-crds'], 10 * 60_000)).split('\n').filter((f) => f.endsWith('.yaml'));
}

export type KubectlResult = CliResult;

export type Kubectl = (args: string[], input?: string) => Promise<KubectlResult>;

/** kubectl with `--kubeconfig` set (no $KUBECONFIG, no ~/.kube of the machine). */
export function kubectlFor(bin: string, kubeconfig: string): Kubectl {
  return (args, input) =>
    runProgram(bin, ['--kubeconfig', kubeconfig, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent' },
      input,
    });
}

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
} & Record<string, unknown>;

export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => (Array.isArray(d) ? undefined : (d.toJS() as K8sObject | null)))
    .filter((o): o is K8sObject => !!o);
}

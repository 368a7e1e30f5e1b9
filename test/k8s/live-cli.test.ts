// `netpol-audit check --kubeconfig`: the CLI follows a real kube-apiserver instead of a snapshot.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flowAt } from '../../processor/judge/fixtures.js';
import type { FlowRecord } from '../../schema/flow-record.js';
import { runCli } from '../support/cli.js';
import { type RunningApiServer, startApiServer } from './apiserver.js';
import { ClusterWriter } from './objects.js';

let srv: RunningApiServer;
let w: ClusterWriter;

const flow = flowAt;

async function check(flows: FlowRecord[]) {
  const r = await runCli(['check', '--kubeconfig', srv.kubeconfigPath], {
    input: `${flows.map((f) => JSON.stringify(f)).join('\n')}\n`,
  });
  expect(r.stderr).toContain('flows judged');
  return {
    code: r.code,
    records: r.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            src: { pod?: string; name?: string };
            dst: { pod?: string; name?: string };
            verdict: { allowed: boolean; ingress: { isolatedBy: string[] } };
          },
      ),
  };
}

describe('check --kubeconfig against a real kube-apiserver', () => {
  beforeAll(async () => {
    srv = await startApiServer();
    w = new ClusterWriter(srv);
    await w.namespace('shop', { team: 'shop' });
    await w.namespace('clients', { team: 'clients' });
    await w.node('node-1', '172.18.0.2', '10.244.1.0/24');
    await w.runningPod('shop', 'web-1', { app: 'web' }, '10.244.1.5');
    await w.runningPod('shop', 'client', { role: 'client' }, '10.244.1.7');
    await w.runningPod('clients', 'outsider', { role: 'client' }, '10.244.1.8');
    // A bare podSelector peer selects pods of the policy's own namespace only.
    await w.networkPolicy('shop', 'web-from-clients', { app: 'web' }, { role: 'client' });
  }, 3_600_000);

  afterAll(async () => {
    await srv?.stop();
  });

  it('judges flows against the live cluster, and follows a label change', async () => {
    const before = await check([
      flow(Date.now(), '10.244.1.7', '10.244.1.5', 8080),
      flow(Date.now(), '10.244.1.7', '10.244.1.5', 9090),
      flow(Date.now(), '10.244.1.8', '10.244.1.5', 8080),
    ]);
    expect(before.code).toBe(0);
    expect(before.records.map((r) => r.verdict.allowed)).toEqual([true, false, false]);
    expect(before.records[0]!.src.pod).toBe('shop/client');
    expect(before.records[2]!.src.pod).toBe('clients/outsider');
    expect(before.records[0]!.dst.name).toBe('10-244-1-5.shop.pod.cluster.local');
    expect(before.records[1]!.verdict.ingress.isolatedBy).toEqual(['shop/web-from-clients']);

    await w.labelPod('shop', 'client', { role: 'visitor' });
    const after = await check([flow(Date.now(), '10.244.1.7', '10.244.1.5', 8080)]);
    expect(after.records.map((r) => r.verdict.allowed)).toEqual([false]);
  });

  it('names an unknown context as a usage error', async () => {
    const r = await runCli(['check', '--kubeconfig', srv.kubeconfigPath, '--context', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('kubeconfig has no context "nope"');
  });
});

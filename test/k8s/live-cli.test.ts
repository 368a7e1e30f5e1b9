// `netpol-audit check --kubeconfig`: the CLI follows a real kube-apiserver instead of a snapshot.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flowAt } from '../../processor/judge/fixtures.js';
import type { FlowRecord } from '../../schema/flow-record.js';
import { ROOT, runCli } from '../support/cli.js';
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

beforeAll(async () => {
  srv = await startApiServer();
  w = new ClusterWriter(srv);
}, 3_600_000);

afterAll(async () => {
  await srv?.stop();
});

describe('check --kubeconfig against a real kube-apiserver', () => {
  beforeAll(async () => {
    await w.namespace('shop', { team: 'shop' });
    await w.namespace('clients', { team: 'clients' });
    await w.node('node-1', '172.18.0.2', '10.244.1.0/24');
    await w.runningPod('shop', 'web-1', { app: 'web' }, '10.244.1.5');
    await w.runningPod('shop', 'client', { role: 'client' }, '10.244.1.7');
    await w.runningPod('clients', 'outsider', { role: 'client' }, '10.244.1.8');
    // A bare podSelector peer selects pods of the policy's own namespace only.
    await w.networkPolicy('shop', 'web-from-clients', { app: 'web' }, { role: 'client' });
  }, 3_600_000);

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

describe('whatif --kubeconfig: the policies in force come from a real kube-apiserver', () => {
  let dir: string;
  let db: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'npa-whatif-live-'));
    db = join(dir, 'shop.db');
    // The store: the shop example audited against its snapshot (examples/shop/README.md).
    const a = await runCli([
      'audit',
      join(ROOT, 'examples/shop/capture.pcap'),
      '--cluster',
      join(ROOT, 'examples/shop/cluster.yaml'),
      '--db',
      db,
    ]);
    expect(a.code).toBe(0);
    // The cluster now: shop has only a default deny for ingress.
    for (const ns of ['shop', 'dev', 'monitoring', 'kube-system'])
      await w.namespace(ns).catch(() => undefined);
    await w.create('/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'default-deny-ingress', namespace: 'shop' },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
  }, 3_600_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('judges the recorded week against them, counts the drift, and deletes one of them by name', async () => {
    const r = await runCli(['whatif', '--db', db, '--kubeconfig', srv.kubeconfigPath, '--format', 'json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    // Recorded allowed into shop (frontend -> cart x2, cart -> payments, prometheus -> cart): now denied.
    expect(out.drift).toEqual({ flows: 4, edges: 3 });
    const del = await runCli([
      'whatif',
      '--db',
      db,
      '--kubeconfig',
      srv.kubeconfigPath,
      '--delete',
      'NetworkPolicy/shop/default-deny-ingress',
      '--format',
      'json',
    ]);
    expect(del.code).toBe(0);
    const d = JSON.parse(del.stdout);
    expect(d.deleted).toEqual(['NetworkPolicy/shop/default-deny-ingress']);
    // Every flow into shop becomes allowed: the four above and the four denied ones.
    expect(d.becomeAllowed.reduce((n: number, c: { flows: number }) => n + c.flows, 0)).toBe(8);
    expect(d.becomeDenied).toEqual([]);
  });
});

/**
 * Metrics (issue #12), against real parts: a real Kafka broker carries the shop capture's flows, a
 * running `process --metrics-listen` judges them, and a real Prometheus (built from its Go module)
 * scrapes it: PromQL through Prometheus's HTTP API returns the counts the audit expects, and
 * `promtool check metrics` accepts the endpoint's output and `promtool check rules` the shipped rules.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Prometheus, promBinary } from '../alerting/prometheus.js';
import { type RunningBroker, startBroker } from '../kafka/broker.js';
import { ROOT, runCli } from '../support/cli.js';
import { freePort } from '../support/net.js';
import { killChildren, processArgs, startCli, waitUntil } from './support.js';

const SHOP_CAPTURE = join(ROOT, 'examples/shop/capture.pcap');
let broker: RunningBroker;
let brokers: string;
let prom: Prometheus | undefined;
const dir = mkdtempSync(join(tmpdir(), 'netpol-metrics-'));

beforeAll(async () => {
  promBinary('prometheus');
  broker = await startBroker();
  brokers = broker.brokers.join(',');
}, 900_000);

afterAll(async () => {
  killChildren();
  await prom?.stop();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('Prometheus metrics of the pipeline', () => {
  it('a real Prometheus scrapes process --metrics-listen: PromQL gives the judged flows by classification', async () => {
    const c = await runCli([
      'collect',
      'pcap',
      SHOP_CAPTURE,
      '--kafka',
      brokers,
      '--topic-prefix',
      'm.',
      '--spool',
      join(dir, 'spool'),
    ]);
    expect(c.code).toBe(0);
    const port = await freePort();
    const p = startCli(
      processArgs(brokers, 'm.', join(dir, 'm.db'), ['--metrics-listen', `127.0.0.1:${port}`]),
    );
    await waitUntil(
      () => p.stderr(),
      () => p.stderr().includes('metrics at'),
    );
    prom = new Prometheus(promBinary('prometheus'), await freePort(), `127.0.0.1:${port}`);
    await prom.start();
    const q = (promql: string) => prom!.query(promql);
    await waitUntil(
      () =>
        `23 flows judged in Prometheus; prometheus log: ${prom!.log.slice(-500)}; process: ${p.stderr().slice(-500)}`,
      async () => (await q('sum(netpol_audit_flows_judged_total)')) === 23,
      60_000,
    );
    expect(await q('netpol_audit_flows_judged_total{classification="denied-but-observed"}')).toBe(2);
    expect(await q('netpol_audit_flows_judged_total{classification="denied-attempt"}')).toBe(2);
    expect(await q('netpol_audit_flows_judged_total{classification="allowed"}')).toBe(19);
    expect(await q('netpol_audit_messages_consumed_total')).toBe(23);
    expect(await q('sum(netpol_audit_dead_letters_total) or vector(0)')).toBe(0);
    expect(await q('netpol_audit_process_resident_memory_bytes')).toBeGreaterThan(0);
    // Where a batch's time went: judging, publishing its two violations, committing it.
    await waitUntil(
      () => `a commit in Prometheus; process: ${p.stderr().slice(-500)}`,
      async () => ((await q('netpol_audit_processor_stage_seconds_total{stage="commit"}')) ?? 0) > 0,
      60_000,
    );
    expect(await q('netpol_audit_processor_batches_total')).toBeGreaterThanOrEqual(1);
    for (const stage of ['judge', 'publish', 'commit'])
      expect(await q(`netpol_audit_processor_stage_seconds_total{stage="${stage}"}`)).toBeGreaterThan(0);
    expect(await q('count(netpol_audit_processor_stage_seconds_total)')).toBe(3);

    // promtool check metrics: the exposition follows Prometheus's conventions.
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const check = spawnSync(promBinary('promtool'), ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
    // No address or pod name is a label value.
    expect(text).not.toMatch(/10\.244\.|debug-shell|coredns/);
    p.proc.kill('SIGTERM');
    const done = await p.done;
    expect(done.code).toBe(0);
  });

  it('promtool accepts the shipped alerting rules (deploy/prometheus/rules.yaml)', () => {
    const out = execFileSync(
      promBinary('promtool'),
      ['check', 'rules', join(ROOT, 'deploy/prometheus/rules.yaml')],
      {
        encoding: 'utf8',
      },
    );
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('the PrometheusRule and the Grafana dashboard use the rules and metrics the code has', async () => {
    const { parse } = await import('yaml');
    const { readFileSync } = await import('node:fs');
    const rules = parse(readFileSync(join(ROOT, 'deploy/prometheus/rules.yaml'), 'utf8'));
    const wrapped = parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheusrule.yaml'), 'utf8'));
    expect(wrapped.spec.groups).toEqual(rules.groups);
    const dashboard = readFileSync(join(ROOT, 'deploy/grafana/netpol-audit.json'), 'utf8');
    const used = new Set(
      [
        ...dashboard.matchAll(/netpol_audit_[a-z_]+/g),
        ...JSON.stringify(rules).matchAll(/netpol_audit_[a-z_]+/g),
      ].map((m) => m[0]),
    );
    const source = readFileSync(join(ROOT, 'metrics/index.ts'), 'utf8');
    const defaults = ['netpol_audit_process_resident_memory_bytes'];
    expect([...used].filter((m) => !source.includes(`'${m}'`) && !defaults.includes(m))).toEqual([]);
  });
});

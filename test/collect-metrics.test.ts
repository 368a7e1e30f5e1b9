/**
 * `--metrics-listen` on a collect command (issue #12): a real `collect pcap -` reading a capture on
 * standard input serves its counts while it runs, a live `collect live` tcpdump's own counts (the
 * kernel's drops among them) and a live `collect conntrack` the events the kernel lost; `promtool
 * check metrics` (built from the Prometheus module) accepts the exposition, and `promtool test rules`
 * checks the shipped rules that raise those losses.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { promBinary } from './alerting/prometheus.js';
import { ROOT } from './support/cli.js';

const CLI = resolve(ROOT, 'dist/cli/index.js');
const CAPTURE = readFileSync(join(ROOT, 'examples/shop/capture.pcap'));

function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('collect pcap --metrics-listen', () => {
  it('serves the packets read and skipped while it runs; promtool accepts the exposition', async () => {
    const child = spawn(process.execPath, [CLI, 'collect', 'pcap', '-', '--metrics-listen', '127.0.0.1:0'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.resume();
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.stdin!.write(CAPTURE);
    for (let i = 0; i < 300 && !/metrics at (\S+)/.test(stderr); i++)
      await new Promise((r) => setTimeout(r, 100));
    const url = /metrics at (\S+)/.exec(stderr)![1]!;
    let text = '';
    for (let i = 0; i < 300; i++) {
      text = await (await fetch(url)).text();
      if (metric(text, 'netpol_audit_packets_total') === 124) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(metric(text, 'netpol_audit_packets_total')).toBe(124);
    expect(metric(text, 'netpol_audit_packets_in_flows_total')).toBeGreaterThan(100);
    expect(text).toMatch(/^netpol_audit_packets_skipped_total\{reason="malformed"\} 0$/m);
    const check = spawnSync(promBinary('promtool'), ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });
});

/** Starts the CLI with `args`; resolves the metrics URL it prints. */
async function serving(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  for (let i = 0; i < 300 && !/metrics at (\S+)/.test(stderr); i++)
    await new Promise((r) => setTimeout(r, 100));
  const url = /metrics at (\S+)/.exec(stderr)?.[1];
  if (!url) throw new Error(`no metrics URL; stderr: ${stderr}`);
  return { child, url, exited, stderr: () => stderr };
}

describe('collect live --metrics-listen', () => {
  it('serves tcpdump’s own counts while it runs (asked every 10 s), the kernel’s drops among them', async () => {
    // Loopback traffic of this test's own, which the capture's filter keeps to.
    const server = createServer((_, res) => res.end('ok')).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const { child, url, exited } = await serving([
      'collect',
      'live',
      '--iface',
      'lo',
      '--output',
      '/dev/null',
      '--metrics-listen',
      '127.0.0.1:0',
      '--',
      'tcp',
      'port',
      String(port),
    ]);
    try {
      let text = '';
      for (let i = 0; i < 300; i++) {
        await (await fetch(`http://127.0.0.1:${port}/`)).text();
        text = await (await fetch(url)).text();
        if ((metric(text, 'netpol_audit_tcpdump_packets_received_total') ?? 0) > 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(metric(text, 'netpol_audit_tcpdump_packets_received_total')).toBeGreaterThan(0);
      expect(metric(text, 'netpol_audit_tcpdump_packets_dropped_by_kernel_total')).toBe(0);
      const check = spawnSync(promBinary('promtool'), ['check', 'metrics'], {
        input: text,
        encoding: 'utf8',
      });
      expect(check.stdout + check.stderr).toBe('');
    } finally {
      child.kill('SIGINT');
      await exited;
      server.close();
    }
  }, 60_000);
});

describe('collect conntrack --metrics-listen', () => {
  it('counts the events the kernel lost (ENOBUFS), the catch-up dumps and the flows they found gone', async () => {
    // A stand-in conntrack on PATH (the real one under load is test/netns's): -E prints a NEW, then
    // the warning conntrack prints when the kernel dropped events; the first -L (at the start) lists
    // nothing, the catch-up listing not that flow either, so it ended unseen.
    const dir = mkdtempSync(join(tmpdir(), 'ct-metrics-'));
    const calls = join(dir, 'calls');
    writeFileSync(
      join(dir, 'conntrack'),
      `#!/bin/sh
case "$1" in
  -E)
    printf '[%s]\t    [NEW] tcp      6 120 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 id=11\n' "$(date +%s.%06N)"
    sleep 0.3
    echo 'WARNING: We have hit ENOBUFS! We are losing events.' >&2
    exec sleep 60;;
  -L) echo x >> '${calls}';;
esac
`,
    );
    chmodSync(join(dir, 'conntrack'), 0o755);
    const { child, url, exited, stderr } = await serving(
      ['collect', 'conntrack', '--events', 'conntrack', '--metrics-listen', '127.0.0.1:0'],
      { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    );
    let text = '';
    for (let i = 0; i < 300; i++) {
      text = await (await fetch(url)).text();
      if (metric(text, 'netpol_audit_conntrack_flows_gone_total') === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(metric(text, 'netpol_audit_conntrack_event_losses_total'), stderr()).toBe(1);
    expect(metric(text, 'netpol_audit_conntrack_resyncs_total')).toBe(1);
    expect(metric(text, 'netpol_audit_conntrack_flows_gone_total')).toBe(1);
    expect(metric(text, 'netpol_audit_flow_records_total')).toBe(1);
    const check = spawnSync(promBinary('promtool'), ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    child.kill('SIGINT');
    await exited;
    expect(stderr()).toMatch(/conntrack lost events 1 time\(s\) \(ENOBUFS\)/);
  });

  it.each([
    ['NetpolAuditConntrackEventsLost', 'netpol_audit_conntrack_event_losses_total'],
    ['NetpolAuditCaptureDroppedPackets', 'netpol_audit_tcpdump_packets_dropped_by_kernel_total'],
  ])(
    'the shipped rule %s fires on a loss of %s in the last 15 minutes, for that collector only (promtool test rules)',
    async (alertname, series) => {
      const { parse, stringify } = await import('yaml');
      const rulesFile = join(ROOT, 'deploy/prometheus/rules.yaml');
      const rules = parse(readFileSync(rulesFile, 'utf8')) as {
        groups: { rules: { alert?: string; labels?: object; annotations?: object }[] }[];
      };
      const rule = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === alertname);
      expect(rule).toBeDefined();
      const lost = { ...rule!.labels, instance: 'node-1:9464' };
      const test = {
        rule_files: [rulesFile],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            // node-1 loses evidence once, at minute 3; node-2 never does.
            input_series: [
              { series: `${series}{instance="node-1:9464"}`, values: '0 0 0 1x40' },
              { series: `${series}{instance="node-2:9464"}`, values: '0x43' },
            ],
            alert_rule_test: [
              { eval_time: '2m', alertname, exp_alerts: [] },
              {
                eval_time: '5m',
                alertname,
                exp_alerts: [{ exp_labels: lost, exp_annotations: rule!.annotations }],
              },
              { eval_time: '30m', alertname, exp_alerts: [] },
            ],
          },
        ],
      };
      const dir = mkdtempSync(join(tmpdir(), 'rules-'));
      writeFileSync(join(dir, 'test.yaml'), stringify(test));
      const r = spawnSync(promBinary('promtool'), ['test', 'rules', join(dir, 'test.yaml')], {
        encoding: 'utf8',
      });
      expect(r.stdout + r.stderr).toMatch(/SUCCESS/);
      expect(r.status).toBe(0);
    },
  );
});

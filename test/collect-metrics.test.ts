/**
 * `--metrics-listen` on a collect command (issue #12): a real `collect pcap -` reading a capture on
 * standard input serves its counts while it runs; `promtool check metrics` (built from the
 * Prometheus module) accepts the exposition.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

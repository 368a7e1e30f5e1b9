import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../support/cli.js';

/** A real Prometheus (and promtool), built from the Go module by test/alerting/tools.sh, on loopback. */

export function promBinary(name: 'prometheus' | 'promtool'): string {
  const sh = join(ROOT, 'test/alerting/tools.sh');
  execFileSync('bash', [sh, 'fetch'], { stdio: 'inherit' });
  return execFileSync('bash', [sh, 'path', name], { encoding: 'utf8' }).trim();
}

export class Prometheus {
  private child: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'netpol-prom-'));
  log = '';

  constructor(
    private readonly bin: string,
    readonly port: number,
    target: string,
  ) {
    writeFileSync(
      join(this.dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: netpol-audit\n    static_configs:\n      - targets: ['${target}']\n`,
    );
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn(
      this.bin,
      [
        `--config.file=${join(this.dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(this.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    for (let i = 0; i < 300; i++) {
      try {
        if ((await fetch(`${this.url}/-/ready`)).ok) return;
      } catch {}
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`prometheus did not become ready:\n${this.log.slice(-3000)}`);
  }

  /** The value of an instant PromQL query (the first series), or undefined while it has none. */
  async query(promql: string): Promise<number | undefined> {
    const r = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await r.json()) as { data?: { result?: { value: [number, string] }[] } };
    const v = body.data?.result?.[0]?.value?.[1];
    return v === undefined ? undefined : Number(v);
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

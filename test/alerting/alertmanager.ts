import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../support/cli.js';

/**
 * A real Alertmanager on loopback for the alerting tests: built from its Go module by
 * test/alerting/tools.sh (cached), one process per instance, clustering off, API v2 only.
 */

export function alertmanagerBinary(): string {
  const sh = join(ROOT, 'test/alerting/tools.sh');
  execFileSync('bash', [sh, 'fetch'], { stdio: 'inherit' });
  return execFileSync('bash', [sh, 'path', 'alertmanager'], { encoding: 'utf8' }).trim();
}

export class Alertmanager {
  private child: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'netpol-am-'));
  log = '';

  constructor(
    private readonly bin: string,
    readonly port: number,
  ) {
    writeFileSync(join(this.dir, 'am.yml'), "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n");
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn(
      this.bin,
      [
        `--config.file=${join(this.dir, 'am.yml')}`,
        `--storage.path=${join(this.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        '--cluster.listen-address=',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    for (let i = 0; i < 200; i++) {
      try {
        const r = await fetch(`${this.url}/-/ready`);
        if (r.ok) return;
      } catch {}
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`alertmanager did not become ready:\n${this.log}`);
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  }

  async alerts(): Promise<
    {
      labels: Record<string, string>;
      annotations: Record<string, string>;
      status: { state: string; silencedBy: string[] };
      startsAt: string;
      endsAt: string;
    }[]
  > {
    const r = await fetch(`${this.url}/api/v2/alerts`);
    return (await r.json()) as never;
  }

  async silence(matchers: Record<string, string>): Promise<string> {
    const now = Date.now();
    const r = await fetch(`${this.url}/api/v2/silences`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        matchers: Object.entries(matchers).map(([name, value]) => ({
          name,
          value,
          isRegex: false,
          isEqual: true,
        })),
        startsAt: new Date(now - 60_000).toISOString(),
        endsAt: new Date(now + 3_600_000).toISOString(),
        createdBy: 'netpol-audit tests',
        comment: 'test silence',
      }),
    });
    if (!r.ok) throw new Error(`silence: HTTP ${r.status} ${await r.text()}`);
    return ((await r.json()) as { silenceID: string }).silenceID;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

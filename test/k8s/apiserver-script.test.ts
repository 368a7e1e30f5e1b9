// apiserver.sh's remembered ports: the watchdog runs `status` every second beside `restart`, so
// nothing but the first `start` may write the ports file (a restart that read a half-written file
// chose new ports and started the API server against an etcd port nobody listened on).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli.js';

const script = join(ROOT, 'test/k8s/apiserver.sh');
const dir = mkdtempSync(join(tmpdir(), 'netpol-audit-kube-script-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], dataDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [script, ...args],
      { env: { ...process.env, KUBE_DATA_DIR: dataDir } },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('apiserver.sh: the remembered ports', () => {
  it('status reads the ports file and never rewrites it, even many times at once', async () => {
    const data = join(dir, 'status');
    const ports = join(data, 'ports');
    await run(['status'], data); // creates nothing when nothing was started
    expect(() => statSync(ports)).toThrow();
    mkdirSync(data, { recursive: true });
    const text = 'KUBE_APISERVER_PORT=41001\nETCD_PORT=41002\nETCD_PEER_PORT=41003\n';
    writeFileSync(ports, text);
    const before = statSync(ports);
    const results = await Promise.all(Array.from({ length: 20 }, () => run(['status'], data)));
    for (const r of results) {
      expect(r.code).toBe(3);
      expect(r.stdout).toContain('stopped');
    }
    const after = statSync(ports);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(readFileSync(ports, 'utf8')).toBe(text);
  });

  it('a restart without remembered ports refuses instead of choosing new ones', async () => {
    const data = join(dir, 'restart');
    const r = await run(['restart'], data);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no ports remembered in .*ports \(use start\)/);
    expect(() => statSync(join(data, 'ports'))).toThrow();
  });
});

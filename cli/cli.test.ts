import { describe, expect, it } from 'vitest';
import { SHOP_CLUSTER } from '../test/pipeline/support.js';
import { runCli } from '../test/support/cli.js';

describe('netpol-audit CLI', () => {
  it('lists its commands and exits 2 without one', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('usage: netpol-audit <command>');
  });
  it('rejects an unknown command with a usage error', async () => {
    const r = await runCli(['no-such-command']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'no-such-command'");
  });

  it("process --wire is a judge's verdict format: 1 or 2, and for --role judge only", async () => {
    const cluster = ['--cluster', SHOP_CLUSTER, '--brokers', '127.0.0.1:1'];
    const bad = await runCli(['process', '--role', 'judge', '--wire', '3', ...cluster]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--wire must be 1 or 2');
    const notJudge = await runCli(['process', '--wire', '2', ...cluster]);
    expect(notJudge.code).toBe(2);
    expect(notJudge.stderr).toContain('--role judge only');
  });
});

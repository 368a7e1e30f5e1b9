import { describe, expect, it } from 'vitest';
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
});

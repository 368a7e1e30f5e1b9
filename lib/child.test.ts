import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { exited, spawned } from './child.js';
import { AuditError } from './errors.js';

describe('spawned / exited', () => {
  it('a program that cannot be started is an AuditError with the given code, naming the program', async () => {
    const child = spawn('/nonexistent/npa-tool', ['-x'], { stdio: 'ignore' });
    const err = await spawned(child, 'CONNTRACK_TOOL_FAILED', '/nonexistent/npa-tool -x').catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AuditError);
    expect((err as AuditError).code).toBe('CONNTRACK_TOOL_FAILED');
    expect((err as Error).message).toMatch(/cannot start \/nonexistent\/npa-tool -x: .*ENOENT/);
  });

  it('reports the exit status, also when asked after the child is gone', async () => {
    const child = spawn(process.execPath, ['-e', 'process.exit(7)'], { stdio: 'ignore' });
    await spawned(child, 'CONNTRACK_TOOL_FAILED', 'node');
    expect(await exited(child)).toEqual({ code: 7, signal: null });
    expect(await exited(child)).toEqual({ code: 7, signal: null });
  });
});

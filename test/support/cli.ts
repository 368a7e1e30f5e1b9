import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/**
 * Third-party captures with tshark ground truth (test/corpus/pcap/README.md), kept in the repository
 * so a fresh clone tests against them; NETPOL_AUDIT_CORPUS points elsewhere.
 */
export const CORPUS = process.env.NETPOL_AUDIT_CORPUS ?? resolve(ROOT, 'test/corpus/pcap');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program to its end without blocking this worker (a long spawnSync starves vitest's RPC:
 * "Timeout calling onTaskUpdate"), collecting what it prints. `timeoutMs` sends SIGTERM.
 */
export function runProgram(
  file: string,
  args: string[],
  opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer =
      opts.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs the real `netpol-audit` CLI (from source, through tsx) as a child process. */
export function runCli(
  args: string[],
  opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return runProgram(process.execPath, ['--import', 'tsx', resolve(ROOT, 'cli/index.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, NETPOL_AUDIT_LOG_PRETTY: '0', ...opts.env },
    input: opts.input,
  });
}

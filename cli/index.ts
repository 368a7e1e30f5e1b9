#!/usr/bin/env node
import { AuditError } from '../lib/errors.js';
import { packageVersion } from '../lib/version.js';
import { type Command, EXIT_FATAL, EXIT_USAGE, UsageError } from './command.js';
import { commands } from './commands/index.js';

function help(): string {
  const lines = ['usage: netpol-audit <command> [options]', '', 'commands:'];
  for (const c of commands) lines.push(`  ${c.path.join(' ').padEnd(20)} ${c.summary}`);
  lines.push('', 'netpol-audit <command> --help shows the options of a command.');
  return lines.join('\n');
}

function find(argv: string[]): { command: Command; rest: string[] } | undefined {
  let best: Command | undefined;
  for (const c of commands) {
    if (c.path.every((w, i) => argv[i] === w) && (!best || c.path.length > best.path.length)) best = c;
  }
  return best ? { command: best, rest: argv.slice(best.path.length) } : undefined;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(`${help()}\n`);
    return argv.length === 0 ? EXIT_USAGE : 0;
  }
  if (argv[0] === '--version') {
    process.stdout.write(`netpol-audit ${packageVersion()}\n`);
    return 0;
  }
  const found = find(argv);
  if (!found) {
    process.stderr.write(`netpol-audit: unknown command '${argv.join(' ')}'\n\n${help()}\n`);
    return EXIT_USAGE;
  }
  if (found.rest.includes('--help') || found.rest.includes('-h')) {
    process.stdout.write(`${found.command.usage}\n`);
    return 0;
  }
  try {
    return await found.command.run(found.rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(
        `netpol-audit ${found.command.path.join(' ')}: ${err.message}\n\n${found.command.usage}\n`,
      );
      return EXIT_USAGE;
    }
    if (err instanceof AuditError) {
      process.stderr.write(`netpol-audit: ${err.code}: ${err.message}\n`);
      return EXIT_FATAL;
    }
    throw err;
  }
}

/**
 * Standard output that fails: a reader that went away (`| head`) ends the command quietly, as
 * Unix tools do; any other failure (a full disk, /dev/full) is fatal with a stable code.
 */
function onOutputError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  process.stderr.write(`netpol-audit: OUTPUT_WRITE_FAILED: standard output: ${err.message}\n`);
  process.exit(EXIT_FATAL);
}
process.stdout.on('error', onOutputError);

/** An unexpected failure: its code and message, never a stack trace (unless NETPOL_AUDIT_DEBUG is set). */
function fatal(err: unknown): void {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EPIPE' && e.syscall === 'write') {
    process.exitCode = process.exitCode ?? 0;
    return;
  }
  if (e?.code === 'ENOSPC' || e?.code === 'EIO' || e?.code === 'EDQUOT') {
    process.stderr.write(`netpol-audit: OUTPUT_WRITE_FAILED: ${e.path ?? 'standard output'}: ${e.message}\n`);
  } else {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`netpol-audit: INTERNAL_ERROR: ${message} (NETPOL_AUDIT_DEBUG=1 shows where)\n`);
  }
  if (process.env.NETPOL_AUDIT_DEBUG && err instanceof Error && err.stack)
    process.stderr.write(`${err.stack}\n`);
  process.exitCode = EXIT_FATAL;
}
process.on('uncaughtException', (err) => {
  fatal(err);
  process.exit(process.exitCode);
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, fatal);

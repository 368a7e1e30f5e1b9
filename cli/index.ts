#!/usr/bin/env node
import { AuditError } from '../lib/errors.js';
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
    process.stdout.write('netpol-audit 0.1.0\n');
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

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `netpol-audit: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = EXIT_FATAL;
  },
);

import type { Command } from '../command.js';

/** Every subcommand, in the order `netpol-audit --help` lists them. Each lives in its own module. */
export const commands: Command[] = [];

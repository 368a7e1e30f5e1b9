import type { Command } from '../command.js';
import { rulesCommand } from './rules.js';
import { violationsCommand } from './violations.js';

/** Every subcommand, in the order `netpol-audit --help` lists them. Each lives in its own module. */
export const commands: Command[] = [violationsCommand, rulesCommand];

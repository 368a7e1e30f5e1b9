/** A subcommand of `netpol-audit`. `run` returns the process exit code. */
export interface Command {
  /** Words after `netpol-audit`, e.g. ['collect', 'pcap']. */
  path: string[];
  summary: string;
  /** Full usage text printed by `--help`. */
  usage: string;
  run(argv: string[]): Promise<number>;
}

/**
 * Exit codes: 0 success, 1 the run finished but found input problems (or, for report
 * --fail-on-violation, a violation), 2 usage error, 3 fatal, 4 no data: the period asked about holds
 * no flow, or rests on unfinished runs, so it cannot be assessed (docs/trust.md).
 */
export const EXIT_OK = 0;
export const EXIT_INPUT_PROBLEMS = 1;
export const EXIT_USAGE = 2;
export const EXIT_FATAL = 3;
export const EXIT_NO_DATA = 4;

export { UsageError } from '../lib/errors.js';

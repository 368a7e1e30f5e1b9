import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from './command.js';

/** node:util parseArgs, with its errors turned into usage errors. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** Runs a value parser, turning what it throws into a usage error. */
export function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** A `--name` value that must be a positive number; undefined when the option is absent. */
export function positiveNumber(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number, got '${v}'`);
  return n;
}

/** A `--name` value that must be a positive integer (a count); undefined when the option is absent. */
export function positiveInteger(name: string, v: string | undefined): number | undefined {
  const n = positiveNumber(name, v);
  if (n !== undefined && !Number.isInteger(n)) throw new UsageError(`--${name} must be an integer`);
  return n;
}

/** A `--name` value that must be a number >= 0; undefined when the option is absent. */
export function nonNegativeNumber(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new UsageError(`--${name} must be a non-negative number, got '${v}'`);
  return n;
}

/** Seconds, as an option gave them, in milliseconds; an absent option stays undefined. */
export function secondsAsMs(value: number | undefined): number | undefined {
  return value === undefined ? undefined : value * 1000;
}

import { ERROR_CODES, type ErrorCode } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';

/**
 * Errors and input problems with stable codes. A code never changes meaning once released;
 * docs/errors.md lists them. `InputIssue` is the non-throwing form: decoders and parsers report
 * what was wrong with a piece of input (and where) and go on with the rest.
 */

export interface InputLocation {
  /** File name, or a label such as `<stdin>` or a Kafka topic/partition. */
  source?: string;
  /** 1-based line number for text input. */
  line?: number;
  /** Byte offset from the start of the input. */
  offset?: number;
  /** 0-based record / packet / block number within the input. */
  record?: number;
  /** Dotted path of the offending field, e.g. `spec.ingress[0].from[1].ipBlock.cidr`. */
  field?: string;
  /** `namespace/name` of the Kubernetes object concerned. */
  object?: string;
}

export interface InputIssue extends InputLocation {
  code: ErrorCode;
  message: string;
  severity: 'error' | 'warning';
}

/** The caller asked for something impossible (a bad option, a missing argument): exit 2, with the usage. */
export class UsageError extends Error {}

export class AuditError extends Error {
  readonly code: ErrorCode;
  readonly location: InputLocation;

  constructor(code: ErrorCode, message: string, location: InputLocation = {}) {
    super(`${formatLocation(location)}${message}`);
    this.name = 'AuditError';
    this.code = code;
    this.location = location;
  }

  /** The command stops (exit 3). */
  get fatal(): boolean {
    return ERROR_CODES[this.code].fatal;
  }

  /** Trying again may succeed (a lock released, a disk freed, a peer back). */
  get retriable(): boolean {
    return ERROR_CODES[this.code].retriable;
  }

  toIssue(severity: InputIssue['severity'] = 'error'): InputIssue {
    return { code: this.code, message: this.message, severity, ...this.location };
  }
}

export function issue(
  code: ErrorCode,
  message: string,
  location: InputLocation = {},
  severity: InputIssue['severity'] = 'error',
): InputIssue {
  return { code, message, severity, ...location };
}

/** `file.pcap: offset 1234, record 7: ` — the prefix used in human-readable messages. */
export function formatLocation(loc: InputLocation): string {
  const parts: string[] = [];
  if (loc.line !== undefined) parts.push(`line ${loc.line}`);
  if (loc.offset !== undefined) parts.push(`offset ${loc.offset}`);
  if (loc.record !== undefined) parts.push(`record ${loc.record}`);
  if (loc.object !== undefined) parts.push(loc.object);
  if (loc.field !== undefined) parts.push(loc.field);
  const where = parts.join(', ');
  if (loc.source !== undefined) return where ? `${loc.source}: ${where}: ` : `${loc.source}: `;
  return where ? `${where}: ` : '';
}

export function formatIssue(i: InputIssue): string {
  return `${i.severity} ${i.code}: ${formatLocation(i)}${i.message}`;
}

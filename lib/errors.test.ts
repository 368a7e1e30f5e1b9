import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from './error-codes.js';
import { AuditError, formatIssue, issue } from './errors.js';

describe('AuditError', () => {
  it('says from the catalogue whether it stops the command and whether trying again may help', () => {
    const locked = new AuditError('STORE_LOCKED', 'busy', { source: 'a.db' });
    expect([locked.fatal, locked.retriable]).toEqual([true, true]);
    const corrupt = new AuditError('STORE_CORRUPT', 'damaged');
    expect([corrupt.fatal, corrupt.retriable]).toEqual([true, false]);
    const syntax = new AuditError('SNAPSHOT_SYNTAX', 'bad');
    expect([syntax.fatal, syntax.retriable]).toEqual([false, false]);
    for (const code of Object.keys(ERROR_CODES) as (keyof typeof ERROR_CODES)[]) {
      const e = new AuditError(code, 'm');
      expect([e.fatal, e.retriable], code).toEqual([ERROR_CODES[code].fatal, ERROR_CODES[code].retriable]);
    }
  });

  it('keeps its code and location, and its message names where', () => {
    const e = new AuditError('STORE_LOCKED', 'busy', { source: 'a.db' });
    expect(e.message).toBe('a.db: busy');
    expect(e.toIssue()).toEqual({
      code: 'STORE_LOCKED',
      message: 'a.db: busy',
      severity: 'error',
      source: 'a.db',
    });
  });

  // The check is the type-check's (npx tsc): were issue() or AuditError to take any string, the two
  // expected-error directives below would be unused, which tsc reports as an error.
  it('takes only catalogue codes', () => {
    // @ts-expect-error: not a code of lib/error-codes.ts
    const bad = issue('NO_SUCH_CODE', 'x');
    // @ts-expect-error: not a code of lib/error-codes.ts
    expect(() => new AuditError('NO_SUCH_CODE', 'x')).not.toThrow();
    expect(formatIssue(bad)).toBe('error NO_SUCH_CODE: x');
  });
});

import type { ChildProcess } from 'node:child_process';
import { AuditError, type ErrorCode } from './errors.js';

/** Resolves once the child has exited and its output streams are closed (at once if it already has). */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
}

/** Resolves once the child has started; rejects with an AuditError `code` when it cannot be (no such program). */
export function spawned(child: ChildProcess, code: ErrorCode, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new AuditError(code, `cannot start ${what}: ${err.message}`)));
  });
}

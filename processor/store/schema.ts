import type Database from 'better-sqlite3';
import { AuditError } from '../../lib/errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../schema/migrations.js';

/**
 * Opening a store file: refusing another application's database, migrating the schema
 * (schema/migrations.ts), and SQLite failures as AuditErrors. Also the time granularities the schema's
 * tables are keyed by.
 */

export const HOUR = 3_600_000;
export const DAY = 86_400_000;
/** Width of flow_identities.bucket (schema/migrations.ts); the dedupe tolerance may not exceed it. */
export const IDENTITY_BUCKET_MS = 5000;

/** Another application's SQLite file: tables but no netpol-audit schema. Never write into it. */
export function refuseForeign(db: Database.Database, path: string): void {
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    .all() as { name: string }[];
  if (tables.length > 0 && !tables.some((t) => t.name === 'schema_migrations'))
    throw new AuditError(
      'STORE_FOREIGN_DATABASE',
      `an SQLite database of another application (tables ${tables
        .slice(0, 3)
        .map((t) => JSON.stringify(t.name))
        .join(', ')}${tables.length > 3 ? ', ...' : ''}), not a netpol-audit store`,
      { source: path },
    );
}

/**
 * A store failure as an AuditError with a stable code and the path: what SQLite says, without a
 * stack trace. Errors that already are AuditErrors pass through.
 */
export function storeError(err: unknown, path: string, doing: string): Error {
  if (err instanceof AuditError) return err;
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const at = { source: path };
  if (code === 'SQLITE_NOTADB') return new AuditError('STORE_NOT_A_DATABASE', 'not an SQLite database', at);
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || (err as { errno?: number }).errno === 13)
    return new AuditError('STORE_FULL', `cannot ${doing} the store: the disk is full (${message})`, at);
  if (typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')))
    return new AuditError('STORE_LOCKED', `the store is locked by another writer (${message})`, at);
  if (typeof code === 'string' && code.startsWith('SQLITE_READONLY'))
    return new AuditError(
      'STORE_READONLY',
      `cannot ${doing} the store: no permission to write it (${message})`,
      at,
    );
  if (typeof code === 'string' && code.startsWith('SQLITE_CORRUPT'))
    return new AuditError('STORE_CORRUPT', `the store is damaged (${message})`, at);
  return new AuditError('STORE_FAILED', `cannot ${doing} the store: ${message}`, at);
}

export function migrate(db: Database.Database, path: string, readonly: boolean): void {
  if (!readonly)
    db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_wall REAL NOT NULL)',
    );
  const have = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get()
    ? ((db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0)
    : 0;
  if (have > SCHEMA_VERSION) {
    throw new AuditError(
      'STORE_SCHEMA_TOO_NEW',
      `store schema version ${have} is newer than this netpol-audit supports (${SCHEMA_VERSION})`,
      { source: path },
    );
  }
  if (readonly) {
    if (have < SCHEMA_VERSION)
      throw new AuditError(
        'STORE_SCHEMA_OLD',
        `store schema version ${have}, expected ${SCHEMA_VERSION}: open it read-write once to migrate`,
        { source: path },
      );
    return;
  }
  for (const m of MIGRATIONS) {
    if (m.version <= have) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_wall) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        Date.now(),
      );
    })();
  }
}

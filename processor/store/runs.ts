import type Database from 'better-sqlite3';
import type { InputIssue } from '../../lib/errors.js';
import type { RunRow } from './types.js';

/** The runs table: embedded and processor runs, their stats, and which interrupted runs were resumed. */

export function insertRun(db: Database.Database, mode: string, inputs: unknown[], wallMs: number): number {
  const id = Number(
    db
      .prepare('INSERT INTO runs (mode, started_wall, inputs) VALUES (?, ?, ?)')
      .run(mode, wallMs, JSON.stringify(inputs)).lastInsertRowid,
  );
  return id;
}

export function finishRun(db: Database.Database, id: number, stats: unknown, wallMs: number): void {
  db.prepare('UPDATE runs SET finished_wall = ?, stats = ? WHERE id = ?').run(
    wallMs,
    JSON.stringify(stats),
    id,
  );
}

export function leaveUnfinished(db: Database.Database, id: number, stats: unknown): void {
  db.prepare('UPDATE runs SET stats = ? WHERE id = ?').run(JSON.stringify(stats), id);
}

export function markResumed(db: Database.Database, id: number): number[] {
  const run = db.prepare('SELECT inputs, finished_wall FROM runs WHERE id = ?').get(id) as
    | { inputs: string; finished_wall: number | null }
    | undefined;
  if (!run || run.finished_wall === null) return [];
  if ((JSON.parse(run.inputs) as unknown[]).includes('-')) return [];
  const rows = db
    .prepare(
      'UPDATE runs SET resumed_by = ? WHERE id < ? AND finished_wall IS NULL AND resumed_by IS NULL AND inputs = ? RETURNING id',
    )
    .all(id, id, run.inputs) as { id: number }[];
  return rows.map((r) => r.id);
}

export function runsFor(db: Database.Database, since: number, until: number): RunRow[] {
  const rows = db
    .prepare(
      "SELECT id, mode, started_wall, finished_wall, inputs, stats, resumed_by FROM runs WHERE mode = 'embedded' ORDER BY id",
    )
    .all() as {
    id: number;
    mode: string;
    started_wall: number;
    finished_wall: number | null;
    inputs: string;
    stats: string;
    resumed_by: number | null;
  }[];
  // An interrupted run that was later re-run to the end on the same inputs is superseded by it
  // (how the re-run counts the data once is docs/store.md's business, not this check's).
  const lastFinished = new Map<string, number>();
  for (const r of rows) if (r.finished_wall !== null) lastFinished.set(r.inputs, r.id);
  const out: RunRow[] = [];
  for (const r of rows) {
    if (r.finished_wall === null && (r.resumed_by !== null || (lastFinished.get(r.inputs) ?? -1) > r.id))
      continue;
    let stats: { dataFirst?: number; dataLast?: number; errors?: number; issueList?: InputIssue[] } = {};
    try {
      stats = JSON.parse(r.stats) as typeof stats;
    } catch {
      // A stats column we cannot read leaves the run without its span: treated like an unfinished one.
    }
    const finished = r.finished_wall !== null;
    const spanKnown = typeof stats.dataFirst === 'number' && typeof stats.dataLast === 'number';
    if (finished && spanKnown && (stats.dataLast! < since || stats.dataFirst! >= until)) continue;
    if (finished && !spanKnown) continue; // stored no flow (or a run of an older version)
    out.push({
      id: r.id,
      startedWall: r.started_wall,
      finished,
      errors: stats.errors ?? 0,
      issues: Array.isArray(stats.issueList) ? stats.issueList : [],
    });
  }
  return out;
}

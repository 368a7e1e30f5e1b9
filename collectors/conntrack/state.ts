import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ResumableFlow } from './index.js';

/**
 * The live conntrack collector's state file (`collect conntrack --state FILE`): the flows it had
 * reported in part and that were still open, so a restarted collector (a killed container, a
 * rolling update) goes on with them instead of reporting them again as new flows. Written whole
 * and renamed into place, so a kill leaves the previous state or the new one, never half of one.
 */
export const CONNTRACK_STATE_VERSION = 1;

interface StateFile {
  v: number;
  savedAt: number;
  flows: ResumableFlow[];
}

const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;

function isResumable(x: unknown): x is ResumableFlow {
  const r = x as ResumableFlow;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.key === 'string' &&
    num(r.start) &&
    num(r.sliceStart) &&
    Number.isInteger(r.seq) &&
    r.seq > 0 &&
    typeof r.continued === 'boolean' &&
    typeof r.emitted === 'object' &&
    r.emitted !== null &&
    num(r.emitted.pf) &&
    num(r.emitted.pr) &&
    num(r.emitted.bf) &&
    num(r.emitted.br)
  );
}

/**
 * The flows of a state file: none when it does not exist yet (a first start), or, with `problem`,
 * when it cannot be read or is not a state file (the caller warns and starts afresh).
 */
export function readConntrackState(path: string): { flows: ResumableFlow[]; problem?: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { flows: [] };
    return { flows: [], problem: `cannot read: ${(err as Error).message}` };
  }
  let state: StateFile;
  try {
    state = JSON.parse(text) as StateFile;
  } catch (err) {
    return { flows: [], problem: `not JSON: ${(err as Error).message}` };
  }
  if (
    typeof state !== 'object' ||
    state === null ||
    state.v !== CONNTRACK_STATE_VERSION ||
    !Array.isArray(state.flows)
  )
    return {
      flows: [],
      problem: `expected {"v": ${CONNTRACK_STATE_VERSION}, "flows": [...]}, got ${typeof state === 'object' && state !== null ? `version ${String(state.v)}` : typeof state}`,
    };
  const bad = state.flows.findIndex((f) => !isResumable(f));
  if (bad >= 0)
    return {
      flows: [],
      problem: `flows[${bad}] is not a flow (key, start, sliceStart, seq > 0, continued, emitted counters)`,
    };
  return { flows: state.flows };
}

export function writeConntrackState(path: string, flows: readonly ResumableFlow[], savedAt: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify({ v: CONNTRACK_STATE_VERSION, savedAt, flows }));
  renameSync(tmp, path);
}

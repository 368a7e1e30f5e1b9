import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../support/cli.js';

/** Running the Python reference and the team's `check` command on the same files, and comparing them. */

export const REFERENCE = resolve(dirname(fileURLToPath(import.meta.url)), 'netpol_reference.py');

export interface RuleKey {
  policy: string;
  direction: 'ingress' | 'egress';
  rule: number;
}

export interface SideVerdict {
  allowed: boolean;
  isolated: boolean;
  /** Policies selecting the pod with this direction in their policyTypes. */
  isolatedBy?: string[];
  rules: RuleKey[];
  reason?: string;
}

export interface FlowVerdict {
  allowed: boolean;
  egress: SideVerdict;
  ingress: SideVerdict;
}

export interface ReferenceJob {
  cluster: string;
  flows: string;
  out: string;
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', rej);
    child.on('close', (code) =>
      res({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
  });
}

/** Judges every job in one python3 process; returns the verdicts per job, in flow order. */
export async function runReferenceBatch(
  dir: string,
  jobs: ReferenceJob[],
  ipBlockMatchesPods: boolean,
): Promise<FlowVerdict[][]> {
  const manifest = join(dir, `jobs-${ipBlockMatchesPods}.json`);
  await writeFile(manifest, JSON.stringify(jobs));
  const r = await run('python3', [
    REFERENCE,
    '--batch',
    manifest,
    '--ipblock-matches-pods',
    String(ipBlockMatchesPods),
  ]);
  if (r.code !== 0) throw new Error(`reference failed (${r.code}): ${r.stderr}`);
  return Promise.all(jobs.map(async (j) => parseLines(await readFile(j.out, 'utf8')) as FlowVerdict[]));
}

function parseLines(text: string): unknown[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

export interface CheckOutput {
  /** Verdicts by flow id. */
  byId: Map<string, FlowVerdict>;
  code: number | null;
  stderr: string;
}

/** Runs `netpol-audit check` on one snapshot and flow file; verdicts keyed by the flows' `id`. */
export async function runCheck(
  cluster: string,
  flows: string,
  ipBlockMatchesPods: boolean,
): Promise<CheckOutput> {
  const r = await runCli([
    'check',
    '--cluster',
    cluster,
    '--flows',
    flows,
    '--ipblock-matches-pods',
    String(ipBlockMatchesPods),
  ]);
  const byId = new Map<string, FlowVerdict>();
  for (const line of r.stdout.split('\n')) {
    if (!line.trim()) continue;
    const rec = JSON.parse(line) as { id?: string; verdict?: FlowVerdict };
    if (rec.id !== undefined && rec.verdict) byId.set(rec.id, rec.verdict);
  }
  return { byId, code: r.code, stderr: r.stderr };
}

const ruleKey = (r: RuleKey) => `${r.policy}#${r.direction}[${r.rule}]`;

/**
 * The differences that matter between the reference and the engine for one flow: overall and
 * per-direction decisions, isolation and the isolating policies, and the set of allowing rules. Rule sets are not compared where
 * an exception (own node, the pod itself) decided: the spec says the traffic is allowed, not which
 * rules allowed it.
 */
export function differences(ref: FlowVerdict, got: FlowVerdict | undefined): string[] {
  if (!got) return ['engine produced no verdict'];
  const out: string[] = [];
  if (ref.allowed !== got.allowed) out.push(`allowed: reference ${ref.allowed}, engine ${got.allowed}`);
  for (const dir of ['egress', 'ingress'] as const) {
    const a = ref[dir];
    const b = got[dir];
    if (!b) {
      out.push(`${dir}: missing in engine verdict`);
      continue;
    }
    if (a.allowed !== b.allowed) out.push(`${dir}.allowed: reference ${a.allowed}, engine ${b.allowed}`);
    if (a.isolated !== b.isolated) out.push(`${dir}.isolated: reference ${a.isolated}, engine ${b.isolated}`);
    const ia = [...(a.isolatedBy ?? [])].sort().join(' ');
    const ib = [...(b.isolatedBy ?? [])].sort().join(' ');
    if (ia !== ib) out.push(`${dir}.isolatedBy: reference [${ia}], engine [${ib}]`);
    if (a.reason === 'node-local' || a.reason === 'self') continue;
    const ra = a.rules.map(ruleKey).sort();
    const rb = (b.rules ?? []).map(ruleKey).sort();
    if (ra.join(' ') !== rb.join(' '))
      out.push(`${dir}.rules: reference [${ra.join(', ')}], engine [${rb.join(', ')}]`);
  }
  return out;
}

/** Runs `tasks` with at most `limit` at a time (the machine is shared; CLI runs are whole processes). */
export async function pool<T>(limit: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

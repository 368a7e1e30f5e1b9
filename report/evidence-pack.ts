import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { AuditError } from '../lib/errors.js';
import type { ReportModel } from '../schema/report.js';
import { csvSections, sectionCsv } from './render/csv.js';
import { renderHtml } from './render/html.js';
import { renderJson } from './render/json.js';
import { renderMarkdown } from './render/markdown.js';
import { toYaml } from './yaml-diff.js';

/**
 * The evidence pack (docs/report.md, "Evidence pack"): one directory per period with the report in
 * every format, the policies in force as YAML, and a manifest holding the SHA-256 of each file and
 * the report's inputs, chained to the previous period's manifest by its hash. `verify-evidence`
 * recomputes everything and names what changed. The signature (Ed25519, optional) covers the
 * manifest, so it covers every file through their hashes.
 */

export const MANIFEST = 'manifest.json';
export const SIGNATURE = 'manifest.sig';
export const PACK_VERSION = 1;

export interface PackManifest {
  packVersion: number;
  tool: string;
  createdAt: string;
  period: { since: string; until: string; label: string };
  assessment: ReportModel['assessment'];
  inputs: { store: string; storeSchemaVersion: number; reportVersion: number; runs: number[] };
  /** SHA-256 (hex) of the previous pack's manifest.json, or null for the first pack of a chain. */
  previous: { dir: string; sha256: string } | null;
  files: Record<string, string>;
}

export interface PolicyInForce {
  kind: string;
  policy: string;
  hash: string;
  spec: unknown;
}

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** Directory name of a pack: the period label when it is an ISO week, else the period's bounds. */
export function packName(r: ReportModel): string {
  if (/^\d{4}-W\d{2}$/.test(r.period.label)) return r.period.label;
  const t = (ms: number) => new Date(ms).toISOString().replace(/[:.]/g, '').replace(/000Z$/, 'Z');
  return `${t(r.period.since)}_${t(r.period.until)}`;
}

function packsIn(root: string): { dir: string; manifest: PackManifest }[] {
  if (!existsSync(root)) return [];
  const out: { dir: string; manifest: PackManifest }[] = [];
  for (const name of readdirSync(root)) {
    const file = join(root, name, MANIFEST);
    if (!existsSync(file)) continue;
    try {
      out.push({ dir: name, manifest: JSON.parse(readFileSync(file, 'utf8')) as PackManifest });
    } catch {
      // A manifest that does not parse is not chained to; verify-evidence names it.
    }
  }
  return out;
}

export interface WritePackOptions {
  /** The directory that holds the packs, one subdirectory per period. */
  root: string;
  storePath: string;
  policies: PolicyInForce[];
  runs: number[];
  pdf?: Buffer;
  /** PEM or DER (PKCS#8) Ed25519 private key file. */
  signingKey?: string;
  now?: Date;
}

/** Writes the pack for `r` under `root` and returns its directory. Refuses to overwrite a pack. */
export function writeEvidencePack(r: ReportModel, o: WritePackOptions): string {
  const name = packName(r);
  const dir = join(o.root, name);
  if (existsSync(join(dir, MANIFEST)))
    throw new AuditError(
      'EVIDENCE_PACK_EXISTS',
      'a pack for this period is already there: packs are never rewritten',
      {
        source: dir,
      },
    );
  // The previous pack: the newest one whose period ends at or before this one's start.
  const earlier = packsIn(o.root)
    .filter((p) => p.dir !== name && Date.parse(p.manifest.period.until) <= r.period.since)
    .sort((a, b) => Date.parse(b.manifest.period.until) - Date.parse(a.manifest.period.until));
  const previous = earlier[0]
    ? { dir: earlier[0].dir, sha256: sha256(readFileSync(join(o.root, earlier[0].dir, MANIFEST))) }
    : null;
  const files = new Map<string, string | Buffer>();
  files.set('report.html', renderHtml(r));
  files.set('report.md', renderMarkdown(r));
  files.set('report.json', renderJson(r));
  for (const s of csvSections(r)) files.set(`csv/${s.name}.csv`, sectionCsv(s));
  for (const p of o.policies) {
    const safe = `${p.kind}_${p.policy}_${p.hash.slice(0, 12)}`.replace(/[^A-Za-z0-9._-]/g, '_');
    files.set(
      `policies/${safe}.yaml`,
      `# ${p.kind} ${p.policy.replace(/[\r\n]/g, ' ')} (version ${p.hash})\n${toYaml(p.spec)}`,
    );
  }
  if (o.pdf) files.set('report.pdf', o.pdf);
  mkdirSync(dir, { recursive: true });
  const hashes: Record<string, string> = {};
  for (const [file, data] of files) {
    const path = join(dir, file);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, data);
    hashes[file] = sha256(data);
  }
  const manifest: PackManifest = {
    packVersion: PACK_VERSION,
    tool: r.generatedBy,
    createdAt: (o.now ?? new Date()).toISOString(),
    period: {
      since: new Date(r.period.since).toISOString(),
      until: new Date(r.period.until).toISOString(),
      label: r.period.label,
    },
    assessment: r.assessment,
    inputs: {
      store: o.storePath,
      storeSchemaVersion: r.storeSchemaVersion,
      reportVersion: r.reportVersion,
      runs: o.runs,
    },
    previous,
    files: Object.fromEntries(Object.entries(hashes).sort(([a], [b]) => (a < b ? -1 : 1))),
  };
  const text = `${JSON.stringify(manifest, null, 2)}\n`;
  writeFileSync(join(dir, MANIFEST), text);
  if (o.signingKey) {
    let key: ReturnType<typeof createPrivateKey>;
    try {
      key = createPrivateKey(readFileSync(o.signingKey));
    } catch (err) {
      throw new AuditError(
        'EVIDENCE_KEY_UNUSABLE',
        `cannot read an Ed25519 private key: ${(err as Error).message}`,
        {
          source: o.signingKey,
        },
      );
    }
    if (key.asymmetricKeyType !== 'ed25519')
      throw new AuditError('EVIDENCE_KEY_UNUSABLE', `is a ${key.asymmetricKeyType} key, not Ed25519`, {
        source: o.signingKey,
      });
    writeFileSync(join(dir, SIGNATURE), `${sign(null, Buffer.from(text), key).toString('base64')}\n`);
  }
  return dir;
}

export interface VerifyProblem {
  file: string;
  problem: string;
}

export interface VerifyResult {
  packs: string[];
  problems: VerifyProblem[];
  signed: number;
}

function listFiles(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listFiles(path, base));
    else out.push(relative(base, path).split('\\').join('/'));
  }
  return out;
}

function verifyPack(
  dir: string,
  label: string,
  publicKey: string | undefined,
  out: VerifyResult,
): PackManifest | null {
  const manifestPath = join(dir, MANIFEST);
  let text: string;
  let m: PackManifest;
  try {
    text = readFileSync(manifestPath, 'utf8');
    m = JSON.parse(text) as PackManifest;
  } catch (err) {
    out.problems.push({ file: `${label}${MANIFEST}`, problem: `unreadable: ${(err as Error).message}` });
    return null;
  }
  out.packs.push(dir);
  const listed = new Set(Object.keys(m.files ?? {}));
  for (const [file, want] of Object.entries(m.files ?? {})) {
    const path = join(dir, file);
    if (!existsSync(path)) {
      out.problems.push({ file: `${label}${file}`, problem: 'missing' });
      continue;
    }
    const got = sha256(readFileSync(path));
    if (got !== want)
      out.problems.push({
        file: `${label}${file}`,
        problem: `changed (sha256 ${got}, manifest says ${want})`,
      });
  }
  for (const file of listFiles(dir))
    if (file !== MANIFEST && file !== SIGNATURE && !listed.has(file))
      out.problems.push({
        file: `${label}${file}`,
        problem: 'not in the manifest (added after the pack was made)',
      });
  const sigPath = join(dir, SIGNATURE);
  if (publicKey) {
    if (!existsSync(sigPath))
      out.problems.push({ file: `${label}${SIGNATURE}`, problem: 'missing: the pack is not signed' });
    else {
      let key: ReturnType<typeof createPublicKey>;
      try {
        key = createPublicKey(readFileSync(publicKey));
      } catch (err) {
        throw new AuditError(
          'EVIDENCE_KEY_UNUSABLE',
          `cannot read an Ed25519 public key: ${(err as Error).message}`,
          {
            source: publicKey,
          },
        );
      }
      const sig = Buffer.from(readFileSync(sigPath, 'utf8').trim(), 'base64');
      if (!verify(null, Buffer.from(text), key, sig))
        out.problems.push({ file: `${label}${MANIFEST}`, problem: 'signature does not match the manifest' });
      else out.signed++;
    }
  }
  return m;
}

/** The link from `m` to the previous pack (in `root`): present, and its manifest as hashed then. */
function checkLink(root: string, label: string, m: PackManifest, who: string, out: VerifyResult): void {
  if (!m.previous) return;
  const prev = join(root, m.previous.dir, MANIFEST);
  const file = `${label}${m.previous.dir}/${MANIFEST}`;
  if (!existsSync(prev)) out.problems.push({ file, problem: `missing, but ${who} chains to it` });
  else if (sha256(readFileSync(prev)) !== m.previous.sha256)
    out.problems.push({ file, problem: `changed since ${who} chained to it` });
}

/**
 * Verifies a pack (a directory holding manifest.json) or every pack under a root, and the chain:
 * each pack's `previous` must name a pack present whose manifest still hashes to what it says.
 */
export function verifyEvidence(path: string, publicKey?: string): VerifyResult {
  const out: VerifyResult = { packs: [], problems: [], signed: 0 };
  if (!existsSync(path)) throw new AuditError('EVIDENCE_NOT_FOUND', 'no such directory', { source: path });
  if (existsSync(join(path, MANIFEST))) {
    const m = verifyPack(path, '', publicKey, out);
    if (m) checkLink(join(path, '..'), '../', m, 'this pack', out);
    return out;
  }
  const packs = readdirSync(path)
    .filter((d) => existsSync(join(path, d, MANIFEST)))
    .sort();
  if (packs.length === 0)
    throw new AuditError('EVIDENCE_NOT_FOUND', 'holds no evidence pack (no manifest.json)', { source: path });
  const manifests = new Map<string, PackManifest>();
  for (const d of packs) {
    const m = verifyPack(join(path, d), `${d}/`, publicKey, out);
    if (m) manifests.set(d, m);
  }
  for (const [d, m] of manifests) checkLink(path, '', m, d, out);
  // Every pack but the first is chained to by the next: one chain, no pack taken out silently.
  const heads = [...manifests.entries()].filter(([, m]) => !m.previous).map(([d]) => d);
  if (heads.length > 1)
    out.problems.push({
      file: heads.slice(1).join(', '),
      problem: 'starts a second chain (no previous pack named)',
    });
  return out;
}

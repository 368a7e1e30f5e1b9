import { escapeTerminal as t } from '../../lib/escape.js';
import { verifyEvidence } from '../../report/evidence-pack.js';
import { parse } from '../args.js';
import { type Command, EXIT_INPUT_PROBLEMS, EXIT_OK, UsageError } from '../command.js';

const USAGE = `usage: netpol-audit verify-evidence DIR [--public-key KEY.pem]

Checks evidence packs written by \`report --evidence\`: DIR is one pack (it holds manifest.json) or
the directory holding them all. Every file's SHA-256 is recomputed against its manifest, files added
since are named, and the chain is followed: each pack names the previous one by the hash of its
manifest, so a pack changed, removed or replaced anywhere in the chain is found. With --public-key
(Ed25519, PEM), each manifest's signature is checked too. Exit 0 when everything holds, 1 with each
problem on standard error as EVIDENCE_PACK_CHANGED.`;

export const verifyEvidenceCommand: Command = {
  path: ['verify-evidence'],
  summary: 'check evidence packs: file hashes, the chain of manifests, signatures',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parse(argv, { 'public-key': { type: 'string' } }, true);
    if (positionals.length !== 1)
      throw new UsageError('give one directory: a pack, or the directory of packs');
    const result = verifyEvidence(positionals[0]!, values['public-key']);
    for (const p of result.problems)
      process.stderr.write(`verify-evidence: EVIDENCE_PACK_CHANGED ${t(p.file)}: ${t(p.problem)}\n`);
    process.stdout.write(
      `${result.packs.length} pack(s) checked, ${result.problems.length} problem(s)${values['public-key'] ? `, ${result.signed} signature(s) valid` : ''}\n`,
    );
    return result.problems.length > 0 ? EXIT_INPUT_PROBLEMS : EXIT_OK;
  },
};

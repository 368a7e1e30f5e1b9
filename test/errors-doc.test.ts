import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ERROR_AREAS, ERROR_CODES } from '../lib/error-codes.js';
import { BEGIN, END, ERRORS_DOC, withTables } from '../scripts/errors-doc.js';
import { ROOT } from './support/cli.js';

/**
 * The error-code catalogue (lib/error-codes.ts) is the one definition: lib/errors.ts accepts only its
 * codes (the compiler checks every issue() and AuditError), the tables of docs/errors.md are
 * generated from it, and every SCREAMING_SNAKE_CASE word the shipped sources write in a string is
 * either a catalogue code or a known non-code below, whatever its prefix.
 */

/** Words in strings that are not our codes, each with where it comes from. */
const NOT_CODES: Record<string, string> = {
  NETPOL_AUDIT_DEBUG: 'an environment variable (cli/index.ts)',
  NETPOL_AUDIT_CHROMIUM: 'an environment variable (report/pdf.ts)',
  NOT_IP: 'a DecodeStatus name (collectors/decode)',
  UNSUPPORTED_LINKTYPE: 'a DecodeStatus name (collectors/decode)',
  HW_OFFLOAD: 'a conntrack flag (collectors/conntrack)',
  NETLINK_BROADCAST_ERROR: 'a netlink socket option (collectors/conntrack/reliable.ts)',
  SOL_NETLINK: 'a socket option level (collectors/conntrack/reliable.ts)',
  NFCT_CB_CONTINUE: 'a libnetfilter_conntrack constant (collectors/conntrack/reliable.ts)',
  NFCT_OF_ID: 'a libnetfilter_conntrack constant (collectors/conntrack/reliable.ts)',
  NFCT_OF_SHOW_LAYER3: 'a libnetfilter_conntrack constant (collectors/conntrack/reliable.ts)',
  NFCT_O_DEFAULT: 'a libnetfilter_conntrack constant (collectors/conntrack/reliable.ts)',
  CLOSE_WAIT: 'a TCP conntrack state',
  FIN_WAIT: 'a TCP conntrack state',
  LAST_ACK: 'a TCP conntrack state',
  TIME_WAIT: 'a TCP conntrack state',
  SHUTDOWN_ACK_SENT: 'an SCTP conntrack state',
  SHUTDOWN_RECD: 'an SCTP conntrack state',
  SHUTDOWN_SENT: 'an SCTP conntrack state',
  SQLITE_BUSY: "SQLite's own error code (processor/store)",
  SQLITE_CORRUPT: "SQLite's own error code (processor/store)",
  SQLITE_FULL: "SQLite's own error code (processor/store)",
  SQLITE_IOERR_WRITE: "SQLite's own error code (processor/store)",
  SQLITE_LOCKED: "SQLite's own error code (processor/store)",
  SQLITE_NOTADB: "SQLite's own error code (processor/store)",
  SQLITE_READONLY: "SQLite's own error code (processor/store)",
  TOPIC_ALREADY_EXISTS: "a Kafka broker's error type (transport/kafka/topics.ts)",
};

const SNAKE = /\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g;

/** The shipped sources, as tsconfig.build.json has them: no tests, no test helpers, not the catalogue itself. */
function shippedSources(): string[] {
  const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
  const testHelper = /(\.test|\/arbitrary|\/fixtures|\/craft)\.ts$/;
  const walk = (dir: string, out: string[]): string[] => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p, out);
      else if (p.endsWith('.ts') && !testHelper.test(p) && !p.endsWith('lib/error-codes.ts')) out.push(p);
    }
    return out;
  };
  return build.include.flatMap((d) => walk(join(ROOT, d), []));
}

/**
 * Every SCREAMING_SNAKE_CASE word inside a string or template literal (not in comments or
 * identifiers), with the files it is in: `issue('X', ...)`, `{ code: 'X' }`, `X = 'X'` and
 * `` `netpol-audit: X: ...` `` alike.
 */
function wordsInStrings(files: Record<string, string>): Map<string, Set<string>> {
  const found = new Map<string, Set<string>>();
  for (const [file, text] of Object.entries(files)) {
    const visit = (n: ts.Node): void => {
      if (ts.isStringLiteralLike(n) || ts.isTemplateLiteralToken(n))
        for (const [w] of n.text.matchAll(SNAKE)) {
          if (!found.has(w)) found.set(w, new Set());
          found.get(w)!.add(file);
        }
      ts.forEachChild(n, visit);
    };
    visit(ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true));
  }
  return found;
}

/**
 * The codes the sources throw as an AuditError: `new AuditError('X', ...)`, `new AuditError(K.x, ...)`
 * with `const K = { x: 'X' }` in the same file, and `spawned(child, 'X', ...)` (lib/child.ts).
 */
function thrownCodes(files: Record<string, string>): Map<string, string> {
  const thrown = new Map<string, string>();
  for (const [file, text] of Object.entries(files)) {
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const objects = new Map<string, Map<string, string>>();
    const codeOf = (e: ts.Expression | undefined): string | undefined => {
      if (e && ts.isStringLiteralLike(e)) return e.text;
      if (e && ts.isPropertyAccessExpression(e) && ts.isIdentifier(e.expression))
        return objects.get(e.expression.text)?.get(e.name.text);
      return undefined;
    };
    const collectObjects = (n: ts.Node): void => {
      if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.initializer) {
        let init: ts.Expression = n.initializer;
        while (ts.isAsExpression(init) || ts.isSatisfiesExpression(init)) init = init.expression;
        if (ts.isObjectLiteralExpression(init)) {
          const props = new Map<string, string>();
          for (const p of init.properties)
            if (
              ts.isPropertyAssignment(p) &&
              ts.isIdentifier(p.name) &&
              ts.isStringLiteralLike(p.initializer)
            )
              props.set(p.name.text, p.initializer.text);
          objects.set(n.name.text, props);
        }
      }
      ts.forEachChild(n, collectObjects);
    };
    const visit = (n: ts.Node): void => {
      let arg: ts.Expression | undefined;
      let found = false;
      if (ts.isNewExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'AuditError') {
        arg = n.arguments?.[0];
        found = true;
      } else if (ts.isCallExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'spawned') {
        arg = n.arguments[1];
        found = true;
      }
      const code = codeOf(arg);
      if (found && code !== undefined) thrown.set(code, file);
      else if (found && !(ts.isIdentifier(arg!) && file === 'lib/child.ts'))
        throw new Error(`${file}: an AuditError whose code this test cannot resolve: ${arg?.getText(sf)}`);
      ts.forEachChild(n, visit);
    };
    collectObjects(sf);
    visit(sf);
  }
  return thrown;
}

const codes = Object.keys(ERROR_CODES);
const files = Object.fromEntries(shippedSources().map((f) => [relative(ROOT, f), readFileSync(f, 'utf8')]));
const words = wordsInStrings(files);

describe('the error-code catalogue', () => {
  it('fills the tables of docs/errors.md (npx tsx scripts/errors-doc.ts --write)', () => {
    const doc = readFileSync(ERRORS_DOC, 'utf8');
    expect(doc).toBe(withTables(doc));
    // Every code has its row, once: a code whose area had no table would be missing.
    for (const code of codes) expect(doc.split(`| \`${code}\` |`).length - 1, code).toBe(1);
  });

  it('refuses a document that lacks an area or has a table under an unknown heading', () => {
    const doc = readFileSync(ERRORS_DOC, 'utf8');
    expect(() => withTables(doc.replace('## Store', '## Storage'))).toThrow(/Storage.*no area/);
    const withoutStore = doc.replace(/## Store\n[\s\S]*?(?=\n## )/, '');
    expect(() => withTables(withoutStore)).toThrow(/lacks .*Store/);
    expect(() => withTables(doc.replace(END, ''))).toThrow(/without/);
    expect(doc.split(BEGIN).length - 1).toBe(ERROR_AREAS.length);
  });

  it('finds the words in strings, whatever their prefix, and not those in comments or names', () => {
    const found = wordsInStrings({
      'x.ts': [
        '// NOT_FOUND_IN_COMMENT',
        'const ODD_NAME = 1;',
        "issue('JUDGE_FAILED', 'm');",
        'const q = { code: "ANY_PREFIX_AT_ALL" };',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: TypeScript source with a template literal
        'const t = `netpol-audit: TEMPLATE_CODE: ${ODD_NAME} and MIDDLE_CODE ${q}`;',
      ].join('\n'),
    });
    expect([...found.keys()].sort()).toEqual([
      'ANY_PREFIX_AT_ALL',
      'JUDGE_FAILED',
      'MIDDLE_CODE',
      'TEMPLATE_CODE',
    ]);
  });

  it('holds every code the sources write, whatever its prefix', () => {
    expect(words.size).toBeGreaterThan(90);
    const unknown = [...words]
      .filter(([w]) => !(w in ERROR_CODES) && !(w in NOT_CODES))
      .map(([w, where]) => `${w} (${[...where].join(', ')})`);
    expect(unknown.sort()).toEqual([]);
  });

  it('has no dead entry: every code is written in the sources', () => {
    expect(codes.filter((c) => !words.has(c)).sort()).toEqual([]);
  });

  it('has no stale exception: every non-code word is still in the sources, and none is a code', () => {
    for (const w of Object.keys(NOT_CODES)) {
      expect(words.has(w), w).toBe(true);
      expect(w in ERROR_CODES, w).toBe(false);
    }
  });

  it('calls fatal exactly the codes that stop a command: thrown as an AuditError (exit 3) or written by cli/index.ts', () => {
    const thrown = thrownCodes(files);
    expect(thrown.size).toBeGreaterThan(15);
    // cli/index.ts ends the command with exit 3 on any AuditError, and itself writes these two.
    const cli = files['cli/index.ts']!;
    expect(cli).toMatch(/if \(err instanceof AuditError\) \{\n.*\n\s*return EXIT_FATAL;/);
    const byCli = ['OUTPUT_WRITE_FAILED', 'INTERNAL_ERROR'];
    for (const c of byCli) expect(cli).toContain(`netpol-audit: ${c}: `);
    const notFatal = [...thrown].filter(([c]) => !ERROR_CODES[c as keyof typeof ERROR_CODES]?.fatal);
    expect(notFatal.map(([c, file]) => `${c} (${file})`).sort()).toEqual([]);
    const fatal = codes.filter((c) => ERROR_CODES[c as keyof typeof ERROR_CODES].fatal);
    expect(fatal.filter((c) => !thrown.has(c) && !byCli.includes(c)).sort()).toEqual([]);
  });

  it('places every code in an area, and fatal codes are errors', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect((ERROR_AREAS as readonly string[]).includes(info.area), code).toBe(true);
      if (info.fatal) expect(info.severity, code).toBe('error');
    }
  });
});

/**
 * Untrusted text (names, labels, policy summaries and issue messages that come from the cluster or
 * from input files) made inert for each output. One module, so every renderer escapes the same way.
 */

function isControl(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
}

/** Terminal text: control characters (escape sequences, newlines, carriage returns) shown as \uXXXX. */
export function escapeTerminal(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    out += isControl(code) ? `\\u${code.toString(16).padStart(4, '0')}` : s[i];
  }
  return out;
}

/**
 * Markdown text (a table cell or a line): HTML is shown as text, `|` cannot end a cell, a newline
 * cannot end a row or start a heading, and the markup characters that could build links, code or emphasis spans are taken literally (`_` stays, so error codes read as they are).
 */
export function escapeMarkdown(s: string): string {
  return escapeTerminal(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([\\`*[\]|])/g, '\\$1');
}

/**
 * A CSV cell (RFC 4180 quoting) that a spreadsheet will not run: a cell starting with = + - @ tab
 * or carriage return is prefixed with ' (OWASP's advice against formula injection).
 */
export function escapeCsv(s: string): string {
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/**
 * HTML text or a quoted attribute value: the five characters that could open markup or end an
 * attribute, and control characters shown as \uXXXX (as on a terminal).
 */
export function escapeHtml(s: string): string {
  return escapeTerminal(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

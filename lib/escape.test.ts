import { describe, expect, it } from 'vitest';
import { renderTable as render } from '../report/table.js';
import { escapeCsv, escapeMarkdown, escapeTerminal } from './escape.js';

describe('escaping untrusted names for every output', () => {
  it('terminal: escape sequences and newlines become visible text', () => {
    expect(escapeTerminal('evil\u001b[2Jname\nnext')).toBe('evil\\u001b[2Jname\\u000anext');
    expect(escapeTerminal('shop/cart')).toBe('shop/cart');
  });

  it('Markdown: a | cannot split a cell, HTML renders as text, a newline cannot end the row', () => {
    const cell = escapeMarkdown('a|b <img src=x onerror=alert(1)>\n# heading');
    expect(cell).not.toMatch(/(^|[^\\])\|/);
    expect(cell).not.toContain('<');
    expect(cell).not.toContain('\n');
    expect(cell).toContain('&lt;img');
    expect(escapeMarkdown('shop/cart')).toBe('shop/cart');
  });

  it('CSV: a cell starting with = + - @ is not a formula; quotes and commas are quoted', () => {
    expect(escapeCsv('=HYPERLINK("http://x")')).toBe(`"'=HYPERLINK(""http://x"")"`);
    expect(escapeCsv('+1')).toBe("'+1");
    expect(escapeCsv('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(escapeCsv('a,b')).toBe('"a,b"');
    expect(escapeCsv('shop/cart')).toBe('shop/cart');
  });

  it('render: hostile workload names in table and CSV output; numbers (even -1) stay numbers', () => {
    const rows = [{ w: '=cmd|"/c calc"!A1', port: -1, n: 'x\u001b[31mred' }];
    const cols = [
      { header: 'workload', value: (r: (typeof rows)[0]) => r.w },
      { header: 'port', value: (r: (typeof rows)[0]) => r.port },
      { header: 'name', value: (r: (typeof rows)[0]) => r.n },
    ];
    const csv = render(rows, cols, 'csv', (r) => r);
    expect(csv.split('\r\n')[1]).toBe(`"'=cmd|""/c calc""!A1",-1,x\u001b[31mred`);
    const table = render(rows, cols, 'text', (r) => r);
    expect(table).not.toContain('\u001b');
    expect(table).toContain('\\u001b[31mred');
  });
});

import { existsSync } from 'node:fs';
import { AuditError } from '../lib/errors.js';

/**
 * The HTML report printed to PDF by a headless Chromium (driven by playwright-core), the way a
 * person would print it: A4, the page's own print styles, no network (the page needs none, and
 * every request is refused). Chromium is found at NETPOL_AUDIT_CHROMIUM, or Debian's /usr/bin/chromium.
 */

/** Debian's Chromium; anything else through NETPOL_AUDIT_CHROMIUM. */
const DEBIAN_CHROMIUM = '/usr/bin/chromium';

export function chromiumPath(): string | undefined {
  const env = process.env.NETPOL_AUDIT_CHROMIUM;
  if (env) return existsSync(env) ? env : undefined;
  return existsSync(DEBIAN_CHROMIUM) ? DEBIAN_CHROMIUM : undefined;
}

export async function htmlToPdf(html: string): Promise<Buffer> {
  const executablePath = chromiumPath();
  if (!executablePath)
    throw new AuditError(
      'REPORT_PDF_UNAVAILABLE',
      'no Chromium found (install Debian\u2019s chromium, or set NETPOL_AUDIT_CHROMIUM to a Chromium or Chrome binary); --format html writes the same report',
    );
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    throw new AuditError('REPORT_PDF_UNAVAILABLE', 'the npm package playwright-core is not installed');
  }
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] }).catch((err: Error) => {
    throw new AuditError('REPORT_PDF_UNAVAILABLE', `Chromium did not start: ${err.message.split('\n')[0]}`, {
      source: executablePath,
    });
  });
  try {
    const page = await browser.newPage({ javaScriptEnabled: false });
    await page.route('**/*', (route) => route.abort());
    await page.setContent(html, { waitUntil: 'load' });
    return await page.pdf({
      format: 'A4',
      printBackground: true,
      margin: { top: '14mm', bottom: '14mm', left: '12mm', right: '12mm' },
    });
  } finally {
    await browser.close();
  }
}

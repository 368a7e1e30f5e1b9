/**
 * Reports: one model (model.ts), built from the store, and one renderer per format (render/). A new
 * format is a new renderer registered in REPORT_RENDERERS; a new listing uses table.ts.
 */

import type { ReportModel } from '../schema/report.js';
import type { Format } from './formats.js';
import { renderCsv } from './render/csv.js';
import { renderHtml } from './render/html.js';
import { renderJson } from './render/json.js';
import { renderMarkdown } from './render/markdown.js';
import { renderText } from './render/text.js';

export { type Evidence, evidenceFor, noDataMessage } from './evidence.js';
export { FORMATS, type Format, parseFormat } from './formats.js';
export { buildReport, isoWeekOf, isoWeekStart } from './model.js';
export { csvSections, renderCsv, sectionCsv } from './render/csv.js';
export { type Column, renderTable, type TableFormat } from './table.js';

export type ReportRenderer = (report: ReportModel) => string;

export const REPORT_RENDERERS: Partial<Record<Format, ReportRenderer>> = {
  text: renderText,
  markdown: renderMarkdown,
  json: renderJson,
  csv: (r) => renderCsv(r),
  html: renderHtml,
};

export const REPORT_FORMATS = Object.keys(REPORT_RENDERERS) as Format[];

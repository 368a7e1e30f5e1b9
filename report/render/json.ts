import type { ReportModel } from '../../schema/report.js';

/** The report model as JSON: for machines (dashboards, CI), the same fields as every renderer sees. */
export function renderJson(r: ReportModel): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

import { AlertPayloadSchema } from './alert.js';
import { FlowRecordSchema } from './flow-record.js';
import { ReportModelSchema } from './report.js';
import { VerdictSchema } from './verdict.js';

/**
 * The published JSON Schema documents, derived from the TypeBox definitions (TypeBox schemas are
 * JSON Schema; symbols such as [Kind] do not survive JSON.stringify).
 */
export const PUBLISHED_SCHEMAS: Record<string, unknown> = {
  'alert.schema.json': { $schema: 'https://json-schema.org/draft/2020-12/schema', ...AlertPayloadSchema },
  'flow-record.schema.json': { $schema: 'https://json-schema.org/draft/2020-12/schema', ...FlowRecordSchema },
  'report.schema.json': { $schema: 'https://json-schema.org/draft/2020-12/schema', ...ReportModelSchema },
  'verdict.schema.json': {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://netpol-audit.dev/schema/verdict.json',
    title: 'Verdict',
    ...VerdictSchema,
  },
};

export function renderSchema(name: string): string {
  return `${JSON.stringify(PUBLISHED_SCHEMAS[name], null, 2)}\n`;
}

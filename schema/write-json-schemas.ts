// Regenerates schema/*.schema.json: `npx tsx schema/write-json-schemas.ts`.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PUBLISHED_SCHEMAS, renderSchema } from './json-schema.js';

const here = dirname(fileURLToPath(import.meta.url));
for (const name of Object.keys(PUBLISHED_SCHEMAS)) writeFileSync(join(here, name), renderSchema(name));

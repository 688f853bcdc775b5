/**
 * Writes contracts/plan.schema.json from the zod schema in contracts/plan.ts (`npm run plan-schema`);
 * with `--check`, exits 1 when the committed file is stale instead (test/client/plan-schema.test.ts
 * runs the same comparison).
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { planJsonSchema } from '../contracts/plan';

export const PLAN_SCHEMA_FILE = path.join(__dirname, '..', 'contracts', 'plan.schema.json');

/** The file's content as generated now. */
export function planSchemaText(): string {
  return `${JSON.stringify(planJsonSchema(), null, 2)}\n`;
}

async function main(): Promise<void> {
  const text = planSchemaText();
  if (process.argv.includes('--check')) {
    const committed = await readFile(PLAN_SCHEMA_FILE, 'utf8').catch(() => '');
    if (committed !== text) {
      console.error(`${PLAN_SCHEMA_FILE} is stale: run npm run plan-schema`);
      process.exit(1);
    }
    return;
  }
  await writeFile(PLAN_SCHEMA_FILE, text);
  console.log(`wrote ${PLAN_SCHEMA_FILE}`);
}

if (require.main === module)
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });

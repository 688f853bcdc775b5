/**
 * The plan file's JSON Schema (contracts/plan.schema.json), generated from contracts/plan.ts: the
 * committed file is what the schema gives now, the example plan passes it, and it refuses what an
 * editor should flag (an unknown key, a bad duration, a bad enum) at the right place.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { planFileSchema } from '../../contracts/plan';
import { PLAN_SCHEMA_FILE, planSchemaText } from '../../scripts/plan-schema';
import { ROOT } from '../support/tools';

const EXAMPLE = path.join(ROOT, 'examples', 'plan.yaml');

async function example(): Promise<Record<string, unknown>> {
  return parse(await readFile(EXAMPLE, 'utf8')) as Record<string, unknown>;
}

function pathsOfIssues(value: unknown): string[] {
  const r = planFileSchema.safeParse(value);
  return r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
}

void describe('plan file JSON Schema', () => {
  void it('GIVEN contracts/plan.ts WHEN the schema is generated THEN it equals the committed contracts/plan.schema.json (else: npm run plan-schema)', async () => {
    assert.equal(await readFile(PLAN_SCHEMA_FILE, 'utf8'), planSchemaText());
  });

  void it('GIVEN examples/plan.yaml THEN it names the schema for editors and passes it', async () => {
    const text = await readFile(EXAMPLE, 'utf8');
    assert.match(
      text.split('\n')[0] ?? '',
      /^# yaml-language-server: \$schema=\.\.\/contracts\/plan\.schema\.json$/,
    );
    assert.deepEqual(pathsOfIssues(await example()), []);
  });

  void it('GIVEN the example with a misspelt schedule key, a bad duration and an unknown overlap policy THEN the schema flags exactly those places', async () => {
    const plan = await example();
    const [pipeline] = plan.pipelines as Record<string, unknown>[];
    const [backup] = plan.backups as Record<string, unknown>[];
    assert.ok(pipeline && backup);
    pipeline.schedule = { ...(pipeline.schedule as object), cronn: '0 3 * * *' };
    pipeline.approval = { ...(pipeline.approval as object), timeout: '3 days' };
    plan.defaults = { ...(plan.defaults as object), overlap: 'queue' };

    assert.deepEqual(
      pathsOfIssues(plan).sort(),
      ['defaults.overlap', 'pipelines.0.approval.timeout', 'pipelines.0.schedule'].sort(),
    );
  });

  void it('GIVEN the generated JSON Schema THEN an editor completes every top-level key and refuses others', () => {
    const schema = JSON.parse(planSchemaText()) as {
      properties: Record<string, unknown>;
      additionalProperties: unknown;
    };
    assert.deepEqual(Object.keys(schema.properties), [
      'apiVersion',
      'plan',
      'defaults',
      'pipelines',
      'backups',
    ]);
    assert.equal(schema.additionalProperties, false);
  });
});

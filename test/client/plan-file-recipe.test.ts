/**
 * Plan files whose pipelines build from a recipe file (`recipe: <path relative to the plan>`,
 * loaded and resolved at validate/apply, its problems named with the recipe file's own line and
 * field), and `appConsistent:` options on pipelines and backups with mode app-consistent.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { PlanIssue } from '../../client/plan-file';
import { PlanFileError, loadPlanFile } from '../../client/plan-file';
import type { BackupInput, GoldenImageInput } from '../../contracts';
import { PLAN_HEAD } from './fixtures';

const RECIPE = `apiVersion: amiflow/v1
recipe: web
region: eu-west-1
parent:
  imageId: ami-0aaaaaaaaaaaaaaa1
builder:
  instanceTypes: [t3.small]
build:
  - name: install
    kind: shell
    script: scripts/install.sh
test:
  - name: serves
    kind: shell
    commands: curl -fsS localhost
output:
  imageName: web-{{date}}-{{hash}}
`;

/** A plan with one pipeline (lines 6-…) and one backup; `pipeline` replaces the pipeline's settings. */
function plan(pipeline: string, backup = '    instanceIds: [i-0abc1234def567891]'): string {
  return `${PLAN_HEAD}${pipeline}
    schedule:
      cron: '0 3 * * MON'
backups:
  - name: db
    region: eu-west-1
${backup}
    schedule:
      every: 1d
`;
}

/** A folder with plans/<name>.yaml, recipes/web.yaml and its script; returns the plan's path. */
async function files(planText: string, recipe = RECIPE): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'amiflow-plan-recipe-'));
  await mkdir(path.join(dir, 'plans'));
  await mkdir(path.join(dir, 'recipes', 'scripts'), { recursive: true });
  await writeFile(path.join(dir, 'recipes', 'web.yaml'), recipe);
  await writeFile(path.join(dir, 'recipes', 'scripts', 'install.sh'), 'dnf install -y nginx\n');
  const file = path.join(dir, 'plans', 'team-web.yaml');
  await writeFile(file, planText);
  return file;
}

async function issuesOf(file: string): Promise<PlanIssue[]> {
  try {
    await loadPlanFile(file);
  } catch (err) {
    assert.ok(err instanceof PlanFileError, `not a PlanFileError: ${String(err)}`);
    return err.issues;
  }
  assert.fail('the plan was accepted');
}

describe('plan files: a pipeline built from a recipe', () => {
  it('GIVEN a pipeline naming a recipe file relative to the plan WHEN the plan loads THEN its input carries the resolved recipe, script content included, and no builder', async () => {
    const file = await files(plan('    recipe: ../recipes/web.yaml'));

    const loaded = await loadPlanFile(file);

    const input = loaded.entries.find((e) => e.kind === 'golden')?.input as GoldenImageInput;
    assert.equal(input.builderInstanceId, undefined);
    assert.equal(input.recipe?.recipe, 'web');
    assert.equal(input.recipe?.region, 'eu-west-1');
    const install = input.recipe?.build[0];
    assert.ok(install?.kind === 'shell');
    assert.match(install.commands, /dnf install -y nginx/);
    assert.deepEqual(
      input.recipe?.test?.map((s) => s.name),
      ['serves'],
    );
  });

  const BAD: {
    kind: string;
    pipeline: string;
    recipe?: string;
    line: number;
    field: string;
    message: RegExp;
  }[] = [
    {
      kind: 'a recipe file that does not exist',
      pipeline: '    recipe: ../recipes/none.yaml',
      line: 8,
      field: 'pipelines[0].recipe',
      message: /^\.\.\/recipes\/none\.yaml:1:1: \(file\): cannot be read/,
    },
    {
      kind: 'a recipe whose script is missing (named with the recipe line and field)',
      pipeline: '    recipe: ../recipes/web.yaml',
      recipe: RECIPE.replace('scripts/install.sh', 'scripts/gone.sh'),
      line: 8,
      field: 'pipelines[0].recipe',
      message: /^\.\.\/recipes\/web\.yaml:11:5: build\[0\]\.script: .*gone\.sh/,
    },
    {
      kind: 'a recipe with an unknown step kind',
      pipeline: '    recipe: ../recipes/web.yaml',
      recipe: RECIPE.replace('    kind: shell\n    script', '    kind: bash\n    script'),
      line: 8,
      field: 'pipelines[0].recipe',
      message: /^\.\.\/recipes\/web\.yaml:10:\d+: build\[0\]\.kind: /,
    },
    {
      kind: 'a recipe that is not a path',
      pipeline: '    recipe: { file: web.yaml }',
      line: 8,
      field: 'pipelines[0].recipe',
      message: /is not a recipe file: give its path, relative to the plan/,
    },
    {
      kind: 'both a builder and a recipe',
      pipeline: '    builderInstanceId: i-0abc1234def567890\n    recipe: ../recipes/web.yaml',
      line: 9,
      field: 'pipelines[0].recipe',
      message: /either builderInstanceId or recipe, not both/,
    },
    {
      kind: 'neither a builder nor a recipe',
      pipeline: '    mode: stop',
      line: 6,
      field: 'pipelines[0].builderInstanceId',
      message: /is required \(the builder instance to image\), unless recipe is given/,
    },
    {
      kind: "a recipe for another region than the pipeline's",
      pipeline: '    recipe: ../recipes/web.yaml',
      recipe: RECIPE.replace('region: eu-west-1', 'region: us-east-1'),
      line: 8,
      field: 'pipelines[0].recipe.region',
      message: /'us-east-1' is not the pipeline's region 'eu-west-1'/,
    },
    {
      kind: "a recipe for another account than the pipeline's",
      pipeline: '    recipe: ../recipes/web.yaml',
      recipe: RECIPE.replace('region: eu-west-1', "region: eu-west-1\naccountId: '444455556666'"),
      line: 8,
      field: 'pipelines[0].recipe.accountId',
      message: /'444455556666' is not the pipeline's account '\(this account\)'/,
    },
    {
      kind: 'a recipe with a consistency mode (a build stops its own builder)',
      pipeline: '    recipe: ../recipes/web.yaml\n    mode: reboot',
      line: 9,
      field: 'pipelines[0].mode',
      message: /a recipe build stops its own builder/,
    },
  ];
  for (const c of BAD)
    it(`GIVEN ${c.kind} WHEN the plan loads THEN it is refused at line ${c.line}, field ${c.field}`, async () => {
      const issues = await issuesOf(await files(plan(c.pipeline), c.recipe));
      assert.equal(issues.length, 1, JSON.stringify(issues));
      assert.equal(issues[0]?.line, c.line, JSON.stringify(issues));
      assert.equal(issues[0]?.field, c.field);
      assert.match(issues[0]?.message ?? '', c.message);
    });
});

describe('plan files: app-consistent options', () => {
  const APP = `    mode: app-consistent
    appConsistent:
      quiesce: { kind: fsfreeze, mountPoints: [/data] }
      maxFreezeSeconds: 20
      onPreFailure: crash-consistent`;

  it('GIVEN a pipeline and a backup with mode app-consistent and options WHEN the plan loads THEN both inputs carry the options as written', async () => {
    const file = await files(
      plan(
        `    builderInstanceId: i-0abc1234def567890\n${APP}`,
        `    instanceIds: [i-0abc1234def567891]\n${APP}`,
      ),
    );

    const loaded = await loadPlanFile(file);

    const golden = loaded.entries.find((e) => e.kind === 'golden')?.input as GoldenImageInput;
    const backup = loaded.entries.find((e) => e.kind === 'backup')?.input as BackupInput;
    const expected = {
      quiesce: { kind: 'fsfreeze', mountPoints: ['/data'] },
      maxFreezeSeconds: 20,
      onPreFailure: 'crash-consistent',
    };
    assert.deepEqual(golden.appConsistent, expected);
    assert.equal(golden.mode, 'app-consistent');
    assert.deepEqual(backup.appConsistent, expected);
    assert.equal(backup.mode, 'app-consistent');
  });

  const BAD: {
    kind: string;
    pipeline?: string;
    backup?: string;
    line: number;
    field: string;
    message: RegExp;
  }[] = [
    {
      kind: 'pipeline options with mode stop',
      pipeline:
        '    builderInstanceId: i-0abc1234def567890\n    mode: stop\n    appConsistent: { maxFreezeSeconds: 20 }',
      line: 10,
      field: 'pipelines[0].appConsistent',
      message: /applies to mode app-consistent only, not 'stop'/,
    },
    {
      kind: 'a backup freeze limit out of range',
      backup: `    instanceIds: [i-0abc1234def567891]\n    mode: app-consistent\n    appConsistent:\n      maxFreezeSeconds: 9999`,
      line: 17,
      field: 'backups[0].appConsistent.maxFreezeSeconds',
      message: /from 5 to 300, got 9999/,
    },
    {
      kind: 'a backup freezing the root without the explicit flag',
      backup: `    instanceIds: [i-0abc1234def567891]\n    mode: app-consistent\n    appConsistent:\n      quiesce: { kind: fsfreeze, mountPoints: [/] }`,
      line: 17,
      field: 'backups[0].appConsistent.quiesce.mountPoints',
      message: /freezeRoot: true/,
    },
    {
      kind: 'an unknown option',
      backup: `    instanceIds: [i-0abc1234def567891]\n    mode: app-consistent\n    appConsistent:\n      freezeFor: 20s`,
      line: 17,
      field: 'backups[0].appConsistent.freezeFor',
      message: /is not a known field/,
    },
  ];
  for (const c of BAD)
    it(`GIVEN ${c.kind} WHEN the plan loads THEN it is refused at line ${c.line}, field ${c.field}`, async () => {
      const text = plan(c.pipeline ?? '    builderInstanceId: i-0abc1234def567890', c.backup);
      const issues = await issuesOf(await files(text));
      assert.equal(issues.length, 1, JSON.stringify(issues));
      assert.equal(issues[0]?.line, c.line, JSON.stringify(issues));
      assert.equal(issues[0]?.field, c.field);
      assert.match(issues[0]?.message ?? '', c.message);
    });
});

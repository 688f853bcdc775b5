/**
 * goldenImage with a recipe as its source (instead of a builder instance), on the time-skipping
 * server with the golden fleet stubs and stub build activities: the child `buildImage` builds the
 * image, which then goes through golden's validation, approval and distribution; a failing build
 * fails the golden run with the build's failure, and golden has nothing of its own to undo.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ChildWorkflowFailure } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { BuildImageInput } from '../../contracts/recipe';
import type { GoldenImageResult } from '../../workflows/contracts';
import { APPROVED_VALUE, TAG } from '../../workflows/contracts';
import { goldenChildIds } from '../../workflows/golden-image';
import { saveHistory } from '../support/histories';
import { timeSkippingEnv } from '../support/temporal';
import {
  ACCOUNT,
  ALICE_SESSION,
  APPROVERS_ROLE,
  COPY_REGION,
  CONSUMER,
  Fleet,
  REGION,
  awaitingApproval,
  decide,
  goldenActivities,
  goldenInput,
  outcomeOf,
  startGolden,
} from './golden-stubs';
import { ActivityLog, RUN_TIMEOUT, recorded, withWorker, workflowEnv } from './harness';
import { BUILDER, CONTENT_HASH as HASH, PARENT, buildStubs, commandOutcome } from './build-stubs';

const env = workflowEnv(timeSkippingEnv);

const RECIPE: BuildImageInput = {
  region: REGION,
  accountId: ACCOUNT,
  recipe: 'web',
  parent: { imageId: PARENT },
  builder: { instanceTypes: ['t3.small'] },
  build: [
    { kind: 'shell', name: 'install', commands: 'dnf install -y nginx' },
    { kind: 'reboot', name: 'reboot' },
  ],
  test: [{ kind: 'shell', name: 'serves', commands: 'curl -fsS localhost' }],
  output: { imageName: 'web-{{date}}-{{hash}}', tags: { os: 'al2023' } },
};

/** The golden fleet, plus build activities that succeed unless the `install` command fails. */
function activities(fleet: Fleet, installFails = false): Activities {
  // The build stops its builder before imaging it: the imageFromInstance child finds it stopped.
  const stubs = buildStubs(goldenActivities(fleet, { builderState: 'stopped' }));
  if (!installFails) return stubs;
  return {
    ...stubs,
    waitForCommand: (i) =>
      i.commandId.endsWith('build-0')
        ? Promise.resolve(commandOutcome(i.commandId, 'Failed', 1, 'No match for argument: nginx'))
        : stubs.waitForCommand(i),
  };
}

/**
 * A golden run from the recipe on an empty fleet, approved or rejected by alice (`decision`), or
 * neither, to its end: its outcome, the fleet it acted on and its calls.
 */
async function run(decision: 'approve' | 'reject' | undefined, installFails = false) {
  const fleet = new Fleet();
  const log = new ActivityLog();
  const { builderInstanceId: _builder, mode: _mode, ...rest } = goldenInput();
  const input = {
    ...rest,
    recipe: RECIPE,
    approval: { approvers: [APPROVERS_ROLE] },
    distribution: { copies: [{ region: COPY_REGION }], shareWith: { accountIds: [CONSUMER] } },
  };
  const outcome = await withWorker(
    env,
    recorded(log, activities(fleet, installFails)),
    async (taskQueue) => {
      if (!decision) return outcomeOf<GoldenImageResult>(await startGolden(env, taskQueue, input));
      const handle = await awaitingApproval(env, taskQueue, input);
      await decide(handle, decision, ALICE_SESSION);
      return outcomeOf<GoldenImageResult>(handle);
    },
    'golden-recipe',
  );
  return { outcome, fleet, log };
}

describe('goldenImage: a recipe as the source', () => {
  it(
    'GIVEN a pipeline with a recipe instead of a builder WHEN it runs and is approved THEN the child build makes the image, which is validated, approved, copied, shared and published',
    RUN_TIMEOUT,
    async () => {
      const { outcome, fleet, log } = await run('approve');
      await saveHistory(outcome, 'golden-image-recipe-source');

      assert.ok(outcome.ok, `the run failed: ${outcome.ok ? '' : String(outcome.error)}`);
      const r = outcome.result;
      const original = r.images.find((i) => i.role === 'original');
      assert.ok(original);
      const image = fleet.get(original.imageId);
      // Named by the recipe's template, tagged by both the recipe and the pipeline.
      assert.match(r.imageName, /^web-\d{8}-abababababab$/);
      assert.equal(image.name, r.imageName);
      assert.equal(image.tags[TAG.pipeline], 'web');
      assert.equal(image.tags[TAG.approved], APPROVED_VALUE);
      assert.equal(image.tags.os, 'al2023');
      assert.equal(image.tags.team, 'web', "the pipeline's tags go onto the built image");
      assert.deepEqual(r.build, {
        workflowId: goldenChildIds(outcome.workflowId).build,
        recipe: 'web',
        contentHash: HASH,
        parentImageId: PARENT,
      });
      assert.equal(r.builderInstanceId, BUILDER);
      assert.equal(r.builderImageId, PARENT);
      assert.ok(r.validation, "golden's validation ran on the built image");
      assert.ok(r.images.some((i) => i.role === 'copy' && i.region === COPY_REGION));
      // No builder instance of golden's own was read or imaged; the build ran its steps and tests.
      assert.equal(log.count('readBuilderInstance'), 0);
      assert.deepEqual(
        log.inputs('sendBuildStep').map((i) => `${i.idempotencyKey.split('/').at(-2)}: ${i.step.name}`),
        ['build: install', 'build: reboot', 'test: serves'],
      );
      assert.equal(log.inputs('addLaunchPermissions').length > 0, true);
      assert.equal(outcome.progress.outcome, 'succeeded');
    },
  );

  it(
    'GIVEN a recipe-built image WHEN the approver rejects it THEN golden deletes the image the build made (found by the tags of the run that made it)',
    RUN_TIMEOUT,
    async () => {
      const { outcome, fleet, log } = await run('reject');

      assert.ok(!outcome.ok);
      const deletions = log.inputs('deleteImage');
      assert.equal(deletions.length, 1);
      assert.equal(deletions[0]?.workflowId, `${goldenChildIds(outcome.workflowId).build}/image`);
      assert.equal(fleet.images.size, 0, 'the rejected image and its snapshots are gone');
    },
  );

  it(
    "GIVEN a recipe whose install step fails WHEN the golden run builds it THEN the run fails with the build's failure, the build terminated its builder, and golden undoes nothing",
    RUN_TIMEOUT,
    async () => {
      const { outcome, fleet, log } = await run(undefined, true);
      await saveHistory(outcome, 'golden-image-recipe-build-failed');

      assert.ok(!outcome.ok);
      assert.ok(outcome.error instanceof WorkflowFailedError);
      assert.ok(outcome.error.cause instanceof ChildWorkflowFailure);
      assert.match(
        String(outcome.error.cause.cause?.message),
        /build step 'install' .*ended Failed, exit code 1/,
      );
      assert.deepEqual(
        log.inputs('terminateBuildInstance').map((i) => i.instanceId),
        [BUILDER],
      );
      assert.equal(fleet.images.size, 0, 'no image was made');
      for (const name of [
        'createImage',
        'deleteImage',
        'planTestLaunch',
        'terminateLaunchedInstance',
      ] as const)
        assert.equal(log.count(name), 0, `${name} ran`);
      const undone = outcome.progress.steps.filter((s) => s.name.startsWith('undo'));
      assert.deepEqual(undone, []);
      assert.equal(outcome.progress.steps.find((s) => s.name === 'image builder')?.state, 'failed');
    },
  );
});

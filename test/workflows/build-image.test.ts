/**
 * buildImage, time skipping with stub activities: the happy path (every step once, in order, the
 * step list in the result, the image accepted by its hash tag last); a failure at every step with
 * the exact compensations, in order; a failing step naming its exit code and output; cancellation
 * while an SSM command runs (the command cancelled, the builder terminated); a worker lost
 * mid-step (finished steps never sent again); skip-unchanged and --force; a kept builder
 * terminated after its TTL; bad input refused before any AWS call.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { WorkflowProgress } from '../../contracts';
import { progressQuery } from '../../contracts';
import type { BuildImageInput, BuildImageResult } from '../../contracts/recipe';
import { RECIPE_TAG } from '../../contracts/recipe';
import type { buildImage } from '../../workflows';
import { saveHistory } from '../support/histories';
import { timeSkippingEnv, uniqueTaskQueue } from '../support/temporal';
import type { ActivityName, History } from './stub-activities';
import {
  ActivityLog,
  IMAGE_ID,
  RUN_TIMEOUT,
  blockingUntilCancelled,
  happyActivities,
  injectedFailure,
  recorded,
  uniqueWorkflowId,
  IMAGE_AS_IS,
} from './stub-activities';
import { handedOver, withWorker, workflowEnv } from './harness';
import { BUILDER, CONTENT_HASH as HASH, PARENT, TESTER, buildStubs, commandOutcome } from './build-stubs';

const env = workflowEnv(timeSkippingEnv);

function recipe(overrides: Partial<BuildImageInput> = {}): BuildImageInput {
  return {
    region: 'eu-west-1',
    recipe: 'web',
    parent: { imageId: PARENT },
    builder: { instanceTypes: ['t3.small', 't3a.small'] },
    build: [
      { kind: 'shell', name: 'install', commands: 'dnf install -y nginx' },
      {
        kind: 'file',
        name: 'config',
        path: '/etc/nginx/conf.d/site.conf',
        content: 'server {}',
        mode: '0644',
      },
      { kind: 'reboot', name: 'reboot' },
    ],
    validate: [{ kind: 'shell', name: 'nginx -t', commands: 'nginx -t' }],
    test: [{ kind: 'shell', name: 'serves', commands: 'curl -fsS localhost' }],
    output: { imageName: 'web-{{date}}-{{hash}}', tags: { team: 'web' } },
    ...overrides,
  };
}

/** Every build activity succeeding; the imageFromInstance child finds the builder stopped. */
function buildActivities(overrides: Partial<Activities> = {}): Activities {
  return { ...buildStubs(happyActivities({ state: 'stopped' })), ...overrides };
}

type Outcome = { result?: BuildImageResult; error?: unknown; progress: WorkflowProgress; history: History };

async function outcomeOf(handle: WorkflowHandle<typeof buildImage>): Promise<Outcome> {
  let settled: { result?: BuildImageResult; error?: unknown };
  try {
    settled = { result: await handle.result() };
  } catch (error) {
    settled = { error };
  }
  return { ...settled, progress: await handle.query(progressQuery), history: await handle.fetchHistory() };
}

function start(taskQueue: string, input: unknown, on = env, workflowId = uniqueWorkflowId('build')) {
  return on.client.workflow.start<typeof buildImage>('buildImage', {
    taskQueue,
    workflowId,
    args: [input as BuildImageInput],
  });
}

async function runBuild(
  activities: Activities,
  input: unknown = recipe(),
  record?: string,
): Promise<Outcome & { log: ActivityLog }> {
  const log = new ActivityLog();
  const out = await withBuildWorker(recorded(log, activities), async (taskQueue) => {
    const h = await start(taskQueue, input);
    const o = await outcomeOf(h);
    if (record) await saveHistory({ history: o.history, workflowId: h.workflowId }, record);
    return o;
  });
  return { ...out, log };
}

/** Runs `fn` on a fresh worker and task queue serving `activities`. */
const withBuildWorker = <T>(activities: Activities, fn: (taskQueue: string) => Promise<T>) =>
  withWorker(env, activities, fn, 'build-image');

/** Build activities whose second SSM command wait is `blocking` (it runs until cancelled). */
function secondCommandBlocks(blocking: ReturnType<typeof blockingUntilCancelled>): Activities {
  let waits = 0;
  return buildActivities({
    waitForCommand: (i) => {
      waits += 1;
      return waits === 2 ? blocking.fn() : Promise.resolve(commandOutcome(i.commandId));
    },
  });
}

const compensations = (p: WorkflowProgress) => p.compensations.map((c) => `${c.name}: ${c.state}`);
/** The forward activities of a whole build, in order (the child's between stop and terminate). */
const STEP_CALLS = (n: number): ActivityName[] =>
  Array.from({ length: n }, () => ['sendBuildStep', 'waitForCommand'] as ActivityName[]).flat();
const HAPPY_CALLS: ActivityName[] = [
  'resolveParentImage',
  'findUnchangedImage',
  'launchBuildInstance',
  'waitForAgentOnline',
  ...STEP_CALLS(4),
  'stopInstance',
  ...IMAGE_AS_IS,
  'tagSnapshots',
  'terminateBuildInstance',
  'launchBuildInstance',
  'waitForAgentOnline',
  ...STEP_CALLS(1),
  'terminateBuildInstance',
  'tagBuildResource',
];

describe('buildImage', () => {
  it(
    'GIVEN a recipe WHEN it builds THEN every step runs once in order, the image is accepted by its hash last, and the result lists the steps',
    RUN_TIMEOUT,
    async () => {
      const run = await runBuild(buildActivities(), recipe(), 'build-image-happy');
      assert.ok(run.result, String(run.error));
      assert.deepEqual(run.log.names(), HAPPY_CALLS);
      assert.deepEqual(
        run.result.steps.map((s) => `${s.phase}:${s.name}:${s.status}`),
        [
          'build:install:Success',
          'build:config:Success',
          'build:reboot:Rebooted',
          'validate:nginx -t:Success',
          'test:serves:Success',
        ],
      );
      assert.equal(run.result.imageId, IMAGE_ID);
      assert.equal(run.result.skipped, false);
      assert.equal(run.result.builderInstanceId, BUILDER);
      assert.equal(run.result.testInstanceId, TESTER);
      assert.match(run.result.imageName, /^web-\d{8}-abababababab$/);
      // The builder is stopped first, so the child images it in stop mode without starting it again.
      const child = run.log.inputs('createImage')[0];
      assert.equal(child?.instanceId, BUILDER);
      assert.equal(run.log.count('startInstance'), 0);
      const [accepted] = run.log.inputs('tagBuildResource');
      assert.deepEqual(accepted?.tags, {
        [RECIPE_TAG.contentHash]: HASH,
        [RECIPE_TAG.recipe]: 'web',
        [RECIPE_TAG.parentImage]: PARENT,
      });
      // Each step's idempotency key names the run, phase and index: a retry finds the command again.
      const keys = run.log
        .inputs('sendBuildStep')
        .map((i) => i.idempotencyKey.split('/').slice(-2).join('/'));
      assert.deepEqual(keys, ['build/0', 'build/1', 'build/2', 'validate/0', 'test/0']);
      const launches = run.log.inputs('launchBuildInstance');
      assert.deepEqual(
        launches.map((l) => [l.role, l.imageId, l.tags[RECIPE_TAG.role]]),
        [
          ['builder', PARENT, 'builder'],
          ['test', IMAGE_ID, 'test'],
        ],
      );
      assert.deepEqual(run.progress.compensations, []);
      assert.equal(run.progress.phase, 'succeeded');
      assert.ok(
        run.progress.steps.every((s) => s.state === 'done'),
        JSON.stringify(run.progress.steps),
      );
    },
  );

  it(
    'GIVEN a build step that exits 1 WHEN it runs THEN the run fails naming the step, exit code and output, and the builder is terminated',
    RUN_TIMEOUT,
    async () => {
      const run = await runBuild(
        buildActivities({
          waitForCommand: (i) =>
            Promise.resolve(
              commandOutcome(
                i.commandId,
                i.commandId.endsWith('build-1') ? 'Failed' : 'Success',
                i.commandId.endsWith('build-1') ? 1 : 0,
              ),
            ),
        }),
        recipe(),
        'build-image-step-failed',
      );
      assert.ok(run.error instanceof WorkflowFailedError);
      const cause = run.error.cause;
      assert.ok(cause instanceof ApplicationFailure);
      assert.equal(cause.type, 'BuildStepFailed');
      assert.match(
        cause.message,
        /build step 'config' \(file\) ended Failed, exit code 1; last output:\n.*unknown directive/s,
      );
      assert.deepEqual(compensations(run.progress), ['terminate builder: done']);
      assert.equal(run.log.count('cancelCommand'), 0, 'a command that ended is not cancelled');
      assert.equal(run.progress.steps.find((s) => s.name === 'build: config')?.state, 'failed');
    },
  );

  interface FailureCase {
    what: string;
    fail: ActivityName;
    /** Which call of the activity fails (1-based). */
    nth?: number;
    undone: string[];
  }
  const TERM_B = 'terminate builder: done';
  const TERM_T = 'terminate test instance: done';
  const DEL = 'delete image and snapshots: done';
  const CASES: FailureCase[] = [
    { what: 'resolving the parent', fail: 'resolveParentImage', undone: [] },
    { what: 'checking for an unchanged image', fail: 'findUnchangedImage', undone: [] },
    { what: 'launching the builder', fail: 'launchBuildInstance', undone: [TERM_B] },
    { what: 'waiting for the builder agent', fail: 'waitForAgentOnline', undone: [TERM_B] },
    {
      what: 'sending the first build step',
      fail: 'sendBuildStep',
      undone: ['cancel command of build: install: done', TERM_B],
    },
    {
      what: 'waiting for the second build step',
      fail: 'waitForCommand',
      nth: 2,
      undone: ['cancel command of build: config: done', TERM_B],
    },
    {
      what: 'the validate step',
      fail: 'waitForCommand',
      nth: 4,
      undone: ['cancel command of validate: nginx -t: done', TERM_B],
    },
    { what: 'stopping the builder', fail: 'stopInstance', undone: [TERM_B] },
    { what: 'creating the image (in the child)', fail: 'createImage', undone: [DEL, TERM_B] },
    { what: 'waiting for the image (in the child)', fail: 'waitForImageAvailable', undone: [DEL, TERM_B] },
    { what: 'terminating the builder', fail: 'terminateBuildInstance', undone: [DEL, TERM_B] },
    { what: 'launching the test instance', fail: 'launchBuildInstance', nth: 2, undone: [TERM_T, DEL] },
    { what: 'waiting for the test agent', fail: 'waitForAgentOnline', nth: 2, undone: [TERM_T, DEL] },
    {
      what: 'the test step',
      fail: 'waitForCommand',
      nth: 5,
      undone: ['cancel command of test: serves: done', TERM_T, DEL],
    },
    { what: 'terminating the test instance', fail: 'terminateBuildInstance', nth: 2, undone: [TERM_T, DEL] },
    { what: 'accepting the image', fail: 'tagBuildResource', undone: [DEL] },
  ];
  for (const c of CASES)
    it(
      `GIVEN a failure ${c.what} WHEN the build runs THEN exactly ${c.undone.length ? c.undone.map((u) => u.replace(/: done$/, '')).join(', then ') : 'nothing'} is undone`,
      RUN_TIMEOUT,
      async () => {
        const base = buildActivities();
        const original = base[c.fail] as unknown as (i: unknown) => Promise<unknown>;
        let calls = 0;
        const failingAt = (i: unknown) => {
          calls += 1;
          if (calls === (c.nth ?? 1)) throw injectedFailure(c.fail, 'AwsPolicyRefused');
          return original(i);
        };
        const run = await runBuild({ ...base, [c.fail]: failingAt });
        assert.ok(run.error instanceof WorkflowFailedError, `the run did not fail: ${String(run.error)}`);
        assert.deepEqual(compensations(run.progress), c.undone);
        assert.equal(run.progress.phase, 'failed');
      },
    );

  it(
    'GIVEN a build cancelled while an SSM command runs WHEN undone THEN the command is cancelled, then the builder terminated',
    RUN_TIMEOUT,
    async () => {
      const blocking = blockingUntilCancelled();
      const log = new ActivityLog();
      const run = await withBuildWorker(recorded(log, secondCommandBlocks(blocking)), async (taskQueue) => {
        const handle = await start(taskQueue, recipe());
        await blocking.entered;
        await handle.cancel();
        const o = await outcomeOf(handle);
        await saveHistory(
          { history: o.history, workflowId: handle.workflowId },
          'build-image-cancelled-during-command',
        );
        return o;
      });
      await blocking.cancelled;
      assert.ok(run.error instanceof WorkflowFailedError);
      assert.equal(run.progress.phase, 'cancelled');
      assert.deepEqual(compensations(run.progress), [
        'cancel command of build: config: done',
        'terminate builder: done',
      ]);
      assert.deepEqual(
        log.inputs('cancelCommand').map((i) => i.commandId),
        ['cmd-build-1'],
      );
      assert.deepEqual(
        log.inputs('terminateBuildInstance').map((i) => i.instanceId),
        [BUILDER],
      );
    },
  );

  it(
    'GIVEN a worker lost while the second step runs WHEN another worker takes over THEN the run completes and no finished step is sent again',
    RUN_TIMEOUT,
    async () => {
      const log = new ActivityLog();
      const blocking = blockingUntilCancelled();
      const workflowId = uniqueWorkflowId('build-resume');
      const run = await handedOver(env, {
        taskQueue: uniqueTaskQueue('build-image'),
        first: recorded(log, secondCommandBlocks(blocking)),
        blocked: blocking,
        start: (taskQueue) => start(taskQueue, recipe(), env, workflowId),
        second: recorded(log, buildActivities()),
        then: outcomeOf,
      });
      await saveHistory({ history: run.history, workflowId }, 'build-image-resumed');
      assert.ok(run.result, String(run.error));
      const keys = log.inputs('sendBuildStep').map((i) => i.idempotencyKey.split('/').slice(-2).join('/'));
      assert.deepEqual(
        keys,
        ['build/0', 'build/1', 'build/2', 'validate/0', 'test/0'],
        'each step sent once',
      );
      assert.equal(log.count('launchBuildInstance'), 2, 'one builder, one test instance');
      // The second step's wait ran again on the new worker (same command id); the first step's did not.
      assert.deepEqual(
        log
          .inputs('waitForCommand')
          .map((i) => i.commandId)
          .slice(0, 3),
        ['cmd-build-0', 'cmd-build-1', 'cmd-build-1'],
      );
    },
  );

  it(
    'GIVEN an available image with the same content hash WHEN it builds THEN that image is returned and nothing is launched',
    RUN_TIMEOUT,
    async () => {
      const existing = {
        imageId: 'ami-0ddddddddddddddd1',
        imageName: 'web-20260101-abababababab',
        snapshotIds: ['snap-0eeeeeeeeeeeeeee1'],
      };
      const run = await runBuild(
        buildActivities({ findUnchangedImage: () => Promise.resolve({ contentHash: HASH, existing }) }),
        recipe(),
        'build-image-unchanged',
      );
      assert.ok(run.result, String(run.error));
      assert.equal(run.result.skipped, true);
      assert.equal(run.result.imageId, existing.imageId);
      assert.deepEqual(run.log.names(), ['resolveParentImage', 'findUnchangedImage']);
      assert.equal(run.progress.steps.find((s) => s.name === 'launch builder')?.state, 'skipped');
    },
  );

  it('GIVEN the same image exists and force WHEN it builds THEN it builds anyway', RUN_TIMEOUT, async () => {
    const existing = { imageId: 'ami-0ddddddddddddddd1', imageName: 'web-old', snapshotIds: [] };
    const run = await runBuild(
      buildActivities({ findUnchangedImage: () => Promise.resolve({ contentHash: HASH, existing }) }),
      recipe({ force: true }),
    );
    assert.ok(run.result, String(run.error));
    assert.equal(run.result.skipped, false);
    assert.deepEqual(run.log.names(), HAPPY_CALLS);
  });

  it(
    'GIVEN keepBuilderOnFailure WHEN a step fails THEN the builder is tagged with its end, kept for its TTL (hours pass in ms), then terminated',
    RUN_TIMEOUT,
    async () => {
      const run = await runBuild(
        buildActivities({ waitForCommand: (i) => Promise.resolve(commandOutcome(i.commandId, 'Failed', 2)) }),
        recipe({
          builder: { instanceTypes: ['t3.small'], keepBuilderOnFailure: true, keepBuilderSeconds: 7200 },
        }),
        'build-image-builder-kept',
      );
      assert.ok(run.error instanceof WorkflowFailedError);
      assert.deepEqual(compensations(run.progress), ['keep builder for debugging, then terminate it: done']);
      const [kept] = run.log.inputs('tagBuildResource');
      assert.equal(kept?.resourceId, BUILDER);
      assert.ok(kept?.tags[RECIPE_TAG.keepUntil]);
      assert.deepEqual(run.log.names().slice(-2), ['tagBuildResource', 'terminateBuildInstance']);
      const fired = (run.history.events ?? []).filter((e) => e.timerFiredEventAttributes).length;
      assert.equal(fired, 1, 'the TTL is a durable timer');
    },
  );

  it(
    'GIVEN a bad recipe WHEN started THEN it fails InvalidInput naming the field before any activity',
    RUN_TIMEOUT,
    async () => {
      const run = await runBuild(buildActivities(), { ...recipe(), build: [{ kind: 'ansible', name: 'x' }] });
      assert.ok(run.error instanceof WorkflowFailedError);
      assert.ok(run.error.cause instanceof ApplicationFailure);
      assert.equal(run.error.cause.type, 'InvalidInput');
      assert.match(run.error.cause.message, /build\[0\]\.kind: 'ansible' is not a step kind/);
      assert.deepEqual(run.log.names(), []);
    },
  );

  it(
    'GIVEN a recipe with 10 steps WHEN it builds THEN its history stays small (events counted)',
    RUN_TIMEOUT,
    async () => {
      const ten = recipe({
        build: Array.from({ length: 8 }, (_, n) => ({
          kind: 'shell' as const,
          name: `step ${n}`,
          commands: `echo ${n}`,
        })),
        validate: [{ kind: 'shell', name: 'check', commands: 'true' }],
        test: [{ kind: 'shell', name: 'test', commands: 'true' }],
      });
      const run = await runBuild(buildActivities(), ten, 'build-image-ten-steps');
      assert.ok(run.result, String(run.error));
      const events = run.history.events?.length ?? 0;
      console.log(`history events of a 10-step build: ${events}`);
      assert.ok(events < 250, `${events} events`);
    },
  );
});

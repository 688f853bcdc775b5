/**
 * buildImage: build an AMI from a recipe. Resolve the parent → (skip when an image of the same
 * content hash exists) → launch a builder → wait for its SSM agent → run the build steps, then the
 * validate steps, one by one over SSM Run Command → stop the builder and image it (the
 * `imageFromInstance` child, stop mode) → terminate the builder → launch a test instance from the
 * image, run the test steps, terminate it → tag the image with its content hash (accepted).
 *
 * Every step is durable: a worker lost mid-step resumes in that step (the command is found again by
 * its idempotency key, never sent twice) and finished steps never run again. On failure or
 * cancellation the undo runs in reverse: the running command is cancelled, the test instance and
 * the builder are terminated (or the builder is kept for debugging, for at most its TTL), and the
 * image and its snapshots are deleted.
 */
import { ApplicationFailure, condition, setHandler, startChild, workflowInfo } from '@temporalio/workflow';
import type { LaunchedBuildInstance, ResolvedParent } from '../activities/build';
import type { AwsTarget, ImageFromInstanceResult, Tags } from '../contracts';
import { WORKFLOW_TYPES, parseWith } from '../contracts';
import type { BuildImageInput, BuildImageResult, Phase, RecipeStep, StepOutcome } from '../contracts/recipe';
import {
  BuildFailure,
  DEFAULT_KEEP_BUILDER_SECONDS,
  DEFAULT_RECIPE_TIMEOUTS,
  DEFAULT_STEP_TIMEOUT_SECONDS,
  RECIPE_TAG,
  buildImageInputSchema,
  releaseBuilderSignal,
} from '../contracts/recipe';
import { act, guarded, la, local, ownerTags, remote, startRun, targetOf } from './bootstrap';
import type { Compensations, UndoHandle } from './compensation';
import { imageFromInstance } from './image-from-instance';
import { compensationCall, fastAwsCall, instanceWait, settleWait, settledAwsActivity } from './presets';
import type { Progress } from './progress';

/** The fixed steps; each recipe step adds `<phase>: <name>` in its place. */
export const BUILD_IMAGE_STEPS = [
  'resolve parent',
  'check unchanged',
  'launch builder',
  'wait for builder agent',
  'stop builder',
  'image builder',
  'terminate builder',
  'launch test instance',
  'wait for test agent',
  'terminate test instance',
  'accept image',
] as const;

/** Name placeholders, from the workflow's clock (deterministic) and the hash. */
export function renderImageName(
  template: string,
  recipe: string,
  hash: string,
  parent: string,
  now: Date,
): string {
  const iso = now.toISOString();
  const values: Record<string, string> = {
    recipe,
    hash: hash.slice(0, 12),
    date: iso.slice(0, 10).replace(/-/g, ''),
    time: iso.slice(11, 19).replace(/:/g, ''),
    parent,
  };
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (whole, k: string) => values[k] ?? whole);
}

function stepFailed(phase: Phase, step: RecipeStep, outcome: StepOutcome): ApplicationFailure {
  const code = outcome.exitCode !== undefined ? `, exit code ${outcome.exitCode}` : '';
  const output = [outcome.stderrTail, outcome.stdoutTail].filter((t) => t).join('\n');
  const lastLines = output.split('\n').slice(-10).join('\n');
  return ApplicationFailure.create({
    type: BuildFailure.BuildStepFailed,
    nonRetryable: true,
    message:
      `${phase} step '${step.name}' (${step.kind}) ended ${outcome.status}${code}` +
      (lastLines ? `; last output:\n${lastLines}` : '; it wrote no output'),
    details: [outcome],
  });
}

interface Ctx {
  input: BuildImageInput;
  target: AwsTarget;
  progress: Progress;
  comp: Compensations;
  platform: 'linux' | 'windows';
  outcomes: StepOutcome[];
  owner: { workflowId: string; runId: string };
}

/** Runs one phase's steps in order on `instanceId`; a step that does not succeed ends the run. */
async function runPhase(ctx: Ctx, phase: Phase, instanceId: string): Promise<void> {
  const { input, target, progress, comp, owner } = ctx;
  for (const [i, step] of (input[phase] ?? []).entries()) {
    const label = `${phase}: ${step.name}`;
    const timeoutSeconds = step.timeoutSeconds ?? DEFAULT_STEP_TIMEOUT_SECONDS;
    const started = Date.now();
    await progress.run(label, async () => {
      const sent: { commandId?: string } = {};
      // Registered before the send: a cancellation while the command runs cancels it on the instance.
      const undo = comp.add(`cancel command of ${label}`, () =>
        sent.commandId
          ? act.cancelCommand.executeWithOptions(remote(`undo: cancel ${label}`, compensationCall), [
              { target, instanceId, commandId: sent.commandId },
            ])
          : Promise.resolve({ cancelled: false, note: 'no command was sent' }),
      );
      const command = await act.sendBuildStep.executeWithOptions(
        remote(`send ${label}`, settledAwsActivity),
        [
          {
            target,
            instanceId,
            step,
            platform: ctx.platform,
            idempotencyKey: `${owner.workflowId}/${owner.runId}/${phase}/${i}`,
            ...(input.logs ? { logs: input.logs } : {}),
          },
        ],
      );
      sent.commandId = command.commandId;
      progress.note(label, `command ${command.commandId} on ${instanceId}`);
      // Delivery (or a reboot) may take minutes on top of the script's own timeout.
      const waitSeconds = timeoutSeconds + 600;
      const outcome = await act.waitForCommand.executeWithOptions(
        remote(`wait for ${label} (${command.commandId})`, settleWait(waitSeconds)),
        [{ target, instanceId, commandId: command.commandId, deadline: Date.now() + waitSeconds * 1000 }],
      );
      undo.discard();
      const record: StepOutcome = {
        phase,
        name: step.name,
        kind: step.kind,
        status: outcome.status === 'Success' && step.kind === 'reboot' ? 'Rebooted' : outcome.status,
        commandId: outcome.commandId,
        stdoutTail: outcome.stdoutTail,
        stderrTail: outcome.stderrTail,
        seconds: Math.round((Date.now() - started) / 1000),
        ...(outcome.exitCode !== undefined ? { exitCode: outcome.exitCode } : {}),
        ...(outcome.outputUrl ? { outputUrl: outcome.outputUrl } : {}),
      };
      ctx.outcomes.push(record);
      if (outcome.status !== 'Success') throw stepFailed(phase, step, record);
    });
  }
}

/** Launches this run's builder or test instance and waits for its SSM agent; its undo is registered first. */
async function launchAndWait(
  ctx: Ctx,
  role: 'builder' | 'test',
  imageId: string,
  rootDeviceName: string | undefined,
): Promise<LaunchedBuildInstance & { undo: UndoHandle }> {
  const { input, target, progress, comp, owner } = ctx;
  const timeouts = { ...DEFAULT_RECIPE_TIMEOUTS, ...input.timeouts };
  const made: { instanceId?: string } = {};
  const name = role === 'builder' ? 'builder' : 'test instance';
  const terminate = () =>
    act.terminateBuildInstance.executeWithOptions(remote(`undo: terminate ${name}`, compensationCall), [
      { target, owner, role, ...(made.instanceId ? { instanceId: made.instanceId } : {}) },
    ]);
  const keep = role === 'builder' && input.builder.keepBuilderOnFailure === true;
  const undo = comp.add(
    keep ? 'keep builder for debugging, then terminate it' : `terminate ${name}`,
    keep ? () => keepThenTerminate(ctx, made, terminate) : terminate,
    role === 'builder' ? 'launch builder' : 'launch test instance',
  );
  const tags: Tags = {
    ...input.builder.tags,
    Name: `amiflow-${role}/${input.recipe}`,
    ...ownerTags(WORKFLOW_TYPES.buildImage, owner),
    [RECIPE_TAG.recipe]: input.recipe,
    [RECIPE_TAG.role]: role,
  };
  const launched = await progress.run(role === 'builder' ? 'launch builder' : 'launch test instance', () =>
    act.launchBuildInstance.executeWithOptions(remote(`launch ${name} from ${imageId}`, settledAwsActivity), [
      {
        target,
        imageId,
        role,
        owner,
        builder: role === 'builder' ? input.builder : { ...input.builder, rootVolume: undefined },
        ...(rootDeviceName && role === 'builder' ? { rootDeviceName } : {}),
        tags,
      },
    ]),
  );
  made.instanceId = launched.instanceId;
  progress.resource(role === 'builder' ? 'builderInstanceId' : 'testInstanceId', launched.instanceId);
  await progress.run(role === 'builder' ? 'wait for builder agent' : 'wait for test agent', () =>
    act.waitForAgentOnline.executeWithOptions(
      remote(`wait for the SSM agent on ${launched.instanceId}`, instanceWait(timeouts.instanceReadySeconds)),
      [
        {
          target,
          instanceId: launched.instanceId,
          deadline: Date.now() + timeouts.instanceReadySeconds * 1000,
        },
      ],
    ),
  );
  return { ...launched, undo };
}

/**
 * The builder of a failed build, kept for debugging: tagged with when it goes, then terminated
 * after the TTL (a durable timer) or as soon as someone sends `releaseBuilder`.
 */
async function keepThenTerminate(ctx: Ctx, made: { instanceId?: string }, terminate: () => Promise<unknown>) {
  const ttl = ctx.input.builder.keepBuilderSeconds ?? DEFAULT_KEEP_BUILDER_SECONDS;
  if (made.instanceId) {
    const until = new Date(Date.now() + ttl * 1000).toISOString();
    await act.tagBuildResource.executeWithOptions(remote('tag the kept builder', compensationCall), [
      { target: ctx.target, resourceId: made.instanceId, tags: { [RECIPE_TAG.keepUntil]: until } },
    ]);
    ctx.progress.note('launch builder', `builder ${made.instanceId} kept for debugging until ${until}`);
    let released = false;
    setHandler(releaseBuilderSignal, () => {
      released = true;
    });
    await condition(() => released, ttl * 1000);
  }
  return terminate();
}

/** Stops the builder, then images it with the `imageFromInstance` child (stop mode: it stays stopped). */
async function imageBuilder(
  ctx: Ctx,
  builderId: string,
  imageName: string,
): Promise<ImageFromInstanceResult & { imageRun: { workflowId: string; runId: string } }> {
  const { input, target, progress, comp } = ctx;
  const timeouts = { ...DEFAULT_RECIPE_TIMEOUTS, ...input.timeouts };
  await progress.run('stop builder', () =>
    act.stopInstance.executeWithOptions(
      remote(`stop builder ${builderId}`, instanceWait(timeouts.instanceReadySeconds)),
      [{ target, instanceId: builderId, deadline: Date.now() + timeouts.instanceReadySeconds * 1000 }],
    ),
  );
  const child: { workflowId: string; runId?: string; imageId?: string } = {
    workflowId: `${workflowInfo().workflowId}/image`,
  };
  comp.add(
    'delete image and snapshots',
    () =>
      child.runId
        ? act.deleteImage.executeWithOptions(remote(`undo: delete image '${imageName}'`, compensationCall), [
            {
              target,
              imageName,
              workflowId: child.workflowId,
              runId: child.runId,
              ...(child.imageId ? { imageId: child.imageId } : {}),
            },
          ])
        : Promise.resolve({ note: 'the image child never started' }),
    'image builder',
  );
  return progress.run('image builder', async () => {
    const handle = await startChild(imageFromInstance, {
      workflowId: child.workflowId,
      args: [
        {
          region: input.region,
          ...(input.accountId ? { accountId: input.accountId } : {}),
          instanceId: builderId,
          imageName,
          mode: 'stop',
          ...(input.output.description ? { description: input.output.description } : {}),
          ...(input.output.tags ? { tags: input.output.tags } : {}),
          timeouts: { imageAvailableSeconds: timeouts.imageAvailableSeconds },
        },
      ],
      staticSummary: `Image the builder of recipe ${input.recipe} as ${imageName}`,
    });
    child.runId = handle.firstExecutionRunId;
    const result = await handle.result();
    child.imageId = result.imageId;
    progress.resource('imageId', result.imageId);
    return { ...result, imageRun: { workflowId: child.workflowId, runId: handle.firstExecutionRunId } };
  });
}

function skippedResult(
  input: BuildImageInput,
  parent: ResolvedParent,
  contentHash: string,
  existing: { imageId: string; imageName: string; snapshotIds: string[] },
  startedAt: string,
): BuildImageResult {
  return {
    recipe: input.recipe,
    region: input.region,
    ...(input.accountId ? { accountId: input.accountId } : {}),
    imageId: existing.imageId,
    imageName: existing.imageName,
    contentHash,
    parentImageId: parent.imageId,
    parentSource: parent.source,
    skipped: true,
    snapshotIds: existing.snapshotIds,
    steps: [],
    startedAt,
    finishedAt: new Date().toISOString(),
  };
}

export async function buildImage(rawInput: BuildImageInput): Promise<BuildImageResult> {
  const run = startRun({
    workflowType: WORKFLOW_TYPES.buildImage,
    steps: BUILD_IMAGE_STEPS,
    parse: (raw) => parseWith(buildImageInputSchema, raw),
    raw: rawInput,
  });
  const { input, progress, comp, startedAt } = run;
  const target = targetOf(input);
  const ctx: Ctx = {
    input,
    target,
    progress,
    comp,
    platform: input.builder.platform ?? 'linux',
    outcomes: [],
    owner: { workflowId: run.workflowId, runId: run.runId },
  };

  return guarded(run, async () => {
    const parent = await progress.run('resolve parent', () =>
      la.resolveParentImage.executeWithOptions(local('resolve the parent image'), [
        { target, parent: input.parent },
      ]),
    );
    progress.resource('parentImageId', parent.imageId);
    const unchanged = await progress.run('check unchanged', () =>
      la.findUnchangedImage.executeWithOptions(local('look for an image of the same content'), [
        { target, parentImageId: parent.imageId, recipe: input },
      ]),
    );
    if (unchanged.existing && input.force !== true) {
      for (const s of BUILD_IMAGE_STEPS.slice(2))
        progress.skip(s, `unchanged: ${unchanged.existing.imageId} has this content hash`);
      return skippedResult(input, parent, unchanged.contentHash, unchanged.existing, startedAt);
    }
    if (unchanged.existing)
      progress.note('check unchanged', `${unchanged.existing.imageId} has this hash; rebuilding (force)`);
    const imageName = renderImageName(
      input.output.imageName,
      input.recipe,
      unchanged.contentHash,
      parent.imageId,
      new Date(),
    );

    const builder = await launchAndWait(ctx, 'builder', parent.imageId, parent.rootDeviceName);
    await runPhase(ctx, 'build', builder.instanceId);
    await runPhase(ctx, 'validate', builder.instanceId);
    const image = await imageBuilder(ctx, builder.instanceId, imageName);
    await progress.run('terminate builder', () =>
      act.terminateBuildInstance.executeWithOptions(remote('terminate the builder', compensationCall), [
        { target, owner: ctx.owner, role: 'builder', instanceId: builder.instanceId },
      ]),
    );
    builder.undo.discard();

    let testInstanceId: string | undefined;
    if ((input.test ?? []).length > 0) {
      const tester = await launchAndWait(ctx, 'test', image.imageId, undefined);
      testInstanceId = tester.instanceId;
      await runPhase(ctx, 'test', tester.instanceId);
      await progress.run('terminate test instance', () =>
        act.terminateBuildInstance.executeWithOptions(
          remote('terminate the test instance', compensationCall),
          [{ target, owner: ctx.owner, role: 'test', instanceId: tester.instanceId }],
        ),
      );
      tester.undo.discard();
    } else {
      for (const s of ['launch test instance', 'wait for test agent', 'terminate test instance'])
        progress.skip(s, 'the recipe has no test steps');
    }

    // The hash tag marks the image accepted: only now may a later run return it instead of building.
    await progress.run('accept image', () =>
      la.tagBuildResource.executeWithOptions(
        { ...fastAwsCall, summary: `tag ${image.imageId} with its recipe hash` },
        [
          {
            target,
            resourceId: image.imageId,
            tags: {
              [RECIPE_TAG.contentHash]: unchanged.contentHash,
              [RECIPE_TAG.recipe]: input.recipe,
              [RECIPE_TAG.parentImage]: parent.imageId,
            },
          },
        ],
      ),
    );
    return {
      recipe: input.recipe,
      region: input.region,
      ...(input.accountId ? { accountId: input.accountId } : {}),
      imageId: image.imageId,
      imageName,
      contentHash: unchanged.contentHash,
      parentImageId: parent.imageId,
      parentSource: parent.source,
      skipped: false,
      builderInstanceId: builder.instanceId,
      builderInstanceType: builder.instanceType,
      ...(testInstanceId ? { testInstanceId } : {}),
      snapshotIds: image.snapshotIds,
      imageRun: image.imageRun,
      steps: ctx.outcomes,
      startedAt,
      finishedAt: new Date().toISOString(),
    };
  });
}

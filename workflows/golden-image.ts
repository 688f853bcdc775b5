/**
 * goldenImage: what an image pipeline does, as one durable run. From a builder instance its owners
 * keep patched: image it (child `imageFromInstance`), validate it by launching a test instance that
 * must run, pass both status checks and (optionally) report healthy on its console, wait for a
 * person's approval (optional, with a timeout), distribute it (child `copyImage`, child `shareImage`
 * per region), mark every copy approved, publish the new id (SSM parameter per region), and retire
 * old versions. Each stage lives in workflows/golden/ and takes the run's context (`GoldenRun`).
 *
 * - Versioning: the run stands for a scheduled time (Temporal's `TemporalScheduledStartTime` for
 *   runs a Schedule starts). Its version is derived from it (`date`) or counts up (`semver`), and
 *   an approved image for the same pipeline and scheduled time is returned instead of making a
 *   second one, so triggering the same time twice makes one image.
 * - Until the images are approved and published, every failure or cancellation undoes this run:
 *   test instance terminated, shares withdrawn, copies and the image deleted, parameters restored.
 *   The previous approved image stays the current one throughout.
 * - Retirement runs once the new version is committed; its failures are reported, not undone.
 */
import type { GoldenImageInput, GoldenImageResult } from '../contracts';
import { WORKFLOW_TYPES } from '../contracts';
import { guarded, startRun } from './bootstrap';
import { approvalGate, awaitApproval } from './golden/approval';
import { copyStage, shareStage } from './golden/distribute';
import { makeImage, pipelineTagsOf, planVersion, tagImage } from './golden/image';
import { markApproved, publishParameter } from './golden/publish';
import { retireOldVersions, rolloutStage } from './golden/retire';
import { validateImage } from './golden/validate';
import { GOLDEN_IMAGE_STEPS, GOLDEN_ROLLOUT_STAGE_PATCH, goldenRunOf, iso } from './golden/run';
import { parseGoldenImageInput } from './golden-validation';

export {
  GOLDEN_IMAGE_STEPS,
  GOLDEN_RECIPE_SOURCE_PATCH,
  GOLDEN_ROLLOUT_STAGE_PATCH,
  dateVersion,
  goldenChildIds,
  nextSemver,
  scheduledTimeOf,
} from './golden/run';

export async function goldenImage(rawInput: GoldenImageInput): Promise<GoldenImageResult> {
  // The approval updates are answered from the start, even for a run refused for bad input.
  const gate = approvalGate(rawInput);
  const run = goldenRunOf(
    startRun({
      workflowType: WORKFLOW_TYPES.goldenImage,
      steps: GOLDEN_IMAGE_STEPS,
      parse: parseGoldenImageInput,
      raw: rawInput,
    }),
  );
  const { input } = run;

  return await guarded(run, async () => {
    const plan = await planVersion(run);
    if ('reused' in plan) return plan.reused;
    const { version } = plan;
    const image = await makeImage(run, version);
    const { imageId, imageName } = image;
    await tagImage(run, imageId, version);
    const validation = await validateImage(run, imageId, imageName);
    const approval = await awaitApproval(run, gate, imageId, version);
    const images = await copyStage(run, imageId, imageName);
    await shareStage(run, images);
    await markApproved(run, images, pipelineTagsOf(run, version), approval, plan.builderImageId);
    await publishParameter(run, images, version);
    // Committed: this version is approved, distributed and published. Nothing above is undone any
    // more, and retirement runs to its end, cancellation or not.
    run.commit();
    const retention = await retireOldVersions(run, images);
    // Rollout (optional): runs before it was added replay without it.
    const rollout =
      input.rollout && run.progress.since(GOLDEN_ROLLOUT_STAGE_PATCH)
        ? await rolloutStage(run, input.rollout, images)
        : undefined;
    return {
      pipeline: input.pipeline,
      version,
      imageName,
      scheduledTime: run.scheduledTime,
      ...(run.scheduled.scheduleId ? { scheduleId: run.scheduled.scheduleId } : {}),
      reused: false,
      builderInstanceId: image.recipe?.builderInstanceId ?? run.builderInstanceId,
      ...(plan.builderImageId ? { builderImageId: plan.builderImageId } : {}),
      ...(image.recipe
        ? { builderImageId: image.recipe.build.parentImageId, build: image.recipe.build }
        : {}),
      images,
      ...(validation ? { validation } : {}),
      approval,
      retention,
      ...(rollout ? { rollout } : {}),
      startedAt: run.startedAt,
      finishedAt: iso(Date.now()),
    } satisfies GoldenImageResult;
  });
}

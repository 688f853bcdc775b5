/**
 * The first stages of a golden run: plan the version (or find this scheduled time's image made
 * already), make the image (child `imageFromInstance` of the builder, or child `buildImage` of a
 * recipe), and tag it with the pipeline's version.
 */
import type { ChildWorkflowOptions } from '@temporalio/workflow';
import { startChild, upsertSearchAttributes } from '@temporalio/workflow';
import type { ManagedImage } from '../../activities/retention';
import type { GoldenImageResult, ImageFromInstanceInput, Tags } from '../../contracts';
import { APPROVED_VALUE, AUTO_APPROVER, SearchAttr, TAG } from '../../contracts';
import type { BuildImageInput } from '../../contracts/recipe';
import { act, la, local, remote } from '../bootstrap';
import { buildImage } from '../build-image';
import { imageFromInstance } from '../image-from-instance';
import { countScheduleSkip } from '../metrics';
import type { GoldenRun } from './run';
import { GOLDEN_IMAGE_STEPS, dateVersion, iso, nextSemver } from './run';

export interface PlannedVersion {
  version: string;
  /** The builder's own image, when imaging a builder (the original's lineage tag). */
  builderImageId: string | undefined;
}

/** The image this run made, and the run that owns it (for the undo's ownership proof). */
export interface GoldenBuiltImage {
  imageId: string;
  imageName: string;
  /** The run that tagged the image as its own: the child `imageFromInstance` (directly, or the build's). */
  ownerWorkflowId: string;
  childRunId: string;
  /** Present when built from a recipe. */
  recipe?: {
    builderInstanceId: string;
    build: NonNullable<GoldenImageResult['build']>;
  };
}

/**
 * 1. The builder, and what the pipeline has made so far (for the version, and a repeat of this
 * time). A repeat of this scheduled time returns the approved image found instead of a plan.
 */
export async function planVersion(run: GoldenRun): Promise<PlannedVersion | { reused: GoldenImageResult }> {
  const { input, progress, target, recipe, builderInstanceId } = run;
  const { builder, existing } = await progress.run('plan version', async () => ({
    builder: recipe
      ? { imageId: undefined as string | undefined }
      : await la.readBuilderInstance.executeWithOptions(local(`read builder ${builderInstanceId}`), [
          { target, instanceId: builderInstanceId },
        ]),
    existing: await la.listManagedImages.executeWithOptions(
      local(`list pipeline ${input.pipeline}'s images`),
      [{ target, tags: { [TAG.pipeline]: input.pipeline } }],
    ),
  }));
  const repeat = existing.find(
    (i: ManagedImage) =>
      i.tags[TAG.scheduledTime] === run.scheduledTime && i.tags[TAG.approved] === APPROVED_VALUE,
  );
  if (repeat) return { reused: reuse(run, repeat) };
  const version =
    input.versioning?.scheme === 'semver'
      ? nextSemver(
          input.versioning.series,
          existing.map((i) => i.tags[TAG.version]),
        )
      : dateVersion(run.scheduled.at);
  progress.resource('version', version);
  return { version, builderImageId: builder.imageId };
}

/**
 * 2. The image, by the reference workflow or a recipe build (either undoes itself when it fails or
 * is cancelled), registered for deletion until the version is committed.
 */
export async function makeImage(run: GoldenRun, version: string): Promise<GoldenBuiltImage> {
  const { input, progress, recipe, target } = run;
  // A recipe's image is named by its own template (the build names it when it images the builder).
  const plannedName = `${input.imageNamePrefix ?? input.pipeline}-${version}`;
  if (!recipe) progress.resource('imageName', plannedName);
  const image = recipe
    ? await buildFromRecipe(run, recipe, version)
    : await imageBuilder(run, plannedName, version);
  if (recipe) progress.resource('imageName', image.imageName);
  const { imageId, imageName } = image;
  progress.resource('imageId', imageId);
  if (run.withSearchAttributes) upsertSearchAttributes([{ key: SearchAttr.imageId, value: imageId }]);
  run.undo(
    'delete golden image',
    () =>
      act.deleteImage.executeWithOptions(remote(`undo: delete ${imageId} and its snapshots`), [
        { target, imageName, workflowId: image.ownerWorkflowId, runId: image.childRunId, imageId },
      ]),
    'image builder',
  );
  return image;
}

/** The builder imaged by a child `imageFromInstance`. */
async function imageBuilder(run: GoldenRun, imageName: string, version: string): Promise<GoldenBuiltImage> {
  const { input, target, ids, builderInstanceId } = run;
  const imageInput: ImageFromInstanceInput = {
    ...target,
    instanceId: builderInstanceId,
    imageName,
    description: (
      input.description ?? `amiflow golden image: pipeline ${input.pipeline} version ${version}`
    ).slice(0, 255),
    ...(input.tags ? { tags: input.tags } : {}),
    mode: input.mode ?? 'stop',
    ...(input.mode === 'app-consistent' && input.appConsistent ? { appConsistent: input.appConsistent } : {}),
    timeouts: {
      instanceStateSeconds: run.timeouts.instanceStateSeconds,
      imageAvailableSeconds: run.timeouts.imageAvailableSeconds,
    },
  };
  return await runImageBuilder(
    run,
    {
      workflow: imageFromInstance,
      workflowId: ids.image,
      input: imageInput,
      summary: `Golden image ${imageName} from ${builderInstanceId}`,
      attributes: [
        { key: SearchAttr.instanceId, value: builderInstanceId },
        { key: SearchAttr.region, value: input.region },
      ],
    },
    (result, childRunId) => ({ imageId: result.imageId, imageName, ownerWorkflowId: ids.image, childRunId }),
  );
}

/** The child run that makes golden's image, and the search attributes it carries where registered. */
interface ImageBuilderChild<I, R> {
  workflow: (input: I) => Promise<R>;
  workflowId: string;
  input: I;
  summary: string;
  attributes: NonNullable<ChildWorkflowOptions['typedSearchAttributes']>;
}

/**
 * The 'image builder' step: starts the child that makes the image (imaging a builder instance, or
 * building a recipe) and turns its result into golden's image. `toImage` gets the child's first
 * run id, which owns the image when the child made it itself.
 */
async function runImageBuilder<I, R>(
  run: GoldenRun,
  child: ImageBuilderChild<I, R>,
  toImage: (result: R, firstExecutionRunId: string) => GoldenBuiltImage,
): Promise<GoldenBuiltImage> {
  return await run.progress.run(
    'image builder',
    async () => {
      const handle = await startChild(child.workflow, {
        workflowId: child.workflowId,
        args: [child.input],
        staticSummary: child.summary,
        ...(run.withSearchAttributes ? { typedSearchAttributes: child.attributes } : {}),
      });
      return toImage(await handle.result(), handle.firstExecutionRunId);
    },
    `child workflow ${child.workflowId}`,
  );
}

/**
 * The image, built from the recipe by a child `buildImage` (it undoes itself when it fails or is
 * cancelled, so a failed build leaves golden nothing to undo). Always forced: each golden run
 * makes a new version, and a skipped build would hand over an image an earlier run owns (its
 * tags and its deletion on a later failure). The build's own test phase runs before golden's
 * validation; the pipeline's tags and description go onto the built image.
 */
async function buildFromRecipe(
  run: GoldenRun,
  r: BuildImageInput,
  version: string,
): Promise<GoldenBuiltImage> {
  const { input, ids } = run;
  const child: BuildImageInput = {
    ...r,
    force: true,
    output: {
      ...r.output,
      ...(input.tags ? { tags: { ...r.output.tags, ...input.tags } } : {}),
      description: (
        input.description ??
        r.output.description ??
        `amiflow golden image: pipeline ${input.pipeline} version ${version}`
      ).slice(0, 255),
    },
  };
  return await runImageBuilder(
    run,
    {
      workflow: buildImage,
      workflowId: ids.build,
      input: child,
      summary: `Golden image of pipeline ${input.pipeline} ${version}: build recipe ${r.recipe}`,
      attributes: [{ key: SearchAttr.region, value: input.region }],
    },
    (result, firstExecutionRunId) => {
      // Forced, so never skipped: the image is this build's, tagged by its imageFromInstance run.
      const imageRun = result.imageRun ?? { workflowId: ids.build, runId: firstExecutionRunId };
      return {
        imageId: result.imageId,
        imageName: result.imageName,
        ownerWorkflowId: imageRun.workflowId,
        childRunId: imageRun.runId,
        recipe: {
          builderInstanceId: result.builderInstanceId ?? '',
          build: {
            workflowId: ids.build,
            recipe: result.recipe,
            contentHash: result.contentHash,
            parentImageId: result.parentImageId,
          },
        },
      };
    },
  );
}

/** The pipeline's own tags on every image of this version (approval adds to them). */
export function pipelineTagsOf(run: GoldenRun, version: string): Tags {
  return {
    [TAG.pipeline]: run.input.pipeline,
    [TAG.version]: version,
    [TAG.scheduledTime]: run.scheduledTime,
  };
}

export async function tagImage(run: GoldenRun, imageId: string, version: string): Promise<void> {
  const { input, target } = run;
  await run.progress.run('tag image', () =>
    la.tagImage.executeWithOptions(local(`tag ${imageId} with pipeline ${input.pipeline} ${version}`), [
      { target, imageId, tags: pipelineTagsOf(run, version), snapshots: true },
    ]),
  );
}

/** An approved image for this pipeline and scheduled time exists: this run makes nothing. */
function reuse(run: GoldenRun, found: ManagedImage): GoldenImageResult {
  const { input, progress, scheduledTime, scheduled } = run;
  countScheduleSkip('already-done');
  for (const step of GOLDEN_IMAGE_STEPS.slice(1))
    progress.skip(step, `reused ${found.imageId}: approved for ${scheduledTime} already`);
  progress.resource('imageId', found.imageId);
  const version = found.tags[TAG.version] ?? '';
  return {
    pipeline: input.pipeline,
    version,
    imageName: found.name ?? '',
    scheduledTime,
    ...(scheduled.scheduleId ? { scheduleId: scheduled.scheduleId } : {}),
    reused: true,
    builderInstanceId: run.builderInstanceId,
    images: [{ ...run.target, imageId: found.imageId, role: 'original' }],
    approval: {
      by: found.tags[TAG.approvedBy] ?? '',
      at: found.tags[TAG.approvedAt] ?? '',
      gate: (found.tags[TAG.approvedBy] ?? AUTO_APPROVER) !== AUTO_APPROVER,
    },
    retention: { actions: [], failures: 0, errors: [] },
    startedAt: run.startedAt,
    finishedAt: iso(Date.now()),
  };
}

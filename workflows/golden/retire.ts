/**
 * After the commit: old versions retired (deprecated, then deregistered beyond retention; run to
 * its end, cancellation or not; failures reported, not undone) and the optional rollout.
 */
import { CancellationScope, executeChild, isCancellation } from '@temporalio/workflow';
import type {
  GoldenImageOut,
  GoldenRolloutStage,
  RetentionReport,
  RolloutImageResult,
} from '../../contracts';
import { APPROVED_VALUE, MANAGED_BY_VALUE, TAG } from '../../contracts';
import { errorMessage } from '../progress';
import { applyRetention } from '../retention';
import { rolloutImage } from '../rollout-image';
import { childAttributes } from './distribute';
import type { GoldenRun } from './run';
import { targetOfImage } from './run';

export async function retireOldVersions(run: GoldenRun, images: GoldenImageOut[]): Promise<RetentionReport> {
  const { input, progress } = run;
  const report: RetentionReport = await CancellationScope.nonCancellable(() =>
    progress.run('retire old versions', () =>
      applyRetention(
        images.map((img) => ({
          target: targetOfImage(img),
          selector: { [TAG.pipeline]: input.pipeline, [TAG.approved]: APPROVED_VALUE },
          owned: { [TAG.managedBy]: MANAGED_BY_VALUE, [TAG.pipeline]: input.pipeline },
        })),
        run.retention,
      ),
    ),
  );
  if (report.failures > 0 || report.errors.length > 0) {
    const text = `${report.failures + report.errors.length} retirement action(s) failed: see the result`;
    progress.note('retire old versions', text);
    // Committed, yet not clean: the run completes, with problems, never as a plain success.
    progress.problem(
      `retire old versions: ${text}${report.errors.length ? ` (${report.errors.map((e) => `${e.region}: ${e.error}`).join('; ')})` : ''}`,
    );
  }
  return report;
}

/** Rollout children started before this carry no search attributes. */
export const GOLDEN_ROLLOUT_SEARCH_ATTRIBUTES_PATCH = 'amiflow-golden-rollout-search-attributes';

/**
 * The committed image rolled out (child `rolloutImage`, the image per region as this account
 * holds it). A rollout that fails has rolled itself back: the image stays approved and the run
 * completes with the rollout as its problem. A cancellation cancels the rollout (it rolls back).
 */
export async function rolloutStage(
  run: GoldenRun,
  stage: GoldenRolloutStage,
  images: GoldenImageOut[],
): Promise<RolloutImageResult | undefined> {
  const { input, progress } = run;
  const childId = run.ids.rollout;
  const imageIds: Record<string, string> = {};
  for (const img of images)
    if ((img.accountId ?? '') === (input.accountId ?? '') && !imageIds[img.region])
      imageIds[img.region] = img.imageId;
  // The rollout child names the image of the pipeline's own region (or its first), so it sets its
  // outcome and step and a search by the golden image finds it; rollouts started before this patch
  // carried no attributes.
  const [region, imageId] = Object.entries(imageIds).find(([r]) => r === run.target.region) ??
    Object.entries(imageIds)[0] ?? ['', ''];
  const attributes = imageId
    ? childAttributes(run, imageId, region, GOLDEN_ROLLOUT_SEARCH_ATTRIBUTES_PATCH)
    : {};
  try {
    return await progress.run(
      'rollout',
      () =>
        executeChild(rolloutImage, {
          workflowId: childId,
          args: [{ ...stage, imageIds }],
          ...attributes,
          staticSummary: `Roll out ${input.pipeline} ${Object.values(imageIds).join(', ')}`,
        }),
      `child workflow ${childId}`,
    );
  } catch (err) {
    if (isCancellation(err)) throw err;
    progress.problem(`rollout: ${errorMessage(err)}`);
    return undefined;
  }
}

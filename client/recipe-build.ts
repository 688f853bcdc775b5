/**
 * Starting `buildImage` from the typed client: the resolved recipe is validated again (the same
 * schema the workflow checks at start), the workflow id is derived from its content, and the
 * result is printed for people.
 */
import { createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { parseWith } from '../contracts/issues';
import type { BuildImageInput, BuildImageResult } from '../contracts/recipe';
import { buildImageInputSchema } from '../contracts/recipe';
import { buildImage } from '../workflows';
import { runAttributes, startRun } from './distribution';

export interface BuildStartOptions {
  workflowId?: string;
  searchAttributes?: boolean;
}

/**
 * `build/<recipe>/<region>/<12 hex of the input>`: the same recipe started twice while the first
 * run is in progress is one run; once it ended, the same id starts a new one.
 */
export function buildWorkflowId(input: BuildImageInput): string {
  const digest = createHash('sha256').update(JSON.stringify(input)).digest('hex').slice(0, 12);
  return `build/${input.recipe}/${input.region}/${digest}`;
}

export async function startBuildImageRun(
  temporal: Client,
  taskQueue: string,
  input: BuildImageInput,
  opts: BuildStartOptions = {},
): Promise<{ workflowId: string; runId: string }> {
  const valid = parseWith(buildImageInputSchema, input);
  const steps = valid.build.length + (valid.validate?.length ?? 0) + (valid.test?.length ?? 0);
  return startRun(temporal, {
    workflow: buildImage,
    input: valid,
    workflowId: opts.workflowId ?? buildWorkflowId(valid),
    taskQueue,
    summary: `Build image from recipe ${valid.recipe} (${steps} steps, ${valid.region})${valid.force ? ', forced' : ''}`,
    ...runAttributes(opts, { imageId: '(pending)', region: valid.region }),
  });
}

export function formatBuildResult(r: BuildImageResult): string {
  const head = r.skipped
    ? `unchanged: ${r.imageId} (${r.imageName}) was built from the same parent and recipe (hash ${r.contentHash.slice(0, 12)}); nothing built (--force rebuilds)`
    : `built ${r.imageId} (${r.imageName}) in ${r.region} from ${r.parentImageId} (${r.parentSource})`;
  const steps = r.steps.map(
    (s) =>
      `  ✔ ${`${s.phase}: ${s.name}`.padEnd(40)} ${`${s.seconds}s`.padStart(6)}  ${s.status}${s.exitCode !== undefined ? ` (exit ${s.exitCode})` : ''}`,
  );
  return [
    head,
    ...steps,
    ...(r.builderInstanceId
      ? [`  builder ${r.builderInstanceId} (${r.builderInstanceType ?? '?'}) terminated`]
      : []),
    ...(r.testInstanceId ? [`  test instance ${r.testInstanceId} terminated`] : []),
  ].join('\n');
}

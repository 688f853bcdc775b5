/**
 * Client side of rolloutImage: a workflow id derived from the request (the same image to the same
 * targets twice is one run), and a summary for the Web UI.
 */
import { createHash } from 'node:crypto';
import type { RolloutImageInput } from '../contracts';

export function rolloutWorkflowId(input: RolloutImageInput): string {
  const digest = createHash('sha256')
    .update(JSON.stringify({ targets: input.targets, imageId: input.imageId, imageIds: input.imageIds }))
    .digest('hex')
    .slice(0, 12);
  return `rollout-${input.imageId ?? 'per-region'}-${digest}`;
}

export function rolloutSummary(input: RolloutImageInput): string {
  const groups = input.targets.reduce((n, t) => n + (t.autoScalingGroups?.length ?? 0), 0);
  const templates = input.targets.reduce((n, t) => n + (t.launchTemplates?.length ?? 0), 0);
  const regions = [...new Set(input.targets.map((t) => t.region))].join(', ');
  return `roll out ${input.imageId ?? 'per-region images'} to ${templates} launch template and ${groups} group selector(s) in ${regions}`;
}

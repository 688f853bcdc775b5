/**
 * Client side of goldenImage and backupInstances started by hand (Schedules start them otherwise:
 * client/schedules.ts): deterministic workflow ids, Web UI summaries, and the result text.
 */
import type { BackupInput, BackupResult, GoldenImageInput, GoldenImageResult } from '../contracts';

/** The scheduled time a manual run stands for: now, to the second (what its version is made of). */
export function manualScheduledTime(now = Date.now()): string {
  return new Date(Math.floor(now / 1000) * 1000).toISOString();
}

/** `golden-image/<region>/<account|self>/<pipeline>/<scheduled time>`: one run per pipeline and time. */
export function goldenWorkflowId(input: GoldenImageInput & { scheduledTime: string }): string {
  return `golden-image/${input.region}/${input.accountId ?? 'self'}/${input.pipeline}/${input.scheduledTime}`;
}

export function backupWorkflowId(input: BackupInput & { scheduledTime: string }): string {
  return `backup/${input.region}/${input.accountId ?? 'self'}/${input.plan}/${input.scheduledTime}`;
}

export function goldenSummary(input: GoldenImageInput): string {
  const regions = [input.region, ...(input.distribution?.copies ?? []).map((c) => c.region)];
  const source = input.recipe ? `recipe ${input.recipe.recipe}` : input.builderInstanceId;
  return `Golden image ${input.pipeline} from ${source} → ${[...new Set(regions)].join(', ')}`;
}

export function backupSummary(input: BackupInput): string {
  const what = input.instanceIds?.length
    ? input.instanceIds.join(', ')
    : `instances tagged ${JSON.stringify(input.selector?.tags ?? {})}`;
  return `Backup ${input.plan}: ${what} (${input.mode ?? 'reboot'}, ${input.region})`;
}

export function isGoldenResult(value: unknown): value is GoldenImageResult {
  return typeof value === 'object' && value !== null && 'pipeline' in value && 'images' in value;
}

export function isBackupResult(value: unknown): value is BackupResult {
  return typeof value === 'object' && value !== null && 'plan' in value && 'instances' in value;
}

export function formatGoldenResult(r: GoldenImageResult): string {
  if (r.reused)
    return `pipeline ${r.pipeline}: version ${r.version} for ${r.scheduledTime} exists already (${r.images[0]?.imageId ?? '?'}); nothing made`;
  const retention = r.retention.actions.filter((a) => a.action !== 'keep');
  return [
    `pipeline ${r.pipeline}: version ${r.version} ('${r.imageName}') approved by ${r.approval.by}${r.approval.gate ? '' : ' (no approval gate)'}`,
    ...r.images.map(
      (i) =>
        `  ${i.imageId}  ${i.region}${i.accountId ? ` · ${i.accountId}` : ''}  ${i.role}` +
        (i.parameter ? `  ${i.parameter.name} v${i.parameter.version ?? '?'}` : '') +
        (i.shareWorkflowId ? '  shared' : ''),
    ),
    ...(r.validation
      ? [
          `  validated on ${r.validation.testInstanceId} (${r.validation.subnetId}): status checks ok` +
            (r.validation.healthCheck ? `, console: ${r.validation.healthCheck.marker}` : ''),
        ]
      : []),
    `  retirement: ${retention.length ? retention.map((a) => `${a.action} ${a.imageId} (${a.region})${a.outcome === 'failed' ? ` FAILED: ${a.error ?? ''}` : ''}`).join('; ') : 'nothing to retire'}`,
    ...r.retention.errors.map((e) => `  retirement not run in ${e.region}: ${e.error}`),
  ].join('\n');
}

export function formatBackupResult(r: BackupResult): string {
  return [
    `backup plan ${r.plan} (${r.mode}, scheduled ${r.scheduledTime}):`,
    ...r.instances.map(
      (o) =>
        `  ${o.instanceId}: ${o.status}${o.imageId ? ` ${o.imageId}` : ''}` +
        (o.copy?.imageId ? `, copy ${o.copy.imageId} in ${o.copy.region}` : '') +
        (o.error ? ` (${o.error})` : ''),
    ),
    `  retired: ${
      r.retention.actions
        .filter((a) => a.action === 'deregister')
        .map((a) => a.imageId)
        .join(', ') || 'none'
    }`,
  ].join('\n');
}

/**
 * Client side of `migrateInstance`: the deterministic workflow id, the Web UI summary, and the
 * command-line result text.
 */
import type { MigrateInstanceInput, MigrateInstanceResult } from '../contracts';
import type { RunPlan } from './distribution';
import { watchIt } from './distribution';

/**
 * `migrate-instance/<region>/<account|self>/<instance>`: one migration of an instance at a time,
 * whatever its target (a second start is refused while the first runs).
 */
export function migrateWorkflowId(input: MigrateInstanceInput): string {
  return `migrate-instance/${input.region}/${input.accountId ?? 'self'}/${input.instanceId}`;
}

export function migrateSummary(input: MigrateInstanceInput): string {
  const to = input.targetAvailabilityZone ?? input.overrides?.subnetId ?? '?';
  return `Migrate ${input.instanceId} → ${to} (source: ${input.sourceAction}, ${input.region})`;
}

/** A migration run: its id, summary, the instance it is found by, and the refusal of a second one. */
export function migrateRun(input: MigrateInstanceInput): RunPlan {
  return {
    workflowId: migrateWorkflowId(input),
    summary: migrateSummary(input),
    attributes: { instanceId: input.instanceId, region: input.region },
    inProgress: (id) =>
      `a migration of ${input.instanceId} is already in progress as '${id}'; ${watchIt(id)}`,
  };
}

export function formatMigrateResult(r: MigrateInstanceResult): string {
  return [
    `instance ${r.sourceInstanceId} moved from ${r.sourceAvailabilityZone} to ${r.targetAvailabilityZone}: ` +
      `new instance ${r.newInstanceId} (${r.instanceType}, ${r.subnetId}) is ${r.newInstanceState}`,
    `  source ${r.sourceInstanceId} is ${r.sourceFinalState}` +
      (r.downtimeSeconds > 0 ? ` (downtime ${r.downtimeSeconds.toFixed(1)} s)` : ''),
    ...(r.elasticIp
      ? [
          `  Elastic IP ${r.elasticIp.publicIp} is on ${r.elasticIp.movedToNewInstance ? r.newInstanceId : r.sourceInstanceId}`,
        ]
      : []),
    r.image.kept
      ? `  intermediate image ${r.image.imageId} kept`
      : r.image.deleted
        ? `  intermediate image ${r.image.imageId} and its snapshots deleted`
        : `  intermediate image ${r.image.imageId} was NOT deleted: ${r.image.error ?? 'unknown reason'}`,
    ...(r.notCarriedOver.length ? [`  not carried over: ${r.notCarriedOver.join('; ')}`] : []),
  ].join('\n');
}

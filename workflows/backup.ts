/**
 * backupInstances: consistent backups of chosen instances, what AWS Backup does without its gap
 * (AWS Backup never reboots, so its AMIs are crash-consistent only). Started by a Schedule in a
 * maintenance window: each instance (by id, or selected by tags) is imaged by a child
 * `imageFromInstance` in `reboot` (default) or `stop` mode, optionally copied to another region
 * (child `copyImage`), and old backups of that instance are retired per retention, in each region.
 *
 * - An instance whose imaging would begin after the window (scheduled time + `windowSeconds`) is
 *   skipped: reboots and stops happen only inside it.
 * - One instance failing does not cost the others their backups; the run then fails with
 *   `BackupIncomplete`, naming each instance's outcome. A failed backup retires nothing of its
 *   instance: the old backups are all it has.
 */
import { ApplicationFailure, CancellationScope, CancelledFailure, startChild } from '@temporalio/workflow';
import type { SearchAttributePair } from '@temporalio/common';
import type {
  AwsTarget,
  BackupInput,
  BackupOutcome,
  BackupResult,
  CopyImageInput,
  ImageFromInstanceInput,
  RetentionReport,
  Tags,
} from '../contracts';
import {
  DEFAULT_BACKUP_RETENTION,
  DEFAULT_TIMEOUTS,
  FailureType,
  MANAGED_BY_VALUE,
  SearchAttr,
  TAG,
  WORKFLOW_TYPES,
} from '../contracts';
import type { Run } from './bootstrap';
import { la, local, startRun, targetOf } from './bootstrap';
import { copyImage } from './copy-image';
import { dateVersion, scheduledTimeOf } from './golden/run';
import { parseBackupInput } from './golden-validation';
import { imageFromInstance } from './image-from-instance';
import { amiflowAttributesRegistered, errorMessage } from './progress';
import type { Since } from './patches';
import type { RetentionScope } from './retention';
import { applyRetention } from './retention';
import { Semaphore } from './semaphore';
import { countScheduleSkip } from './metrics';

export const BACKUP_STEPS = ['select instances', 'retire old backups'] as const;

export function backupStep(instanceId: string): string {
  return `back up ${instanceId}`;
}

/** Child workflow ids of a backup run, per instance. */
export function backupChildIds(workflowId: string, instanceId: string) {
  return { image: `${workflowId}/image/${instanceId}`, copy: `${workflowId}/copy/${instanceId}` };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Backup children made before this change carry no search attributes; the start commands differ. */
export const BACKUP_CHILD_SEARCH_ATTRIBUTES_PATCH = 'amiflow-backup-child-search-attributes';

/**
 * Search attributes for a child run, so a search by instance finds the backups made of it (each
 * child's id names the backup run). Only where the parent's own attributes show they are registered.
 */
function childAttributes(
  since: Since,
  pairs: SearchAttributePair[],
): { typedSearchAttributes?: SearchAttributePair[] } {
  return amiflowAttributesRegistered() && since(BACKUP_CHILD_SEARCH_ATTRIBUTES_PATCH)
    ? { typedSearchAttributes: pairs }
    : {};
}

/** What every step of one backup run shares. */
interface Backup extends Run<BackupInput> {
  target: AwsTarget;
  scheduledTime: string;
  /** The scheduled time as a version stamp, in image names. */
  stamp: string;
  mode: NonNullable<BackupInput['mode']>;
  timeouts: typeof DEFAULT_TIMEOUTS & { copyAvailableSeconds: number } & BackupInput['timeouts'];
  /** Epoch ms after which no instance is imaged any more (the maintenance window's end). */
  windowEnds?: number;
}

export async function backupInstances(rawInput: BackupInput): Promise<BackupResult> {
  const run = startRun({
    workflowType: WORKFLOW_TYPES.backupInstances,
    steps: BACKUP_STEPS,
    parse: parseBackupInput,
    raw: rawInput,
  });
  const { input, progress } = run;
  const scheduled = scheduledTimeOf(input);
  const b: Backup = {
    ...run,
    target: targetOf(input),
    scheduledTime: iso(scheduled.at),
    stamp: dateVersion(scheduled.at),
    mode: input.mode ?? 'reboot',
    timeouts: { ...DEFAULT_TIMEOUTS, copyAvailableSeconds: 12 * 3600, ...input.timeouts },
    ...(input.windowSeconds !== undefined ? { windowEnds: scheduled.at + input.windowSeconds * 1000 } : {}),
  };
  progress.resource('plan', input.plan);
  progress.resource('scheduledTime', b.scheduledTime);

  try {
    const instanceIds = await progress.run('select instances', async () => {
      const byTag = input.selector
        ? await la.findInstancesByTags.executeWithOptions(
            local(`find instances tagged ${JSON.stringify(input.selector.tags)}`),
            [{ target: b.target, tags: input.selector.tags }],
          )
        : [];
      return [...new Set([...(input.instanceIds ?? []), ...byTag])];
    });
    progress.note('select instances', instanceIds.length ? instanceIds.join(', ') : 'no instance matched');

    const slots = new Semaphore(input.concurrency ?? 2);
    const outcomes: BackupOutcome[] = instanceIds.map((instanceId) => ({ instanceId, status: 'skipped' }));
    await Promise.all(
      outcomes.map(async (outcome) => {
        await slots.withPermit(
          () =>
            backUpInstance(b, outcome).catch((err: unknown) => {
              if (outcome.status !== 'backed-up') outcome.status = 'failed';
              outcome.error = errorMessage(err);
            }),
          (ahead) => progress.note(backupStep(outcome.instanceId), `queued: ${ahead} ahead`),
        );
      }),
    );
    if (CancellationScope.current().consideredCancelled)
      throw new CancelledFailure(`backupInstances ${b.workflowId} was cancelled`);

    const report = await retireOldBackups(b, outcomes);
    const result: BackupResult = {
      plan: input.plan,
      region: input.region,
      ...(input.accountId ? { accountId: input.accountId } : {}),
      scheduledTime: b.scheduledTime,
      mode: b.mode,
      instances: outcomes,
      retention: report,
      startedAt: b.startedAt,
      finishedAt: iso(Date.now()),
    };
    const incomplete = outcomes.filter((o) => o.status !== 'backed-up' || o.copy?.error);
    if (incomplete.length > 0 || instanceIds.length === 0) throw backupIncomplete(result, incomplete);
    progress.setPhase('succeeded');
    return result;
  } catch (err) {
    progress.setPhase(CancellationScope.current().consideredCancelled ? 'cancelled' : 'failed', err);
    throw err;
  }
}

/**
 * One instance: imaged by a child imageFromInstance (unless the window has ended), tagged as the
 * plan's backup, and copied to the copy region if asked. Fills `outcome` as it goes. Returns the
 * step's own promise (no async wrapper): the fan-out's promise chain, and so the order of commands
 * across instances, stays as it was before this was a function of its own.
 */
function backUpInstance(b: Backup, outcome: BackupOutcome): Promise<void> {
  const { input, progress, target } = b;
  const { instanceId } = outcome;
  const step = backupStep(instanceId);
  return progress.run(step, async () => {
    if (b.windowEnds !== undefined && Date.now() > b.windowEnds) {
      outcome.error = `outside the maintenance window (it ended ${iso(b.windowEnds)}): not imaged`;
      countScheduleSkip('outside-window');
      progress.note(step, outcome.error);
      return;
    }
    const ids = backupChildIds(b.workflowId, instanceId);
    const imageName = `${input.plan}-${instanceId}-${b.stamp}`;
    const child = await startChild(imageFromInstance, {
      workflowId: ids.image,
      args: [backupImageInput(b, instanceId, imageName)],
      ...childAttributes(progress.since, [
        { key: SearchAttr.instanceId, value: instanceId },
        { key: SearchAttr.region, value: input.region },
      ]),
      staticSummary: `Backup of ${instanceId} (${b.mode}, plan ${input.plan})`,
    });
    const image = await child.result();
    outcome.status = 'backed-up';
    outcome.imageId = image.imageId;
    outcome.imageName = imageName;
    outcome.downtimeSeconds = image.downtimeSeconds;
    progress.resource(instanceId, image.imageId);
    const backupTags = backupTagsOf(b, instanceId);
    await la.tagImage.executeWithOptions(local(`tag ${image.imageId} as plan ${input.plan}'s backup`), [
      { target, imageId: image.imageId, tags: backupTags, snapshots: true },
    ]);
    const copyTo = input.copyTo;
    if (!copyTo) return;
    // The backup's copy in the copy region (child copyImage), tagged as a backup too.
    outcome.copy = { region: copyTo.region };
    try {
      const copied = await startChild(copyImage, {
        workflowId: ids.copy,
        args: [backupCopyInput(b, image.imageId, copyTo)],
        ...childAttributes(progress.since, [
          { key: SearchAttr.instanceId, value: instanceId },
          { key: SearchAttr.imageId, value: image.imageId },
          { key: SearchAttr.region, value: copyTo.region },
        ]),
        staticSummary: `Copy backup ${image.imageId} of ${instanceId} to ${copyTo.region}`,
      });
      const copyId = (await copied.result()).destinations[0]?.imageId;
      if (copyId) {
        outcome.copy.imageId = copyId;
        await la.tagImage.executeWithOptions(local(`tag the copy ${copyId} as a backup`), [
          {
            target: { ...target, region: copyTo.region },
            imageId: copyId,
            tags: backupTags,
            snapshots: true,
          },
        ]);
      }
    } catch (err) {
      // The backup itself is good; the run reports the missing copy.
      outcome.copy.error = errorMessage(err);
      throw err;
    }
  });
}

/** The child imageFromInstance's input for one instance (the plan's mode, tags and timeouts). */
function backupImageInput(b: Backup, instanceId: string, imageName: string): ImageFromInstanceInput {
  const { input, target, timeouts } = b;
  return {
    ...target,
    instanceId,
    imageName,
    description: `amiflow backup (plan ${input.plan}) of ${instanceId}, scheduled ${b.scheduledTime}`,
    ...(input.tags ? { tags: input.tags } : {}),
    mode: b.mode,
    ...(b.mode === 'app-consistent' && input.appConsistent ? { appConsistent: input.appConsistent } : {}),
    timeouts: {
      instanceStateSeconds: timeouts.instanceStateSeconds,
      imageAvailableSeconds: timeouts.imageAvailableSeconds,
    },
  };
}

/** The tags that make an image (and its copy) this plan's backup of this instance: retention selects by them. */
function backupTagsOf(b: Backup, instanceId: string): Tags {
  return {
    [TAG.backupPlan]: b.input.plan,
    [TAG.sourceInstance]: instanceId,
    [TAG.scheduledTime]: b.scheduledTime,
  };
}

/** The child copyImage's input: the backup to the copy region, under its key if one is named. */
function backupCopyInput(
  b: Backup,
  imageId: string,
  copyTo: NonNullable<BackupInput['copyTo']>,
): CopyImageInput {
  return {
    ...b.target,
    imageId,
    destinations: [{ region: copyTo.region, ...(copyTo.kmsKeyId ? { kmsKeyId: copyTo.kmsKeyId } : {}) }],
    ...(b.input.tags ? { tags: b.input.tags } : {}),
    timeouts: { copyAvailableSeconds: b.timeouts.copyAvailableSeconds },
  };
}

/** Retirement, per instance and region, only for instances backed up now; its failures are problems. */
async function retireOldBackups(b: Backup, outcomes: BackupOutcome[]): Promise<RetentionReport> {
  const { input, target, progress } = b;
  const retention = { ...DEFAULT_BACKUP_RETENTION, ...input.retention };
  const scopes: RetentionScope[] = outcomes
    .filter((o) => o.status === 'backed-up')
    .flatMap((o) => {
      const selector = { [TAG.backupPlan]: input.plan, [TAG.sourceInstance]: o.instanceId };
      const owned = { [TAG.managedBy]: MANAGED_BY_VALUE, ...selector };
      return [
        { target, selector, owned },
        ...(input.copyTo && o.copy?.imageId
          ? [{ target: { ...target, region: input.copyTo.region }, selector, owned }]
          : []),
      ];
    });
  const report: RetentionReport = await CancellationScope.nonCancellable(() =>
    scopes.length > 0
      ? progress.run('retire old backups', () => applyRetention(scopes, retention))
      : Promise.resolve({ actions: [], failures: 0, errors: [] }),
  );
  if (scopes.length === 0) progress.skip('retire old backups', 'no instance was backed up now');
  if (report.failures > 0 || report.errors.length > 0)
    progress.problem(
      `retire old backups: ${report.failures + report.errors.length} retirement action(s) failed`,
    );
  return report;
}

/** The run's failure when an instance was not (fully) backed up, or none was to be. */
function backupIncomplete(result: BackupResult, incomplete: BackupOutcome[]): ApplicationFailure {
  return ApplicationFailure.create({
    type: FailureType.BackupIncomplete,
    nonRetryable: true,
    message:
      result.instances.length === 0
        ? `backup plan ${result.plan}: no instance to back up (none listed, none matched the selector)`
        : `backup plan ${result.plan}: ${incomplete.length} of ${result.instances.length} instance(s) not (fully) backed up: ` +
          incomplete
            .map((o) => `${o.instanceId} (${o.status}: ${o.copy?.error ?? o.error ?? ''})`)
            .join('; '),
    details: [result],
  });
}

/**
 * backupInstances: scheduled, consistent backups of chosen instances, with retention.
 */
import { z } from 'zod';
import {
  accountId,
  instanceId,
  isoTime,
  kmsKeyRef,
  kmsKeyRegionProblems,
  planName,
  region,
  seconds,
  uniqueList,
  userTags,
  whole,
} from './fields';
import type { RetentionReport } from './golden';
import { imageAndCopyTimeoutsSchema, retentionPolicySchema } from './golden';
import { appConsistentOptionsSchema, appConsistentRule } from './image';
import { show, strictObject, withRules } from './issues';

const backupSelectorSchema = strictObject(
  {
    /** Instances carrying every one of these tags (running or stopped). */
    tags: z
      .record(z.string(), z.string({ error: (iss) => `must be a string, got ${show(iss.input)}` }), {
        error: 'must be { tags: { key: value, … } } with at least one tag',
      })
      .refine((tags) => Object.keys(tags).length > 0, {
        error: 'must be { tags: { key: value, … } } with at least one tag',
      }),
  },
  'must be { tags: { key: value, … } } with at least one tag',
);
export type BackupSelector = z.infer<typeof backupSelectorSchema>;

export const BACKUP_MODES = ['reboot', 'stop', 'app-consistent'] as const;

export const backupInputSchema = withRules(
  strictObject({
    region,
    accountId: accountId.optional(),
    /** The backup plan's name: in image names, tags, workflow and schedule ids. */
    plan: planName('backup plan'),
    instanceIds: uniqueList(instanceId).optional(),
    selector: backupSelectorSchema.optional(),
    /**
     * `reboot` (default: consistent, one reboot, no stop), `stop`, or `app-consistent` (no downtime:
     * frozen over SSM for the CreateImage call; docs/consistency-modes.md).
     */
    mode: z
      .enum(BACKUP_MODES, {
        error: (iss) =>
          `${show(iss.input)} is not a backup mode: reboot (default), stop or app-consistent; no-reboot backups are crash-consistent only (what AWS Backup makes)`,
      })
      .optional(),
    /** Options of mode app-consistent, for every instance of the plan (refused with any other mode). */
    appConsistent: appConsistentOptionsSchema.optional(),
    /** Imaging an instance must begin within this long after the scheduled time; later ones are skipped. */
    windowSeconds: seconds(60, 24 * 3600).optional(),
    retention: retentionPolicySchema.pick({ keep: true, maxAgeSeconds: true }).optional(),
    /** Also copy each backup to another region of the same account (with its own retention there). */
    copyTo: strictObject(
      { region, kmsKeyId: kmsKeyRef().optional() },
      'must be { region, kmsKeyId? }',
    ).optional(),
    /** Instances imaged at once. Default 2. */
    concurrency: whole(1, 20).optional(),
    tags: userTags.optional(),
    scheduledTime: isoTime.optional(),
    timeouts: imageAndCopyTimeoutsSchema.optional(),
  }),
  (input, report) => {
    const ids = input.instanceIds;
    if (!(Array.isArray(ids) && ids.length > 0) && input.selector === undefined)
      report(['instanceIds'], 'names no instance: give instanceIds or a selector (by tags)');
    appConsistentRule(input, report);
    const c = input.copyTo;
    if (typeof c !== 'object' || c === null) return;
    const copyTo = c as Record<string, unknown>;
    for (const problem of kmsKeyRegionProblems(copyTo.kmsKeyId, copyTo.region))
      report(['copyTo', 'kmsKeyId'], problem);
    if (copyTo.region === input.region)
      report(['copyTo', 'region'], `the backups are in ${String(input.region)} already: name another region`);
  },
);
export type BackupInput = z.infer<typeof backupInputSchema>;

export type BackupStatus = 'backed-up' | 'failed' | 'skipped';

export interface BackupOutcome {
  instanceId: string;
  status: BackupStatus;
  imageId?: string;
  imageName?: string;
  copy?: { region: string; imageId?: string; error?: string };
  downtimeSeconds?: number;
  error?: string;
}

export interface BackupResult {
  plan: string;
  region: string;
  accountId?: string;
  scheduledTime: string;
  mode: (typeof BACKUP_MODES)[number];
  instances: BackupOutcome[];
  retention: RetentionReport;
  startedAt: string;
  finishedAt: string;
}

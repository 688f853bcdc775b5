/**
 * backupInstances: scheduled, consistent backups of chosen instances, with retention.
 */
import type { AwsTarget, Tags } from './common';
import type { AppConsistentOptions, ImageFromInstanceTimeouts } from './image';
import type { RetentionPolicy, RetentionReport } from './golden';

export interface BackupSelector {
  /** Instances carrying every one of these tags (running or stopped). */
  tags: Tags;
}

export interface BackupInput extends AwsTarget {
  /** The backup plan's name: in image names, tags, workflow and schedule ids. */
  plan: string;
  instanceIds?: string[];
  selector?: BackupSelector;
  /**
   * `reboot` (default: consistent, one reboot, no stop), `stop`, or `app-consistent` (no downtime:
   * frozen over SSM for the CreateImage call; docs/consistency-modes.md).
   */
  mode?: 'reboot' | 'stop' | 'app-consistent';
  /** Options of mode app-consistent, for every instance of the plan. */
  appConsistent?: AppConsistentOptions;
  /** Imaging an instance must begin within this long after the scheduled time; later ones are skipped. */
  windowSeconds?: number;
  retention?: Pick<RetentionPolicy, 'keep' | 'maxAgeSeconds'>;
  /** Also copy each backup to another region of the same account (with its own retention there). */
  copyTo?: { region: string; kmsKeyId?: string };
  /** Instances imaged at once. Default 2. */
  concurrency?: number;
  tags?: Tags;
  scheduledTime?: string;
  timeouts?: ImageFromInstanceTimeouts & { copyAvailableSeconds?: number };
}

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
  mode: 'reboot' | 'stop' | 'app-consistent';
  instances: BackupOutcome[];
  retention: RetentionReport;
  startedAt: string;
  finishedAt: string;
}

/**
 * imageFromInstance: image an instance (stop, reboot or no-reboot), tag it, start it again.
 */
import type { AwsTarget, Consistency, ConsistencyMode, Tags } from './common';

export interface ImageFromInstanceTimeouts {
  /** Longest wait for the instance to stop, or to run again. Default 900 s. */
  instanceStateSeconds?: number;
  /** Longest wait for the image to become `available`. Default 4 h (large volumes take hours). */
  imageAvailableSeconds?: number;
}

export interface ImageFromInstanceInput extends AwsTarget {
  instanceId: string;
  imageName: string;
  description?: string;
  /** Tags for the image and its snapshots. */
  tags?: Tags;
  mode: ConsistencyMode;
  timeouts?: ImageFromInstanceTimeouts;
}

export interface ImageFromInstanceResult {
  imageId: string;
  imageName: string;
  region: string;
  accountId?: string;
  snapshotIds: string[];
  instanceId: string;
  mode: ConsistencyMode;
  consistency: Consistency;
  /** A sentence for people: what the consistency mode means for this image. */
  consistencyNote: string;
  /** The state the instance was found in, and the one it was left in (always the same). */
  instanceInitialState: 'running' | 'stopped';
  instanceFinalState: 'running' | 'stopped';
  /** Seconds the instance was not running because of this run (stop mode; 0 otherwise, reboot excluded). */
  downtimeSeconds: number;
  startedAt: string;
  finishedAt: string;
}

export const DEFAULT_TIMEOUTS: Required<ImageFromInstanceTimeouts> = {
  instanceStateSeconds: 900,
  imageAvailableSeconds: 4 * 3600,
};

/**
 * imageFromInstance: image an instance (stop, reboot or no-reboot), tag it, start it again.
 */
import { z } from 'zod';
import type { Consistency, ConsistencyMode } from './common';
import { CONSISTENCY_MODES } from './common';
import { accountId, imageName, instanceId, region, seconds, userTags } from './fields';
import { show, strictObject } from './issues';

export const imageFromInstanceTimeoutsSchema = strictObject({
  /** Longest wait for the instance to stop, or to run again. Default 900 s. */
  instanceStateSeconds: seconds(30, 24 * 3600).optional(),
  /** Longest wait for the image to become `available`. Default 4 h (large volumes take hours). */
  imageAvailableSeconds: seconds(60, 7 * 24 * 3600).optional(),
});
export type ImageFromInstanceTimeouts = z.infer<typeof imageFromInstanceTimeoutsSchema>;

export const imageFromInstanceInputSchema = strictObject({
  region,
  /** 12-digit account id; omitted means the worker's own credentials. */
  accountId: accountId.optional(),
  instanceId,
  imageName,
  description: z
    .string({ error: 'must be a string of at most 255 characters' })
    .max(255, { error: 'must be a string of at most 255 characters' })
    .optional(),
  /** Tags for the image and its snapshots. */
  tags: userTags.optional(),
  mode: z.enum(CONSISTENCY_MODES, {
    error: (iss) =>
      `${show(iss.input)} is not a consistency mode; use one of ${CONSISTENCY_MODES.join(', ')}`,
  }),
  timeouts: imageFromInstanceTimeoutsSchema.optional(),
});
export type ImageFromInstanceInput = z.infer<typeof imageFromInstanceInputSchema>;

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

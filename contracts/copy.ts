/**
 * copyImage: copies to other regions and accounts, fanned out with a limit per region.
 */
import type { Tags } from './common';
import type { ImageRef } from './share';

export interface CopyDestination {
  region: string;
  /** The account that will own the copy (assumed role); omitted: the source image's account. */
  accountId?: string;
  /** Key for the copy's snapshots (id, alias or ARN in the destination region): the copy is encrypted. */
  kmsKeyId?: string;
  /** Name of the copy; default the source's name. Required for a copy in the source's own account and region. */
  name?: string;
  description?: string;
}

export const PARTIAL_FAILURE_POLICIES = ['rollback', 'keep'] as const;
export type PartialFailurePolicy = (typeof PARTIAL_FAILURE_POLICIES)[number];

export interface CopyImageInput extends ImageRef {
  destinations: CopyDestination[];
  /** Tags for every copy, on top of the source's own tags. */
  tags?: Tags;
  /** `rollback` (default): one failed destination deregisters every copy; `keep`: keep those that made it. */
  partialFailure?: PartialFailurePolicy;
  /** Copies running at once per destination region (EC2 limits concurrent copies per region). */
  concurrencyPerRegion?: number;
  /** For cross-account destinations of an aws/ebs-encrypted source: re-encrypt under this key to share it. */
  reencryptWith?: string;
  timeouts?: { copyAvailableSeconds?: number };
}

export type DestinationStatus = 'copied' | 'failed' | 'rolled-back' | 'cancelled' | 'not-started';

export interface DestinationOutcome {
  region: string;
  accountId?: string;
  kmsKeyId?: string;
  imageName: string;
  status: DestinationStatus;
  /** The copy, when CopyImage got that far (it may since have been rolled back: see `exists`). */
  imageId?: string;
  snapshotIds?: string[];
  /** True when the copy exists now, made by this run. */
  exists: boolean;
  error?: string;
}

export interface CopyImageResult {
  source: ImageRef & { imageName: string };
  /** `partial` only under the `keep` policy: some destinations failed, their copies are gone. */
  outcome: 'complete' | 'partial';
  destinations: DestinationOutcome[];
  /** The share made for cross-account destinations, withdrawn once they had copied. */
  share?: { workflowId: string; accountIds: string[]; sharedImageId: string; withdrawn: boolean };
  startedAt: string;
  finishedAt: string;
}

export const DEFAULT_COPY_TIMEOUTS = { copyAvailableSeconds: 12 * 3600 } as const;
export const DEFAULT_COPY_CONCURRENCY_PER_REGION = 5;

/**
 * copyImage: copies to other regions and accounts, fanned out with a limit per region.
 */
import { z } from 'zod';
import {
  accountId,
  description,
  imageId,
  imageName,
  kmsKeyRef,
  kmsKeyRegionProblems,
  region,
  userTags,
  whole,
  oneOf,
} from './fields';
import type { Report } from './issues';
import { strictObject, withRules } from './issues';
import type { ImageRef } from './share';
import { copyTimeoutsSchema } from './share';

export const MAX_COPY_DESTINATIONS = 50;
export const MAX_COPY_CONCURRENCY_PER_REGION = 50;

export const copyDestinationSchema = strictObject(
  {
    region,
    /** The account that will own the copy (assumed role); omitted: the source image's account. */
    accountId: accountId.optional(),
    /** Key for the copy's snapshots (id, alias or ARN in the destination region): the copy is encrypted. */
    kmsKeyId: kmsKeyRef().optional(),
    /** Name of the copy; default the source's name. Required for a copy in the source's own account and region. */
    name: imageName.optional(),
    description: description.optional(),
  },
  'must be an object { region, accountId?, kmsKeyId?, name? }',
);
export type CopyDestination = z.infer<typeof copyDestinationSchema>;

export const PARTIAL_FAILURE_POLICIES = ['rollback', 'keep'] as const;
export type PartialFailurePolicy = (typeof PARTIAL_FAILURE_POLICIES)[number];
export const partialFailurePolicy = oneOf(PARTIAL_FAILURE_POLICIES, 'a partial-failure policy').describe(
  'rollback: one failed destination deregisters every copy; keep: keep those that made it',
);

export const copyDestinationsSchema = z
  .array(copyDestinationSchema, {
    error: 'is required: at least one { region, accountId?, kmsKeyId?, name? }',
  })
  .min(1, { error: 'is required: at least one { region, accountId?, kmsKeyId?, name? }' })
  .max(MAX_COPY_DESTINATIONS, {
    error: (iss) =>
      `has ${(iss.input as unknown[]).length} entries; at most ${MAX_COPY_DESTINATIONS} per run (start more runs)`,
  });

export const copyConcurrencyPerRegion = whole(1, MAX_COPY_CONCURRENCY_PER_REGION).describe(
  'copies running at once per destination region',
);

/**
 * The rules between destinations and the source: each key in its copy's region, one copy per
 * account and region, and what to do with a copy into the source's own account and region
 * (`inPlace` says it; undefined: a name is needed, as AMI names are unique per account and region).
 */
export function copyDestinationRules(
  destinations: unknown,
  source: { region: unknown; accountId: unknown },
  report: Report,
  at: readonly (string | number)[] = ['destinations'],
  inPlace?: string,
): void {
  if (!Array.isArray(destinations)) return;
  const seen = new Map<string, number>();
  destinations.forEach((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null) return;
    const d = entry as Record<string, unknown>;
    for (const problem of kmsKeyRegionProblems(d.kmsKeyId, d.region)) report([...at, i, 'kmsKeyId'], problem);
    const owner = d.accountId ?? source.accountId;
    const account = typeof owner === 'string' ? owner : 'self';
    const key = `${account}/${String(d.region)}`;
    const first = seen.get(key);
    if (first !== undefined)
      report(
        [...at, i],
        `copies to ${String(d.region)} in ${account === 'self' ? "the source's account" : `account ${account}`} again (as ${at.join('.')}[${first}]): one copy per account and region`,
      );
    else seen.set(key, i);
    const sameAccount = d.accountId === undefined || d.accountId === source.accountId;
    if (!sameAccount || d.region !== source.region) return;
    if (inPlace) report([...at, i], inPlace);
    else if (d.name === undefined)
      report(
        [...at, i, 'name'],
        "is required for a copy in the source's own account and region: AMI names are unique per account and region",
      );
  });
}

export const copyImageInputSchema = withRules(
  strictObject({
    region,
    accountId: accountId.optional(),
    imageId,
    destinations: copyDestinationsSchema,
    /** Tags for every copy, on top of the source's own tags. */
    tags: userTags.optional(),
    /** `rollback` (default): one failed destination deregisters every copy; `keep`: keep those that made it. */
    partialFailure: partialFailurePolicy.optional(),
    /** Copies running at once per destination region (EC2 limits concurrent copies per region). */
    concurrencyPerRegion: copyConcurrencyPerRegion.optional(),
    /** For cross-account destinations of an aws/ebs-encrypted source: re-encrypt under this key to share it. */
    reencryptWith: kmsKeyRef(
      'a copy under it could not be shared with other accounts; use a customer managed key',
    )
      .optional()
      .describe(
        'customer managed KMS key to re-encrypt under, for cross-account copies of an aws/ebs-encrypted image',
      ),
    timeouts: copyTimeoutsSchema.optional(),
  }),
  (input, report) => {
    copyDestinationRules(input.destinations, { region: input.region, accountId: input.accountId }, report);
    for (const problem of kmsKeyRegionProblems(input.reencryptWith, input.region))
      report(['reencryptWith'], problem);
  },
);
export type CopyImageInput = z.infer<typeof copyImageInputSchema>;

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

/**
 * Copying an AMI into another region or account. CopyImage takes a ClientToken, derived here from
 * the run and the destination, so a retried call returns the copy its earlier attempt started; the
 * copy is also looked up by its tags first (describe before act), which covers endpoints that ignore
 * tokens and retries after a token's lifetime. The copy carries the run's ownership tags from its
 * creation (TagSpecifications), so compensation (`deleteImage`) can prove it is this run's.
 */
import { createHash } from 'node:crypto';
import type { EC2Client, Image } from '@aws-sdk/client-ec2';
import {
  CopyImageCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
} from '@aws-sdk/client-ec2';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { AwsTarget, Tags } from '../contracts';
import { FailureType, TAG, copyTagsOf } from '../contracts';
import type { ActivityDeps } from './deps';
import { NOT_SETTLED_FAILURE, aws, awsErrorCode, failure, isAwsCode, rethrowAws } from './errors';
import { findImageByName, snapshotIdsOf, toAwsTags } from './images';
import { sdk } from './sdk-modules';
import type { ImageLookup } from './sharing';
import { ownedImage, userTagsOf } from './sharing';

export interface CopySource {
  imageId: string;
  imageName: string;
  description?: string;
  ownerId: string;
  /** Any of its snapshots is encrypted. */
  encrypted: boolean;
  snapshotIds: string[];
  /** Its tags other than aws:* and amiflow:*, carried over to the copies. */
  userTags: Tags;
}

export interface CopyImageActivityInput {
  source: { region: string; imageId: string };
  destination: AwsTarget;
  imageName: string;
  description?: string;
  /** Encrypt the copy with this key (in the destination region); omitted: as the source. */
  kmsKeyId?: string;
  /** Tags for the copy and its snapshots; the ownership and source tags are added here. */
  tags: Tags;
  /** The run the copy belongs to: its ownership tags, and the ClientToken's seed. */
  workflowId: string;
  runId: string;
  workflowType: string;
  /** Tells apart two copies one run makes to the same place (a share's re-encrypted copy). */
  purpose: 'copy' | 'reencrypt';
  /**
   * The source image's owner. When the destination is another account, the copy waits, as that
   * account, until the shared image and its keys' grants are usable (they propagate after the share).
   */
  sourceOwnerId?: string;
}

export interface CopiedImage {
  imageId: string;
  /** false when an earlier attempt had started it already (found by its tags). */
  created: boolean;
  clientToken: string;
  awsCalls: number;
  /** The AWS error code that kept the run's tags off the copy for now (tagSnapshots writes them later). */
  tagsPending?: string;
}

/**
 * The ClientToken of one copy: the same for every attempt of the same run and destination (so a
 * retry is answered with the first attempt's copy), different for another run of the same workflow
 * id (a re-run after a rollback must not be handed the copy the rollback deregistered). ≤ 64 chars.
 */
export function copyClientToken(input: {
  workflowId: string;
  runId: string;
  destination: AwsTarget;
  purpose: string;
}): string {
  const seed = [
    input.workflowId,
    input.runId,
    input.purpose,
    input.destination.accountId ?? 'self',
    input.destination.region,
  ].join('\n');
  return `amiflow-${createHash('sha256').update(seed).digest('base64url').slice(0, 40)}`;
}

/** The copy tags: the caller's, then the run's ownership and the source (which the lookup uses). */
export function copyTags(input: CopyImageActivityInput): Tags {
  return copyTagsOf(input);
}

async function findCopy(ec2: EC2Client, input: CopyImageActivityInput): Promise<Image | undefined> {
  const out = await aws(`looking for this run's copy of ${input.source.imageId}`, () =>
    ec2.send(
      new DescribeImagesCommand({
        Owners: ['self'],
        IncludeDisabled: true,
        Filters: [
          { Name: `tag:${TAG.workflowId}`, Values: [input.workflowId] },
          { Name: `tag:${TAG.runId}`, Values: [input.runId] },
          { Name: `tag:${TAG.sourceImage}`, Values: [input.source.imageId] },
        ],
      }),
    ),
  );
  return out.Images?.find((i) => i.ImageId !== undefined);
}

/**
 * How long after its first attempt a copy keeps retrying what settles by itself: a name still held
 * by an image deregistered moments ago (a re-run after a rollback), and a share that the destination
 * account cannot see or use yet. Below the 5-minute schedule-to-close of the local activity, so the
 * final answer is a failure that says what is wrong rather than a timeout.
 */
export const COPY_SETTLE_GRACE_MS = 4 * 60_000;
const SETTLE_RETRY_DELAY_MS = 15_000;
/**
 * The grace counted in attempts, each retried `SETTLE_RETRY_DELAY_MS` after the last: a local
 * activity's attempts all report their own schedule time, so elapsed time cannot be read from them.
 */
export const COPY_SETTLE_ATTEMPTS = COPY_SETTLE_GRACE_MS / SETTLE_RETRY_DELAY_MS;

/** Retry in a while if the grace has not run out; otherwise fail with `final`. */
function settleOrFail(what: string, final: ApplicationFailure): never {
  if (Context.current().info.attempt > COPY_SETTLE_ATTEMPTS) throw final;
  throw ApplicationFailure.create({
    type: NOT_SETTLED_FAILURE,
    nonRetryable: false,
    message: `${what}; retrying (EC2 and KMS settle within minutes)`,
    nextRetryDelay: SETTLE_RETRY_DELAY_MS,
  });
}

/**
 * A cross-account copy starts right after the share: launch permissions are eventually consistent,
 * and a KMS grant can take minutes to be usable without a grant token, which CopyImage cannot take
 * (https://docs.aws.amazon.com/kms/latest/developerguide/grants.html#terms-eventual-consistency).
 * Checked as the destination account, in the source region: the image is visible, its snapshots
 * too, and every key of theirs answers DescribeKey (an operation the share's grant allows).
 * Otherwise CopyImage would be refused, or accepted and the copy end `failed` minutes later.
 */
async function awaitSourceUsable(deps: ActivityDeps, input: CopyImageActivityInput): Promise<number> {
  const asDestination: AwsTarget = {
    region: input.source.region,
    ...(input.destination.accountId ? { accountId: input.destination.accountId } : {}),
  };
  const account = input.destination.accountId ?? 'the destination account';
  const ec2 = await deps.aws.ec2(asDestination);
  let calls = 1;
  let visible: Image | undefined;
  try {
    const out = await ec2.send(new DescribeImagesCommand({ ImageIds: [input.source.imageId] }));
    visible = out.Images?.find((i) => i.ImageId === input.source.imageId);
  } catch (err) {
    if (!isAwsCode(err, 'InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable'))
      rethrowAws(err, `reading ${input.source.imageId} as account ${account}`);
  }
  if (!visible)
    settleOrFail(
      `image ${input.source.imageId} is not visible to account ${account} yet`,
      failure(
        FailureType.ImageNotFound,
        `image ${input.source.imageId} in ${input.source.region} is still not visible to account ${account} ` +
          `${COPY_SETTLE_GRACE_MS / 60_000} minutes after the share: check its launch permissions`,
      ),
    );
  const snapshotIds = snapshotIdsOf(visible);
  if (!(visible.BlockDeviceMappings ?? []).some((m) => m.Ebs?.Encrypted === true) || snapshotIds.length === 0)
    return calls;
  calls += 1;
  const snaps = await aws(`reading the snapshots of ${input.source.imageId} as account ${account}`, () =>
    ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotIds })),
  ).catch((err: unknown) => {
    if (err instanceof ApplicationFailure && err.type === FailureType.AwsNotFound) return { Snapshots: [] };
    throw err;
  });
  if ((snaps.Snapshots ?? []).length < snapshotIds.length)
    settleOrFail(
      `the snapshots of ${input.source.imageId} are not visible to account ${account} yet`,
      failure(
        FailureType.ImageNotFound,
        `the snapshots of ${input.source.imageId} are still not visible to account ${account}: check their create-volume permissions`,
      ),
    );
  const keys = [...new Set((snaps.Snapshots ?? []).flatMap((x) => (x.KmsKeyId ? [x.KmsKeyId] : [])))];
  const kms = keys.length > 0 ? await deps.aws.kms(asDestination) : undefined;
  for (const key of keys) {
    calls += 1;
    const { DescribeKeyCommand } = await sdk.kms();
    try {
      await kms?.send(new DescribeKeyCommand({ KeyId: key }));
    } catch (err) {
      if (!isAwsCode(err, 'AccessDeniedException', 'NotFoundException')) rethrowAws(err, `reading ${key}`);
      settleOrFail(
        `account ${account} cannot use KMS key ${key} yet (grant not effective)`,
        failure(
          FailureType.KmsKeyUnusable,
          `account ${account} still cannot use KMS key ${key}, which encrypts ${input.source.imageId}: ` +
            'grant it the key (the share does, with kmsAccess "grant") or allow it in the key policy',
          { keyArn: key },
        ),
      );
    }
  }
  return calls;
}

function where(target: AwsTarget): string {
  return `${target.region}${target.accountId ? ` (account ${target.accountId})` : ''}`;
}

export function copyingActivities(deps: ActivityDeps) {
  return {
    /** The source of a copy: owned by the account, available, with its name, tags and encryption. */
    async describeCopySource(input: ImageLookup): Promise<CopySource> {
      const ec2 = await deps.aws.ec2(input.target);
      const image = await ownedImage(ec2, input);
      return {
        imageId: input.imageId,
        imageName: image.Name ?? input.imageId,
        ...(image.Description ? { description: image.Description } : {}),
        ownerId: image.OwnerId ?? '',
        encrypted: (image.BlockDeviceMappings ?? []).some((m) => m.Ebs?.Encrypted === true),
        snapshotIds: snapshotIdsOf(image),
        userTags: userTagsOf(image),
      };
    },

    /**
     * Starts the copy in the destination (the destination account's credentials when it has one:
     * it becomes the owner) and returns its id at once; waiting is `waitForImageAvailable`.
     */
    async copyImage(input: CopyImageActivityInput): Promise<CopiedImage> {
      const ec2 = await deps.aws.ec2(input.destination);
      const clientToken = copyClientToken(input);
      const tags = copyTags(input);
      let awsCalls = 1;
      const earlier = await findCopy(ec2, input);
      if (earlier?.ImageId) return { imageId: earlier.ImageId, created: false, clientToken, awsCalls };
      if (input.sourceOwnerId !== undefined && input.destination.accountId !== input.sourceOwnerId)
        awsCalls += await awaitSourceUsable(deps, input);
      let imageId: string;
      try {
        awsCalls += 1;
        const out = await ec2.send(
          new CopyImageCommand({
            SourceImageId: input.source.imageId,
            SourceRegion: input.source.region,
            Name: input.imageName,
            ...(input.description ? { Description: input.description } : {}),
            ClientToken: clientToken,
            ...(input.kmsKeyId ? { Encrypted: true, KmsKeyId: input.kmsKeyId } : {}),
            TagSpecifications: [
              { ResourceType: 'image', Tags: toAwsTags(tags) },
              { ResourceType: 'snapshot', Tags: toAwsTags(tags) },
            ],
          }),
        );
        if (!out.ImageId) throw new Error('CopyImage returned no ImageId');
        imageId = out.ImageId;
      } catch (err) {
        if (isAwsCode(err, 'IdempotentParameterMismatch'))
          throw failure(
            FailureType.AwsMalformedRequest,
            `copying ${input.source.imageId} to ${where(input.destination)}: EC2 refused ClientToken ${clientToken} ` +
              '(IdempotentParameterMismatch): an earlier CopyImage of this run and destination used other parameters. ' +
              'The token is unique to the run and destination, so another process is using this run id: start a new run',
            { awsCode: 'IdempotentParameterMismatch', clientToken },
          );
        if (isAwsCode(err, 'InvalidAMIName.Duplicate')) {
          awsCalls += 1;
          const taken = await findImageByName(ec2, input.imageName);
          const tagged: Record<string, string | undefined> = Object.fromEntries(
            (taken?.Tags ?? []).map((t) => [t.Key ?? '', t.Value]),
          );
          if (
            taken?.ImageId &&
            tagged[TAG.workflowId] === input.workflowId &&
            tagged[TAG.runId] === input.runId
          )
            return { imageId: taken.ImageId, created: false, clientToken, awsCalls };
          // EC2 keeps the name of a deregistered image reserved for a while: a re-run after a
          // rollback meets it though no image of that name is visible. Wait for it to be freed.
          if (!taken)
            settleOrFail(
              `the name '${input.imageName}' is still held in ${where(input.destination)} by an image no longer visible (deregistered moments ago?)`,
              failure(
                FailureType.ImageNameTaken,
                `EC2 still refuses the name '${input.imageName}' in ${where(input.destination)} (InvalidAMIName.Duplicate) ` +
                  `${COPY_SETTLE_GRACE_MS / 60_000} minutes on, though no image of that name is visible: give the destination another name`,
              ),
            );
          throw failure(
            FailureType.ImageNameTaken,
            `an image named '${input.imageName}' already exists in ${where(input.destination)}` +
              `${taken?.ImageId ? ` (${taken.ImageId})` : ''} and was not made by this run; ` +
              'AMI names are unique per account and region: give the destination another name',
            { imageId: taken?.ImageId },
          );
        }
        rethrowAws(
          err,
          `copying ${input.source.imageId} from ${input.source.region} to ${where(input.destination)}`,
        );
      }
      // TagSpecifications tag the copy as it is made; this also covers endpoints that ignore them
      // (the sandbox), so that compensation can always prove the copy is this run's. The copy's id
      // is returned even when this fails (NotFound: a new id is not visible to CreateTags yet;
      // throttling; anything): failing here would hide the copy from the rollback. The tags are
      // written again by tagSnapshots once the copy is available.
      awsCalls += 1;
      try {
        await ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: toAwsTags(tags) }));
      } catch (err) {
        Context.current().log.warn('tagging the new copy failed; its id is kept and tagSnapshots tags it', {
          imageId,
          awsCode: awsErrorCode(err),
        });
        return { imageId, created: true, clientToken, awsCalls, tagsPending: awsErrorCode(err) };
      }
      return { imageId, created: true, clientToken, awsCalls };
    },
  };
}

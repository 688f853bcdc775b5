/**
 * AMIs: make one idempotently, wait for it, tag its snapshots, and delete it (with its snapshots)
 * as a compensation. CreateImage takes no client token, so idempotency is a deterministic name plus
 * a tag naming the workflow: a retry finds the image its earlier attempt made instead of making a second.
 */
import type { EC2Client, Filter, Image, Tag } from '@aws-sdk/client-ec2';
import {
  CreateImageCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
} from '@aws-sdk/client-ec2';
import type { ApplicationFailure } from '@temporalio/activity';
import { CompleteAsyncError, Context } from '@temporalio/activity';
import type { AwsTarget, Tags } from '../contracts';
import { FailureType, TAG } from '../contracts';
import type { ActivityDeps } from './deps';
import { aws, failure, isAwsCode, rethrowAws } from './errors';
import { createImageWatch } from './image-watch';
import { consistencyWindowMs, notVisibleYet, withinWindow } from './consistency';
import { waitUntil } from './waiting';

export interface ImageNameRef {
  target: AwsTarget;
  imageName: string;
  /** The run that owns the image: in its `amiflow:workflow-id` and `amiflow:run-id` tags. */
  workflowId: string;
  runId: string;
}

export type ImageNameStatus = { status: 'free' } | { status: 'ours'; imageId: string };

export interface CreateImageInput extends ImageNameRef {
  instanceId: string;
  description?: string;
  /** true: no reboot (the instance is stopped already, or the caller accepts crash consistency). */
  noReboot: boolean;
  tags: Tags;
}

export interface CreatedImage {
  imageId: string;
  /** false when an earlier attempt of this workflow had made it already. */
  created: boolean;
}

export interface ImageWaitInput {
  target: AwsTarget;
  imageId: string;
  deadline: number;
}

export interface ImageProgress {
  imageState: string;
  snapshots?: { snapshotId: string; progress: string; state: string }[];
}

export interface AvailableImage {
  imageId: string;
  snapshotIds: string[];
  awsCalls: number;
  polls: number;
  heartbeats: number;
}

export interface TagSnapshotsInput {
  target: AwsTarget;
  imageId: string;
  tags: Tags;
}

export interface DeleteImageInput extends ImageNameRef {
  /** Known when creation got that far; otherwise the image is found by name and tag. */
  imageId?: string;
}

export interface DeletedImage {
  imageId?: string;
  deregistered: boolean;
  deletedSnapshotIds: string[];
  /** What the undo found when it deregistered nothing, in words (for the run's failure message). */
  note?: string;
}

export function toAwsTags(tags: Tags): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

function tagValue(image: Image, key: string): string | undefined {
  return image.Tags?.find((t) => t.Key === key)?.Value;
}

/**
 * Deregisters `imageId` (when given) and then deletes `snapshotIds`; either already gone is fine.
 * The caller checkpoints the snapshot ids in a heartbeat first, so a retry after deregistration
 * still finds them.
 */
export async function deregisterWithSnapshots(
  ec2: EC2Client,
  imageId: string | undefined,
  snapshotIds: string[],
  /** Called with DeregisterImage's NotFound before it is taken as "already gone"; may throw instead. */
  onImageNotFound?: (err: unknown) => void,
): Promise<{ deregistered: boolean; deletedSnapshotIds: string[] }> {
  let deregistered = false;
  if (imageId) {
    try {
      await ec2.send(new DeregisterImageCommand({ ImageId: imageId }));
      deregistered = true;
    } catch (err) {
      if (!isAwsCode(err, 'InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable'))
        rethrowAws(err, `deregistering ${imageId}`);
      onImageNotFound?.(err);
    }
  }
  const deletedSnapshotIds: string[] = [];
  for (const snapshotId of snapshotIds) {
    try {
      await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
      deletedSnapshotIds.push(snapshotId);
    } catch (err) {
      if (!isAwsCode(err, 'InvalidSnapshot.NotFound')) rethrowAws(err, `deleting snapshot ${snapshotId}`);
    }
  }
  return { deregistered, deletedSnapshotIds };
}

function ownedBy(image: Image, ref: ImageNameRef): boolean {
  return tagValue(image, TAG.workflowId) === ref.workflowId && tagValue(image, TAG.runId) === ref.runId;
}

export function snapshotIdsOf(image: Image): string[] {
  return (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []));
}

/** The image this account owns under a name (names are unique per account and region), if any. */
export async function findImageByName(ec2: EC2Client, name: string): Promise<Image | undefined> {
  // A disabled image keeps its name but is described only when asked for (IncludeDisabled).
  const out = await aws(`looking up image name '${name}'`, () =>
    ec2.send(
      new DescribeImagesCommand({
        Owners: ['self'],
        IncludeDisabled: true,
        Filters: [{ Name: 'name', Values: [name] }],
      }),
    ),
  );
  return out.Images?.find((i) => i.Name === name);
}

async function findById(ec2: EC2Client, imageId: string): Promise<Image | undefined> {
  try {
    // A disabled image is left out unless asked for; undoing one must still find it.
    const out = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId], IncludeDisabled: true }));
    return out.Images?.find((i) => i.ImageId === imageId);
  } catch (err) {
    if (isAwsCode(err, 'InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable')) return undefined;
    rethrowAws(err, `reading image ${imageId}`);
  }
}

function nameStatus(image: Image | undefined, ref: ImageNameRef): ImageNameStatus {
  if (!image?.ImageId) return { status: 'free' };
  if (ownedBy(image, ref)) return { status: 'ours', imageId: image.ImageId };
  throw failure(
    FailureType.ImageNameTaken,
    `an image named '${ref.imageName}' already exists in region ${ref.target.region} (${image.ImageId}) and was not made ` +
      'by this workflow run; AMI names are unique per account and region: choose another name',
    { imageId: image.ImageId },
  );
}

/**
 * One page of this account's images that match `filters`, deprecated and disabled ones included
 * (retention and the catalogue must see every image they own, whatever its state).
 */
export function ownImagesPage(
  filters: Filter[],
  token: string | undefined,
  maxResults?: number,
): DescribeImagesCommand {
  return new DescribeImagesCommand({
    Owners: ['self'],
    Filters: filters,
    IncludeDeprecated: true,
    IncludeDisabled: true,
    ...(maxResults !== undefined ? { MaxResults: maxResults } : {}),
    ...(token ? { NextToken: token } : {}),
  });
}

/**
 * The failure of an image EC2 gave up on (`failed`, `error`, `invalid`), with its state reason;
 * undefined for any other state, or none. Shared by every wait for an image (the watcher's too).
 */
export function imageFailure(imageId: string, image: Image | undefined): ApplicationFailure | undefined {
  if (image?.State !== 'failed' && image?.State !== 'error' && image?.State !== 'invalid') return undefined;
  const reason = image.StateReason;
  return failure(
    FailureType.ImageFailed,
    `image ${imageId} ended in state '${image.State}': ${reason?.Code ?? 'no code'}: ${reason?.Message ?? 'no reason given'}`,
    { stateReason: reason },
  );
}

export function imageActivities(deps: ActivityDeps) {
  // Shared by every wait in this worker: concurrent waits in one account and region share DescribeImages calls.
  const imageWatch = createImageWatch(deps);
  return {
    /** Before anything is touched: is the name free, or already this workflow's? */
    async checkImageName(ref: ImageNameRef): Promise<ImageNameStatus> {
      const ec2 = await deps.aws.ec2(ref.target);
      return nameStatus(await findImageByName(ec2, ref.imageName), ref);
    },

    async createImage(input: CreateImageInput): Promise<CreatedImage> {
      const ec2 = await deps.aws.ec2(input.target);
      const existing = nameStatus(await findImageByName(ec2, input.imageName), input);
      if (existing.status === 'ours') return { imageId: existing.imageId, created: false };
      try {
        const out = await ec2.send(
          new CreateImageCommand({
            InstanceId: input.instanceId,
            Name: input.imageName,
            ...(input.description ? { Description: input.description } : {}),
            NoReboot: input.noReboot,
            TagSpecifications: [{ ResourceType: 'image', Tags: toAwsTags(input.tags) }],
          }),
        );
        if (!out.ImageId) throw new Error('CreateImage returned no ImageId');
        return { imageId: out.ImageId, created: true };
      } catch (err) {
        // An earlier attempt whose answer was lost made it: find it by name and our tag.
        if (isAwsCode(err, 'InvalidAMIName.Duplicate')) {
          const again = nameStatus(await findImageByName(ec2, input.imageName), input);
          if (again.status === 'ours') return { imageId: again.imageId, created: false };
          // Taken, yet not visible to DescribeImages: EC2's read-after-write lag. Retry to find it.
          throw err;
        }
        rethrowAws(err, `creating image '${input.imageName}' from ${input.instanceId}`);
      }
    },

    /**
     * Waits until the image is `available`; `failed` is reported with AWS's reason, non-retryable.
     * On a worker with a watcher the wait is handed to it and the activity returns at once, to be
     * completed asynchronously; otherwise it polls here.
     */
    async waitForImageAvailable(input: ImageWaitInput): Promise<AvailableImage> {
      const info = Context.current().info;
      if (deps.waits && info.workflowExecution) {
        deps.waits.watcher.add({
          token: info.taskToken,
          ref: {
            workflowId: info.workflowExecution.workflowId,
            runId: info.workflowExecution.runId,
            activityId: info.activityId,
          },
          target: input.target,
          imageId: input.imageId,
          deadline: input.deadline,
          ...(info.heartbeatTimeoutMs ? { heartbeatTimeoutMs: info.heartbeatTimeoutMs } : {}),
        });
        throw new CompleteAsyncError();
      }
      const ec2 = await deps.aws.ec2(input.target);
      const firstLookAt = deps.clock.now();
      const watch = imageWatch.open(input.target, input.imageId);
      try {
        const out = await waitUntil<Image | undefined, ImageProgress>(deps, {
          what: `image ${input.imageId} to become available`,
          poll: async () => {
            const image = await watch.read();
            // Read-after-write: a new image can be invisible for a while; only after the window is it gone.
            if (!image && deps.clock.now() - firstLookAt > consistencyWindowMs(deps))
              throw failure(
                FailureType.ImageNotFound,
                `image ${input.imageId} was not visible for the whole consistency window ` +
                  `(${Math.round(consistencyWindowMs(deps) / 1000)}s): it was deregistered by someone else, or never made`,
              );
            return image;
          },
          done: (image) => {
            const failed = imageFailure(input.imageId, image);
            if (failed) throw failed;
            return image?.State === 'available';
          },
          progress: async (image) => {
            const ids = image ? snapshotIdsOf(image) : [];
            if (ids.length === 0) return { imageState: image?.State ?? 'not visible yet' };
            const snaps = await aws('reading snapshot progress', () =>
              ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: ids })),
            );
            return {
              imageState: image?.State ?? 'pending',
              snapshots: (snaps.Snapshots ?? []).map((s) => ({
                snapshotId: s.SnapshotId ?? '?',
                progress: s.Progress ?? '?',
                state: s.State ?? '?',
              })),
            };
          },
          progressCalls: 1,
          deadline: input.deadline,
          maxCalls: 5_000,
        });
        return {
          imageId: input.imageId,
          snapshotIds: out.state ? snapshotIdsOf(out.state) : [],
          awsCalls: out.calls,
          polls: out.polls,
          heartbeats: out.heartbeats,
        };
      } finally {
        watch.close();
      }
    },

    /** Tags the image's snapshots (CreateImage can tag them too, but not every EC2 endpoint accepts that). */
    async tagSnapshots(input: TagSnapshotsInput): Promise<{ snapshotIds: string[] }> {
      const ec2 = await deps.aws.ec2(input.target);
      const image = await findById(ec2, input.imageId);
      if (!image && withinWindow(deps)) throw notVisibleYet(deps, `image ${input.imageId} (to tag)`);
      if (!image)
        throw failure(
          FailureType.ImageNotFound,
          `image ${input.imageId} not found in region ${input.target.region}`,
        );
      const snapshotIds = snapshotIdsOf(image);
      // An image without this run's tags yet (a copy whose tagging failed right after CopyImage,
      // on an endpoint that ignores TagSpecifications) gets them here too.
      const untagged = input.tags[TAG.runId] !== undefined && tagValue(image, TAG.runId) === undefined;
      const resources = [...(untagged ? [input.imageId] : []), ...snapshotIds];
      if (resources.length > 0) {
        await aws(`tagging ${untagged ? 'the image and ' : ''}snapshots of ${input.imageId}`, () =>
          ec2.send(new CreateTagsCommand({ Resources: resources, Tags: toAwsTags(input.tags) })),
        );
      }
      return { snapshotIds };
    },

    /**
     * Compensation: deregisters the image this workflow made and deletes its snapshots. Acts on the
     * id it was handed (the run's own record); finds the image by name only when creation never
     * answered. Within the consistency window an image it cannot see yet is "not visible yet" (a
     * retryable failure), never "gone". Never touches an image tagged as another run's. Safe to
     * repeat: the image and snapshot ids are kept in heartbeat details once seen, so a retry after
     * deregistration still deletes the snapshots.
     */
    async deleteImage(input: DeleteImageInput): Promise<DeletedImage> {
      const ctx = Context.current();
      const ec2 = await deps.aws.ec2(input.target);
      const remembered = ctx.info.heartbeatDetails as
        { imageId?: string; snapshotIds?: string[] } | undefined;
      const found = await findImageToDelete(ec2, input, remembered);
      if ('note' in found) return found.note;
      const { image, imageId } = found;
      const snapshotIds = [
        ...new Set([...(image ? snapshotIdsOf(image) : []), ...(remembered?.snapshotIds ?? [])]),
      ];
      if (image || snapshotIds.length > 0) ctx.heartbeat({ imageId, snapshotIds });
      const { deregistered, deletedSnapshotIds } = await deregisterWithSnapshots(
        ec2,
        image?.ImageId,
        snapshotIds,
        (err) => {
          // Seen a moment ago, unknown to DeregisterImage now: another endpoint's lag, not a deletion.
          if (withinWindow(deps)) throw notVisibleYet(deps, `image ${imageId} (to deregister)`, err);
        },
      );
      return {
        imageId,
        deregistered,
        deletedSnapshotIds,
        ...(deregistered ? {} : { note: `image ${imageId} was already gone` }),
      };
    },
  };

  /**
   * The image the undo should delete: by the handed id (or the one remembered from an earlier
   * attempt), else by name and this run's tags. `note` when there is nothing of ours to delete.
   */
  async function findImageToDelete(
    ec2: EC2Client,
    input: DeleteImageInput,
    remembered: { imageId?: string; snapshotIds?: string[] } | undefined,
  ): Promise<{ image?: Image; imageId: string } | { note: DeletedImage }> {
    const handedId = input.imageId ?? remembered?.imageId;
    const seenBefore = handedId !== undefined && remembered?.imageId === handedId;
    const image = handedId ? await findById(ec2, handedId) : await findImageByName(ec2, input.imageName);
    if (!image?.ImageId) {
      if (!seenBefore && withinWindow(deps))
        throw notVisibleYet(
          deps,
          handedId ? `image ${handedId}` : `an image named '${input.imageName}' made by this run`,
        );
      if (handedId && seenBefore) return { imageId: handedId }; // deregistered by an earlier attempt
      return {
        note: {
          ...(handedId ? { imageId: handedId } : {}),
          deregistered: false,
          deletedSnapshotIds: [],
          note: handedId
            ? `image ${handedId} was not found after the consistency window: already gone`
            : `no image named '${input.imageName}' made by this run was found: none was made`,
        },
      };
    }
    if (ownedBy(image, input)) return { image, imageId: image.ImageId };
    // Tags come with the image (TagSpecifications), but an endpoint may show them a moment later:
    // an untagged image is "not proven ours yet", by id or by name alike. Found by name it is most
    // likely this run's own (CreateImage applied, its answer lost), so concluding "not ours" at once
    // would leave it behind; an image tagged as another run's is left alone at once.
    if (tagValue(image, TAG.runId) === undefined && withinWindow(deps))
      throw notVisibleYet(
        deps,
        handedId
          ? `the tags of image ${image.ImageId}`
          : `the tags of image ${image.ImageId} (named '${input.imageName}', maybe this run's)`,
      );
    return {
      note: {
        imageId: image.ImageId,
        deregistered: false,
        deletedSnapshotIds: [],
        note: `image ${image.ImageId} is not tagged as this run's: left alone`,
      },
    };
  }
}

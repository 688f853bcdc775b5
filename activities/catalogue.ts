/**
 * The approved-image catalogue of one account and region: the images golden-image runs marked
 * approved (their approval tags, read with DescribeImages tag filters, deprecated and disabled ones
 * included), and the allow-listed images made elsewhere as this account sees them.
 */
import type { Image } from '@aws-sdk/client-ec2';
import { Context } from '@temporalio/activity';
import type { ApprovalBasis, ApprovedImage, AwsTarget } from '../contracts';
import { APPROVED_VALUE, TAG } from '../contracts';
import type { ActivityDeps } from './deps';
import { ownImagesPage } from './images';
import type { ReadCounters } from './throttled-reads';
import { describeImagesByIds, eachThrottledPage } from './throttled-reads';

export interface ListApprovedImagesInput {
  target: AwsTarget;
  /** Only these pipelines' images; default every pipeline. */
  pipelines?: string[];
  /** Allow-listed image ids in this region, described as this account sees them. */
  allowListImageIds?: string[];
}

export interface ApprovedImagesRead extends ReadCounters {
  /** Approved by tags (`basis: 'approval-tags'`), then the allow-listed ids (`basis: 'allow-list'`). */
  images: ApprovedImage[];
}

export function tagsOf(image: Image): Record<string, string> {
  return Object.fromEntries((image.Tags ?? []).flatMap((t) => (t.Key ? [[t.Key, t.Value ?? '']] : [])));
}

/** Retired: disabled, or its deprecation time has passed at `now` (epoch ms). */
export function isRetired(image: Image, now: number): boolean {
  if (image.State === 'disabled') return true;
  const at = image.DeprecationTime ? Date.parse(image.DeprecationTime) : NaN;
  return !Number.isNaN(at) && at <= now;
}

/** True when the image's own tags say approved (only its owner sees them), for one of `pipelines` if given. */
export function approvedByOwnTags(image: Image, pipelines?: string[]): boolean {
  const tags = tagsOf(image);
  if (tags[TAG.approved] !== APPROVED_VALUE) return false;
  return !pipelines || pipelines.includes(tags[TAG.pipeline] ?? '');
}

export function approvedImageOf(
  image: Image,
  region: string,
  now: number,
  basis: ApprovalBasis,
): ApprovedImage {
  const tags = tagsOf(image);
  const optional = {
    name: image.Name,
    pipeline: tags[TAG.pipeline],
    version: tags[TAG.version],
    approvedBy: tags[TAG.approvedBy],
    approvedAt: tags[TAG.approvedAt],
    sourceImage: tags[TAG.sourceImage],
    creationDate: image.CreationDate,
    deprecationTime: image.DeprecationTime,
  };
  return {
    imageId: image.ImageId ?? '',
    region,
    ownerId: image.OwnerId ?? '',
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined && v !== '')),
    state: image.State ?? 'unknown',
    deprecated: isRetired(image, now),
    kmsKeyIds: [
      ...new Set((image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.KmsKeyId ? [m.Ebs.KmsKeyId] : []))),
    ],
    basis,
  };
}

export function catalogueActivities(deps: ActivityDeps) {
  return {
    /** The approved images the target account owns in its region (paginated), and the allow-listed ids. */
    async listApprovedImages(input: ListApprovedImagesInput): Promise<ApprovedImagesRead> {
      const ec2 = await deps.aws.ec2(input.target);
      const counters: ReadCounters = { awsCalls: 0, throttled: 0 };
      const heartbeat = () => Context.current().heartbeat();
      const where = `region ${input.target.region}${input.target.accountId ? `, account ${input.target.accountId}` : ''}`;
      const filters = [
        { Name: `tag:${TAG.approved}`, Values: [APPROVED_VALUE] },
        ...(input.pipelines ? [{ Name: `tag:${TAG.pipeline}`, Values: input.pipelines }] : []),
      ];
      const tagged: Image[] = [];
      await eachThrottledPage(
        deps,
        counters,
        `listing approved images in ${where}`,
        (token) => ec2.send(ownImagesPage(filters, token, 1000)),
        (page) => tagged.push(...(page.Images ?? [])),
        heartbeat,
      );
      const now = deps.clock.now();
      const images = tagged
        // EC2 filtered by tag already; the check guards against endpoints that ignore filters.
        .filter((i) => i.ImageId && approvedByOwnTags(i, input.pipelines))
        .map((i) => approvedImageOf(i, input.target.region, now, 'approval-tags'));
      const ids = input.allowListImageIds ?? [];
      if (ids.length > 0) {
        const seen = await describeImagesByIds(deps, ec2, ids, counters, heartbeat);
        for (const id of ids) {
          const image = seen.get(id);
          images.push(
            image
              ? approvedImageOf(image, input.target.region, now, 'allow-list')
              : {
                  imageId: id,
                  region: input.target.region,
                  ownerId: '',
                  state: 'not-visible',
                  deprecated: false,
                  kmsKeyIds: [],
                  basis: 'allow-list',
                },
          );
        }
      }
      return { images, ...counters };
    },
  };
}

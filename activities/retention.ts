/**
 * Retirement of old images (golden versions beyond retention, expired backups): find amiflow's
 * images by their tags, ask EC2 what still uses them (DescribeImageReferences), deprecate them at a
 * date, deregister them and delete their snapshots, and keep deregistration protection on the newest.
 * What to do with which image is decided by the workflow (workflows/retention.ts, pure); each
 * activity here is one intent, safe to repeat.
 */
import type { EC2Client, Image, LaunchPermission, ResourceTypeRequest } from '@aws-sdk/client-ec2';
import {
  DescribeImageAttributeCommand,
  DescribeImageReferencesCommand,
  DescribeImagesCommand,
  DisableImageDeregistrationProtectionCommand,
  EnableImageDeprecationCommand,
  EnableImageDeregistrationProtectionCommand,
} from '@aws-sdk/client-ec2';
import { Context } from '@temporalio/activity';
import type { AwsTarget, Tags } from '../contracts';
import { APPROVED_VALUE, FailureType, TAG } from '../contracts';
import type { ActivityDeps } from './deps';
import { aws, failure, isAwsCode, rethrowAws } from './errors';
import { deregisterWithSnapshots, ownImagesPage, snapshotIdsOf } from './images';

/** An image amiflow manages, as retirement needs to see it. Plain data: it travels through history. */
export interface ManagedImage {
  imageId: string;
  name?: string;
  state: string;
  creationDate?: string;
  /** ISO 8601; set when the image is (or is scheduled to be) deprecated. */
  deprecationTime?: string;
  /** EC2's `DeregistrationProtection` (e.g. `disabled`, `enabled-with-cooldown`, `enabled-without-cooldown`). */
  protection?: string;
  protected: boolean;
  /** Launchable by everyone: EC2 deprecates public AMIs at most 2 years ahead. Set only when true. */
  public?: boolean;
  tags: Tags;
  snapshotIds: string[];
}

export interface ListManagedImagesInput {
  target: AwsTarget;
  /** Only images carrying every one of these tags. At least one: never "every image of the account". */
  tags: Tags;
}

export interface ImageReferencesInput {
  target: AwsTarget;
  imageIds: string[];
}

export interface ProtectImageInput {
  target: AwsTarget;
  imageId: string;
  /** EC2's 24-hour cooldown after protection is turned off again. Default false. */
  withCooldown?: boolean;
}

export interface DeprecateImageInput {
  target: AwsTarget;
  imageId: string;
  /** Epoch ms; EC2 needs a time in the future, rounded to the minute: later of this and a minute from now. */
  deprecateAt: number;
  /** A public AMI: its deprecation time may be at most 2 years ahead instead of 10. */
  public?: boolean;
}

export interface DeprecatedImage {
  imageId: string;
  deprecateAt: string;
  /** Set when the asked time was beyond EC2's limit and the limit was used instead (ISO 8601). */
  clampedFrom?: string;
}

export interface RetireImageInput {
  target: AwsTarget;
  imageId: string;
  /** The image must carry all of these (its pipeline or backup plan): anything else is left alone. */
  requiredTags: Tags;
  /**
   * Retire it even when other accounts, an organization or everyone may launch it. Default false:
   * DescribeImageReferences sees only this account's resources, so a shared image is kept.
   */
  retireShared?: boolean;
  /**
   * Deregistration protection is someone's decision to keep the image: with this set it is honoured
   * (nothing is done) instead of turned off. Retirement of old golden versions lifts the protection
   * amiflow itself put on them; a share's re-encrypted copy honours it.
   */
  honourProtection?: boolean;
  /** Leave the image alone when it is tagged approved (`amiflow:approved=true`). */
  keepApproved?: boolean;
}

export interface RetiredImage {
  imageId: string;
  deregistered: boolean;
  deletedSnapshotIds: string[];
  /** Set when the image is still in use: nothing was done. */
  references?: string[];
  /** Set when it was kept for another reason (deregistration protection, approved): nothing was done. */
  keptBecause?: string;
  /** Set when the image was gone already. */
  note?: string;
  /** Set when it is shared (accounts, organizations, OUs, `public`) and `retireShared` was not: nothing was done. */
  sharedWith?: string[];
  /**
   * Set when deregistration protection with cooldown holds it (ISO 8601): protection is off now and
   * a later run retires it from this time on. Nothing else was done.
   */
  retireAfter?: string;
}

/** What DescribeImageReferences checks: what could still launch from or point at the image. */
export const REFERENCE_TYPES: ResourceTypeRequest[] = [
  {
    ResourceType: 'ec2:Instance',
    // A terminated instance launches nothing any more.
    ResourceTypeOptions: [
      { OptionName: 'state-name', OptionValues: ['pending', 'running', 'stopping', 'stopped'] },
    ],
  },
  {
    ResourceType: 'ec2:LaunchTemplate',
    ResourceTypeOptions: [{ OptionName: 'version-depth', OptionValues: ['20'] }],
  },
  { ResourceType: 'ssm:Parameter' },
  { ResourceType: 'imagebuilder:ImageRecipe' },
];
/**
 * DescribeImageReferences takes 1 to 10 image ids per call
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImageReferences.html).
 */
export const REFERENCE_BATCH = 10;
/**
 * EnableImageDeprecation accepts a time at most 10 years ahead, 2 years for a public AMI
 * (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-deprecate.html).
 */
const YEAR_MS = 365 * 24 * 3600_000;
export const MAX_DEPRECATION_AHEAD_MS = 10 * YEAR_MS;
export const MAX_PUBLIC_DEPRECATION_AHEAD_MS = 2 * YEAR_MS;
/**
 * Protection enabled "with cooldown" keeps blocking deregistration for 24 hours after it is disabled
 * (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-deregistration-protection.html).
 */
export const PROTECTION_COOLDOWN_MS = 24 * 3600_000;
const MAX_PAGES = 50;

function tagsOf(image: Image): Tags {
  return Object.fromEntries((image.Tags ?? []).flatMap((t) => (t.Key ? [[t.Key, t.Value ?? '']] : [])));
}

export function isProtected(protection: string | undefined): boolean {
  return protection !== undefined && protection.toLowerCase().startsWith('enabled');
}

export function managedImageOf(image: Image): ManagedImage {
  return {
    imageId: image.ImageId ?? '',
    ...(image.Name ? { name: image.Name } : {}),
    state: image.State ?? 'unknown',
    ...(image.CreationDate ? { creationDate: image.CreationDate } : {}),
    ...(image.DeprecationTime ? { deprecationTime: image.DeprecationTime } : {}),
    ...(image.DeregistrationProtection ? { protection: image.DeregistrationProtection } : {}),
    protected: isProtected(image.DeregistrationProtection),
    ...(image.Public === true ? { public: true } : {}),
    tags: tagsOf(image),
    snapshotIds: snapshotIdsOf(image),
  };
}

async function describeOne(ec2: EC2Client, imageId: string): Promise<Image | undefined> {
  try {
    // A disabled image is left out of DescribeImages unless asked for (IncludeDisabled), and would
    // be taken for "gone already" with its snapshots left behind.
    const out = await ec2.send(
      new DescribeImagesCommand({ ImageIds: [imageId], IncludeDeprecated: true, IncludeDisabled: true }),
    );
    return out.Images?.find((i) => i.ImageId === imageId);
  } catch (err) {
    if (isAwsCode(err, 'InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable')) return undefined;
    rethrowAws(err, `reading image ${imageId}`);
  }
}

/** Image id → ARNs of what references it (only images with references appear). */
async function referencesOf(ec2: EC2Client, imageIds: string[]): Promise<Record<string, string[]>> {
  const refs: Record<string, string[]> = {};
  for (let i = 0; i < imageIds.length; i += REFERENCE_BATCH) {
    const batch = imageIds.slice(i, i + REFERENCE_BATCH);
    let token: string | undefined;
    let pages = 0;
    do {
      const out = await aws(`reading what references ${batch.join(', ')} (DescribeImageReferences)`, () =>
        ec2.send(
          new DescribeImageReferencesCommand({
            ImageIds: batch,
            ResourceTypes: REFERENCE_TYPES,
            ...(token ? { NextToken: token } : {}),
          }),
        ),
      );
      for (const r of out.ImageReferences ?? []) {
        if (!r.ImageId) continue;
        (refs[r.ImageId] ??= []).push(r.Arn ?? r.ResourceType ?? 'unknown resource');
      }
      token = out.NextToken;
      pages += 1;
    } while (token && pages < MAX_PAGES);
  }
  return refs;
}

/** Who else may launch the image: account ids, organization and OU ARNs, `public`. */
async function sharedWith(ec2: EC2Client, imageId: string): Promise<string[]> {
  const out = await aws(`reading who may launch ${imageId} (DescribeImageAttribute launchPermission)`, () =>
    ec2.send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'launchPermission' })),
  );
  return (out.LaunchPermissions ?? []).flatMap((p: LaunchPermission) =>
    p.Group === 'all'
      ? ['public']
      : [p.UserId, p.OrganizationArn, p.OrganizationalUnitArn].filter((v): v is string => !!v),
  );
}

/**
 * When deregistration protection still blocks the image, the time it stops blocking (epoch ms):
 * `enabled-with-cooldown` is turned off here and blocks for 24 hours more; `disabled-until <time>`
 * (turned off earlier, still cooling down) blocks until then. Undefined: deregister now.
 */
async function protectionHold(
  ec2: EC2Client,
  image: Image,
  imageId: string,
  now: number,
): Promise<number | undefined> {
  const protection = (image.DeregistrationProtection ?? '').toLowerCase();
  const until = /^disabled-until[\s-]*(.+)$/.exec(protection)?.[1];
  if (until !== undefined) {
    const at = Date.parse(until.toUpperCase());
    if (Number.isNaN(at)) return now + PROTECTION_COOLDOWN_MS;
    return at > now ? at : undefined;
  }
  if (!isProtected(protection)) return undefined;
  await aws(`turning deregistration protection off for ${imageId}`, () =>
    ec2.send(new DisableImageDeregistrationProtectionCommand({ ImageId: imageId })),
  );
  return protection.includes('without') ? undefined : now + PROTECTION_COOLDOWN_MS;
}

/** The deprecation time EC2 accepts: at least a minute ahead, at most 10 (public: 2) years, whole minutes. */
export function deprecationTime(askedMs: number, now: number, isPublic: boolean): number {
  const minute = 60_000;
  const ceiling = now + (isPublic ? MAX_PUBLIC_DEPRECATION_AHEAD_MS : MAX_DEPRECATION_AHEAD_MS);
  const latest = Math.floor(ceiling / minute) * minute;
  return Math.min(Math.ceil(Math.max(askedMs, now + minute) / minute) * minute, latest);
}

/** Why the image is kept although it qualifies (someone's protection, an approved image), if it is. */
function keptBecause(image: Image, input: RetireImageInput): string | undefined {
  if (input.honourProtection && isProtected(image.DeregistrationProtection))
    return `deregistration protection is on (${image.DeregistrationProtection ?? 'enabled'})`;
  if (input.keepApproved && tagsOf(image)[TAG.approved] === APPROVED_VALUE)
    return `it is an approved image (${TAG.approved}=${APPROVED_VALUE})`;
  return undefined;
}

export function retentionActivities(deps: ActivityDeps) {
  return {
    /** amiflow's images carrying every given tag, deprecated and disabled ones included. Read-only. */
    async listManagedImages(input: ListManagedImagesInput): Promise<ManagedImage[]> {
      const filters = Object.entries(input.tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
      if (filters.length === 0)
        throw failure(
          FailureType.InvalidInput,
          'listManagedImages needs at least one tag to select images by',
        );
      const ec2 = await deps.aws.ec2(input.target);
      const images: ManagedImage[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const out = await aws(`listing images tagged ${JSON.stringify(input.tags)}`, () =>
          ec2.send(ownImagesPage(filters, token)),
        );
        for (const image of out.Images ?? []) {
          // Filters are exact in EC2; checked again so a lenient endpoint cannot widen the selection.
          const tags = tagsOf(image);
          if (image.ImageId && Object.entries(input.tags).every(([k, v]) => tags[k] === v))
            images.push(managedImageOf(image));
        }
        token = out.NextToken;
        pages += 1;
      } while (token && pages < MAX_PAGES);
      return images;
    },

    /** Image id → ARNs of the instances, launch templates, parameters and recipes that use it. Read-only. */
    async findImageReferences(input: ImageReferencesInput): Promise<Record<string, string[]>> {
      if (input.imageIds.length === 0) return {};
      return referencesOf(await deps.aws.ec2(input.target), input.imageIds);
    },

    /** Turns deregistration protection on. Safe to repeat. */
    async protectImage(input: ProtectImageInput): Promise<{ imageId: string }> {
      const ec2 = await deps.aws.ec2(input.target);
      await aws(`turning deregistration protection on for ${input.imageId}`, () =>
        ec2.send(
          new EnableImageDeregistrationProtectionCommand({
            ImageId: input.imageId,
            WithCooldown: input.withCooldown === true,
          }),
        ),
      );
      return { imageId: input.imageId };
    },

    /** Deprecates the image at a time (it stays usable by those who know its id). Safe to repeat. */
    async deprecateImage(input: DeprecateImageInput): Promise<DeprecatedImage> {
      const ec2 = await deps.aws.ec2(input.target);
      const at = deprecationTime(input.deprecateAt, deps.clock.now(), input.public === true);
      await aws(`deprecating ${input.imageId}`, () =>
        ec2.send(new EnableImageDeprecationCommand({ ImageId: input.imageId, DeprecateAt: new Date(at) })),
      );
      return {
        imageId: input.imageId,
        deprecateAt: new Date(at).toISOString(),
        ...(at < input.deprecateAt ? { clampedFrom: new Date(input.deprecateAt).toISOString() } : {}),
      };
    },

    /**
     * Deregisters the image and deletes its snapshots, unless something still references it (checked
     * again here, right before), it is shared (unless `retireShared`) or it is not the caller's (its
     * tags). Turns deregistration protection off first when it is on; with a cooldown, that is all
     * it does (`retireAfter`), and a later run finishes. Safe to repeat: the snapshot ids are kept in heartbeat details, so a
     * retry after deregistration still deletes them.
     */
    async retireImage(input: RetireImageInput): Promise<RetiredImage> {
      const ctx = Context.current();
      const ec2 = await deps.aws.ec2(input.target);
      const remembered = ctx.info.heartbeatDetails as { snapshotIds?: string[] } | undefined;
      const image = await describeOne(ec2, input.imageId);
      if (image) {
        const tags = tagsOf(image);
        const foreign = Object.entries(input.requiredTags).filter(([k, v]) => tags[k] !== v);
        if (foreign.length > 0)
          throw failure(
            FailureType.AwsPolicyRefused,
            `image ${input.imageId} lacks ${foreign.map(([k, v]) => `${k}=${v}`).join(', ')}: not retiring an image amiflow did not make for this plan`,
          );
        const kept = keptBecause(image, input);
        if (kept)
          return { imageId: input.imageId, deregistered: false, deletedSnapshotIds: [], keptBecause: kept };
        const refs = (await referencesOf(ec2, [input.imageId]))[input.imageId] ?? [];
        if (refs.length > 0)
          return { imageId: input.imageId, deregistered: false, deletedSnapshotIds: [], references: refs };
        // DescribeImageReferences lists only this account's resources: other accounts launching a
        // shared image are invisible to it (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-ami-references.html).
        if (input.retireShared !== true) {
          const shared = await sharedWith(ec2, input.imageId);
          if (shared.length > 0)
            return {
              imageId: input.imageId,
              deregistered: false,
              deletedSnapshotIds: [],
              sharedWith: shared,
            };
        }
        const hold = await protectionHold(ec2, image, input.imageId, deps.clock.now());
        if (hold !== undefined)
          return {
            imageId: input.imageId,
            deregistered: false,
            deletedSnapshotIds: [],
            retireAfter: new Date(hold).toISOString(),
          };
      }
      const snapshotIds = [
        ...new Set([...(image ? snapshotIdsOf(image) : []), ...(remembered?.snapshotIds ?? [])]),
      ];
      ctx.heartbeat({ snapshotIds });
      const { deregistered, deletedSnapshotIds } = await deregisterWithSnapshots(
        ec2,
        image ? input.imageId : undefined,
        snapshotIds,
      );
      return {
        imageId: input.imageId,
        deregistered,
        deletedSnapshotIds,
        ...(image ? {} : { note: 'the image was gone already' }),
      };
    },
  };
}

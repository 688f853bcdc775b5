/**
 * Compliance of one account and region: list its running and stopped instances (DescribeInstances,
 * paginated with MaxResults and NextToken), describe the images they run in batches, and classify
 * each image as approved, approved-deprecated, unknown or missing. Read-only.
 */
import type { Image, Instance } from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { DescribeInstancesCommand, GetAllowedImagesSettingsCommand } from '@aws-sdk/client-ec2';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type {
  ApprovalBasis,
  AwsTarget,
  ImageClassification,
  ImageUsage,
  InstanceFinding,
  TargetReport,
} from '../contracts';
import { SELF_ACCOUNT, TAG, emptyCounts } from '../contracts';
import { approvedByOwnTags, isRetired, tagsOf } from './catalogue';
import type { ActivityDeps } from './deps';
import { awsErrorCode } from './errors';
import type { ReadCounters } from './throttled-reads';
import { describeImagesByIds, eachThrottledPage, throttledRead } from './throttled-reads';

/** What the scan needs to know of an approved image in this region. */
export interface ApprovedRef {
  imageId: string;
  basis: ApprovalBasis;
  pipeline?: string;
  version?: string;
  /** Retired as the catalogue saw it (the image as this account sees it is checked too). */
  deprecated?: boolean;
}

export interface ScanInstancesInput {
  target: AwsTarget;
  /** The catalogue's approved images in the target's region (approval tags and allow-listed ids). */
  approved: ApprovedRef[];
  /** Owners the allow list approves as a whole (account ids, or aliases such as `amazon`). */
  allowedOwners: string[];
  /** Images the scanned account owns count as approved by their own tags only for these pipelines (all when absent). */
  pipelines?: string[];
  /** Non-approved instances listed; the others are only counted. */
  maxFindings: number;
}

/** The instance states a scan lists (the others are on their way in or out). */
export const SCANNED_STATES = ['running', 'stopped'] as const;
/** DescribeInstances page size (EC2's maximum). */
export const INSTANCE_PAGE = 1000;

export function targetLabel(target: AwsTarget): string {
  return target.accountId ?? SELF_ACCOUNT;
}

interface Classified {
  classification: ImageClassification;
  usage: Omit<ImageUsage, 'instances'>;
}

/** How one image stands, from the catalogue's view (`ref`) and this account's (`image`; undefined: not found). */
export function classifyImage(
  imageId: string,
  image: Image | undefined,
  ref: ApprovedRef | undefined,
  input: Pick<ScanInstancesInput, 'allowedOwners' | 'pipelines'>,
  now: number,
  allowedAmisEnabled = false,
): Classified {
  if (!image) {
    // With Allowed AMIs `enabled`, DescribeImages shows only allowed images: an image it does not
    // describe is (most likely) not allowed, not deregistered.
    const classification = allowedAmisEnabled ? 'not-allowed' : 'missing';
    return {
      classification,
      usage: { imageId, classification, ...(allowedAmisEnabled ? { allowedByEc2: false } : {}) },
    };
  }
  const tags = tagsOf(image);
  const owner = [image.OwnerId, image.ImageOwnerAlias].find((o) => o && input.allowedOwners.includes(o));
  const basis: ApprovalBasis | undefined =
    ref?.basis ??
    (approvedByOwnTags(image, input.pipelines) ? 'approval-tags' : owner ? 'allow-list' : undefined);
  const classification: ImageClassification = !basis
    ? 'unknown'
    : isRetired(image, now) || ref?.deprecated
      ? 'approved-deprecated'
      : 'approved';
  const details = {
    ownerId: image.OwnerId,
    name: image.Name,
    pipeline: ref?.pipeline ?? tags[TAG.pipeline],
    version: ref?.version ?? tags[TAG.version],
    deprecationTime: image.DeprecationTime,
    basis,
    allowedByEc2: image.ImageAllowed,
  };
  return {
    classification,
    usage: {
      imageId,
      classification,
      ...Object.fromEntries(Object.entries(details).filter(([, v]) => v !== undefined && v !== '')),
    },
  };
}

/** An instance as the report needs it. */
type Seen = Omit<InstanceFinding, 'classification'>;

function seen(i: Instance): Seen {
  const name = i.Tags?.find((t) => t.Key === 'Name')?.Value;
  return {
    instanceId: i.InstanceId ?? '',
    imageId: i.ImageId ?? '',
    state: i.State?.Name ?? 'unknown',
    ...(name ? { name } : {}),
    ...(i.LaunchTime ? { launchTime: new Date(i.LaunchTime).toISOString() } : {}),
  };
}

const SEVERITY: Record<ImageClassification, number> = {
  missing: 0,
  'not-allowed': 1,
  unknown: 2,
  'approved-deprecated': 3,
  approved: 4,
};

/**
 * The account's Allowed AMIs state, read before its images: in state `enabled` EC2 leaves every
 * image the criteria do not allow out of DescribeImages
 * (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-allowed-amis.html). A scan that cannot
 * read it still scans, and says so.
 */
async function allowedAmisState(
  deps: ActivityDeps,
  ec2: EC2Client,
  counters: ReadCounters,
  where: string,
): Promise<{ state?: string; warning?: string }> {
  try {
    const out = await throttledRead(deps, counters, `reading the Allowed AMIs state in ${where}`, () =>
      ec2.send(new GetAllowedImagesSettingsCommand({})),
    );
    return { state: out.State ?? 'disabled' };
  } catch (err) {
    // Permanent AWS errors arrive typed, the AWS error as their cause.
    const code = awsErrorCode(err instanceof ApplicationFailure && err.cause ? err.cause : err);
    return {
      warning:
        `the Allowed AMIs state could not be read (${code}): if it is enabled, ` +
        'images it does not allow are counted as missing',
    };
  }
}

export function complianceActivities(deps: ActivityDeps) {
  return {
    /** Lists the target's running and stopped instances and classifies the images they run. */
    async scanInstances(input: ScanInstancesInput): Promise<TargetReport> {
      const ctx = Context.current();
      const ec2 = await deps.aws.ec2(input.target);
      const counters: ReadCounters = { awsCalls: 0, throttled: 0 };
      const where = `region ${input.target.region}${input.target.accountId ? `, account ${input.target.accountId}` : ''}`;
      // Only what the report needs of each instance: a large fleet's pages are not kept whole.
      const instances: Seen[] = [];
      const allowed = await allowedAmisState(deps, ec2, counters, where);
      let pages = 0;
      const heartbeat = () => ctx.heartbeat({ pages, instances: instances.length });
      await eachThrottledPage(
        deps,
        counters,
        `listing instances in ${where}`,
        (token) =>
          ec2.send(
            new DescribeInstancesCommand({
              Filters: [{ Name: 'instance-state-name', Values: [...SCANNED_STATES] }],
              MaxResults: INSTANCE_PAGE,
              ...(token ? { NextToken: token } : {}),
            }),
          ),
        (page) => {
          pages += 1;
          for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) instances.push(seen(i));
          heartbeat();
        },
        heartbeat,
      );

      const imageIds = [...new Set(instances.map((i) => i.imageId).filter((id) => id !== ''))];
      const images = await describeImagesByIds(deps, ec2, imageIds, counters, heartbeat);
      const refs = new Map(input.approved.map((a) => [a.imageId, a]));
      const now = deps.clock.now();
      const byImage = new Map(
        imageIds.map((id) => [
          id,
          classifyImage(id, images.get(id), refs.get(id), input, now, allowed.state === 'enabled'),
        ]),
      );

      const counts = emptyCounts();
      const perImage = new Map<string, number>();
      const findings: InstanceFinding[] = [];
      let findingsOmitted = 0;
      for (const i of instances) {
        const { imageId } = i;
        const classification = byImage.get(imageId)?.classification ?? 'missing';
        counts[classification] += 1;
        counts.instances += 1;
        perImage.set(imageId, (perImage.get(imageId) ?? 0) + 1);
        if (classification === 'approved') continue;
        if (findings.length >= input.maxFindings) {
          findingsOmitted += 1;
          continue;
        }
        findings.push({ ...i, classification });
      }
      const usages: ImageUsage[] = [...byImage.values()]
        .map((c) => ({ ...c.usage, instances: perImage.get(c.usage.imageId) ?? 0 }))
        .sort(
          (a, b) =>
            SEVERITY[a.classification] - SEVERITY[b.classification] ||
            b.instances - a.instances ||
            a.imageId.localeCompare(b.imageId),
        );
      const warnings = [
        ...(allowed.warning ? [allowed.warning] : []),
        ...(counts.missing > 0
          ? [
              `${counts.missing} instance(s) run images EC2 no longer describes (deregistered, or no longer shared)`,
            ]
          : []),
        ...(counts['not-allowed'] > 0
          ? [
              `${counts['not-allowed']} instance(s) run images the account's Allowed AMIs (enabled) does not allow: ` +
                'EC2 hides them (or they were deregistered: EC2 cannot tell which while it is enabled)',
            ]
          : []),
      ];
      return {
        account: targetLabel(input.target),
        region: input.target.region,
        status: 'scanned',
        counts,
        images: usages,
        findings,
        findingsOmitted,
        awsCalls: counters.awsCalls,
        throttled: counters.throttled,
        warnings,
      };
    },
  };
}

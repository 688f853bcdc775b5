/**
 * Documented EC2 rules the sandbox does not keep (issue 16), as the fault layer models them:
 * concurrency limit errors, an AMI name held after deregistration, launch permissions that reach
 * the grantee late, Allowed AMIs hiding the images it does not allow, and DescribeImageReferences
 * (which moto lacks) with its limit of 10 image ids. Pure bookkeeping on a clock, like ec2-model.ts;
 * the proxy (fault-proxy.ts) asks it before and after each call.
 */
import type { FaultAnswer } from './ec2-model';
import type { AllowedAmisModel, FaultOptions } from './options';
import { allTags, errorXml, firstTag, mapSetItems, paramValues } from './xml';

/** DescribeImageReferences takes 1 to 10 image ids (API reference, DescribeImageReferences). */
export const REFERENCE_ID_LIMIT = 10;

/**
 * The concurrency limits an action meets on a busy account
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html): a CreateImage
 * overlapping another snapshot of the volume, or too many snapshots in progress; a CopyImage into a
 * region with too many copies in progress.
 */
export const LIMIT_ERRORS: Readonly<Record<string, readonly { code: string; message: string }[]>> = {
  CreateImage: [
    {
      code: 'SnapshotCreationPerVolumeRateExceeded',
      message:
        'The maximum per volume CreateSnapshot request rate has been exceeded. Use an increasing or variable sleep interval between requests.',
    },
    {
      code: 'ConcurrentSnapshotLimitExceeded',
      message: 'Maximum allowed in-progress snapshots for a single volume exceeded.',
    },
  ],
  CopyImage: [
    {
      code: 'ResourceLimitExceeded',
      message: 'You have exceeded the number of concurrent snapshot copies in progress for this Region.',
    },
  ],
};

/** The limit error a call meets when its draw (`limitDraw`) fell under the rate; `codeDraw` picks which. */
export function limitError(action: string, codeDraw: number): FaultAnswer | undefined {
  const errors = LIMIT_ERRORS[action];
  const chosen = errors?.[Math.min(errors.length - 1, Math.floor(codeDraw * errors.length))];
  if (!chosen) return undefined;
  return { status: 400, body: errorXml(chosen.code, chosen.message), fault: 'limitExceeded' };
}

/** A successful EC2 answer the layer gives itself, for an action the sandbox lacks. */
export function ec2Response(action: string, inner: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` +
    `<requestId>fault-layer</requestId>${inner}</${action}Response>`
  );
}

/** GetAllowedImagesSettings as the account's Allowed AMIs settings (`options.allowedAmis`) say. */
export function allowedImagesSettingsXml(allowed: AllowedAmisModel): string {
  const providers = allowed.imageProviders.map((p) => `<item>${p}</item>`).join('');
  const criteria = providers ? `<item><imageProviderSet>${providers}</imageProviderSet></item>` : '';
  return ec2Response(
    'GetAllowedImagesSettings',
    `<state>${allowed.state}</state><imageCriterionSet>${criteria}</imageCriterionSet><managedBy>account</managedBy>`,
  );
}

/**
 * Whether the criteria allow an image (a `<item>` of DescribeImages): only image providers are
 * modelled, an account id or `amazon` (the images Amazon publishes).
 */
export function imageAllowed(item: string, providers: readonly string[]): boolean {
  const owner = firstTag(item, 'imageOwnerId');
  const alias = firstTag(item, 'imageOwnerAlias');
  return providers.some((p) => p === owner || (p === 'amazon' && alias === 'amazon'));
}

/** InvalidParameterValue for a DescribeImageReferences EC2 would refuse (0 or more than 10 ids). */
export function refusedReferences(params: URLSearchParams): FaultAnswer | undefined {
  const ids = paramValues(params, /^ImageId\.\d+$/);
  if (ids.length >= 1 && ids.length <= REFERENCE_ID_LIMIT) return undefined;
  return {
    status: 400,
    body: errorXml(
      'InvalidParameterValue',
      `The request must contain between 1 and ${REFERENCE_ID_LIMIT} image ids (it has ${ids.length}).`,
    ),
    fault: 'referenceIdLimit',
  };
}

/**
 * DescribeImageReferences answered from the sandbox's instances (the only resource type modelled):
 * each pending, running, stopping or stopped instance launched from one of the ids.
 */
export async function imageReferencesXml(
  params: URLSearchParams,
  region: string,
  direct: (params: Record<string, string>) => Promise<string>,
): Promise<string> {
  const ids = paramValues(params, /^ImageId\.\d+$/);
  const values = [...params.values()];
  const wantsInstances = params.get('IncludeAllResourceTypes') === 'true' || values.includes('ec2:Instance');
  const refs: string[] = [];
  if (wantsInstances) {
    const query: Record<string, string> = { Action: 'DescribeInstances', 'Filter.1.Name': 'image-id' };
    ids.forEach((id, i) => (query[`Filter.1.Value.${i + 1}`] = id));
    query['Filter.2.Name'] = 'instance-state-name';
    ['pending', 'running', 'stopping', 'stopped'].forEach((s, i) => (query[`Filter.2.Value.${i + 1}`] = s));
    const out = await direct(query);
    mapSetItems(out, 'reservationSet', (reservation) => {
      const owner = firstTag(reservation, 'ownerId') ?? '';
      mapSetItems(reservation, 'instancesSet', (instance) => {
        const instanceId = firstTag(instance, 'instanceId');
        const imageId = firstTag(instance, 'imageId');
        if (instanceId && imageId && ids.includes(imageId))
          refs.push(
            `<item><imageId>${imageId}</imageId><resourceType>ec2:Instance</resourceType>` +
              `<arn>arn:aws:ec2:${region}:${owner}:instance/${instanceId}</arn></item>`,
          );
        return instance;
      });
      return reservation;
    });
  }
  return ec2Response('DescribeImageReferences', `<imageReferenceSet>${refs.join('')}</imageReferenceSet>`);
}

/** What the layer remembers for these rules: names still held, launch permissions not effective yet. */
export class AwsRulesModel {
  /** `region|name` → the deregistered image that held it and until when it is held. */
  private readonly heldNames = new Map<string, { imageId: string; until: number }>();
  /** `imageId|account` → epoch ms from which the grantee sees the image. */
  private readonly grants = new Map<string, number>();

  constructor(
    private readonly options: () => FaultOptions,
    private readonly now: () => number,
  ) {}

  reset(): void {
    this.heldNames.clear();
    this.grants.clear();
  }

  /** A deregistered image's name stays taken for `nameHeldMs`. */
  deregistered(region: string, name: string, imageId: string): void {
    const ms = this.options().nameHeldMs;
    if (ms > 0) this.heldNames.set(`${region}|${name}`, { imageId, until: this.now() + ms });
  }

  /** InvalidAMIName.Duplicate for a name still held by an image deregistered moments ago. */
  heldName(region: string, name: string): FaultAnswer | undefined {
    const held = this.heldNames.get(`${region}|${name}`);
    if (!held || this.now() >= held.until) return undefined;
    return {
      status: 400,
      body: errorXml('InvalidAMIName.Duplicate', `AMI name ${name} is already in use by AMI ${held.imageId}`),
      fault: 'nameHeld',
    };
  }

  /** ModifyImageAttribute adding launch permissions: each grantee sees the image `shareVisibilityMs` later. */
  launchPermissionAdded(params: URLSearchParams): void {
    const ms = this.options().shareVisibilityMs;
    const imageId = params.get('ImageId');
    if (ms <= 0 || !imageId) return;
    for (const account of paramValues(params, /^LaunchPermission\.Add\.\d+\.UserId$/))
      this.grants.set(`${imageId}|${account}`, this.now() + ms);
  }

  /**
   * DescribeImages as EC2 answers it now: with `ExecutableBy` accounts, images whose launch
   * permission has not reached them yet are left out; with Allowed AMIs `enabled`, images the
   * criteria do not allow are left out.
   */
  rewriteImages(params: URLSearchParams, body: string): { body: string; hidden: number; notAllowed: number } {
    const users = paramValues(params, /^ExecutableBy\.\d+$/);
    const allowed = this.options().allowedAmis;
    let hidden = 0;
    let notAllowed = 0;
    const now = this.now();
    const out = mapSetItems(body, 'imagesSet', (item) => {
      const imageId = allTags(item, 'imageId')[0] ?? '';
      if (users.some((u) => now < (this.grants.get(`${imageId}|${u}`) ?? 0))) {
        hidden += 1;
        return undefined;
      }
      if (allowed.state === 'enabled' && !imageAllowed(item, allowed.imageProviders)) {
        notAllowed += 1;
        return undefined;
      }
      return item;
    });
    return { body: out, hidden, notAllowed };
  }
}

/**
 * approvedImages: the approved-image catalogue, read for accounts × regions. Golden-image runs mark
 * approved images with tags (`amiflow:approved`, pipeline, version, approved-by, approved-at,
 * source image) in the account that owns them; this reads those, plus an explicit allow list for
 * images made elsewhere. Read-only. `readCatalogue` is shared with complianceScan and
 * enforceAllowedAmis, which start from the same catalogue.
 */
import { ActivityFailure, ApplicationFailure, isCancellation, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type {
  AllowListEntry,
  ApprovedImage,
  AwsTarget,
  Catalogue,
  CatalogueInput,
  GuardrailError,
} from '../contracts';
import { SELF_ACCOUNT, WORKFLOW_TYPES } from '../contracts';
import { startRun } from './bootstrap';
import { DEFAULT_GUARDRAIL_CONCURRENCY, parseCatalogueInput } from './guardrails-validation';
import { scanCall } from './presets';
import type { Progress } from './progress';
import { errorMessage } from './progress';
import { Semaphore } from './semaphore';

const reads = proxyActivities<Activities>(scanCall);

export function targetOf(account: string, region: string): AwsTarget {
  return account === SELF_ACCOUNT ? { region } : { region, accountId: account };
}

/** `eu-west-1 · 111122223333`, or `eu-west-1 · self`. */
export function targetName(account: string, region: string): string {
  return `${region} · ${account}`;
}

/** The failure type and message behind an activity failure, for reports. */
export function failureOf(err: unknown): { type?: string; message: string } {
  let cause: unknown = err;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure)
    return { ...(cause.type ? { type: cause.type } : {}), message: cause.message };
  return { message: errorMessage(cause) };
}

export interface CatalogueSpec {
  accounts: string[];
  regions: string[];
  pipelines?: string[];
  allowList?: AllowListEntry[];
}

/** What a guardrail reads: `accounts` (none named: the worker's own) × `regions`, narrowed by `selection`. */
export function catalogueSpec(
  accounts: string[] | undefined,
  regions: string[],
  selection: { pipelines?: string[] | undefined; allowList?: AllowListEntry[] | undefined },
): CatalogueSpec {
  return {
    accounts: accounts ?? [SELF_ACCOUNT],
    regions,
    ...(selection.pipelines ? { pipelines: selection.pipelines } : {}),
    ...(selection.allowList ? { allowList: selection.allowList } : {}),
  };
}

/** Counts the catalogue's reads on the `read catalogue` step, for the progress query. */
export function notingReads(progress: Progress): (done: number, of: number) => void {
  return (done, of) => progress.note('read catalogue', `${done}/${of} account·region reads done`);
}

/**
 * The catalogue of `accounts` × `regions`, at most `slots.limit` reads at once. A read that fails is
 * reported in `errors` (the images approved there are then missing) and the others complete.
 */
export async function readCatalogue(
  spec: CatalogueSpec,
  slots: Semaphore,
  onRead?: (done: number, of: number) => void,
): Promise<Catalogue> {
  const allowList = spec.allowList ?? [];
  const allowedImages = allowList.filter(
    (e) => e.imageId !== undefined && spec.regions.includes(e.region ?? ''),
  );
  const images = new Map<string, ApprovedImage>();
  const errors: GuardrailError[] = [];
  const pairs = spec.accounts.flatMap((account) => spec.regions.map((region) => ({ account, region })));
  let done = 0;
  await Promise.all(
    pairs.map(({ account, region }) =>
      slots.withPermit(async () => {
        // Allow-listed images are described once per region, as the first catalogue account sees them.
        const describeAllowed = account === spec.accounts[0];
        const allowListImageIds = describeAllowed
          ? allowedImages.filter((e) => e.region === region).map((e) => e.imageId as string)
          : [];
        try {
          const read = await reads.listApprovedImages.executeWithOptions(
            { ...scanCall, summary: `read approved images in ${targetName(account, region)}` },
            [
              {
                target: targetOf(account, region),
                ...(spec.pipelines ? { pipelines: spec.pipelines } : {}),
                ...(allowListImageIds.length ? { allowListImageIds } : {}),
              },
            ],
          );
          for (const image of read.images) {
            const key = `${image.region}/${image.imageId}`;
            const known = images.get(key);
            // Approval tags win over the allow list; a visible allow-listed image over an invisible one.
            if (
              !known ||
              (known.basis === 'allow-list' && image.basis === 'approval-tags') ||
              known.state === 'not-visible'
            )
              images.set(key, image);
          }
        } catch (err) {
          if (isCancellation(err)) throw err;
          errors.push({ account, region, ...failureOf(err) });
        }
        done += 1;
        onRead?.(done, pairs.length);
      }),
    ),
  );
  // Every allow-listed image is approved, also when no read could describe it.
  for (const e of allowedImages) {
    const key = `${e.region}/${e.imageId}`;
    const known = images.get(key);
    if (known && known.basis === 'allow-list') known.reason = e.reason;
    else if (!known)
      images.set(key, {
        imageId: e.imageId as string,
        region: e.region as string,
        ownerId: '',
        state: 'not-visible',
        deprecated: false,
        kmsKeyIds: [],
        basis: 'allow-list',
        reason: e.reason,
      });
  }
  const order = (i: ApprovedImage) => spec.regions.indexOf(i.region);
  return {
    images: [...images.values()].sort(
      (a, b) =>
        order(a) - order(b) ||
        (a.pipeline ?? '').localeCompare(b.pipeline ?? '') ||
        (b.creationDate ?? '').localeCompare(a.creationDate ?? '') ||
        a.imageId.localeCompare(b.imageId),
    ),
    allowedOwners: allowList.flatMap((e) => (e.owner ? [{ owner: e.owner, reason: e.reason }] : [])),
    errors,
    readAt: new Date().toISOString(),
  };
}

export async function approvedImages(rawInput: CatalogueInput): Promise<Catalogue> {
  // No guarded(): reading the catalogue has nothing to undo.
  const { input, progress } = startRun({
    workflowType: WORKFLOW_TYPES.approvedImages,
    steps: ['read catalogue'],
    parse: parseCatalogueInput,
    raw: rawInput,
  });
  const catalogue = await progress.run('read catalogue', () =>
    readCatalogue(
      catalogueSpec(input.accounts, input.regions, input),
      new Semaphore(input.concurrency ?? DEFAULT_GUARDRAIL_CONCURRENCY),
      notingReads(progress),
    ),
  );
  progress.setPhase('succeeded');
  return catalogue;
}

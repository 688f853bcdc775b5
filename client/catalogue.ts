/**
 * Client side of the approved-image catalogue: read it (through the `approvedImages` workflow, so
 * the worker's roles read every account and services need no EC2 permissions of their own), and the
 * launch helper that services call: "the current approved image of pipeline P in region R".
 */
import { createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import type { ApprovedImage, Catalogue, CatalogueInput } from '../contracts';
import { FailureType, SELF_ACCOUNT } from '../contracts';
import { approvedImages } from '../workflows';
import { parseCatalogueInput } from '../workflows/guardrails-validation';

/** `approved-images/<digest of the selection>`: identical reads at the same time share one run. */
export function catalogueWorkflowId(input: CatalogueInput): string {
  const digest = createHash('sha256')
    .update(
      JSON.stringify({
        accounts: [...(input.accounts ?? [SELF_ACCOUNT])].sort(),
        regions: [...input.regions].sort(),
        pipelines: [...(input.pipelines ?? [])].sort(),
        allowList: input.allowList ?? [],
      }),
    )
    .digest('hex')
    .slice(0, 16);
  return `approved-images/${digest}`;
}

/** Reads the catalogue; concurrent identical reads join the one already running. */
export async function readCatalogue(
  temporal: Client,
  taskQueue: string,
  input: CatalogueInput,
): Promise<Catalogue> {
  const valid = parseCatalogueInput(input);
  return temporal.workflow.execute(approvedImages, {
    args: [valid],
    taskQueue,
    workflowId: catalogueWorkflowId(valid),
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    staticSummary: `Approved images in ${valid.regions.join(', ')}${valid.pipelines ? ` (${valid.pipelines.join(', ')})` : ''}`,
  });
}

/**
 * Compares versions as people read them: `1.10.0` after `1.9.2`, `2026-02-01` after `2026-01-31`,
 * `v2` after `v1`. Runs of digits compare as numbers, everything else as text.
 */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) => v.match(/\d+|\D+/g) ?? [];
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i += 1) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    const c = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x.localeCompare(y);
    if (c !== 0) return c;
  }
  return 0;
}

/** Newest first: version, then approval time, then creation time. */
export function newestFirst(a: ApprovedImage, b: ApprovedImage): number {
  return (
    compareVersions(b.version ?? '', a.version ?? '') ||
    (b.approvedAt ?? '').localeCompare(a.approvedAt ?? '') ||
    (b.creationDate ?? '').localeCompare(a.creationDate ?? '')
  );
}

/** The image to launch: the newest approved, available, non-deprecated version of `pipeline` in `region`. */
export function currentApprovedImage(
  images: readonly ApprovedImage[],
  pipeline: string,
  region: string,
): ApprovedImage | undefined {
  return images
    .filter(
      (i) =>
        i.basis === 'approval-tags' &&
        i.pipeline === pipeline &&
        i.region === region &&
        i.state === 'available' &&
        !i.deprecated,
    )
    .sort(newestFirst)[0];
}

/** No approved image to launch: the message says what the catalogue has instead. */
export class NoApprovedImageError extends Error {
  override name = 'NoApprovedImageError';
  readonly failureType = FailureType.NoApprovedImage;
  constructor(
    message: string,
    readonly pipeline: string,
    readonly region: string,
  ) {
    super(message);
  }
}

export interface ResolveOptions {
  /** The account whose approval tags to trust (where the pipeline's images are); default the worker's own. */
  accountId?: string;
}

export interface ResolvedImage {
  imageId: string;
  region: string;
  ownerId: string;
  pipeline: string;
  version?: string;
  name?: string;
  approvedAt?: string;
  approvedBy?: string;
}

export async function resolveApprovedImage(
  temporal: Client,
  taskQueue: string,
  pipeline: string,
  region: string,
  opts: ResolveOptions = {},
): Promise<ResolvedImage> {
  const catalogue = await readCatalogue(temporal, taskQueue, {
    accounts: [opts.accountId ?? SELF_ACCOUNT],
    regions: [region],
    pipelines: [pipeline],
  });
  const current = currentApprovedImage(catalogue.images, pipeline, region);
  if (!current) {
    const versions = catalogue.images.filter((i) => i.pipeline === pipeline);
    const why = catalogue.errors.length
      ? `the catalogue could not be read: ${catalogue.errors.map((e) => e.message).join('; ')}`
      : versions.length
        ? `its ${versions.length} approved version(s) are all deprecated, disabled or not available ` +
          `(${versions.map((v) => `${v.imageId} ${v.version ?? '?'} ${v.deprecated ? 'deprecated' : v.state}`).join(', ')})`
        : `no image in account ${opts.accountId ?? SELF_ACCOUNT} carries its approval tags there`;
    throw new NoApprovedImageError(
      `pipeline '${pipeline}' has no approved image to launch in ${region}: ${why}`,
      pipeline,
      region,
    );
  }
  return {
    imageId: current.imageId,
    region: current.region,
    ownerId: current.ownerId,
    pipeline,
    ...(current.version ? { version: current.version } : {}),
    ...(current.name ? { name: current.name } : {}),
    ...(current.approvedAt ? { approvedAt: current.approvedAt } : {}),
    ...(current.approvedBy ? { approvedBy: current.approvedBy } : {}),
  };
}

/**
 * 5. Distribution: copies by a child `copyImage` (each undone by deleting it), then a child
 * `shareImage` per image in this account (each undone by withdrawing its share).
 */
import { startChild } from '@temporalio/workflow';
import type {
  CopyImageInput,
  CopyImageResult,
  GoldenImageOut,
  ShareImageInput,
  ShareImageResult,
} from '../../contracts';
import { SearchAttr } from '../../contracts';
import { act, remote } from '../bootstrap';
import type { PatchId } from '../patches';
import { copyImage } from '../copy-image';
import { shareImage, withdrawShare } from '../share-image';
import type { GoldenRun } from './run';
import { targetOfImage, where } from './run';

/** Copy and share children started before this carry no search attributes; the start commands differ. */
export const GOLDEN_CHILD_SEARCH_ATTRIBUTES_PATCH = 'amiflow-golden-child-search-attributes';

/**
 * The image and region for a child run, so it sets its own outcome and step when it ends and a
 * search by the golden image finds it. Only where the parent's own attributes show they are registered.
 */
export function childAttributes(
  run: GoldenRun,
  imageId: string,
  region: string,
  patchId: PatchId = GOLDEN_CHILD_SEARCH_ATTRIBUTES_PATCH,
) {
  return run.withSearchAttributes && run.progress.since(patchId)
    ? {
        typedSearchAttributes: [
          { key: SearchAttr.imageId, value: imageId },
          { key: SearchAttr.region, value: region },
        ],
      }
    : {};
}

/** Copies the image to the configured destinations; returns the original and every copy made. */
export async function copyStage(
  run: GoldenRun,
  imageId: string,
  imageName: string,
): Promise<GoldenImageOut[]> {
  const { input, progress, target, ids } = run;
  const images: GoldenImageOut[] = [{ ...target, imageId, role: 'original' }];
  const copies = input.distribution?.copies ?? [];
  if (copies.length === 0) {
    progress.skip('copy', 'no copies configured');
    return images;
  }
  const copied: { result?: CopyImageResult; runId?: string } = {};
  run.undo(
    'delete copies',
    async () => {
      const made = copied.result?.destinations.filter((d) => d.exists && d.imageId) ?? [];
      await Promise.all(
        made.map((d) =>
          act.deleteImage.executeWithOptions(remote(`undo: delete the copy ${d.imageId} in ${d.region}`), [
            {
              target: targetOfImage({ region: d.region, accountId: d.accountId ?? input.accountId }),
              imageName: d.imageName,
              workflowId: ids.copy,
              runId: copied.runId ?? '',
              ...(d.imageId ? { imageId: d.imageId } : {}),
            },
          ]),
        ),
      );
    },
    'copy',
  );
  const copyInput: CopyImageInput = {
    ...target,
    imageId,
    destinations: copies,
    ...(input.tags ? { tags: input.tags } : {}),
    ...(input.distribution?.concurrencyPerRegion
      ? { concurrencyPerRegion: input.distribution.concurrencyPerRegion }
      : {}),
    timeouts: { copyAvailableSeconds: run.timeouts.copyAvailableSeconds },
  };
  await progress.run(
    'copy',
    async () => {
      const child = await startChild(copyImage, {
        workflowId: ids.copy,
        args: [copyInput],
        ...childAttributes(run, imageId, target.region),
        staticSummary: `Copy golden image ${imageName} to ${copies.map((c) => where(targetOfImage(c))).join(', ')}`,
      });
      copied.runId = child.firstExecutionRunId;
      copied.result = await child.result();
    },
    `child workflow ${ids.copy}`,
  );
  for (const d of copied.result?.destinations ?? []) {
    if (!d.exists || !d.imageId) continue;
    const accountId = d.accountId ?? input.accountId;
    images.push({ region: d.region, ...(accountId ? { accountId } : {}), imageId: d.imageId, role: 'copy' });
    progress.resource(`copy ${where(targetOfImage({ region: d.region, accountId }))}`, d.imageId);
  }
  return images;
}

/** Shares every image of this version held in the run's own account (copies elsewhere are not its to share). */
export async function shareStage(run: GoldenRun, images: GoldenImageOut[]): Promise<void> {
  const { input, progress } = run;
  const shareWith = input.distribution?.shareWith;
  if (!shareWith) {
    progress.skip('share', 'no shareWith configured');
    return;
  }
  const own = images.filter((i) => i.accountId === input.accountId);
  const targets: ShareImageInput['targets'] = {
    ...(shareWith.accountIds ? { accountIds: shareWith.accountIds } : {}),
    ...(shareWith.organizationArns ? { organizationArns: shareWith.organizationArns } : {}),
    ...(shareWith.organizationalUnitArns ? { organizationalUnitArns: shareWith.organizationalUnitArns } : {}),
  };
  await progress.run('share', () =>
    Promise.all(
      own.map(async (img) => {
        const t = targetOfImage(img);
        const shareId = run.ids.share(t);
        const shared: { record?: ShareImageResult } = {};
        run.undo(
          `withdraw share of ${img.imageId}`,
          async () => {
            if (shared.record) await withdrawShare(shared.record, { deleteReencryptedCopy: true });
          },
          'share',
        );
        const shareInput: ShareImageInput = {
          ...t,
          imageId: img.imageId,
          targets,
          ...(shareWith.allowCopy !== undefined ? { allowCopy: shareWith.allowCopy } : {}),
          ...(shareWith.kmsAccess ? { kmsAccess: shareWith.kmsAccess } : {}),
        };
        const child = await startChild(shareImage, {
          workflowId: shareId,
          args: [shareInput],
          ...childAttributes(run, img.imageId, t.region),
          staticSummary: `Share golden image ${img.imageId} (${where(t)})`,
        });
        shared.record = await child.result();
        img.shareWorkflowId = shareId;
      }),
    ),
  );
}

/**
 * 6-7. The version committed to its consumers: every image tagged approved (what the catalogue and
 * guardrails read), then its id published as the SSM parameter launches resolve, per region and account.
 */
import type { PublishedParameter } from '../../activities/ssm';
import type { GoldenImageOut, GoldenImageResult, Tags } from '../../contracts';
import { APPROVED_VALUE, TAG } from '../../contracts';
import { act, la, local, remote } from '../bootstrap';
import { settleWait } from '../presets';
import type { GoldenRun } from './run';
import { deadline, targetOfImage, where } from './run';

/** The approved tags, with each image's lineage (the builder's image, or the original a copy came from). */
export async function markApproved(
  run: GoldenRun,
  images: GoldenImageOut[],
  pipelineTags: Tags,
  approval: GoldenImageResult['approval'],
  builderImageId: string | undefined,
): Promise<void> {
  const { input } = run;
  const original = images.find((i) => i.role === 'original')?.imageId ?? '';
  const approvedTags: Tags = {
    ...pipelineTags,
    [TAG.approved]: APPROVED_VALUE,
    [TAG.approvedBy]: approval.by,
    [TAG.approvedAt]: approval.at,
  };
  await run.progress.run('mark approved', () =>
    Promise.all(
      images.map((img) => {
        const t = targetOfImage(img);
        const lineage: Tags =
          img.role === 'original'
            ? builderImageId
              ? { [TAG.sourceImage]: builderImageId }
              : {}
            : { [TAG.sourceImage]: original, [TAG.sourceRegion]: input.region };
        return la.tagImage.executeWithOptions(local(`mark ${img.imageId} (${where(t)}) approved`), [
          {
            target: t,
            imageId: img.imageId,
            tags: { ...approvedTags, ...lineage },
            snapshots: img.role === 'copy',
          },
        ]);
      }),
    ),
  );
}

/** The parameter, read first so the undo can put the previous value back; records it on each image. */
export async function publishParameter(
  run: GoldenRun,
  images: GoldenImageOut[],
  version: string,
): Promise<void> {
  const { input, progress } = run;
  const publish = input.publish;
  if (!publish) {
    progress.skip('publish parameter', 'no parameter configured');
    return;
  }
  const name = publish.parameterName;
  await progress.run('publish parameter', () =>
    Promise.all(
      images.map(async (img) => {
        const t = targetOfImage(img);
        const before = await la.readImageParameter.executeWithOptions(local(`read ${name} in ${where(t)}`), [
          { target: t, name },
        ]);
        run.undo(
          `restore ${name} in ${where(t)}`,
          () =>
            act.restoreImageParameter.executeWithOptions(remote(`undo: put ${name} back in ${where(t)}`), [
              {
                target: t,
                name,
                publishedValue: img.imageId,
                ...(before.value !== undefined ? { previous: before.value } : {}),
              },
            ]),
          'publish parameter',
        );
        const settleSeconds = 300;
        const put: PublishedParameter = await act.publishImageParameter.executeWithOptions(
          remote(`publish ${img.imageId} as ${name} in ${where(t)}`, settleWait(settleSeconds)),
          [
            {
              target: t,
              name,
              imageId: img.imageId,
              description: `amiflow: pipeline ${input.pipeline} version ${version}`,
              deadline: deadline(settleSeconds),
            },
          ],
        );
        img.parameter = {
          name: put.name,
          version: put.version,
          ...(before.value !== undefined ? { previousValue: before.value } : {}),
        };
      }),
    ),
  );
}

/**
 * copyImage: copy an AMI to other regions and accounts. Cross-account destinations copy an image
 * shared with them (a child `shareImage` first, withdrawn once they have copied), so each becomes the
 * owner of its copy and encrypts it with its own key. Destinations run in parallel, at most
 * `concurrencyPerRegion` copies at once per destination region. One failed destination rolls every
 * copy back (default) or, under `keep`, only its own; the result says what exists.
 */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  executeChild,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CopyImageActivityInput } from '../activities/copying';
import type {
  AwsTarget,
  CopyDestination,
  CopyImageInput,
  CopyImageResult,
  DestinationOutcome,
  ShareImageInput,
  ShareImageResult,
  Tags,
} from '../contracts';
import {
  DEFAULT_COPY_CONCURRENCY_PER_REGION,
  DEFAULT_COPY_TIMEOUTS,
  FailureType,
  MAX_TAGS_PER_RESOURCE,
  WORKFLOW_TYPES,
  copyTagsOf,
  progressQuery,
} from '../contracts';
import { Compensations } from './compensation';
import {
  compensationCall,
  copyWait,
  fastAwsCall,
  imageWait,
  settledAwsActivity,
  settledAwsCall,
} from './presets';
import { Progress, errorMessage } from './progress';
import { Semaphores } from './semaphore';
import { parsedOrFail } from './input';
import { shareImage, withdrawShare } from './share-image';
import { parseCopyImageInput } from './share-validation';
import { countCopy } from './metrics';

const la = proxyLocalActivities<Activities>(fastAwsCall);
const act = proxyActivities<Activities>(compensationCall);

function local(summary: string, options: LocalActivityOptions = settledAwsCall) {
  return { ...options, summary };
}
function remote(summary: string, options: ActivityOptions = compensationCall) {
  return { ...options, summary };
}

/** `eu-west-1` or `eu-west-1 · 111122223333`: a destination, for people. */
export function destinationLabel(d: Partial<CopyDestination> | undefined): string {
  return `${String(d?.region)}${d?.accountId ? ` · ${d.accountId}` : ''}`;
}

export function destinationStep(d: Partial<CopyDestination> | undefined): string {
  return `copy to ${destinationLabel(d)}`;
}

/** The copy's own tags: the source's, then the input's, within EC2's 50 once amiflow's are added. */
export function copyUserTags(sourceTags: Tags, inputTags: Tags | undefined): Tags {
  const ours = Object.keys(
    copyTagsOf({
      tags: {},
      workflowId: '',
      runId: '',
      workflowType: '',
      source: { region: '', imageId: '' },
    }),
  ).length;
  const room = MAX_TAGS_PER_RESOURCE - ours;
  const explicit = Object.entries(inputTags ?? {});
  const inherited = Object.entries(sourceTags).filter(([k]) => !(inputTags && k in inputTags));
  return Object.fromEntries([...inherited.slice(0, Math.max(0, room - explicit.length)), ...explicit]);
}

export async function copyImage(rawInput: CopyImageInput): Promise<CopyImageResult> {
  const raw = rawInput as Partial<CopyImageInput> | undefined;
  const rawDestinations: unknown[] = Array.isArray(raw?.destinations) ? raw.destinations : [];
  const progress = new Progress(WORKFLOW_TYPES.copyImage, [
    'describe source',
    'check destination keys',
    'share with destination accounts',
    ...rawDestinations.map((d) => destinationStep(d as Partial<CopyDestination>)),
    'withdraw share',
  ]);
  setHandler(progressQuery, () => progress.record);
  const startedAt = new Date().toISOString();
  progress.onEnd(countCopy);
  const input = parsedOrFail(parseCopyImageInput, rawInput, progress);

  const { workflowId, runId } = workflowInfo();
  const policy = input.partialFailure ?? 'rollback';
  const timeouts = { ...DEFAULT_COPY_TIMEOUTS, ...input.timeouts };
  const sourceTarget: AwsTarget = {
    region: input.region,
    ...(input.accountId ? { accountId: input.accountId } : {}),
  };
  const targetOf = (d: CopyDestination): AwsTarget => {
    const accountId = d.accountId ?? input.accountId;
    return { region: d.region, ...(accountId ? { accountId } : {}) };
  };
  const comp = new Compensations(progress);
  const outcomes: DestinationOutcome[] = input.destinations.map((d) => ({
    region: d.region,
    ...(d.accountId ? { accountId: d.accountId } : {}),
    ...(d.kmsKeyId ? { kmsKeyId: d.kmsKeyId } : {}),
    imageName: d.name ?? '',
    status: 'not-started',
    exists: false,
  }));
  progress.resource('sourceImageId', input.imageId);

  const result = await comp.guard(async () => {
    const source = await progress.run('describe source', () =>
      la.describeCopySource.executeWithOptions(local(`describe ${input.imageId}`, fastAwsCall), [
        { target: sourceTarget, imageId: input.imageId },
      ]),
    );
    outcomes.forEach((o, i) => (o.imageName = input.destinations[i]?.name ?? source.imageName));

    // Every destination key is checked before any copy starts: a bad key in one destination must
    // not cost the copies of the others (EC2 itself would report it only hours later).
    const keyed = input.destinations.flatMap((d) => (d.kmsKeyId ? [{ d, keyId: d.kmsKeyId }] : []));
    if (keyed.length > 0)
      await progress.run('check destination keys', () =>
        Promise.all(
          keyed.map(({ d, keyId }) =>
            la.checkKmsKey.executeWithOptions(
              local(`check key ${keyId} in ${destinationLabel(d)}`, fastAwsCall),
              [{ target: targetOf(d), keyId, purpose: `the copy to ${destinationLabel(d)}` }],
            ),
          ),
        ),
      );
    else progress.skip('check destination keys', 'no destination names a key');

    // Cross-account destinations copy an image shared with them.
    const crossAccounts = [
      ...new Set(
        input.destinations.flatMap((d) =>
          d.accountId && d.accountId !== source.ownerId ? [d.accountId] : [],
        ),
      ),
    ];
    let copyFrom = input.imageId;
    let shared: ShareImageResult | undefined;
    let shareUndo: { discard(): void } | undefined;
    let share: CopyImageResult['share'];
    if (crossAccounts.length > 0) {
      const shareWorkflowId = `${workflowId}/share`;
      shareUndo = comp.add(
        'withdraw share',
        async () => {
          if (shared) await withdrawShare(shared, { deleteReencryptedCopy: true });
        },
        'share with destination accounts',
      );
      const shareInput: ShareImageInput = {
        ...sourceTarget,
        imageId: input.imageId,
        targets: { accountIds: crossAccounts },
        allowCopy: true,
        kmsAccess: 'grant',
        ...(input.reencryptWith ? { reencryptWith: input.reencryptWith } : {}),
        ...(input.reencryptWith && input.tags ? { tags: input.tags } : {}),
        ...(input.timeouts ? { timeouts: input.timeouts } : {}),
      };
      shared = await progress.run(
        'share with destination accounts',
        () =>
          executeChild(shareImage, {
            workflowId: shareWorkflowId,
            args: [shareInput],
            staticSummary: `Share ${input.imageId} (${input.region}) with ${crossAccounts.join(', ')} to copy it`,
          }),
        `with ${crossAccounts.join(', ')} (child ${shareWorkflowId})`,
      );
      copyFrom = shared.sharedImageId;
      share = {
        workflowId: shareWorkflowId,
        accountIds: crossAccounts,
        sharedImageId: copyFrom,
        withdrawn: false,
      };
    } else {
      progress.skip('share with destination accounts', "every destination is in the source's account");
    }

    // Fan-out: each destination in parallel, at most `concurrencyPerRegion` copies per region.
    const slots = new Semaphores(input.concurrencyPerRegion ?? DEFAULT_COPY_CONCURRENCY_PER_REGION);
    const tags = copyUserTags(source.userTags, input.tags);
    const undoHandles: { discard(): void }[] = [];
    const fanOut = new CancellationScope();
    let firstFailure: { index: number; error: unknown } | undefined;
    let cancellation: Error | undefined;
    /** Each destination's undo, for the `keep` policy to run it as soon as that destination fails. */
    const undoNow = new Map<number, { undo: () => Promise<void>; handle: { discard(): void } }>();

    const copyTo = async (d: CopyDestination, i: number): Promise<void> => {
      const outcome = outcomes[i] as DestinationOutcome;
      const step = destinationStep(d);
      const label = destinationLabel(d);
      const target = targetOf(d);
      await slots.of(d.region).withPermit(
        () =>
          progress.run(step, async () => {
            const made: { imageId?: string } = {};
            const undo = async () => {
              const undone = await act.deleteImage.executeWithOptions(
                remote(`undo: delete the copy in ${label}`),
                [
                  {
                    target,
                    imageName: outcome.imageName,
                    workflowId,
                    runId,
                    ...(made.imageId ? { imageId: made.imageId } : {}),
                  },
                ],
              );
              // What the undo really did: a copy it had to leave alone (not tagged as this run's) still exists.
              outcome.exists = !undone.deregistered && (undone.note?.endsWith('left alone') ?? false);
              if (undone.note)
                outcome.error = [outcome.error, `undo: ${undone.note}`].filter(Boolean).join('; ');
              if (outcome.status === 'copied' || outcome.status === 'cancelled')
                outcome.status = 'rolled-back';
            };
            const handle = comp.add(`delete the copy in ${label}`, undo, step);
            undoHandles.push(handle);
            undoNow.set(i, { undo, handle });
            progress.note(step, 'starting CopyImage');
            const copyArgs: [CopyImageActivityInput] = [
              {
                source: { region: input.region, imageId: copyFrom },
                destination: target,
                imageName: outcome.imageName,
                ...(d.description ? { description: d.description } : {}),
                ...(d.kmsKeyId ? { kmsKeyId: d.kmsKeyId } : {}),
                tags,
                workflowId,
                runId,
                workflowType: WORKFLOW_TYPES.copyImage,
                purpose: 'copy',
                ...(source.ownerId ? { sourceOwnerId: source.ownerId } : {}),
              },
            ];
            // Since 'copy-image-as-activity': a normal activity (CopyImage refills at 1/s per region,
            // which can outlast a local activity's budget), visible as pending while it retries.
            const copy = patched('copy-image-as-activity')
              ? await act.copyImage.executeWithOptions(
                  remote(`copy ${copyFrom} to ${label}`, settledAwsActivity),
                  copyArgs,
                )
              : await la.copyImage.executeWithOptions(local(`copy ${copyFrom} to ${label}`), copyArgs);
            made.imageId = copy.imageId;
            outcome.imageId = copy.imageId;
            outcome.exists = true;
            progress.resource(`copy ${label}`, copy.imageId);
            progress.note(step, `copying ${copy.imageId}`);
            await act.waitForImageAvailable.executeWithOptions(
              remote(
                `wait for the copy ${copy.imageId} in ${label}`,
                imageWait(timeouts.copyAvailableSeconds, copyWait),
              ),
              [
                {
                  target,
                  imageId: copy.imageId,
                  deadline: Date.now() + timeouts.copyAvailableSeconds * 1000,
                },
              ],
            );
            const tagged = await la.tagSnapshots.executeWithOptions(
              local(`tag snapshots of ${copy.imageId} in ${label}`, fastAwsCall),
              [
                {
                  target,
                  imageId: copy.imageId,
                  tags: copyTagsOf({
                    tags,
                    workflowId,
                    runId,
                    workflowType: WORKFLOW_TYPES.copyImage,
                    source: { region: input.region, imageId: copyFrom },
                  }),
                },
              ],
            );
            outcome.snapshotIds = tagged.snapshotIds;
            outcome.status = 'copied';
            progress.note(step, `copied: ${copy.imageId}`);
          }),
        (ahead) => progress.note(step, `queued: ${ahead} ahead for a copy slot in ${d.region}`),
      );
    };

    const onFailure = async (i: number, error: unknown): Promise<void> => {
      const outcome = outcomes[i] as DestinationOutcome;
      if (isCancellation(error)) {
        outcome.status = 'cancelled';
        cancellation ??= error instanceof Error ? error : undefined;
        return;
      }
      outcome.status = 'failed';
      outcome.error = errorMessage(error);
      if (policy === 'rollback') {
        if (!firstFailure) {
          firstFailure = { index: i, error };
          fanOut.cancel();
        }
        return;
      }
      // keep: this destination's partial copy goes now; the others carry on.
      const own = undoNow.get(i);
      if (!own) return;
      try {
        await CancellationScope.nonCancellable(own.undo);
        own.handle.discard();
      } catch (err) {
        outcome.error += `; and deleting its partial copy failed: ${errorMessage(err)}`;
      }
    };

    await fanOut.run(() =>
      Promise.all(input.destinations.map((d, i) => copyTo(d, i).catch((err: unknown) => onFailure(i, err)))),
    );
    // A cancellation of the run (not one the rollback asked for) ends it cancelled, after compensation.
    if (CancellationScope.current().consideredCancelled)
      throw cancellation ?? new CancelledFailure('copyImage was cancelled');

    const failed = outcomes.filter((o) => o.status === 'failed');
    if (firstFailure || failed.length === outcomes.length) {
      const first = firstFailure ? outcomes[firstFailure.index] : failed[0];
      throw ApplicationFailure.create({
        type: FailureType.CopyFailed,
        nonRetryable: true,
        message:
          `copy to ${destinationLabel(first)} failed: ${first?.error ?? 'unknown error'}; ` +
          (policy === 'rollback'
            ? "partial-failure policy 'rollback': the copies this run made are deregistered by their ids and their snapshots deleted " +
              '(each destination in the details says whether its copy still exists, and what its undo found)'
            : 'every destination failed'),
        // The outcomes are read when the failure is reported, after compensation: they say what exists.
        details: [outcomes],
        cause: firstFailure?.error instanceof Error ? firstFailure.error : undefined,
      });
    }

    // The copies are done and kept; the share they needed is withdrawn.
    for (const handle of undoHandles) handle.discard();
    if (shared) {
      const record = shared;
      await progress.run('withdraw share', () => withdrawShare(record, { deleteReencryptedCopy: true }));
      shareUndo?.discard();
      if (share) share.withdrawn = true;
    } else {
      progress.skip('withdraw share', 'nothing was shared');
    }
    return {
      source: { ...sourceTarget, imageId: input.imageId, imageName: source.imageName },
      outcome: failed.length > 0 ? 'partial' : 'complete',
      destinations: outcomes,
      ...(share ? { share } : {}),
      startedAt,
      finishedAt: new Date().toISOString(),
    } satisfies CopyImageResult;
  });
  progress.setPhase('succeeded');
  return result;
}

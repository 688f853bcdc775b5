/**
 * copyImage: copy an AMI to other regions and accounts. Cross-account destinations copy an image
 * shared with them (a child `shareImage` first, withdrawn once they have copied), so each becomes the
 * owner of its copy and encrypts it with its own key. Destinations run in parallel, at most
 * `concurrencyPerRegion` copies at once per destination region. One failed destination rolls every
 * copy back (default) or, under `keep`, only its own; the result says what exists.
 */
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  executeChild,
  isCancellation,
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
} from '../contracts';
import type { Run } from './bootstrap';
import { act, guarded, la, local, remote, startRun, targetOf } from './bootstrap';
import type { UndoHandle } from './compensation';
import { copyWait, fastAwsCall, imageWait, settledAwsActivity, settledAwsCall } from './presets';
import { errorMessage } from './progress';
import { Semaphores } from './semaphore';
import { shareImage, withdrawShare } from './share-image';
import { parseCopyImageInput } from './share-validation';
import { countCopy } from './metrics';

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

/** What every step of one copy run shares. */
interface CopyRun extends Run<CopyImageInput> {
  policy: NonNullable<CopyImageInput['partialFailure']>;
  timeouts: typeof DEFAULT_COPY_TIMEOUTS & CopyImageInput['timeouts'];
  sourceTarget: AwsTarget;
  /** One per destination, in the input's order: what the result and a failure's details report. */
  outcomes: DestinationOutcome[];
}

/** The copy source as describeCopySource found it. */
type CopySource = Awaited<ReturnType<Activities['describeCopySource']>>;

/** The destination's account, else the source's (no account: the worker's own). */
function destinationTarget(c: CopyRun, d: CopyDestination): AwsTarget {
  return targetOf({ region: d.region, accountId: d.accountId ?? c.input.accountId });
}

export async function copyImage(rawInput: CopyImageInput): Promise<CopyImageResult> {
  const raw = rawInput as Partial<CopyImageInput> | undefined;
  const rawDestinations: unknown[] = Array.isArray(raw?.destinations) ? raw.destinations : [];
  const run = startRun({
    workflowType: WORKFLOW_TYPES.copyImage,
    steps: [
      'describe source',
      'check destination keys',
      'share with destination accounts',
      ...rawDestinations.map((d) => destinationStep(d as Partial<CopyDestination>)),
      'withdraw share',
    ],
    parse: parseCopyImageInput,
    raw: rawInput,
    onEnd: countCopy,
  });
  const { input, progress } = run;
  const c: CopyRun = {
    ...run,
    policy: input.partialFailure ?? 'rollback',
    timeouts: { ...DEFAULT_COPY_TIMEOUTS, ...input.timeouts },
    sourceTarget: targetOf(input),
    outcomes: input.destinations.map((d) => ({
      region: d.region,
      ...(d.accountId ? { accountId: d.accountId } : {}),
      ...(d.kmsKeyId ? { kmsKeyId: d.kmsKeyId } : {}),
      imageName: d.name ?? '',
      status: 'not-started',
      exists: false,
    })),
  };
  progress.resource('sourceImageId', input.imageId);

  return guarded(run, async () => {
    const source = await progress.run('describe source', () =>
      la.describeCopySource.executeWithOptions(local(`describe ${input.imageId}`, fastAwsCall), [
        { target: c.sourceTarget, imageId: input.imageId },
      ]),
    );
    c.outcomes.forEach((o, i) => (o.imageName = input.destinations[i]?.name ?? source.imageName));
    await checkDestinationKeys(c);
    const sharing = await shareWithDestinationAccounts(c, source);
    const copies = await copyToEveryDestination(c, source, sharing.copyFrom);

    // The copies are done and kept; the share they needed is withdrawn.
    for (const handle of copies.undoHandles) handle.discard();
    const { shared, share } = sharing;
    if (shared) {
      await progress.run('withdraw share', () => withdrawShare(shared, { deleteReencryptedCopy: true }));
      sharing.shareUndo?.discard();
      if (share) share.withdrawn = true;
    } else {
      progress.skip('withdraw share', 'nothing was shared');
    }
    return {
      source: { ...c.sourceTarget, imageId: input.imageId, imageName: source.imageName },
      outcome: copies.failed > 0 ? 'partial' : 'complete',
      destinations: c.outcomes,
      ...(share ? { share } : {}),
      startedAt: c.startedAt,
      finishedAt: new Date().toISOString(),
    } satisfies CopyImageResult;
  });
}

/**
 * Every destination key is checked before any copy starts: a bad key in one destination must not
 * cost the copies of the others (EC2 itself would report it only hours later).
 */
async function checkDestinationKeys(c: CopyRun): Promise<void> {
  const keyed = c.input.destinations.flatMap((d) => (d.kmsKeyId ? [{ d, keyId: d.kmsKeyId }] : []));
  if (keyed.length === 0) {
    c.progress.skip('check destination keys', 'no destination names a key');
    return;
  }
  await c.progress.run('check destination keys', () =>
    Promise.all(
      keyed.map(({ d, keyId }) =>
        la.checkKmsKey.executeWithOptions(
          local(`check key ${keyId} in ${destinationLabel(d)}`, fastAwsCall),
          [{ target: destinationTarget(c, d), keyId, purpose: `the copy to ${destinationLabel(d)}` }],
        ),
      ),
    ),
  );
}

interface Sharing {
  /** The image the copies are made from: the source, or the share's re-encrypted copy of it. */
  copyFrom: string;
  shared?: ShareImageResult;
  shareUndo?: UndoHandle;
  share?: CopyImageResult['share'];
}

/** Cross-account destinations copy an image shared with them (a child shareImage, allowCopy). */
async function shareWithDestinationAccounts(c: CopyRun, source: CopySource): Promise<Sharing> {
  const { input, progress } = c;
  const crossAccounts = [
    ...new Set(
      input.destinations.flatMap((d) => (d.accountId && d.accountId !== source.ownerId ? [d.accountId] : [])),
    ),
  ];
  if (crossAccounts.length === 0) {
    progress.skip('share with destination accounts', "every destination is in the source's account");
    return { copyFrom: input.imageId };
  }
  const shareWorkflowId = `${c.workflowId}/share`;
  const sharing: Sharing = { copyFrom: input.imageId };
  sharing.shareUndo = c.comp.add(
    'withdraw share',
    async () => {
      if (sharing.shared) await withdrawShare(sharing.shared, { deleteReencryptedCopy: true });
    },
    'share with destination accounts',
  );
  const shareInput: ShareImageInput = {
    ...c.sourceTarget,
    imageId: input.imageId,
    targets: { accountIds: crossAccounts },
    allowCopy: true,
    kmsAccess: 'grant',
    ...(input.reencryptWith ? { reencryptWith: input.reencryptWith } : {}),
    ...(input.reencryptWith && input.tags ? { tags: input.tags } : {}),
    ...(input.timeouts ? { timeouts: input.timeouts } : {}),
  };
  sharing.shared = await progress.run(
    'share with destination accounts',
    () =>
      executeChild(shareImage, {
        workflowId: shareWorkflowId,
        args: [shareInput],
        staticSummary: `Share ${input.imageId} (${input.region}) with ${crossAccounts.join(', ')} to copy it`,
      }),
    `with ${crossAccounts.join(', ')} (child ${shareWorkflowId})`,
  );
  sharing.copyFrom = sharing.shared.sharedImageId;
  sharing.share = {
    workflowId: shareWorkflowId,
    accountIds: crossAccounts,
    sharedImageId: sharing.copyFrom,
    withdrawn: false,
  };
  return sharing;
}

/** The fan-out's shared state: slots per region, each destination's undo, the first failure. */
interface FanOut {
  slots: Semaphores;
  tags: Tags;
  copyFrom: string;
  sourceOwnerId?: string;
  scope: CancellationScope;
  undoHandles: UndoHandle[];
  /** Each destination's undo, for the `keep` policy to run it as soon as that destination fails. */
  undoNow: Map<number, { undo: () => Promise<void>; handle: UndoHandle }>;
  firstFailure?: { index: number; error: unknown };
  cancellation?: Error;
}

/**
 * Fan-out: each destination in parallel, at most `concurrencyPerRegion` copies per region. Fails
 * with CopyFailed (after `rollback` cancelled the others) or when every destination failed.
 */
async function copyToEveryDestination(
  c: CopyRun,
  source: CopySource,
  copyFrom: string,
): Promise<{ undoHandles: UndoHandle[]; failed: number }> {
  const { input, outcomes, policy } = c;
  const f: FanOut = {
    slots: new Semaphores(input.concurrencyPerRegion ?? DEFAULT_COPY_CONCURRENCY_PER_REGION),
    tags: copyUserTags(source.userTags, input.tags),
    copyFrom,
    ...(source.ownerId ? { sourceOwnerId: source.ownerId } : {}),
    scope: new CancellationScope(),
    undoHandles: [],
    undoNow: new Map(),
  };
  await f.scope.run(() =>
    Promise.all(
      input.destinations.map((d, i) =>
        copyToDestination(c, f, d, i).catch((err: unknown) => onDestinationFailure(c, f, i, err)),
      ),
    ),
  );
  // A cancellation of the run (not one the rollback asked for) ends it cancelled, after compensation.
  if (CancellationScope.current().consideredCancelled)
    throw f.cancellation ?? new CancelledFailure('copyImage was cancelled');

  const failed = outcomes.filter((o) => o.status === 'failed');
  const firstFailure = f.firstFailure;
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
  return { undoHandles: f.undoHandles, failed: failed.length };
}

/**
 * The undo of one destination: delete the copy (by id once CopyImage answered, else by name and
 * tags), and record on the outcome what it really did.
 */
function destinationUndo(
  c: CopyRun,
  outcome: DestinationOutcome,
  target: AwsTarget,
  label: string,
  made: { imageId?: string },
): () => Promise<void> {
  const { workflowId, runId } = c;
  return async () => {
    const undone = await act.deleteImage.executeWithOptions(remote(`undo: delete the copy in ${label}`), [
      {
        target,
        imageName: outcome.imageName,
        workflowId,
        runId,
        ...(made.imageId ? { imageId: made.imageId } : {}),
      },
    ]);
    // What the undo really did: a copy it had to leave alone (not tagged as this run's) still exists.
    outcome.exists = !undone.deregistered && (undone.note?.endsWith('left alone') ?? false);
    if (undone.note) outcome.error = [outcome.error, `undo: ${undone.note}`].filter(Boolean).join('; ');
    if (outcome.status === 'copied' || outcome.status === 'cancelled') outcome.status = 'rolled-back';
  };
}

/** The CopyImage activity's input for one destination: this run's name, key, tags and ownership. */
function copyActivityInput(
  c: CopyRun,
  f: FanOut,
  d: CopyDestination,
  imageName: string,
  target: AwsTarget,
): CopyImageActivityInput {
  return {
    source: { region: c.input.region, imageId: f.copyFrom },
    destination: target,
    imageName,
    ...(d.description ? { description: d.description } : {}),
    ...(d.kmsKeyId ? { kmsKeyId: d.kmsKeyId } : {}),
    tags: f.tags,
    workflowId: c.workflowId,
    runId: c.runId,
    workflowType: WORKFLOW_TYPES.copyImage,
    purpose: 'copy',
    ...(f.sourceOwnerId ? { sourceOwnerId: f.sourceOwnerId } : {}),
  };
}

/** One destination: its undo registered first, then CopyImage, the wait, and its snapshots' tags. */
async function copyToDestination(c: CopyRun, f: FanOut, d: CopyDestination, i: number): Promise<void> {
  const { input, progress, workflowId, runId, timeouts } = c;
  const outcome = c.outcomes[i] as DestinationOutcome;
  const step = destinationStep(d);
  const label = destinationLabel(d);
  const target = destinationTarget(c, d);
  await f.slots.of(d.region).withPermit(
    () =>
      progress.run(step, async () => {
        const made: { imageId?: string } = {};
        const undo = destinationUndo(c, outcome, target, label, made);
        const handle = c.comp.add(`delete the copy in ${label}`, undo, step);
        f.undoHandles.push(handle);
        f.undoNow.set(i, { undo, handle });
        progress.note(step, 'starting CopyImage');
        const copyArgs: [CopyImageActivityInput] = [copyActivityInput(c, f, d, outcome.imageName, target)];
        // Since 'copy-image-as-activity': a normal activity (CopyImage refills at 1/s per region,
        // which can outlast a local activity's budget), visible as pending while it retries.
        const copy = progress.since('copy-image-as-activity')
          ? await act.copyImage.executeWithOptions(
              remote(`copy ${f.copyFrom} to ${label}`, settledAwsActivity),
              copyArgs,
            )
          : await la.copyImage.executeWithOptions(
              local(`copy ${f.copyFrom} to ${label}`, settledAwsCall),
              copyArgs,
            );
        made.imageId = copy.imageId;
        outcome.imageId = copy.imageId;
        outcome.exists = true;
        progress.resource(`copy ${label}`, copy.imageId);
        progress.note(step, `copying ${copy.imageId}`);
        await act.waitForImageAvailable.executeWithOptions(
          remote(
            `wait for the copy ${copy.imageId} in ${label}`,
            imageWait(timeouts.copyAvailableSeconds, copyWait, progress.since),
          ),
          [{ target, imageId: copy.imageId, deadline: Date.now() + timeouts.copyAvailableSeconds * 1000 }],
        );
        const tagged = await la.tagSnapshots.executeWithOptions(
          local(`tag snapshots of ${copy.imageId} in ${label}`, fastAwsCall),
          [
            {
              target,
              imageId: copy.imageId,
              tags: copyTagsOf({
                tags: f.tags,
                workflowId,
                runId,
                workflowType: WORKFLOW_TYPES.copyImage,
                source: { region: input.region, imageId: f.copyFrom },
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
}

/**
 * A destination that failed: `rollback` cancels the others (the first failure only); `keep` deletes
 * this destination's partial copy now and lets the others carry on. A cancellation is recorded.
 */
async function onDestinationFailure(c: CopyRun, f: FanOut, i: number, error: unknown): Promise<void> {
  const outcome = c.outcomes[i] as DestinationOutcome;
  if (isCancellation(error)) {
    outcome.status = 'cancelled';
    f.cancellation ??= error instanceof Error ? error : undefined;
    return;
  }
  outcome.status = 'failed';
  outcome.error = errorMessage(error);
  if (c.policy === 'rollback') {
    if (!f.firstFailure) {
      f.firstFailure = { index: i, error };
      f.scope.cancel();
    }
    return;
  }
  const own = f.undoNow.get(i);
  if (!own) return;
  try {
    await CancellationScope.nonCancellable(own.undo);
    own.handle.discard();
  } catch (err) {
    outcome.error += `; and deleting its partial copy failed: ${errorMessage(err)}`;
  }
}

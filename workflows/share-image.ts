/**
 * shareImage: give accounts, organizations or OUs launch permission on an AMI (and, if asked, the
 * right to copy it), with the use of its customer managed key, recording exactly what it added so
 * that the end of a time-limited share, `unshareImage` and compensation withdraw that and nothing else.
 *
 * unshareImage: withdraws what a share run added, read from that run's own result in Temporal (a
 * record the caller holds is only compared with it), and deletes its re-encrypted copy only through
 * the checks retirement applies (tags of that run, nothing using it, not protected, not approved).
 */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import { ApplicationFailure, condition, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ShareRunTruth } from '../activities/share-runs';
import type { ShareableImage } from '../activities/sharing';
import type {
  LedgerKept,
  LedgerOutcome,
  LedgerRequest,
  AwsTarget,
  KeyAccessNeeded,
  KeyGrantRecord,
  LaunchPermissionEntry,
  ReencryptedCopy,
  ShareAdded,
  ShareImageInput,
  ShareImageResult,
  ShareRecord,
  SnapshotPermissionEntry,
  UnshareImageInput,
  UnshareImageResult,
} from '../contracts';
import {
  DEFAULT_COPY_TIMEOUTS,
  FailureType,
  MANAGED_BY_VALUE,
  TAG,
  WORKFLOW_TYPES,
  copyTagsOf,
  ledgerHolder,
  progressQuery,
  shareLedgerWorkflowId,
  setShareExpiryUpdate,
  shareGrantName,
} from '../contracts';
import { act, la } from './bootstrap';
import type { UndoHandle } from './compensation';
import { Compensations } from './compensation';
import { keyAccessNeeded } from './key-access';
import { compensationCall, copyWait, fastAwsCall, settledAwsActivity, settledAwsCall } from './presets';
import { Progress } from './progress';
import { parseShareImageInput, parseUnshareImageInput, shareExpiryIssues } from './share-validation';
import { invalidInput, parsedOrFail } from './input';
import { countShare } from './metrics';

export const SHARE_IMAGE_STEPS = [
  'describe image',
  're-encrypt with customer managed key',
  'grant key access',
  'add snapshot permissions',
  'add launch permissions',
  'shared until expiry',
  'withdraw share',
] as const;

export const UNSHARE_IMAGE_STEPS = [
  'read share run',
  'withdraw launch permissions',
  'withdraw snapshot permissions',
  'revoke key grants',
  'delete re-encrypted copy',
] as const;

function local(summary: string, options: LocalActivityOptions = settledAwsCall) {
  return { ...options, summary };
}
function remote(summary: string, options: ActivityOptions = compensationCall) {
  return { ...options, summary };
}

function sameEntry(a: LaunchPermissionEntry, b: LaunchPermissionEntry): boolean {
  return (
    a.userId === b.userId &&
    a.organizationArn === b.organizationArn &&
    a.organizationalUnitArn === b.organizationalUnitArn &&
    a.group === b.group
  );
}

function describeEntry(p: LaunchPermissionEntry): string {
  return p.userId ?? p.organizationArn ?? p.organizationalUnitArn ?? 'everyone';
}

export interface SharePlan {
  launchToAdd: LaunchPermissionEntry[];
  launchAlready: LaunchPermissionEntry[];
  snapshotToAdd: SnapshotPermissionEntry[];
  snapshotAlready: SnapshotPermissionEntry[];
}

/** What to add: the launch and create-volume permissions asked for that are not there already. */
export function planShare(input: ShareImageInput, image: ShareableImage): SharePlan {
  const accounts = input.targets.accountIds ?? [];
  const wanted: LaunchPermissionEntry[] = [
    ...accounts.map((userId) => ({ userId })),
    ...(input.targets.organizationArns ?? []).map((organizationArn) => ({ organizationArn })),
    ...(input.targets.organizationalUnitArns ?? []).map((organizationalUnitArn) => ({
      organizationalUnitArn,
    })),
    ...(input.targets.public ? [{ group: 'all' as const }] : []),
  ];
  const present = (p: LaunchPermissionEntry) => image.launchPermissions.some((h) => sameEntry(h, p));
  const snapshotToAdd: SnapshotPermissionEntry[] = [];
  const snapshotAlready: SnapshotPermissionEntry[] = [];
  if (input.allowCopy) {
    for (const s of image.snapshots) {
      const had = image.snapshotPermissions.find((p) => p.snapshotId === s.snapshotId)?.userIds ?? [];
      const add = accounts.filter((a) => !had.includes(a));
      const already = accounts.filter((a) => had.includes(a));
      if (add.length) snapshotToAdd.push({ snapshotId: s.snapshotId, userIds: add });
      if (already.length) snapshotAlready.push({ snapshotId: s.snapshotId, userIds: already });
    }
  }
  return {
    launchToAdd: wanted.filter((p) => !present(p)),
    launchAlready: wanted.filter(present),
    snapshotToAdd,
    snapshotAlready,
  };
}

export interface LedgerHold {
  image: { region: string; accountId?: string; imageId: string };
  holder: string;
}

/** Ledger calls wait their turn behind other shares of the image: minutes, retried. */
const ledgerCall: ActivityOptions = { ...compensationCall, startToCloseTimeout: '10m' };

function ledgerRequest(hold: LedgerHold, request: LedgerRequest, summary: string) {
  return act.requestShareLedger.executeWithOptions(remote(summary, ledgerCall), [
    { image: hold.image, request },
  ]);
}

/** An outcome the ledger could not carry out fails the share with AWS's own failure type. */
function ledgerFailed(out: LedgerOutcome, what: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: out.error?.type ?? FailureType.AwsPolicyRefused,
    nonRetryable: true,
    message: `${what}: ${out.error?.message ?? 'the share ledger refused it'}`,
  });
}

/**
 * Holds the share's launch (and, with allowCopy, create-volume) permissions through the image's
 * ledger: it adds what amiflow does not hold yet, counts this run as a holder of the rest, and
 * reports what predates amiflow. The undo (registered first) releases this run's holds.
 */
async function acquireThroughLedger(
  hold: LedgerHold,
  input: ShareImageInput,
  shared: ShareableImage,
  plan: SharePlan,
  comp: Compensations,
  undos: { discard(): void }[],
  progress: Progress,
): Promise<{ launch: LaunchPermissionEntry[]; snapshot: SnapshotPermissionEntry[]; before: SharePlan }> {
  const accounts = input.targets.accountIds ?? [];
  const wanted = [...plan.launchToAdd, ...plan.launchAlready];
  const snapshots: SnapshotPermissionEntry[] = input.allowCopy
    ? shared.snapshots
        .map((s) => ({ snapshotId: s.snapshotId, userIds: accounts }))
        .filter((s) => s.userIds.length)
    : [];
  undos.push(
    comp.add(
      'release permissions held through the share ledger',
      async () => {
        const out = await ledgerRequest(
          hold,
          { op: 'release', requestId: `${hold.holder}/release`, holder: hold.holder },
          `undo: release what this run holds on ${hold.image.imageId}`,
        );
        if (out.error) throw ledgerFailed(out, "releasing this run's permissions");
      },
      'add launch permissions',
    ),
  );
  progress.skip(
    'add snapshot permissions',
    input.allowCopy ? 'held through the share ledger, with the launch permissions' : 'not asked (allowCopy)',
  );
  const out = await progress.run('add launch permissions', () =>
    ledgerRequest(
      hold,
      {
        op: 'acquire',
        requestId: `${hold.holder}/acquire`,
        holder: hold.holder,
        launchPermissions: wanted,
        snapshotPermissions: snapshots,
      },
      `share ${hold.image.imageId} with ${wanted.map(describeEntry).join(', ')} through its share ledger`,
    ),
  );
  if (out.error) throw ledgerFailed(out, `sharing ${hold.image.imageId}`);
  return {
    launch: out.launchPermissions,
    snapshot: out.snapshotPermissions,
    before: {
      launchToAdd: [],
      launchAlready: out.preexisting.launchPermissions,
      snapshotToAdd: [],
      snapshotAlready: out.preexisting.snapshotPermissions,
    },
  };
}

/** `<name> reencrypted-<run>`, within EC2's 128 characters. */
export function reencryptedNameFor(imageName: string, runId: string): string {
  const suffix = ` reencrypted-${runId.slice(0, 8)}`;
  return `${imageName.slice(0, 128 - suffix.length)}${suffix}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * The hold a child share (copyImage's, goldenImage's) took through the image's ledger, as its result
 * names it: its parent withdraws the share by releasing that hold, so a permission another live share
 * holds stays. Only a share run's own result carries it (unshareImage builds its record without it, so
 * a caller cannot name another run's hold); results of runs before the ledger name none, and their
 * withdrawal removes what they added, as it ran.
 */
function childHold(record: ShareRecord | ShareImageResult): LedgerHold | undefined {
  if (!('shareLedgerHolder' in record) || record.shareLedgerHolder === undefined) return undefined;
  return { image: { ...record.image, imageId: record.sharedImageId }, holder: record.shareLedgerHolder };
}

/**
 * Withdraws what a share added: launch permissions first (targets stop seeing the image), then
 * create-volume permissions, then key grants; optionally deletes the re-encrypted copy. Each call is
 * idempotent, so a repeated withdrawal changes nothing.
 */
export async function withdrawShare(
  record: ShareRecord | ShareImageResult,
  opts: {
    deleteReencryptedCopy: boolean;
    progress?: Progress;
    /** Delete the copy through retirement's checks (its run's tags, references, protection, approval). */
    retireCopy?: boolean;
    /** The share held its permissions through the image's ledger: release them there. */
    ledger?: LedgerHold;
  },
): Promise<{
  withdrawn: ShareAdded;
  kept?: LedgerKept[];
  deletedReencryptedCopy?: string;
  keptReencryptedCopy?: { imageId: string; because: string[] };
}> {
  const target: AwsTarget = {
    region: record.image.region,
    ...(record.image.accountId ? { accountId: record.image.accountId } : {}),
  };
  const { added } = record;
  const step = async (name: string, run: boolean, fn: () => Promise<unknown>, why: string) => {
    if (!opts.progress) {
      if (run) await fn();
    } else if (run) await opts.progress.run(name, fn);
    else opts.progress.skip(name, why);
  };
  let released: LedgerOutcome | undefined;
  const ledger = opts.ledger ?? childHold(record);
  if (ledger) {
    // One release: the ledger removes what no other live share holds, and says what it kept.
    await step(
      'withdraw launch permissions',
      true,
      async () => {
        released = await ledgerRequest(
          ledger,
          { op: 'release', requestId: `${ledger.holder}/release`, holder: ledger.holder },
          `release what ${ledger.holder} holds on ${record.sharedImageId}`,
        );
        if (released.error) throw ledgerFailed(released, `withdrawing the share of ${record.sharedImageId}`);
      },
      '',
    );
    if (opts.progress)
      opts.progress.skip('withdraw snapshot permissions', 'released through the share ledger');
  }
  if (!ledger) {
    // Without a ledger the share held its permissions alone: it removes each kind it added.
    const withdrawAdded = (name: string, what: readonly unknown[], remove: () => Promise<unknown>) =>
      step(name, what.length > 0, remove, 'the share added none');
    const { launchPermissions, snapshotPermissions } = added;
    await withdrawAdded('withdraw launch permissions', launchPermissions, () =>
      act.removeLaunchPermissions.executeWithOptions(
        remote(
          `withdraw launch permissions on ${record.sharedImageId}: ${launchPermissions.map(describeEntry).join(', ')}`,
        ),
        [{ target, imageId: record.sharedImageId, permissions: launchPermissions }],
      ),
    );
    await withdrawAdded('withdraw snapshot permissions', snapshotPermissions, () =>
      act.removeSnapshotPermissions.executeWithOptions(
        remote(`withdraw create-volume permissions on ${snapshotPermissions.length} snapshot(s)`),
        [{ target, permissions: snapshotPermissions }],
      ),
    );
  }
  const byKey = new Map<string, KeyGrantRecord[]>();
  for (const g of added.grants) byKey.set(g.keyArn, [...(byKey.get(g.keyArn) ?? []), g]);
  await step(
    'revoke key grants',
    byKey.size > 0,
    () =>
      Promise.all(
        [...byKey].map(([keyArn, grants]) =>
          act.revokeKeyGrants.executeWithOptions(remote(`revoke ${grants.length} grant(s) on ${keyArn}`), [
            { target, keyArn, grantNames: grants.map((g) => g.grantName) },
          ]),
        ),
      ),
    'the share made no grant',
  );
  const copy = record.reencryptedCopy;
  let deleted: string | undefined;
  let kept: { imageId: string; because: string[] } | undefined;
  await step(
    'delete re-encrypted copy',
    opts.deleteReencryptedCopy && copy !== undefined,
    async () => {
      if (!copy) return;
      if (opts.retireCopy) {
        const retired = await act.retireImage.executeWithOptions(
          remote(`delete re-encrypted copy ${copy.imageId} unless something uses or protects it`),
          [
            {
              target,
              imageId: copy.imageId,
              requiredTags: {
                [TAG.managedBy]: MANAGED_BY_VALUE,
                [TAG.workflowId]: copy.workflowId,
                [TAG.runId]: copy.runId,
              },
              honourProtection: true,
              keepApproved: true,
            },
          ],
        );
        const because = [
          ...(retired.references ?? []),
          ...(retired.keptBecause ? [retired.keptBecause] : []),
        ];
        if (because.length > 0) kept = { imageId: copy.imageId, because };
        else deleted = copy.imageId;
        return;
      }
      await act.deleteImage.executeWithOptions(remote(`delete re-encrypted copy ${copy.imageId}`), [
        {
          target,
          imageId: copy.imageId,
          imageName: copy.imageName,
          workflowId: copy.workflowId,
          runId: copy.runId,
        },
      ]);
      deleted = copy.imageId;
    },
    copy ? 'kept (deleteReencryptedCopy not set)' : 'the share made no copy',
  );
  return {
    withdrawn: released
      ? {
          launchPermissions: released.launchPermissions,
          snapshotPermissions: released.snapshotPermissions,
          grants: added.grants,
        }
      : added,
    ...(released ? { kept: released.kept } : {}),
    ...(deleted ? { deletedReencryptedCopy: deleted } : {}),
    ...(kept ? { keptReencryptedCopy: kept } : {}),
  };
}

/** What the steps of one share run work with. */
interface ShareRun {
  input: ShareImageInput;
  target: AwsTarget;
  progress: Progress;
  comp: Compensations;
  /** The undos that a withdrawal at expiry makes unneeded. */
  undos: UndoHandle[];
  workflowId: string;
  runId: string;
  accounts: string[];
}

/**
 * Re-encryption, if asked: a copy of the image under the customer managed key (its undo, registered
 * first, deletes it), waited on and its snapshots tagged; the copy is then what is shared.
 */
async function reencryptIfAsked(
  run: ShareRun,
  image: ShareableImage,
): Promise<{ shared: ShareableImage; reencrypted?: ReencryptedCopy }> {
  const { input, target, progress, comp, undos, workflowId, runId } = run;
  if (!input.reencryptWith) {
    progress.skip('re-encrypt with customer managed key', 'not asked (reencryptWith)');
    return { shared: image };
  }
  const timeouts = { ...DEFAULT_COPY_TIMEOUTS, ...input.timeouts };
  let reencrypted: ReencryptedCopy | undefined;
  const reencryptWith = input.reencryptWith;
  const imageName = input.reencryptedName ?? reencryptedNameFor(image.imageName, runId);
  const made: { imageId?: string } = {};
  undos.push(
    comp.add(
      'delete re-encrypted copy',
      () =>
        act.deleteImage.executeWithOptions(remote(`undo: delete re-encrypted copy '${imageName}'`), [
          { target, imageName, workflowId, runId, ...(made.imageId ? { imageId: made.imageId } : {}) },
        ]),
      're-encrypt with customer managed key',
    ),
  );
  const shared = await progress.run(
    're-encrypt with customer managed key',
    async () => {
      await la.checkKmsKey.executeWithOptions(local(`check key ${reencryptWith}`, fastAwsCall), [
        {
          target,
          keyId: reencryptWith,
          purpose: `re-encrypting ${input.imageId}`,
          refuseAwsManaged: 'a copy under it could not be shared either; use a customer managed key',
        },
      ]);
      const tags = copyTagsOf({
        tags: input.tags ?? {},
        workflowId,
        runId,
        workflowType: WORKFLOW_TYPES.shareImage,
        source: { region: input.region, imageId: input.imageId },
      });
      const copySummary = `copy ${input.imageId} as '${imageName}' under ${reencryptWith}`;
      // Since 'share-reencrypt-copy-as-activity' a normal activity, as in copyImage: CopyImage may
      // wait out a concurrency limit or a name EC2 still holds for minutes, past a local
      // activity's 40-second budget (which would end the share "Local Activity timed out").
      const copyArgs: Parameters<Activities['copyImage']> = [
        {
          source: { region: input.region, imageId: input.imageId },
          destination: target,
          imageName,
          description: `${input.imageId} re-encrypted under ${reencryptWith} to share it (amiflow)`,
          kmsKeyId: reencryptWith,
          tags: input.tags ?? {},
          workflowId,
          runId,
          workflowType: WORKFLOW_TYPES.shareImage,
          purpose: 'reencrypt',
        },
      ];
      const copy = progress.since('share-reencrypt-copy-as-activity')
        ? await act.copyImage.executeWithOptions(remote(copySummary, settledAwsActivity), copyArgs)
        : await la.copyImage.executeWithOptions(local(copySummary), copyArgs);
      made.imageId = copy.imageId;
      progress.resource('reencryptedImageId', copy.imageId);
      await act.waitForImageAvailable.executeWithOptions(
        remote(`wait for the re-encrypted copy ${copy.imageId}`, copyWait(timeouts.copyAvailableSeconds)),
        [{ target, imageId: copy.imageId, deadline: Date.now() + timeouts.copyAvailableSeconds * 1000 }],
      );
      await la.tagSnapshots.executeWithOptions(local(`tag snapshots of ${copy.imageId}`, fastAwsCall), [
        { target, imageId: copy.imageId, tags },
      ]);
      reencrypted = { imageId: copy.imageId, imageName, kmsKeyId: reencryptWith, workflowId, runId };
      return la.describeImageForSharing.executeWithOptions(
        local(`describe ${copy.imageId}, its snapshots and their keys`, fastAwsCall),
        [{ target, imageId: copy.imageId }],
      );
    },
    `copy under ${reencryptWith}`,
  );
  return { shared, ...(reencrypted ? { reencrypted } : {}) };
}

/**
 * The use of each customer managed key for the target accounts, by grants named for the run and
 * account (the undo, registered first, revokes them by name).
 */
async function grantKeyAccessStep(
  run: ShareRun,
  shared: ShareableImage,
  customerKeys: ShareableImage['keys'],
  kmsAccess: 'grant' | 'key-policy',
): Promise<KeyGrantRecord[]> {
  const { target, progress, comp, undos, runId, accounts } = run;
  if (customerKeys.length > 0 && kmsAccess === 'grant' && accounts.length > 0) {
    const grantNames = accounts.map((a) => shareGrantName(runId, a));
    for (const key of customerKeys)
      undos.push(
        comp.add(
          `revoke grants on ${key.keyArn}`,
          () =>
            act.revokeKeyGrants.executeWithOptions(
              remote(`undo: revoke this run's grants on ${key.keyArn}`),
              [{ target, keyArn: key.keyArn, grantNames }],
            ),
          'grant key access',
        ),
      );
    return await progress.run('grant key access', async () =>
      (
        await Promise.all(
          customerKeys.map((key) => {
            const summary = `grant ${accounts.length} account(s) the use of ${key.keyArn}`;
            const args: Parameters<Activities['grantKeyAccess']> = [
              { target, keyArn: key.keyArn, accountIds: accounts, runId },
            ];
            // Since 'share-grants-as-activities' a normal activity, for the reason given at
            // 'share-permissions-as-activities' below: CreateGrant mutates, and a local activity's
            // result is lost with a worker that dies before its workflow task completes. A retry (or
            // a 5xx after KMS applied it) is safe: grants are named for the run and account, the
            // activity reuses a listed one, and KMS returns the existing grant for a CreateGrant
            // with the same name and parameters. The undo above revokes by name, not by id, so it
            // finds the grant even when CreateGrant's answer never arrived.
            return progress.since('share-grants-as-activities')
              ? act.grantKeyAccess.executeWithOptions(remote(summary, settledAwsActivity), args)
              : la.grantKeyAccess.executeWithOptions(local(summary), args);
          }),
        )
      ).flat(),
    );
  } else {
    progress.skip(
      'grant key access',
      customerKeys.length === 0
        ? `the image is ${shared.encryption === 'unencrypted' ? 'not encrypted' : 'not under a customer managed key'}`
        : kmsAccess === 'key-policy'
          ? "kmsAccess 'key-policy': the key policy gives access"
          : 'no account targets',
    );
  }
  return [];
}

/**
 * Create-volume, then launch permissions, added by this run itself (runs started before the share
 * ledger): each undo is registered before its step.
 */
async function addPermissions(run: ShareRun, plan: SharePlan, sharedImageId: string): Promise<void> {
  const { input, target, progress, comp, undos, accounts } = run;
  if (plan.snapshotToAdd.length > 0) {
    undos.push(
      comp.add(
        'remove snapshot permissions',
        () =>
          act.removeSnapshotPermissions.executeWithOptions(
            remote('undo: withdraw create-volume permissions'),
            [{ target, permissions: plan.snapshotToAdd }],
          ),
        'add snapshot permissions',
      ),
    );
    const summary = `let ${accounts.join(', ')} copy ${plan.snapshotToAdd.length} snapshot(s)`;
    const args: Parameters<Activities['addSnapshotPermissions']> = [
      { target, permissions: plan.snapshotToAdd },
    ];
    await progress.run('add snapshot permissions', () =>
      // See 'share-permissions-as-activities' below.
      progress.since('share-permissions-as-activities')
        ? act.addSnapshotPermissions.executeWithOptions(remote(summary, settledAwsActivity), args)
        : la.addSnapshotPermissions.executeWithOptions(local(summary), args),
    );
  } else {
    progress.skip(
      'add snapshot permissions',
      input.allowCopy ? 'every target account had it already' : 'not asked (allowCopy)',
    );
  }

  if (plan.launchToAdd.length > 0) {
    undos.push(
      comp.add(
        'remove launch permissions',
        () =>
          act.removeLaunchPermissions.executeWithOptions(
            remote(`undo: withdraw launch permissions on ${sharedImageId}`),
            [{ target, imageId: sharedImageId, permissions: plan.launchToAdd }],
          ),
        'add launch permissions',
      ),
    );
    const summary = `share ${sharedImageId} with ${plan.launchToAdd.map(describeEntry).join(', ')}`;
    const args: Parameters<Activities['addLaunchPermissions']> = [
      { target, imageId: sharedImageId, permissions: plan.launchToAdd },
    ];
    await progress.run('add launch permissions', () =>
      // Since 'share-permissions-as-activities' normal activities: the server records the step
      // before the permission is added. A local activity's result is recorded only when its
      // workflow task completes; a worker SIGKILLed (or a server down) before that lost the record
      // of a permission EC2 had added, the re-run then took it for one that was there before, and
      // neither the result nor a cancellation's undo withdrew it.
      progress.since('share-permissions-as-activities')
        ? act.addLaunchPermissions.executeWithOptions(remote(summary, settledAwsActivity), args)
        : la.addLaunchPermissions.executeWithOptions(local(summary), args),
    );
  } else {
    progress.skip('add launch permissions', 'every target had it already');
  }
}

export async function shareImage(rawInput: ShareImageInput): Promise<ShareImageResult> {
  const progress = new Progress(WORKFLOW_TYPES.shareImage, SHARE_IMAGE_STEPS);
  setHandler(progressQuery, () => progress.record);
  const since = progress.since;
  const startedAt = Date.now();

  // A time-limited share's end can be moved (or brought to now) by an update, until it is withdrawn.
  let expiresAt: number | undefined;
  let expiryChanged = false;
  let withdrawing = false;
  setHandler(
    setShareExpiryUpdate,
    (update) => {
      const { issues, expiresAt: next } = shareExpiryIssues(update, Date.now(), startedAt);
      if (next === undefined) throw invalidInput(issues); // the validator refused it already
      expiresAt = next;
      expiryChanged = true;
      progress.resource('expiresAt', iso(next));
      return { expiresAt: iso(next) };
    },
    {
      validator: (update) => {
        if ((rawInput as Partial<ShareImageInput>).durationSeconds === undefined)
          throw ApplicationFailure.create({
            type: FailureType.InvalidInput,
            nonRetryable: true,
            message:
              'this share has no expiry (it was started without durationSeconds): withdraw it with unshareImage',
          });
        if (withdrawing)
          throw ApplicationFailure.create({
            type: FailureType.InvalidInput,
            nonRetryable: true,
            message: 'the share is being withdrawn already',
          });
        const { issues } = shareExpiryIssues(update, Date.now(), startedAt);
        if (issues.length > 0) throw invalidInput(issues);
      },
    },
  );

  progress.onEnd(countShare);
  const input = parsedOrFail(parseShareImageInput, rawInput, progress);
  const { workflowId, runId } = workflowInfo();
  const target: AwsTarget = {
    region: input.region,
    ...(input.accountId ? { accountId: input.accountId } : {}),
  };
  const kmsAccess = input.kmsAccess ?? 'grant';
  const accounts = input.targets.accountIds ?? [];
  const comp = new Compensations(progress);
  const undos: UndoHandle[] = [];
  const run: ShareRun = { input, target, progress, comp, undos, workflowId, runId, accounts };
  progress.resource('imageId', input.imageId);

  const result = await comp.guard(async () => {
    const image = await progress.run('describe image', () =>
      la.describeImageForSharing.executeWithOptions(
        local(`describe ${input.imageId}, its snapshots and their keys`, fastAwsCall),
        // aws/ebs cannot be shared: refused right there, unless the image is re-encrypted first.
        [{ target, imageId: input.imageId, refuseAwsManagedKey: input.reencryptWith === undefined }],
      ),
    );
    const own = accounts.indexOf(image.ownerId);
    if (own >= 0)
      throw invalidInput([
        {
          field: `targets.accountIds[${own}]`,
          message: `${image.ownerId} is the image's own account: an image is always available to its owner; name other accounts`,
        },
      ]);

    const { shared, reencrypted } = await reencryptIfAsked(run, image);
    const sharedImageId = shared.imageId;
    if (shared.encryption !== 'unencrypted' && input.targets.public)
      throw ApplicationFailure.create({
        type: FailureType.AwsPolicyRefused,
        nonRetryable: true,
        message: `AMI ${sharedImageId} is encrypted: EC2 does not share encrypted AMIs publicly; share it with accounts, organizations or OUs`,
      });

    const plan = planShare(input, shared);
    const customerKeys = shared.keys.filter((k) => k.keyManager === 'CUSTOMER');
    const keyAccess: KeyAccessNeeded[] = customerKeys.map((k) =>
      keyAccessNeeded(k.keyArn, input.region, input.targets),
    );
    const orgTargets =
      (input.targets.organizationArns?.length ?? 0) + (input.targets.organizationalUnitArns?.length ?? 0);
    if (customerKeys.length > 0 && kmsAccess === 'grant' && orgTargets > 0)
      throw ApplicationFailure.create({
        type: FailureType.KmsGrantNeedsAccounts,
        nonRetryable: true,
        message:
          `AMI ${sharedImageId} is encrypted with the customer managed key ${customerKeys.map((k) => k.keyArn).join(', ')}; ` +
          'KMS grants name accounts, so organizations and OUs can only be given the key through its key policy: ' +
          "add the key-policy statements in this failure's details, then share with kmsAccess 'key-policy' (--kms-access key-policy)",
        details: [keyAccess],
      });

    // Grants first, then create-volume permissions, then launch permissions: targets see the image
    // only once they can use it. Each undo is registered before its step.
    const grants = await grantKeyAccessStep(run, shared, customerKeys, kmsAccess);

    // Shares since the ledger hold their permissions through it (counted per share run, so that
    // withdrawing one share never removes what another live share still needs); runs started
    // before replay as they ran, adding and removing on their own.
    // A share started by copyImage or goldenImage holds through the same ledger since
    // 'child-shares-through-ledger': outside it, a permission a child added was counted by a later
    // ledger share as there before amiflow (so never removed), and the child's withdrawal removed
    // a permission a ledger share still needed. Its parent releases the child's hold (named in the
    // result) when it withdraws the share; see `withdrawShare`.
    const viaLedger =
      (workflowInfo().parent === undefined || since('child-shares-through-ledger')) && since('share-ledger');
    const ledger = viaLedger
      ? { image: { ...target, imageId: sharedImageId }, holder: ledgerHolder(workflowId, runId) }
      : undefined;
    let held:
      { launch: LaunchPermissionEntry[]; snapshot: SnapshotPermissionEntry[]; before: SharePlan } | undefined;
    if (ledger) {
      held = await acquireThroughLedger(ledger, input, shared, plan, comp, undos, progress);
    } else {
      await addPermissions(run, plan, sharedImageId);
    }

    const sharedAt = Date.now();
    const record: ShareImageResult = {
      image: { ...target, imageId: input.imageId },
      sharedImageId,
      added: held
        ? { launchPermissions: held.launch, snapshotPermissions: held.snapshot, grants }
        : { launchPermissions: plan.launchToAdd, snapshotPermissions: plan.snapshotToAdd, grants },
      ...(reencrypted ? { reencryptedCopy: reencrypted } : {}),
      encryption: image.encryption,
      alreadyPresent: held
        ? { launchPermissions: held.before.launchAlready, snapshotPermissions: held.before.snapshotAlready }
        : { launchPermissions: plan.launchAlready, snapshotPermissions: plan.snapshotAlready },
      ...(ledger
        ? { shareLedger: shareLedgerWorkflowId(ledger.image), shareLedgerHolder: ledger.holder }
        : {}),
      keyAccess,
      sharedAt: iso(sharedAt),
    };
    progress.resource('sharedImageId', sharedImageId);

    if (input.durationSeconds === undefined) {
      progress.skip('shared until expiry', 'no duration: the share stays until unshareImage withdraws it');
      progress.skip('withdraw share', 'no duration');
      return record;
    }

    // Time-limited: one durable timer, re-armed when an update moves the end.
    expiresAt ??= sharedAt + input.durationSeconds * 1000;
    const dueAt = iso(expiresAt);
    progress.resource('expiresAt', dueAt);
    await progress.run(
      'shared until expiry',
      async () => {
        for (;;) {
          const remaining = (expiresAt ?? 0) - Date.now();
          if (remaining <= 0) return;
          expiryChanged = false;
          await condition(() => expiryChanged, remaining);
        }
      },
      `until ${dueAt} (move it with the setShareExpiry update)`,
    );
    withdrawing = true;
    await progress.run('withdraw share', () =>
      withdrawShare(record, { deleteReencryptedCopy: false, ...(ledger ? { ledger } : {}) }),
    );
    for (const undo of undos) undo.discard();
    return { ...record, expiresAt: iso(expiresAt), withdrawnAt: iso(Date.now()) };
  });
  progress.setPhase('succeeded');
  return result;
}

export async function unshareImage(rawInput: UnshareImageInput): Promise<UnshareImageResult> {
  const progress = new Progress(WORKFLOW_TYPES.unshareImage, UNSHARE_IMAGE_STEPS);
  setHandler(progressQuery, () => progress.record);
  const since = progress.since;
  const input = parsedOrFail(parseUnshareImageInput, rawInput, progress);
  try {
    // Runs started before the share run was read from Temporal replay as they ran (caller's record).
    const fromRun = since('unshare-reads-share-run');
    const read = fromRun ? await shareRunRecord(input, progress) : { record: legacyRecord(input, progress) };
    // Only a record's own fields: a hold in the ledger is released by the run Temporal names (below),
    // never by one a caller's record names.
    const { image, sharedImageId, added, reencryptedCopy } = read.record;
    const record: ShareRecord = {
      image,
      sharedImageId,
      added,
      ...(reencryptedCopy ? { reencryptedCopy } : {}),
    };
    progress.resource('imageId', record.sharedImageId);
    // A share that held its permissions through the image's ledger is released there, so what
    // another live share still needs stays (runs before the ledger replay as they ran).
    const ledger = read.ledger && since('share-ledger') ? read.ledger : undefined;
    const out = await withdrawShare(record, {
      deleteReencryptedCopy: input.deleteReencryptedCopy === true,
      progress,
      retireCopy: fromRun,
      ...(ledger ? { ledger } : {}),
    });
    progress.setPhase('succeeded');
    return { image: record.image, sharedImageId: record.sharedImageId, ...out, finishedAt: iso(Date.now()) };
  } catch (err) {
    progress.setPhase('failed', err);
    throw err;
  }
}

function legacyRecord(input: UnshareImageInput, progress: Progress): ShareRecord {
  progress.skip('read share run', 'started before share runs were read');
  if (!input.share) throw invalidInput([{ field: 'share', message: 'is required' }]);
  return input.share;
}

/** The share run's own record, checked: see `shareRunIssues`. */
async function shareRunRecord(
  input: UnshareImageInput,
  progress: Progress,
): Promise<{ record: ShareRecord; ledger?: LedgerHold }> {
  const shareWorkflowId = input.shareWorkflowId;
  if (shareWorkflowId === undefined)
    throw invalidInput([
      {
        field: 'shareWorkflowId',
        message:
          "is required: the share run whose own result names what it added (a caller's record is not trusted)",
      },
    ]);
  const truth = await progress.run('read share run', () =>
    la.readShareRun.executeWithOptions(
      local(`read the result of share run ${shareWorkflowId}`, fastAwsCall),
      [{ workflowId: shareWorkflowId, ...(input.shareRunId ? { runId: input.shareRunId } : {}) }],
    ),
  );
  const issues = shareRunIssues(truth, input.share);
  if (issues.length > 0)
    throw ApplicationFailure.create({
      type: FailureType.ShareRunRefused,
      nonRetryable: true,
      message: `refusing to withdraw share ${shareWorkflowId} (run ${truth.runId}): ${issues.join('; ')}`,
      details: [issues],
    });
  const r = truth.result;
  const record: ShareRecord = {
    image: r.image,
    sharedImageId: r.sharedImageId,
    added: r.added,
    ...(r.reencryptedCopy ? { reencryptedCopy: r.reencryptedCopy } : {}),
  };
  // The holder is the run Temporal names, never one the caller could choose.
  return r.shareLedger
    ? {
        record,
        ledger: {
          image: { ...r.image, imageId: r.sharedImageId },
          holder: ledgerHolder(truth.workflowId, truth.runId),
        },
      }
    : { record };
}

/** JSON with object keys sorted: two records are the same whatever order their fields were written in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

/**
 * Why a share run's record cannot be withdrawn: it was withdrawn already; a grant not named for this
 * run (`amiflow/<run id>/<account>`) or a copy not made by it (a result is the run's, but a grant name
 * is what RevokeGrant acts on, so it is checked again); or the caller's record differs from the run's.
 */
export function shareRunIssues(truth: ShareRunTruth, claimed: ShareRecord | undefined): string[] {
  const r = truth.result;
  const issues: string[] = [];
  if (r.withdrawnAt) issues.push(`it was withdrawn already, at ${r.withdrawnAt}`);
  for (const g of r.added.grants)
    if (g.grantName !== shareGrantName(truth.runId, g.granteeAccountId))
      issues.push(`grant ${g.grantName} on ${g.keyArn} is not named for this run`);
  const copy = r.reencryptedCopy;
  if (copy && (copy.workflowId !== truth.workflowId || copy.runId !== truth.runId))
    issues.push(
      `the re-encrypted copy ${copy.imageId} names run ${copy.workflowId}/${copy.runId}, not this one`,
    );
  if (claimed) {
    const fields = ['image', 'sharedImageId', 'added', 'reencryptedCopy'] as const;
    const differ = fields.filter((f) => canonical(claimed[f] ?? null) !== canonical(r[f] ?? null));
    if (differ.length > 0)
      issues.push(
        `the record given differs from the run's own in ${differ.join(', ')}: only the run's record is withdrawn`,
      );
  }
  return issues;
}

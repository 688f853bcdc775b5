/**
 * goldenImage: what an image pipeline does, as one durable run. From a builder instance its owners
 * keep patched: image it (child `imageFromInstance`), validate it by launching a test instance that
 * must run, pass both status checks and (optionally) report healthy on its console, wait for a
 * person's approval (optional, with a timeout), distribute it (child `copyImage`, child `shareImage`
 * per region), mark every copy approved, publish the new id (SSM parameter per region), and retire
 * old versions.
 *
 * - Versioning: the run stands for a scheduled time (Temporal's `TemporalScheduledStartTime` for
 *   runs a Schedule starts). Its version is derived from it (`date`) or counts up (`semver`), and
 *   an approved image for the same pipeline and scheduled time is returned instead of making a
 *   second one, so triggering the same time twice makes one image.
 * - Until the images are approved and published, every failure or cancellation undoes this run:
 *   test instance terminated, shares withdrawn, copies and the image deleted, parameters restored.
 *   The previous approved image stays the current one throughout.
 * - Retirement runs once the new version is committed; its failures are reported, not undone.
 */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  executeChild,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { LaunchInput } from '../activities/launch';
import type { ManagedImage } from '../activities/retention';
import type { PublishedParameter } from '../activities/ssm';
import type {
  ApprovalAck,
  ApprovalDecision,
  AwsTarget,
  CopyImageInput,
  CopyImageResult,
  GoldenImageInput,
  GoldenImageOut,
  GoldenRolloutStage,
  RolloutImageResult,
  GoldenImageResult,
  ImageFromInstanceInput,
  RetentionReport,
  ShareImageInput,
  ShareImageResult,
  Tags,
  VerifiedApprover,
} from '../contracts';
import {
  APPROVED_VALUE,
  AUTO_APPROVER,
  DEFAULT_APPROVAL_TIMEOUT_SECONDS,
  DEFAULT_GOLDEN_RETENTION,
  DEFAULT_TIMEOUTS,
  DEFAULT_VALIDATION,
  FailureType,
  MANAGED_BY_VALUE,
  ScheduleAttr,
  SearchAttr,
  TAG,
  WORKFLOW_TYPES,
  approvalBinding,
  approveUpdate,
  progressQuery,
  rejectUpdate,
} from '../contracts';
import type { BuildImageInput } from '../contracts/recipe';
import type { UndoHandle } from './compensation';
import { approverMatches } from './approvers';
import { Compensations } from './compensation';
import { copyImage } from './copy-image';
import { approvalDecisionIssues, parseGoldenImageInput } from './golden-validation';
import { buildImage } from './build-image';
import { imageFromInstance } from './image-from-instance';
import {
  compensationCall,
  fastAwsCall,
  settleWait,
  settledAwsActivity,
  settledAwsCall,
  statusChecksWait,
} from './presets';
import { Progress, errorMessage } from './progress';
import { rolloutImage } from './rollout-image';
import { applyRetention } from './retention';
import { parsedOrFail } from './input';
import { shareImage, withdrawShare } from './share-image';
import { formatIssues } from './validation';
import { countScheduleSkip } from './metrics';

export const GOLDEN_IMAGE_STEPS = [
  'plan version',
  'image builder',
  'tag image',
  'launch test instance',
  'wait for status checks',
  'health check',
  'terminate test instance',
  'await approval',
  'copy',
  'share',
  'mark approved',
  'publish parameter',
  'retire old versions',
] as const;

/** Child workflow ids of a golden run: found again under these after a restart. */
/** Golden runs started before the rollout stage existed replay without it. */
export const GOLDEN_ROLLOUT_STAGE_PATCH = 'golden-image-rollout-stage';
/** Golden runs from before recipe sources replay as builder runs (only a recipe run takes the branch). */
export const GOLDEN_RECIPE_SOURCE_PATCH = 'golden-image-recipe-source';

export function goldenChildIds(workflowId: string) {
  return {
    rollout: `${workflowId}/rollout`,
    image: `${workflowId}/image`,
    build: `${workflowId}/build`,
    copy: `${workflowId}/copy`,
    share: (t: AwsTarget) => `${workflowId}/share/${t.accountId ?? 'self'}/${t.region}`,
  };
}

/** `2026.01.15-030000`: the scheduled time in UTC; sorts as it reads, fits image names. */
export function dateVersion(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${d.getUTCFullYear()}.${p(d.getUTCMonth() + 1)}.${p(d.getUTCDate())}-` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`
  );
}

/** `<series>.<n>`: one more than the highest patch number the pipeline has in this series (0 first). */
export function nextSemver(series: string, versions: readonly (string | undefined)[]): string {
  const prefix = `${series}.`;
  const patches = versions.flatMap((v) => {
    if (!v?.startsWith(prefix)) return [];
    const n = Number(v.slice(prefix.length));
    return Number.isInteger(n) && n >= 0 ? [n] : [];
  });
  return `${series}.${patches.length ? Math.max(...patches) + 1 : 0}`;
}

const SCHEDULED_SUFFIX_RE = /-(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)$/;

/**
 * The time this run stands for: set by Temporal for a scheduled run (search attribute, and the
 * suffix Schedules append to the workflow id), else the input's, else the run's start.
 */
export function scheduledTimeOf(input: { scheduledTime?: string }): { at: number; scheduleId?: string } {
  const info = workflowInfo();
  let fromSchedule: Date | undefined;
  let scheduleId: string | undefined;
  try {
    fromSchedule = info.typedSearchAttributes.get(ScheduleAttr.scheduledStartTime);
    scheduleId = info.typedSearchAttributes.get(ScheduleAttr.scheduledById);
  } catch {
    fromSchedule = undefined; // an attribute of another type under that name: not a schedule's
  }
  if (fromSchedule) return { at: fromSchedule.getTime(), ...(scheduleId ? { scheduleId } : {}) };
  if (input.scheduledTime) return { at: Date.parse(input.scheduledTime) };
  const suffix = SCHEDULED_SUFFIX_RE.exec(info.workflowId)?.[1];
  if (suffix) return { at: Date.parse(suffix) };
  return { at: info.startTime.getTime() };
}

function local(summary: string, options: LocalActivityOptions = fastAwsCall) {
  return { ...options, summary };
}
function remote(summary: string, options: ActivityOptions = compensationCall) {
  return { ...options, summary };
}
function where(t: AwsTarget): string {
  return `${t.region}${t.accountId ? ` · ${t.accountId}` : ''}`;
}
function iso(ms: number): string {
  return new Date(ms).toISOString();
}

const la = proxyLocalActivities<Activities>(fastAwsCall);
const act = proxyActivities<Activities>(compensationCall);

/**
 * The approver's identity as STS verifies it (the `verifyApprover` activity), bound to this run and
 * decision, and checked against the pipeline's approvers. The update fails otherwise; the run waits on.
 */
async function verifiedApprover(
  kind: 'approve' | 'reject',
  d: ApprovalDecision,
  approvers: readonly string[] | undefined,
): Promise<VerifiedApprover> {
  const { workflowId, runId } = workflowInfo();
  if (!d.proof)
    throw ApplicationFailure.create({
      type: FailureType.ApproverNotVerified,
      nonRetryable: true,
      message:
        'a decision needs proof of who takes it (an STS GetCallerIdentity request signed with your AWS credentials)',
    });
  let who: VerifiedApprover;
  try {
    who = await la.verifyApprover.executeWithOptions(
      { ...fastAwsCall, summary: `verify who ${kind}s (STS GetCallerIdentity)` },
      [{ proof: d.proof, binding: approvalBinding(kind, workflowId, runId) }],
    );
  } catch (err) {
    // The update fails with the activity's own refusal (type ApproverNotVerified), not its wrapper.
    if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) throw err.cause;
    throw err;
  }
  if (approvers && approvers.length > 0 && !approverMatches(who.principalArn, approvers))
    throw ApplicationFailure.create({
      type: FailureType.ApproverNotVerified,
      nonRetryable: true,
      message: `${who.arn} (${who.principalArn}) is not one of this pipeline's approvers (${approvers.join(', ')})`,
    });
  return who;
}

export async function goldenImage(rawInput: GoldenImageInput): Promise<GoldenImageResult> {
  const progress = new Progress(WORKFLOW_TYPES.goldenImage, GOLDEN_IMAGE_STEPS);
  setHandler(progressQuery, () => progress.record);
  const startedAt = iso(Date.now());

  // The approval gate: `approve` / `reject` updates, accepted only while the run waits for them.
  let awaiting: { imageId: string; version: string } | undefined;
  let decision:
    | { kind: 'approved' | 'rejected'; by: string; comment?: string; verifiedArn?: string; at: number }
    | undefined;
  const approvers = (rawInput as Partial<GoldenImageInput> | undefined)?.approval?.approvers;
  const notWaiting = () =>
    ApplicationFailure.create({
      type: FailureType.InvalidInput,
      nonRetryable: true,
      message: decision
        ? `the image was ${decision.kind} already, by ${decision.by}`
        : `this run is not waiting for approval (${(rawInput as Partial<GoldenImageInput> | undefined)?.approval ? 'not there yet, or past it' : 'its pipeline has no approval gate'})`,
    });
  const decide =
    (kind: 'approved' | 'rejected') =>
    async (d: ApprovalDecision): Promise<ApprovalAck> => {
      let by = d.by ?? '';
      let verifiedArn: string | undefined;
      // Runs that took decisions before approvers were verified replay them as they were taken.
      if (patched('verified-approvers')) {
        const who = await verifiedApprover(kind === 'approved' ? 'approve' : 'reject', d, approvers);
        if (!awaiting || decision) throw notWaiting(); // decided while STS answered
        by = who.principalArn;
        verifiedArn = who.arn;
      }
      const at = Date.now();
      decision = {
        kind,
        by,
        ...(d.comment ? { comment: d.comment } : {}),
        ...(verifiedArn ? { verifiedArn } : {}),
        at,
      };
      return {
        workflowId: workflowInfo().workflowId,
        imageId: awaiting?.imageId ?? '',
        version: awaiting?.version ?? '',
        decision: kind,
        at: iso(at),
      };
    };
  const validator = (d: ApprovalDecision): void => {
    if (!awaiting || decision) throw notWaiting();
    const issues = approvalDecisionIssues(d, approvers);
    if (issues.length > 0)
      throw ApplicationFailure.create({
        type: FailureType.InvalidInput,
        nonRetryable: true,
        message: formatIssues(issues),
      });
    if (d.proof === undefined)
      throw ApplicationFailure.create({
        type: FailureType.ApproverNotVerified,
        nonRetryable: true,
        message:
          'a decision needs proof of who takes it: an STS GetCallerIdentity request signed with your AWS credentials (amiflow golden approve|reject does it; the library: approveGoldenImage)',
      });
  };
  setHandler(approveUpdate, decide('approved'), { validator });
  setHandler(rejectUpdate, decide('rejected'), { validator });

  const input = parsedOrFail(parseGoldenImageInput, rawInput, progress);
  const { workflowId, runId } = workflowInfo();
  const ids = goldenChildIds(workflowId);
  const target: AwsTarget = {
    region: input.region,
    ...(input.accountId ? { accountId: input.accountId } : {}),
  };
  const scheduled = scheduledTimeOf(input);
  const scheduledTime = iso(scheduled.at);
  const timeouts = { ...DEFAULT_TIMEOUTS, copyAvailableSeconds: 12 * 3600, ...input.timeouts };
  const retention = { ...DEFAULT_GOLDEN_RETENTION, ...input.retention };
  const withSearchAttributes = workflowInfo().typedSearchAttributes.get(SearchAttr.region) !== undefined;
  const comp = new Compensations(progress);
  const undos: UndoHandle[] = [];
  /** Registers an undo that stays until the version is committed. */
  const undo = (name: string, fn: () => Promise<unknown>, step: string): UndoHandle => {
    const handle = comp.add(name, fn, step);
    undos.push(handle);
    return handle;
  };
  const deadline = (seconds: number) => Date.now() + seconds * 1000;
  progress.resource('pipeline', input.pipeline);
  progress.resource('scheduledTime', scheduledTime);
  // The schema lets exactly one source through; `patched` only where a recipe run takes the branch.
  const recipe = input.recipe !== undefined && patched(GOLDEN_RECIPE_SOURCE_PATCH) ? input.recipe : undefined;
  const builderInstanceId = input.builderInstanceId ?? '';

  const outcome = await comp.guard(async () => {
    // 1. The builder, and what the pipeline has made so far (for the version, and a repeat of this time).
    const { builder, existing } = await progress.run('plan version', async () => ({
      builder: recipe
        ? { imageId: undefined as string | undefined }
        : await la.readBuilderInstance.executeWithOptions(local(`read builder ${builderInstanceId}`), [
            { target, instanceId: builderInstanceId },
          ]),
      existing: await la.listManagedImages.executeWithOptions(
        local(`list pipeline ${input.pipeline}'s images`),
        [{ target, tags: { [TAG.pipeline]: input.pipeline } }],
      ),
    }));
    const repeat = existing.find(
      (i: ManagedImage) =>
        i.tags[TAG.scheduledTime] === scheduledTime && i.tags[TAG.approved] === APPROVED_VALUE,
    );
    if (repeat) return reuse(repeat);

    const version =
      input.versioning?.scheme === 'semver'
        ? nextSemver(
            input.versioning.series,
            existing.map((i) => i.tags[TAG.version]),
          )
        : dateVersion(scheduled.at);
    // A recipe's image is named by its own template (the build names it when it images the builder).
    let imageName = `${input.imageNamePrefix ?? input.pipeline}-${version}`;
    progress.resource('version', version);
    if (!recipe) progress.resource('imageName', imageName);

    // 2. The image, by the reference workflow (it undoes itself when it fails or is cancelled).
    const imageInput: ImageFromInstanceInput = {
      ...target,
      instanceId: builderInstanceId,
      imageName,
      description: (
        input.description ?? `amiflow golden image: pipeline ${input.pipeline} version ${version}`
      ).slice(0, 255),
      ...(input.tags ? { tags: input.tags } : {}),
      mode: input.mode ?? 'stop',
      ...(input.mode === 'app-consistent' && input.appConsistent
        ? { appConsistent: input.appConsistent }
        : {}),
      timeouts: {
        instanceStateSeconds: timeouts.instanceStateSeconds,
        imageAvailableSeconds: timeouts.imageAvailableSeconds,
      },
    };
    const built = recipe ? await buildFromRecipe(recipe, version) : undefined;
    if (built) {
      imageName = built.imageName;
      progress.resource('imageName', imageName);
    }
    const image =
      built ??
      (await progress.run(
        'image builder',
        async () => {
          const child = await startChild(imageFromInstance, {
            workflowId: ids.image,
            args: [imageInput],
            staticSummary: `Golden image ${imageName} from ${builderInstanceId}`,
            ...(withSearchAttributes
              ? {
                  typedSearchAttributes: [
                    { key: SearchAttr.instanceId, value: builderInstanceId },
                    { key: SearchAttr.region, value: input.region },
                  ],
                }
              : {}),
          });
          return { ...(await child.result()), childRunId: child.firstExecutionRunId };
        },
        `child workflow ${ids.image}`,
      ));
    const imageId = image.imageId;
    progress.resource('imageId', imageId);
    if (withSearchAttributes) upsertSearchAttributes([{ key: SearchAttr.imageId, value: imageId }]);
    undo(
      'delete golden image',
      () =>
        act.deleteImage.executeWithOptions(remote(`undo: delete ${imageId} and its snapshots`), [
          {
            target,
            imageName,
            workflowId: built ? built.imageRun.workflowId : ids.image,
            runId: image.childRunId,
            imageId,
          },
        ]),
      'image builder',
    );
    const pipelineTags: Tags = {
      [TAG.pipeline]: input.pipeline,
      [TAG.version]: version,
      [TAG.scheduledTime]: scheduledTime,
    };
    await progress.run('tag image', () =>
      la.tagImage.executeWithOptions(local(`tag ${imageId} with pipeline ${input.pipeline} ${version}`), [
        { target, imageId, tags: pipelineTags, snapshots: true },
      ]),
    );

    // 3. Validation: a test instance from the image must run, pass both status checks, report healthy.
    let validation: GoldenImageResult['validation'];
    const v = input.validation;
    if (v) {
      const owner = { workflowId, runId };
      const launched: { instanceId?: string } = {};
      const terminate = undo(
        'terminate test instance',
        () =>
          act.terminateLaunchedInstance.executeWithOptions(
            remote(`undo: terminate test instance ${launched.instanceId ?? '(found by tag)'}`),
            [{ target, owner, ...(launched.instanceId ? { instanceId: launched.instanceId } : {}) }],
          ),
        'launch test instance',
      );
      const { spec, testInstance } = await progress.run('launch test instance', async () => {
        const planned = await la.planTestLaunch.executeWithOptions(
          local(`plan the test launch in ${v.subnetId}`),
          [
            {
              target,
              subnetId: v.subnetId,
              instanceType: v.instanceType ?? DEFAULT_VALIDATION.instanceType,
              ...(v.securityGroupIds ? { securityGroupIds: v.securityGroupIds } : {}),
              ...(v.instanceProfileArn ? { instanceProfileArn: v.instanceProfileArn } : {}),
              tags: { Name: `amiflow validation: ${imageName}` },
            },
          ],
        );
        const launchSummary = `launch a ${planned.instanceType} from ${imageId} in ${planned.subnetId}`;
        const launchArgs: [LaunchInput] = [
          {
            target,
            imageId,
            spec: planned,
            owner,
            ownerTags: {
              [TAG.managedBy]: MANAGED_BY_VALUE,
              [TAG.workflowId]: workflowId,
              [TAG.runId]: runId,
              [TAG.workflowType]: WORKFLOW_TYPES.goldenImage,
              [TAG.pipeline]: input.pipeline,
            },
          },
        ];
        // Settled: on cancel the undo waits until the launch call has ended, so it cannot run first.
        // Since 'golden-launch-test-instance-as-activity' a normal activity, as in migrateInstance:
        // RunInstances may meet InsufficientInstanceCapacity for minutes, past a local activity's budget.
        const made = await (patched('golden-launch-test-instance-as-activity')
          ? act.launchInstance.executeWithOptions(remote(launchSummary, settledAwsActivity), launchArgs)
          : la.launchInstance.executeWithOptions(local(launchSummary, settledAwsCall), launchArgs));
        return { spec: planned, testInstance: made };
      });
      launched.instanceId = testInstance.instanceId;
      progress.resource('testInstanceId', testInstance.instanceId);
      progress.note('launch test instance', testInstance.instanceId);
      const readySeconds = v.readyTimeoutSeconds ?? DEFAULT_VALIDATION.readyTimeoutSeconds;
      await progress.run('wait for status checks', () =>
        act.waitForInstanceReady.executeWithOptions(
          remote(
            `wait for ${testInstance.instanceId} to run and pass both status checks`,
            statusChecksWait(readySeconds),
          ),
          [{ target, instanceId: testInstance.instanceId, deadline: deadline(readySeconds) }],
        ),
      );
      let health: { marker: string; seenAt: string } | undefined;
      const h = v.healthCheck;
      if (h) {
        const healthSeconds = h.timeoutSeconds ?? DEFAULT_VALIDATION.healthTimeoutSeconds;
        const seen = await progress.run('health check', () =>
          act.checkConsoleHealth.executeWithOptions(
            remote(
              `wait for '${h.successMarker}' on ${testInstance.instanceId}'s console`,
              settleWait(healthSeconds),
            ),
            [
              {
                target,
                instanceId: testInstance.instanceId,
                successMarker: h.successMarker,
                ...(h.failureMarker ? { failureMarker: h.failureMarker } : {}),
                deadline: deadline(healthSeconds),
              },
            ],
          ),
        );
        health = { marker: seen.line, seenAt: iso(seen.seenAt) };
      } else {
        progress.skip('health check', 'no health check configured: running and both status checks ok');
      }
      await progress.run('terminate test instance', () =>
        act.terminateLaunchedInstance.executeWithOptions(
          remote(`terminate test instance ${testInstance.instanceId}`),
          [{ target, owner, instanceId: testInstance.instanceId }],
        ),
      );
      terminate.discard();
      validation = {
        testInstanceId: testInstance.instanceId,
        subnetId: spec.subnetId,
        statusChecks: 'ok',
        ...(health ? { healthCheck: health } : {}),
      };
    } else {
      for (const step of [
        'launch test instance',
        'wait for status checks',
        'health check',
        'terminate test instance',
      ])
        progress.skip(step, 'no validation configured');
    }

    // 4. Approval: a person, within the timeout; otherwise the run fails and undoes itself.
    let approval: GoldenImageResult['approval'];
    if (input.approval) {
      const timeoutSeconds = input.approval.timeoutSeconds ?? DEFAULT_APPROVAL_TIMEOUT_SECONDS;
      awaiting = { imageId, version };
      if (withSearchAttributes)
        upsertSearchAttributes([{ key: SearchAttr.step, value: 'awaiting approval' }]);
      const decided = await progress.run(
        'await approval',
        async () => {
          const inTime = await condition(() => decision !== undefined, timeoutSeconds * 1000);
          const d = decision;
          if (!inTime || !d)
            throw ApplicationFailure.create({
              type: FailureType.ApprovalTimedOut,
              nonRetryable: true,
              message: `no one approved or rejected ${imageId} (${input.pipeline} ${version}) within ${timeoutSeconds} s; the run undoes itself and the previous approved image stays current`,
            });
          if (d.kind === 'rejected')
            throw ApplicationFailure.create({
              type: FailureType.ApprovalRejected,
              nonRetryable: true,
              message: `${d.by} rejected ${imageId} (${input.pipeline} ${version})${d.comment ? `: ${d.comment}` : ''}; the run undoes itself and the previous approved image stays current`,
              details: [{ by: d.by, comment: d.comment }],
            });
          return d;
        },
        `${imageId} (${version}): send the approve or reject update, signed with your AWS credentials (amiflow golden approve ${workflowId})`,
      );
      if (withSearchAttributes) upsertSearchAttributes([{ key: SearchAttr.step, value: 'approved' }]);
      approval = {
        by: decided.by,
        at: iso(decided.at),
        ...(decided.comment ? { comment: decided.comment } : {}),
        gate: true,
        ...(decided.verifiedArn ? { verifiedArn: decided.verifiedArn } : {}),
      };
    } else {
      progress.skip('await approval', 'no approval gate: approved by its validation');
      approval = { by: AUTO_APPROVER, at: iso(Date.now()), gate: false };
    }

    // 5. Distribution: copies (each undone by deleting it), then shares of the images in this account.
    const images: GoldenImageOut[] = [{ ...target, imageId, role: 'original' }];
    const copies = input.distribution?.copies ?? [];
    if (copies.length > 0) {
      const copied: { result?: CopyImageResult; runId?: string } = {};
      undo(
        'delete copies',
        async () => {
          const made = copied.result?.destinations.filter((d) => d.exists && d.imageId) ?? [];
          await Promise.all(
            made.map((d) => {
              const accountId = d.accountId ?? input.accountId;
              return act.deleteImage.executeWithOptions(
                remote(`undo: delete the copy ${d.imageId} in ${d.region}`),
                [
                  {
                    target: { region: d.region, ...(accountId ? { accountId } : {}) },
                    imageName: d.imageName,
                    workflowId: ids.copy,
                    runId: copied.runId ?? '',
                    ...(d.imageId ? { imageId: d.imageId } : {}),
                  },
                ],
              );
            }),
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
        timeouts: { copyAvailableSeconds: timeouts.copyAvailableSeconds },
      };
      await progress.run(
        'copy',
        async () => {
          const child = await startChild(copyImage, {
            workflowId: ids.copy,
            args: [copyInput],
            staticSummary: `Copy golden image ${imageName} to ${copies.map((c) => where({ region: c.region, ...(c.accountId ? { accountId: c.accountId } : {}) })).join(', ')}`,
          });
          copied.runId = child.firstExecutionRunId;
          copied.result = await child.result();
        },
        `child workflow ${ids.copy}`,
      );
      for (const d of copied.result?.destinations ?? []) {
        if (!d.exists || !d.imageId) continue;
        const accountId = d.accountId ?? input.accountId;
        images.push({
          region: d.region,
          ...(accountId ? { accountId } : {}),
          imageId: d.imageId,
          role: 'copy',
        });
        progress.resource(
          `copy ${where({ region: d.region, ...(accountId ? { accountId } : {}) })}`,
          d.imageId,
        );
      }
    } else {
      progress.skip('copy', 'no copies configured');
    }

    const shareWith = input.distribution?.shareWith;
    if (shareWith) {
      const own = images.filter((i) => i.accountId === input.accountId);
      await progress.run('share', () =>
        Promise.all(
          own.map(async (img) => {
            const t: AwsTarget = {
              region: img.region,
              ...(img.accountId ? { accountId: img.accountId } : {}),
            };
            const shareId = ids.share(t);
            const shared: { record?: ShareImageResult } = {};
            undo(
              `withdraw share of ${img.imageId}`,
              async () => {
                if (shared.record) await withdrawShare(shared.record, { deleteReencryptedCopy: true });
              },
              'share',
            );
            const shareInput: ShareImageInput = {
              ...t,
              imageId: img.imageId,
              targets: {
                ...(shareWith.accountIds ? { accountIds: shareWith.accountIds } : {}),
                ...(shareWith.organizationArns ? { organizationArns: shareWith.organizationArns } : {}),
                ...(shareWith.organizationalUnitArns
                  ? { organizationalUnitArns: shareWith.organizationalUnitArns }
                  : {}),
              },
              ...(shareWith.allowCopy !== undefined ? { allowCopy: shareWith.allowCopy } : {}),
              ...(shareWith.kmsAccess ? { kmsAccess: shareWith.kmsAccess } : {}),
            };
            const child = await startChild(shareImage, {
              workflowId: shareId,
              args: [shareInput],
              staticSummary: `Share golden image ${img.imageId} (${where(t)})`,
            });
            shared.record = await child.result();
            img.shareWorkflowId = shareId;
          }),
        ),
      );
    } else {
      progress.skip('share', 'no shareWith configured');
    }

    // 6. Approved: the tags the catalogue and guardrails read, on every image of this version.
    const approvedTags: Tags = {
      ...pipelineTags,
      [TAG.approved]: APPROVED_VALUE,
      [TAG.approvedBy]: approval.by,
      [TAG.approvedAt]: approval.at,
    };
    await progress.run('mark approved', () =>
      Promise.all(
        images.map((img) => {
          const t: AwsTarget = { region: img.region, ...(img.accountId ? { accountId: img.accountId } : {}) };
          const lineage: Tags =
            img.role === 'original'
              ? builder.imageId
                ? { [TAG.sourceImage]: builder.imageId }
                : {}
              : { [TAG.sourceImage]: imageId, [TAG.sourceRegion]: input.region };
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

    // 7. Publish: the parameter launches resolve, in every region and account the version is in.
    const publish = input.publish;
    if (publish) {
      await progress.run('publish parameter', () =>
        Promise.all(
          images.map(async (img) => {
            const t: AwsTarget = {
              region: img.region,
              ...(img.accountId ? { accountId: img.accountId } : {}),
            };
            const before = await la.readImageParameter.executeWithOptions(
              local(`read ${publish.parameterName} in ${where(t)}`),
              [{ target: t, name: publish.parameterName }],
            );
            undo(
              `restore ${publish.parameterName} in ${where(t)}`,
              () =>
                act.restoreImageParameter.executeWithOptions(
                  remote(`undo: put ${publish.parameterName} back in ${where(t)}`),
                  [
                    {
                      target: t,
                      name: publish.parameterName,
                      publishedValue: img.imageId,
                      ...(before.value !== undefined ? { previous: before.value } : {}),
                    },
                  ],
                ),
              'publish parameter',
            );
            const settleSeconds = 300;
            const put: PublishedParameter = await act.publishImageParameter.executeWithOptions(
              remote(
                `publish ${img.imageId} as ${publish.parameterName} in ${where(t)}`,
                settleWait(settleSeconds),
              ),
              [
                {
                  target: t,
                  name: publish.parameterName,
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
    } else {
      progress.skip('publish parameter', 'no parameter configured');
    }

    // Committed: this version is approved, distributed and published. Nothing above is undone any
    // more, and retirement runs to its end, cancellation or not.
    for (const handle of undos) handle.discard();
    const report: RetentionReport = await CancellationScope.nonCancellable(() =>
      progress.run('retire old versions', () =>
        applyRetention(
          images.map((img) => ({
            target: { region: img.region, ...(img.accountId ? { accountId: img.accountId } : {}) },
            selector: { [TAG.pipeline]: input.pipeline, [TAG.approved]: APPROVED_VALUE },
            owned: { [TAG.managedBy]: MANAGED_BY_VALUE, [TAG.pipeline]: input.pipeline },
          })),
          retention,
        ),
      ),
    );
    if (report.failures > 0 || report.errors.length > 0) {
      const text = `${report.failures + report.errors.length} retirement action(s) failed: see the result`;
      progress.note('retire old versions', text);
      // Committed, yet not clean: the run completes, with problems, never as a plain success.
      progress.problem(
        `retire old versions: ${text}${report.errors.length ? ` (${report.errors.map((e) => `${e.region}: ${e.error}`).join('; ')})` : ''}`,
      );
    }
    // 7. Rollout (optional): runs before it was added replay without it.
    const rollout =
      input.rollout && patched(GOLDEN_ROLLOUT_STAGE_PATCH)
        ? await rolloutStage(input.rollout, images, ids.rollout)
        : undefined;
    return {
      pipeline: input.pipeline,
      version,
      imageName,
      scheduledTime,
      ...(scheduled.scheduleId ? { scheduleId: scheduled.scheduleId } : {}),
      reused: false,
      builderInstanceId: built?.builderInstanceId ?? builderInstanceId,
      ...(builder.imageId ? { builderImageId: builder.imageId } : {}),
      ...(built ? { builderImageId: built.build.parentImageId, build: built.build } : {}),
      images,
      ...(validation ? { validation } : {}),
      approval,
      retention: report,
      ...(rollout ? { rollout } : {}),
      startedAt,
      finishedAt: iso(Date.now()),
    } satisfies GoldenImageResult;
  });
  progress.setPhase('succeeded');
  return outcome;

  /**
   * The committed image rolled out (child `rolloutImage`, the image per region as this account
   * holds it). A rollout that fails has rolled itself back: the image stays approved and the run
   * completes with the rollout as its problem. A cancellation cancels the rollout (it rolls back).
   */
  async function rolloutStage(
    stage: GoldenRolloutStage,
    images: GoldenImageOut[],
    childId: string,
  ): Promise<RolloutImageResult | undefined> {
    const imageIds: Record<string, string> = {};
    for (const img of images)
      if ((img.accountId ?? '') === (input.accountId ?? '') && !imageIds[img.region])
        imageIds[img.region] = img.imageId;
    try {
      return await progress.run(
        'rollout',
        () =>
          executeChild(rolloutImage, {
            workflowId: childId,
            args: [{ ...stage, imageIds }],
            staticSummary: `Roll out ${input.pipeline} ${Object.values(imageIds).join(', ')}`,
          }),
        `child workflow ${childId}`,
      );
    } catch (err) {
      if (isCancellation(err)) throw err;
      progress.problem(`rollout: ${errorMessage(err)}`);
      return undefined;
    }
  }

  /**
   * The image, built from the recipe by a child `buildImage` (it undoes itself when it fails or is
   * cancelled, so a failed build leaves golden nothing to undo). Always forced: each golden run
   * makes a new version, and a skipped build would hand over an image an earlier run owns (its
   * tags and its deletion on a later failure). The build's own test phase runs before golden's
   * validation; the pipeline's tags and description go onto the built image.
   */
  async function buildFromRecipe(r: BuildImageInput, version: string) {
    const child: BuildImageInput = {
      ...r,
      force: true,
      output: {
        ...r.output,
        ...(input.tags ? { tags: { ...r.output.tags, ...input.tags } } : {}),
        description: (
          input.description ??
          r.output.description ??
          `amiflow golden image: pipeline ${input.pipeline} version ${version}`
        ).slice(0, 255),
      },
    };
    return await progress.run(
      'image builder',
      async () => {
        const handle = await startChild(buildImage, {
          workflowId: ids.build,
          args: [child],
          staticSummary: `Golden image of pipeline ${input.pipeline} ${version}: build recipe ${r.recipe}`,
          ...(withSearchAttributes
            ? { typedSearchAttributes: [{ key: SearchAttr.region, value: input.region }] }
            : {}),
        });
        const result = await handle.result();
        // Forced, so never skipped: the image is this build's, tagged by its imageFromInstance run.
        const imageRun = result.imageRun ?? { workflowId: ids.build, runId: handle.firstExecutionRunId };
        return {
          imageId: result.imageId,
          imageName: result.imageName,
          imageRun,
          childRunId: imageRun.runId,
          builderInstanceId: result.builderInstanceId ?? '',
          build: {
            workflowId: ids.build,
            recipe: result.recipe,
            contentHash: result.contentHash,
            parentImageId: result.parentImageId,
          },
        };
      },
      `child workflow ${ids.build}`,
    );
  }

  /** An approved image for this pipeline and scheduled time exists: this run makes nothing. */
  function reuse(found: ManagedImage): GoldenImageResult {
    countScheduleSkip('already-done');
    for (const step of GOLDEN_IMAGE_STEPS.slice(1))
      progress.skip(step, `reused ${found.imageId}: approved for ${scheduledTime} already`);
    progress.resource('imageId', found.imageId);
    const version = found.tags[TAG.version] ?? '';
    return {
      pipeline: input.pipeline,
      version,
      imageName: found.name ?? '',
      scheduledTime,
      ...(scheduled.scheduleId ? { scheduleId: scheduled.scheduleId } : {}),
      reused: true,
      builderInstanceId,
      images: [{ ...target, imageId: found.imageId, role: 'original' }],
      approval: {
        by: found.tags[TAG.approvedBy] ?? '',
        at: found.tags[TAG.approvedAt] ?? '',
        gate: (found.tags[TAG.approvedBy] ?? AUTO_APPROVER) !== AUTO_APPROVER,
      },
      retention: { actions: [], failures: 0, errors: [] },
      startedAt,
      finishedAt: iso(Date.now()),
    };
  }
}

/**
 * goldenImage on the time-skipping server with stub activities acting on a small model of the
 * fleet (test/workflows/golden-stubs.ts): a full run (image, validate, approve, copy, share, mark
 * approved, publish, retire); approval granted, rejected and timed out; validation failing (nothing
 * distributed, everything cleaned); a failure after distribution (everything undone, the previous
 * image current again); retention picking exactly the right images; a run triggered twice for the
 * same scheduled time making one image; semver versions counting up.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { ApprovalDecision, GoldenImageResult, RetentionAction } from '../../workflows/contracts';
import { APPROVED_VALUE, AUTO_APPROVER, FailureType, TAG, approveUpdate } from '../../workflows/contracts';
import { dateVersion, nextSemver } from '../../workflows/golden-image';
import { saveHistory } from '../support/histories';
import { timeSkippingEnv } from '../support/temporal';
import {
  ACCOUNT,
  ALICE_SESSION,
  APPROVERS_ROLE,
  BASE_AMI,
  BOB,
  CONSUMER,
  COPY_REGION,
  Fleet,
  GOLDEN,
  HERE,
  MALLORY,
  PARAMETER,
  REGION,
  SCHEDULED,
  TEST_INSTANCE,
  type GoldenOutcome,
  awaitingApproval,
  decide,
  goldenActivities,
  goldenInput,
  imageOnlyInput,
  outcomeOf,
  proofFor,
  startGolden,
  stepIs,
} from './golden-stubs';
import {
  ActivityLog,
  RUN_TIMEOUT,
  assertActivityFailure,
  assertWorkflowCancelled,
  assertWorkflowFailure,
  compensationStates,
  failed,
  failing,
  recorded,
  stepStates,
  uniqueWorkflowId,
  withWorker,
  workflowEnv,
} from './harness';
import { runLogged } from './run-helpers';

const env = workflowEnv(timeSkippingEnv);

const THERE = { region: COPY_REGION, accountId: ACCOUNT };
const DAY = 24 * 3600 * 1000;

function withGoldenWorker<T>(activities: Activities, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  return withWorker(env, activities, fn, 'golden');
}

/** A goldenImage run of `input` to its end, on a fresh worker with `activities`. */
function runGolden(activities: Activities, input: unknown = goldenInput()) {
  return withGoldenWorker(activities, async (taskQueue) =>
    outcomeOf<GoldenImageResult>(await startGolden(env, taskQueue, input)),
  );
}

/** A fleet with last month's approved version in both regions, current in both parameters. */
function fleetWithPreviousVersion(): { fleet: Fleet; previous: string; previousCopy: string } {
  const fleet = new Fleet();
  const at = '2026-01-01T03:00:00.000Z';
  const previous = fleet.seedVersion(HERE, 'web', '2026.01.01-030000', at, { protected: true }).imageId;
  const previousCopy = fleet.seedVersion(THERE, 'web', '2026.01.01-030000', at, { protected: true }).imageId;
  fleet.setParameter(HERE, PARAMETER, previous);
  fleet.setParameter(THERE, PARAMETER, previousCopy);
  return { fleet, previous, previousCopy };
}

/** A fleet holding approved versions of the web pipeline here, each as `[version, creation time]`. */
function fleetWithVersions(...versions: [string, string][]): Fleet {
  const fleet = new Fleet();
  for (const [version, at] of versions) fleet.seedVersion(HERE, 'web', version, at);
  return fleet;
}

function newImages(fleet: Fleet, ...seeded: string[]) {
  return [...fleet.images.values()].filter((i) => !seeded.includes(i.imageId));
}

/** The fleet of `fleetWithPreviousVersion`, the images it held before the run, and the run's log. */
function beforeTheRun() {
  const before = fleetWithPreviousVersion();
  return { ...before, seeded: [...before.fleet.images.keys()], log: new ActivityLog() };
}
type BeforeTheRun = ReturnType<typeof beforeTheRun>;

/**
 * A run of `input` to its end over the fleet of `beforeTheRun`, on activities `stubs(fleet)`
 * recorded in its log: the outcome, and what was there before.
 */
async function runOverPrevious(stubs: (fleet: Fleet) => Activities, input?: unknown) {
  const before = beforeTheRun();
  const outcome = await runGolden(recorded(before.log, stubs(before.fleet)), input);
  return { outcome, before };
}

/**
 * A run over the fleet of `beforeTheRun` that waits for approval, where `act` then ends it (given
 * the run's handle and the calls so far): its outcome, and what was there before.
 */
async function awaitingApprovalOverPrevious(
  act: (handle: WorkflowHandleWithFirstExecutionRunId, log: ActivityLog) => Promise<unknown>,
) {
  const before = beforeTheRun();
  const outcome = await withGoldenWorker(
    recorded(before.log, goldenActivities(before.fleet)),
    async (taskQueue) => {
      const handle = await awaitingApproval(env, taskQueue);
      await act(handle, before.log);
      return outcomeOf<GoldenImageResult>(handle);
    },
  );
  return { outcome, before };
}

const DISTRIBUTION: (keyof Activities)[] = [
  'describeCopySource',
  'copyImage',
  'describeImageForSharing',
  'addLaunchPermissions',
  'readImageParameter',
  'publishImageParameter',
];

/**
 * THEN of a run undone before distribution: the new image and its snapshots deleted, the previous
 * approved version still current, and nothing copied, shared or published.
 */
function assertNothingDistributed({ log, fleet, seeded, previous }: BeforeTheRun): void {
  assert.deepEqual(newImages(fleet, ...seeded), [], 'the new image and its snapshots are deleted');
  assert.equal(fleet.parameter(HERE, PARAMETER), previous, 'the previous approved image stays current');
  for (const name of DISTRIBUTION) assert.equal(log.count(name), 0, `${name} was called`);
}

/**
 * THEN of a run whose validation failed: the test instance terminated (`terminated`: by id, or
 * looked for by its tags when undefined), and nothing left or distributed.
 */
function assertValidationUndone(
  outcome: GoldenOutcome<GoldenImageResult>,
  before: BeforeTheRun,
  terminated: string | undefined,
): void {
  assert.deepEqual(compensationStates(outcome.progress), [
    ['terminate test instance', 'done'],
    ['delete golden image', 'done'],
  ]);
  assert.deepEqual(
    before.log.inputs('terminateLaunchedInstance').map((i) => i.instanceId),
    [terminated],
  );
  assertNothingDistributed(before);
}

describe('goldenImage: a full run', () => {
  it(
    'GIVEN a pipeline with validation, approval, a copy, a share and a parameter WHEN alice approves THEN both images are approved, shared, published, and retention protects the new one and keeps the previous',
    RUN_TIMEOUT,
    async () => {
      const { fleet, previous, previousCopy } = fleetWithPreviousVersion();
      const log = new ActivityLog();

      const outcome = await withGoldenWorker(recorded(log, goldenActivities(fleet)), async (taskQueue) => {
        const handle = await startGolden(env, taskQueue, goldenInput());
        const waiting = await stepIs(handle, 'await approval', ['running']);
        // The approver sees what they approve: the validation passed, the test instance is gone.
        assert.equal(stepStates(waiting)['health check'], 'done');
        assert.equal(stepStates(waiting)['terminate test instance'], 'done');
        const ack = await handle.executeUpdate(approveUpdate, {
          args: [
            { by: 'alice', comment: 'CVE-2026-1 fixed', proof: proofFor(handle, 'approve', ALICE_SESSION) },
          ],
        });
        assert.equal(ack.decision, 'approved');
        assert.equal(ack.version, dateVersion(Date.parse(SCHEDULED)));
        return outcomeOf<GoldenImageResult>(handle);
      });
      await saveHistory(outcome, 'golden-image-approved');

      assert.ok(outcome.ok, `the run failed: ${outcome.ok ? '' : String(outcome.error)}`);
      const r = outcome.result;
      assert.equal(r.version, '2026.01.15-030000');
      assert.equal(r.imageName, 'web-2026.01.15-030000');
      assert.equal(r.scheduledTime, SCHEDULED);
      assert.equal(r.reused, false);
      assert.equal(r.builderImageId, BASE_AMI);
      // The verified role is recorded, not the name alice typed.
      assert.deepEqual(r.approval, {
        by: APPROVERS_ROLE,
        at: r.approval.at,
        comment: 'CVE-2026-1 fixed',
        gate: true,
        verifiedArn: ALICE_SESSION,
      });
      assert.deepEqual(r.validation, {
        testInstanceId: TEST_INSTANCE,
        subnetId: 'subnet-0123456789abcdef0',
        statusChecks: 'ok',
        healthCheck: {
          marker: '[  12.3] amiflow-health: ok',
          seenAt: r.validation?.healthCheck?.seenAt ?? '',
        },
      });
      const [original, copy] = r.images;
      assert.equal(r.images.length, 2);
      assert.equal(original?.role, 'original');
      assert.equal(copy?.role, 'copy');
      assert.equal(copy?.region, COPY_REGION);

      // Approval tags on every image, with lineage: the builder's AMI for the original, the original for the copy.
      for (const img of r.images) {
        const tags = fleet.get(img.imageId).tags;
        assert.equal(tags[TAG.approved], APPROVED_VALUE);
        assert.equal(tags[TAG.approvedBy], APPROVERS_ROLE);
        assert.equal(tags[TAG.pipeline], 'web');
        assert.equal(tags[TAG.version], r.version);
        assert.equal(tags[TAG.scheduledTime], SCHEDULED);
        assert.equal(tags.team, 'web');
      }
      assert.equal(fleet.get(original?.imageId ?? '').tags[TAG.sourceImage], BASE_AMI);
      assert.equal(fleet.get(copy?.imageId ?? '').tags[TAG.sourceImage], original?.imageId);
      // Shared with the consumer account in both regions; published in both; previous values recorded.
      assert.deepEqual(fleet.get(original?.imageId ?? '').launchPermissions, [CONSUMER]);
      assert.deepEqual(fleet.get(copy?.imageId ?? '').launchPermissions, [CONSUMER]);
      assert.equal(fleet.parameter(HERE, PARAMETER), original?.imageId);
      assert.equal(fleet.parameter(THERE, PARAMETER), copy?.imageId);
      assert.equal(original?.parameter?.previousValue, previous);
      assert.equal(copy?.parameter?.previousValue, previousCopy);
      // The test instance was launched from the new image and terminated as a step (not as an undo).
      assert.deepEqual(
        log.inputs('launchInstance').map((i) => i.imageId),
        [original?.imageId],
      );
      assert.equal(log.count('terminateLaunchedInstance'), 1);
      assert.ok(log.names().indexOf('terminateLaunchedInstance') < log.names().indexOf('copyImage'));

      // Retention in each region: the new image newest and protected, the previous one kept (keep 2).
      const byImage = (a: RetentionAction) => [a.region, a.imageId, a.action];
      assert.deepEqual(
        r.retention.actions.map(byImage).sort(),
        [
          [COPY_REGION, copy?.imageId, 'protect'],
          [COPY_REGION, previousCopy, 'keep'],
          [REGION, original?.imageId, 'protect'],
          [REGION, previous, 'keep'],
        ].sort(),
      );
      assert.equal(r.retention.failures, 0);
      assert.equal(fleet.get(original?.imageId ?? '').protected, true);

      assert.equal(outcome.progress.phase, 'succeeded');
      assert.ok(
        Object.values(stepStates(outcome.progress)).every((s) => s === 'done'),
        JSON.stringify(stepStates(outcome.progress)),
      );
      const events = outcome.history.events?.length ?? 0;
      console.log(`golden run (stub activities): ${events} history events in the parent workflow`);
      assert.ok(events <= 150, `history has ${events} events`);
    },
  );
});

describe('goldenImage: the approval gate', () => {
  it(
    'GIVEN a run waiting for approval WHEN someone claims a listed approver without proof, proves another identity, or replays a proof made for another run or decision THEN each is refused; WHEN bob rejects with proof THEN the run fails ApprovalRejected, the image is deleted and nothing was distributed',
    RUN_TIMEOUT,
    async () => {
      const { outcome, before } = await awaitingApprovalOverPrevious(async (handle, log) => {
        const refused = (decision: ApprovalDecision, message: RegExp) =>
          assert.rejects(
            handle.executeUpdate(approveUpdate, { args: [decision] }),
            (err: unknown) =>
              err instanceof WorkflowUpdateFailedError &&
              err.cause instanceof ApplicationFailure &&
              err.cause.type === FailureType.ApproverNotVerified &&
              message.test(err.cause.message),
          );
        // A claimed name is only a claim.
        await refused({ by: BOB }, /needs proof of who takes it/);
        // A proven identity that is not an approver.
        await refused(
          { by: BOB, proof: proofFor(handle, 'approve', MALLORY) },
          /mallory .* is not one of this pipeline's approvers/,
        );
        // Bob's proof for rejecting, or for another run, does not approve this one.
        await refused({ proof: proofFor(handle, 'reject', BOB) }, /bound to 'reject .*', not to 'approve/);
        await refused(
          { proof: proofFor(handle, 'approve', BOB, 'another-run') },
          /bound to 'approve another-run/,
        );
        assert.equal(log.count('verifyApprover'), 3, 'no proof, no call to STS');
        await decide(handle, 'reject', BOB, 'nginx fails to start');
      });
      await saveHistory(outcome, 'golden-image-rejected');

      const failure = assertWorkflowFailure(failed(outcome), FailureType.ApprovalRejected);
      assert.match(failure.message, /user\/bob rejected .* nginx fails to start/);
      assertNothingDistributed(before);
      assert.deepEqual(compensationStates(outcome.progress), [['delete golden image', 'done']]);
    },
  );

  it(
    'GIVEN a run waiting for approval WHEN no one decides within the timeout THEN it fails ApprovalTimedOut and cleans up, in seconds of wall time',
    RUN_TIMEOUT,
    async () => {
      const started = Date.now();

      const { outcome, before } = await runOverPrevious(
        (fleet) => goldenActivities(fleet),
        goldenInput({ approval: { timeoutSeconds: 6 * 3600 } }),
      );
      await saveHistory(outcome, 'golden-image-approval-timed-out');

      assertWorkflowFailure(failed(outcome), FailureType.ApprovalTimedOut);
      assertNothingDistributed(before);
      assert.ok(Date.now() - started < 30_000, '6 hours of waiting took seconds');
    },
  );

  it(
    'GIVEN a pipeline without an approval gate WHEN it runs THEN the images are approved by their validation and the approve update is refused',
    RUN_TIMEOUT,
    async () => {
      const fleet = new Fleet();
      const outcome = await withGoldenWorker(goldenActivities(fleet), async (taskQueue) => {
        const handle = await startGolden(
          env,
          taskQueue,
          goldenInput({ approval: undefined, distribution: undefined }),
        );
        const result = await outcomeOf<GoldenImageResult>(handle);
        await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] }));
        return result;
      });
      await saveHistory(outcome, 'golden-image-no-approval-gate');
      assert.ok(outcome.ok);
      assert.equal(outcome.result.approval.by, AUTO_APPROVER);
      assert.equal(fleet.get(outcome.result.images[0]?.imageId ?? '').tags[TAG.approvedBy], AUTO_APPROVER);
      assert.equal(stepStates(outcome.progress)['await approval'], 'skipped');
    },
  );
});

describe('goldenImage: cancellation', () => {
  it(
    'GIVEN a run waiting for approval WHEN it is cancelled THEN it undoes itself (the image deleted) and ends cancelled, the previous version current',
    RUN_TIMEOUT,
    async () => {
      const { outcome, before } = await awaitingApprovalOverPrevious((handle) => handle.cancel());
      await saveHistory(outcome, 'golden-image-cancelled');

      assertWorkflowCancelled(failed(outcome));
      assert.equal(outcome.progress.phase, 'cancelled');
      assert.deepEqual(compensationStates(outcome.progress), [['delete golden image', 'done']]);
      assertNothingDistributed(before);
    },
  );
});

describe('goldenImage: failures clean up', () => {
  for (const scenario of [
    {
      name: 'the health check finds the failure marker',
      stub: { console: 'failure-marker' as const },
      activity: 'checkConsoleHealth' as const,
    },
    {
      name: 'the test instance fails its status checks',
      stub: { statusChecks: 'impaired' as const },
      activity: 'waitForInstanceReady' as const,
    },
  ])
    it(
      `GIVEN ${scenario.name} WHEN validating THEN the run fails, the test instance is terminated, the image deleted, nothing distributed and the previous image stays current`,
      RUN_TIMEOUT,
      async () => {
        const { outcome, before } = await runOverPrevious((fleet) => goldenActivities(fleet, scenario.stub));
        await saveHistory(outcome, `golden-image-validation-failed-${scenario.activity}`);

        assertActivityFailure(failed(outcome), {
          activityType: scenario.activity,
          local: false,
          type:
            scenario.activity === 'checkConsoleHealth'
              ? FailureType.ValidationFailed
              : FailureType.InstanceChecksFailed,
        });
        assertValidationUndone(outcome, before, TEST_INSTANCE);
        assert.equal(
          stepStates(outcome.progress)['await approval'],
          'pending',
          'no one was asked to approve',
        );
      },
    );

  it(
    'GIVEN RunInstances for the test instance is refused WHEN validating THEN the launch is a normal activity whose failure names it, the test instance is looked for by tag, the image deleted and nothing distributed',
    RUN_TIMEOUT,
    async () => {
      const { outcome, before } = await runOverPrevious((fleet) =>
        failing(goldenActivities(fleet), 'launchInstance', FailureType.AwsUnauthorized),
      );
      await saveHistory(outcome, 'golden-image-validation-failed-launchInstance');

      // A normal activity since 'golden-launch-test-instance-as-activity' (visible as pending in the Web UI).
      assertActivityFailure(failed(outcome), {
        activityType: 'launchInstance',
        local: false,
        type: FailureType.AwsUnauthorized,
      });
      // RunInstances never answered, so the undo looks for this run's instance by its tags.
      assertValidationUndone(outcome, before, undefined);
    },
  );

  it(
    'GIVEN an approved image copied, shared and published in the original region WHEN publishing in the copy region fails THEN the parameter is put back, shares withdrawn, copy and image deleted: the previous version is current everywhere',
    RUN_TIMEOUT,
    async () => {
      const { fleet, previous, previousCopy } = fleetWithPreviousVersion();
      const seeded = [...fleet.images.keys()];
      const base = goldenActivities(fleet);
      const activities: Activities = {
        ...base,
        publishImageParameter: async (input) => {
          if (input.target.region === COPY_REGION) {
            // the original region's parameter is written first, so there is something to undo
            await new Promise((r) => setTimeout(r, 50));
            return failing(
              base,
              'publishImageParameter',
              FailureType.AwsUnauthorized,
              'always',
            ).publishImageParameter(input);
          }
          return base.publishImageParameter(input);
        },
      };
      const log = new ActivityLog();

      const outcome = await runGolden(recorded(log, activities), goldenInput({ approval: undefined }));
      await saveHistory(outcome, 'golden-image-publish-failed');

      assertActivityFailure(failed(outcome), {
        activityType: 'publishImageParameter',
        local: false,
        type: FailureType.AwsUnauthorized,
      });
      assert.deepEqual(newImages(fleet, ...seeded), [], 'original and copy deleted');
      assert.equal(fleet.parameter(HERE, PARAMETER), previous);
      assert.equal(fleet.parameter(THERE, PARAMETER), previousCopy);
      assert.equal(log.count('removeLaunchPermissions'), 2, 'both shares withdrawn');
      assert.deepEqual(
        fleet.approvedOf(HERE, 'web').map((i) => i.imageId),
        [previous],
      );
      const undone = outcome.progress.compensations.map((c) => c.name);
      assert.ok(
        undone.includes('delete copies') && undone.includes('delete golden image'),
        undone.join(', '),
      );
      assert.ok(outcome.progress.compensations.every((c) => c.state === 'done'));
    },
  );
});

describe('goldenImage: retention', () => {
  for (const retireShared of [false, true]) {
    it(
      `GIVEN an old version shared with a consumer account WHEN retired ${retireShared ? 'with' : 'without'} retention.retireShared THEN it is ${retireShared ? 'deregistered' : 'kept, naming the account'}`,
      RUN_TIMEOUT,
      async () => {
        const fleet = new Fleet();
        const old = fleet.seedVersion(HERE, 'web', '2026.01.01-030000', '2026-01-01T03:00:00.000Z', {
          launchPermissions: [CONSUMER],
        }).imageId;

        const outcome = await runGolden(
          goldenActivities(fleet),
          imageOnlyInput({
            retention: { keep: 1, deregisterAfterSeconds: 0, ...(retireShared ? { retireShared } : {}) },
          }),
        );

        assert.ok(outcome.ok, outcome.ok ? '' : String(outcome.error));
        const action = outcome.result.retention.actions.find((a) => a.imageId === old);
        if (retireShared) {
          assert.deepEqual([action?.action, action?.outcome], ['deregister', 'done']);
          assert.ok(!fleet.images.has(old));
        } else {
          assert.deepEqual([action?.action, action?.outcome], ['keep', 'skipped']);
          assert.deepEqual(action?.sharedWith, [CONSUMER]);
          assert.ok(fleet.images.has(old));
        }
      },
    );
  }

  it(
    'GIVEN five older approved versions (one referenced, two deprecated long ago, one recently) WHEN a new version is committed with keep 2 THEN exactly the right images are protected, kept, deprecated and deregistered',
    RUN_TIMEOUT,
    async () => {
      const fleet = new Fleet();
      // The workflow's clock: earlier tests in this file skipped hours ahead of the wall clock.
      const now = await env.currentTimeMs();
      const ago = (days: number) => new Date(now - days * DAY).toISOString();
      const v = (n: number, extra: Parameters<Fleet['seedVersion']>[4] = {}) =>
        fleet.seedVersion(HERE, 'web', `2026.0${n}.01-030000`, `2026-0${n}-01T03:00:00.000Z`, extra).imageId;
      const v1 = v(1, { deprecationTime: ago(1) });
      const v2 = v(2, { deprecationTime: ago(40) });
      const v3 = v(3, { deprecationTime: ago(40) });
      const v4 = v(4);
      const v5 = v(5, { protected: true });
      fleet.references.set(v2, ['arn:aws:ec2:eu-west-1:111122223333:launch-template/lt-0123456789abcdef0']);
      // Not for retention to touch: an unapproved leftover of the pipeline, another pipeline's image.
      const leftover = fleet.add(HERE, { name: 'web-leftover', tags: { [TAG.pipeline]: 'web' } }).imageId;
      const other = fleet.seedVersion(HERE, 'api', '2026.01.01-030000', '2026-01-01T03:00:00.000Z').imageId;

      const outcome = await runGolden(
        goldenActivities(fleet),
        imageOnlyInput({
          distribution: { copies: [{ region: COPY_REGION }] },
          retention: { keep: 2, deprecateAfterSeconds: 0, deregisterAfterSeconds: 30 * 24 * 3600 },
        }),
      );
      await saveHistory(outcome, 'golden-image-retention');

      assert.ok(outcome.ok, outcome.ok ? '' : String(outcome.error));
      const r = outcome.result;
      const newest = r.images[0]?.imageId ?? '';
      const newestCopy = r.images[1]?.imageId ?? '';
      const decided = (region: string) =>
        r.retention.actions.filter((a) => a.region === region).map((a) => [a.imageId, a.action, a.outcome]);
      assert.deepEqual(decided(REGION), [
        [newest, 'protect', 'done'], // the newest approved: never retired, protected
        [v5, 'keep', 'skipped'], // 2nd newest of keep 2
        [v4, 'deprecate', 'done'], // beyond keep: deprecated now, deregistered in 30 days
        [v3, 'deregister', 'done'], // deprecated 40 days ago, unreferenced
        [v2, 'keep', 'skipped'], // deprecated 40 days ago, but a launch template still uses it
        [v1, 'keep', 'skipped'], // deprecated a day ago: not due yet
      ]);
      // In the copy region the new copy is the only approved image: the last approved is kept (and protected).
      assert.deepEqual(decided(COPY_REGION), [[newestCopy, 'protect', 'done']]);
      const v2Action = r.retention.actions.find((a) => a.imageId === v2);
      assert.deepEqual(v2Action?.references, [
        'arn:aws:ec2:eu-west-1:111122223333:launch-template/lt-0123456789abcdef0',
      ]);
      assert.ok(!fleet.images.has(v3), 'v3 deregistered');
      assert.deepEqual(r.retention.actions.find((a) => a.imageId === v3)?.deletedSnapshotIds?.length, 1);
      assert.ok(fleet.get(v4).deprecationTime, 'v4 deprecated');
      for (const kept of [v1, v2, v4, v5, leftover, other])
        assert.ok(fleet.images.has(kept), `${kept} still exists`);
      assert.equal(fleet.get(leftover).deprecationTime, undefined);
    },
  );
});

describe('goldenImage: versions and repeats', () => {
  it(
    'GIVEN a run for a scheduled time completed WHEN the same time is triggered again THEN the second run reuses the approved image and makes none; a duplicate start of a running id is refused',
    RUN_TIMEOUT,
    async () => {
      const fleet = new Fleet();
      const log = new ActivityLog();
      const input = goldenInput({ distribution: undefined, publish: undefined, validation: undefined });

      const [first, second] = await withGoldenWorker(
        recorded(log, goldenActivities(fleet)),
        async (taskQueue) => {
          const workflowId = uniqueWorkflowId('golden/web');
          const handle = await awaitingApproval(env, taskQueue, input, workflowId);
          // Triggered again while it runs: the same workflow id is refused by Temporal.
          await assert.rejects(
            startGolden(env, taskQueue, input, workflowId),
            WorkflowExecutionAlreadyStartedError,
          );
          await decide(handle, 'approve', ALICE_SESSION);
          const a = await outcomeOf<GoldenImageResult>(handle);
          // Triggered again once it is done (a backfill over the same time, a re-run): nothing new is made.
          const b = await outcomeOf<GoldenImageResult>(await startGolden(env, taskQueue, input, workflowId));
          return [a, b];
        },
      );

      assert.ok(first.ok && second.ok);
      assert.equal(second.result.reused, true);
      assert.equal(second.result.images[0]?.imageId, first.result.images[0]?.imageId);
      assert.equal(second.result.version, first.result.version);
      assert.equal(second.result.approval.by, APPROVERS_ROLE);
      assert.equal(log.count('createImage'), 1, 'one image for one scheduled time');
      assert.equal(fleet.approvedOf(HERE, 'web').length, 1);
      assert.equal(stepStates(second.progress)['image builder'], 'skipped');
    },
  );

  it('GIVEN version helpers THEN dates are UTC and sortable, and semver counts from 0', () => {
    assert.equal(dateVersion(Date.parse('2026-03-04T05:06:07Z')), '2026.03.04-050607');
    assert.equal(nextSemver('2.0', []), '2.0.0');
    assert.equal(nextSemver('2.0', ['2.0.9', '2.0.10', '2.1.40', undefined, '2.0.x']), '2.0.11');
  });

  it(
    'GIVEN semver versioning in series 1.4 with 1.4.0 and 1.4.1 approved WHEN a run completes THEN it is 1.4.2',
    RUN_TIMEOUT,
    async () => {
      const fleet = fleetWithVersions(
        ['1.4.0', '2026-01-01T03:00:00.000Z'],
        ['1.4.1', '2026-02-01T03:00:00.000Z'],
        ['1.3.9', '2025-12-01T03:00:00.000Z'],
      );

      const outcome = await runGolden(
        goldenActivities(fleet),
        imageOnlyInput({
          versioning: { scheme: 'semver', series: '1.4' },
        }),
      );
      await saveHistory(outcome, 'golden-image-semver');

      assert.ok(outcome.ok, outcome.ok ? '' : String(outcome.error));
      assert.equal(outcome.result.version, '1.4.2');
      assert.equal(outcome.result.imageName, 'web-1.4.2');
    },
  );

  it(
    'GIVEN a bad input WHEN started THEN it fails InvalidInput naming every field, with no activity run',
    RUN_TIMEOUT,
    async () => {
      const { outcome, log } = await runLogged(env, GOLDEN, goldenActivities(new Fleet()), {
        ...goldenInput(),
        pipeline: 'Web Pipeline',
        mode: 'no-reboot',
        retention: { keep: 0 },
        distribution: { copies: [{ region: REGION }] },
      });
      await saveHistory(outcome, 'golden-image-bad-input');
      const failure = assertWorkflowFailure(failed(outcome), FailureType.InvalidInput);
      for (const field of ['pipeline', 'mode', 'retention.keep', 'distribution.copies[0]'])
        assert.ok(failure.message.includes(`${field}:`), `${field} not named in: ${failure.message}`);
      assert.deepEqual(log.names(), []);
    },
  );
});

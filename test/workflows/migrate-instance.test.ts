/**
 * migrateInstance on the time-skipping server with stub activities (the imageFromInstance child
 * runs on the same worker with its own stubs): the happy paths, a failure injected at every step
 * with the exact compensations in order, cancellation after the launch, a cancellation that arrives
 * once the migration is committed, and resume on a new worker without a second new instance.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Activities } from '../../activities';
import { OWNER_TAG_COUNT } from '../../activities/launch';
import type { FailureType } from '../../workflows/contracts';
import { saveHistory } from '../support/histories';
import { timeSkippingEnv } from '../support/temporal';
import type { ActivityName, ExpectedCall } from './stub-activities';
import {
  ActivityLog,
  collapseReadOnlyRepeats,
  IMAGE_ID,
  SNAPSHOT_IDS,
  assertCalls,
  blockingUntilCancelled,
  deferred,
  failing,
  recorded,
  scheduledActivities,
  stepStates,
  IMAGE_AS_IS,
  STOP_AND_IMAGE,
} from './stub-activities';
import {
  ALLOCATION_ID,
  NEW_ID,
  SOURCE_ID,
  SUBNET_B,
  cancelledMigration,
  failureChain,
  migrated,
  migrateInput,
  migrationActivities,
  migrationFailed,
  migrationOutcome,
  runLoggedMigration,
  startMigration,
  withMigrationWorker,
} from './migrate-stub-activities';
import { assertWorkflowCancelled, workflowEnv } from './harness';
import { handedOverLogged } from './run-helpers';

const env = workflowEnv(timeSkippingEnv);

/** The child imageFromInstance on a source the migration stopped first: no stop, no start. */
const CHILD_ON_STOPPED: ExpectedCall[] = [...IMAGE_AS_IS, 'tagSnapshots'];
/** The plan read and the image name checked: what every migration does first. */
const PLANNED: ExpectedCall[] = ['planMigration', 'checkImageName'];
const BEFORE_CHILD: ExpectedCall[] = [...PLANNED, 'stopInstance'];
const UP_TO_LAUNCH: ExpectedCall[] = [...BEFORE_CHILD, ...CHILD_ON_STOPPED, 'launchInstance'];
/** The new instance launched and waited for until its checks pass. */
const LAUNCHED_AND_CHECKED: ExpectedCall[] = ['launchInstance', 'waitForInstanceReady'];
/** Launched, checked, and the source's volume tags copied: what a committed migration has done. */
const READY_AND_TAGGED: ExpectedCall[] = [...UP_TO_LAUNCH, 'waitForInstanceReady', 'copyVolumeTags'];

const RESTART = 'start source again';
const DELETE = 'delete intermediate image';
const TERMINATE = 'terminate new instance';
const EIP_BACK = 'move Elastic IP back';
/** Undoing a migration that launched its new instance: terminate it, delete the image, start the source. */
const UNDO_ALL: ExpectedCall[] = ['terminateLaunchedInstance', 'deleteImage', 'startInstance'];
const ALL_UNDONE = [TERMINATE, DELETE, RESTART];

describe('migrateInstance happy paths', () => {
  it('GIVEN a running source with an Elastic IP and tagged volumes WHEN migrated with terminate and move THEN it is stopped, imaged, the new instance launched and checked, the EIP moved, the source terminated and the image deleted, in that order', async () => {
    const { outcome, log } = await runLoggedMigration(env, migrationActivities(), migrateInput());
    await saveHistory(outcome, 'migrate-instance-terminate-source');

    const result = migrated(outcome);
    assertCalls(log, [...READY_AND_TAGGED, 'moveElasticIp', 'terminateSourceInstance', 'deleteImage']);
    // The source is stopped before the image, and terminated only after the new one passed its checks.
    assert.deepEqual(
      log.inputs('stopInstance').map((i) => i.instanceId),
      [SOURCE_ID],
    );
    assert.deepEqual(
      log.inputs('terminateSourceInstance').map((i) => i.instanceId),
      [SOURCE_ID],
    );
    assert.equal(log.count('startInstance'), 0, 'the source is never started again');
    assert.equal(log.count('terminateLaunchedInstance'), 0);
    // The launch: the plan's spec, from the child's image, owned by this run.
    const [launch] = log.inputs('launchInstance');
    assert.equal(launch?.imageId, IMAGE_ID);
    assert.equal(launch?.spec.subnetId, SUBNET_B);
    assert.equal(launch?.ownerTags['amiflow:workflow-type'], 'migrateInstance');
    assert.equal(launch?.ownerTags['amiflow:source-instance'], SOURCE_ID);
    assert.equal(launch?.ownerTags['amiflow:workflow-id'], launch?.owner.workflowId);
    // planMigration refuses a source whose tags would not leave room for exactly these.
    assert.equal(Object.keys(launch?.ownerTags ?? {}).length, OWNER_TAG_COUNT);
    assert.deepEqual(log.inputs('moveElasticIp'), [
      { target: { region: 'eu-west-1' }, allocationId: ALLOCATION_ID, instanceId: NEW_ID },
    ]);
    // The image is the child's, in stop mode, deleted by its owner (the child run) and id.
    const [childImage] = log.inputs('createImage');
    assert.ok(childImage?.workflowId.endsWith('/image'), childImage?.workflowId);
    assert.match(
      childImage?.imageName ?? '',
      /^amiflow-migrate-i-0123456789abcdef0-to-eu-west-1b-[0-9a-f]{8}$/,
    );
    assert.deepEqual(log.inputs('deleteImage'), [
      {
        target: { region: 'eu-west-1' },
        imageName: childImage?.imageName,
        workflowId: childImage?.workflowId,
        runId: childImage?.runId,
        imageId: IMAGE_ID,
      },
    ]);

    assert.equal(result.newInstanceId, NEW_ID);
    assert.equal(result.sourceAvailabilityZone, 'eu-west-1a');
    assert.equal(result.targetAvailabilityZone, 'eu-west-1b');
    assert.equal(result.sourceInitialState, 'running');
    assert.equal(result.sourceFinalState, 'terminated');
    assert.equal(result.newInstanceState, 'running');
    assert.deepEqual(result.elasticIp, {
      allocationId: ALLOCATION_ID,
      publicIp: '203.0.113.10',
      movedToNewInstance: true,
    });
    assert.deepEqual(result.image, {
      imageId: IMAGE_ID,
      snapshotIds: SNAPSHOT_IDS,
      kept: false,
      deleted: true,
    });
    assert.ok(result.downtimeSeconds >= 0);
    assert.deepEqual(result.notCarriedOver, ['private IP 10.0.1.17 (the new subnet has other addresses)']);
    assert.equal(outcome.progress.phase, 'succeeded');
    assert.deepEqual(outcome.progress.compensations, []);
    const steps = stepStates(outcome.progress);
    assert.equal(steps['stop new instance'], 'skipped', 'the source was running');
    delete steps['stop new instance'];
    assert.ok(
      Object.values(steps).every((s) => s === 'done'),
      JSON.stringify(steps),
    );
    assert.equal(outcome.progress.resources.newInstanceId, NEW_ID);
    // Waits and the launch (minutes of retries) are activities, short calls local activities: the
    // child is one child workflow.
    assert.deepEqual(scheduledActivities(outcome.history), [
      'stopInstance',
      'launchInstance',
      'waitForInstanceReady',
      'terminateSourceInstance',
      'deleteImage',
    ]);
    const events = outcome.history.events?.length ?? 0;
    assert.ok(events <= 60, `history has ${events} events`);
  });

  it("GIVEN a running source and source action 'keep' WHEN migrated THEN the child stops and starts it, the source is left running and the image deleted", async () => {
    const { outcome, log } = await runLoggedMigration(
      env,
      migrationActivities({ elasticIp: false, volumeTags: false }),
      migrateInput({ sourceAction: 'keep', elasticIp: undefined }),
    );
    await saveHistory(outcome, 'migrate-instance-keep-source');

    const result = migrated(outcome);
    assertCalls(log, [...PLANNED, ...STOP_AND_IMAGE, 'tagSnapshots', ...LAUNCHED_AND_CHECKED, 'deleteImage']);
    assert.equal(result.sourceFinalState, 'running');
    assert.equal(result.downtimeSeconds, 75, "the child's stop → start");
    const steps = stepStates(outcome.progress);
    assert.equal(steps['stop source'], 'skipped');
    assert.equal(steps['handle source'], 'skipped');
    assert.equal(steps['move Elastic IP'], 'skipped');
    assert.equal(steps['copy volume tags'], 'skipped');
  });

  it("GIVEN a stopped source, source action 'stop' and keepImage WHEN migrated THEN nothing is started, the new instance is stopped after its checks and the image is kept", async () => {
    const { outcome, log } = await runLoggedMigration(
      env,
      migrationActivities({ sourceState: 'stopped' }),
      migrateInput({ sourceAction: 'stop', keepImage: true, elasticIp: 'leave' }),
    );
    await saveHistory(outcome, 'migrate-instance-stopped-source');

    const result = migrated(outcome);
    assertCalls(log, [
      ...PLANNED,
      ...CHILD_ON_STOPPED,
      ...LAUNCHED_AND_CHECKED,
      'copyVolumeTags',
      'stopInstance',
    ]);
    assert.deepEqual(
      log.inputs('stopInstance').map((i) => i.instanceId),
      [NEW_ID],
    );
    assert.equal(result.sourceFinalState, 'stopped');
    assert.equal(result.newInstanceState, 'stopped');
    assert.equal(result.downtimeSeconds, 0);
    assert.deepEqual(result.image, {
      imageId: IMAGE_ID,
      snapshotIds: SNAPSHOT_IDS,
      kept: true,
      deleted: false,
    });
    assert.equal(result.elasticIp?.movedToNewInstance, false);
  });
});

interface FailureCase {
  fail: ActivityName;
  type: FailureType;
  scenario?: Parameters<typeof migrationActivities>[0];
  input?: Parameters<typeof migrateInput>[0];
  calls: ExpectedCall[];
  /** Compensations that ran, in order (all succeed here). */
  undone: string[];
  /** The failure chain the client sees. */
  chain: string[];
}

const local = (_name: ActivityName, type: string) => ['WorkflowFailedError', `ApplicationFailure(${type})`];
const remote = (name: ActivityName, type: string) => [
  'WorkflowFailedError',
  `ActivityFailure(${name})`,
  `ApplicationFailure(${type})`,
];

const FAILURES: FailureCase[] = [
  {
    fail: 'planMigration',
    type: 'ElasticIpUnhandled',
    calls: ['planMigration'],
    undone: [],
    chain: local('planMigration', 'ElasticIpUnhandled'),
  },
  {
    fail: 'checkImageName',
    type: 'ImageNameTaken',
    calls: ['planMigration', 'checkImageName'],
    undone: [],
    chain: local('checkImageName', 'ImageNameTaken'),
  },
  {
    fail: 'stopInstance',
    type: 'AwsUnauthorized',
    calls: [...BEFORE_CHILD, 'startInstance'],
    undone: [RESTART],
    chain: remote('stopInstance', 'AwsUnauthorized'),
  },
  {
    // The child undoes its own image; the migration starts the source it stopped.
    fail: 'createImage',
    type: 'AwsLimitExceeded',
    calls: [
      ...BEFORE_CHILD,
      'describeInstance',
      'checkImageName',
      'createImage',
      'deleteImage',
      'startInstance',
    ],
    undone: [RESTART],
    // createImage is a normal activity in the child since 'create-image-as-activity'.
    chain: [
      'WorkflowFailedError',
      'ChildWorkflowFailure',
      'ActivityFailure(createImage)',
      'ApplicationFailure(AwsLimitExceeded)',
    ],
  },
  {
    fail: 'waitForImageAvailable',
    type: 'ImageFailed',
    calls: [...BEFORE_CHILD, ...IMAGE_AS_IS, 'deleteImage', 'startInstance'],
    undone: [RESTART],
    chain: [
      'WorkflowFailedError',
      'ChildWorkflowFailure',
      'ActivityFailure(waitForImageAvailable)',
      'ApplicationFailure(ImageFailed)',
    ],
  },
  {
    // RunInstances never answered: the undo looks the instance up by this run's tags.
    fail: 'launchInstance',
    type: 'AwsLimitExceeded',
    calls: [...UP_TO_LAUNCH, ...UNDO_ALL],
    undone: ALL_UNDONE,
    // A normal activity since 'launch-instance-as-activity' (RunInstances may need minutes of retries).
    chain: remote('launchInstance', 'AwsLimitExceeded'),
  },
  {
    fail: 'waitForInstanceReady',
    type: 'InstanceChecksFailed',
    calls: [...UP_TO_LAUNCH, 'waitForInstanceReady', ...UNDO_ALL],
    undone: ALL_UNDONE,
    chain: remote('waitForInstanceReady', 'InstanceChecksFailed'),
  },
  {
    fail: 'copyVolumeTags',
    type: 'AwsPolicyRefused',
    calls: [...READY_AND_TAGGED, ...UNDO_ALL],
    undone: ALL_UNDONE,
    chain: local('copyVolumeTags', 'AwsPolicyRefused'),
  },
  {
    fail: 'moveElasticIp',
    type: 'AwsUnauthorized',
    calls: [...READY_AND_TAGGED, 'moveElasticIp', 'moveElasticIp', ...UNDO_ALL],
    undone: [EIP_BACK, TERMINATE, DELETE, RESTART],
    chain: local('moveElasticIp', 'AwsUnauthorized'),
  },
  {
    // A stopped source: the new instance is stopped too, and that step failed. The source was never started.
    fail: 'stopInstance',
    type: 'WaitTimedOut',
    scenario: { sourceState: 'stopped' },
    input: { sourceAction: 'stop' },
    calls: [
      ...PLANNED,
      ...CHILD_ON_STOPPED,
      'launchInstance',
      'waitForInstanceReady',
      'copyVolumeTags',
      'moveElasticIp',
      'stopInstance',
      'moveElasticIp',
      'terminateLaunchedInstance',
      'deleteImage',
    ],
    undone: [EIP_BACK, TERMINATE, DELETE],
    chain: remote('stopInstance', 'WaitTimedOut'),
  },
  {
    // Committed: the new instance passed its checks. Nothing is undone; the image stays for the retry.
    fail: 'terminateSourceInstance',
    type: 'AwsPolicyRefused',
    calls: [...READY_AND_TAGGED, 'moveElasticIp', 'terminateSourceInstance'],
    undone: [],
    chain: remote('terminateSourceInstance', 'AwsPolicyRefused'),
  },
];

describe('migrateInstance failing at each step', () => {
  for (const c of FAILURES) {
    const label = c.scenario?.sourceState === 'stopped' ? ' (stopped source: stopping the new instance)' : '';
    it(`GIVEN ${c.fail}${label} fails with ${c.type} WHEN the run reaches it THEN it undoes exactly [${c.undone.join(', ')}] and fails with ${c.type}`, async () => {
      const activities = failing(migrationActivities(c.scenario), c.fail, c.type);

      const { outcome, log } = await runLoggedMigration(env, activities, migrateInput(c.input));
      await saveHistory(outcome, `migrate-instance-failed-${c.fail}${label ? '-stopped-source' : ''}`);

      const error = migrationFailed(outcome);
      assert.deepEqual(failureChain(error), c.chain);
      assertCalls(log, c.calls);
      assert.equal(outcome.progress.phase, 'failed');
      assert.deepEqual(
        outcome.progress.compensations,
        c.undone.map((name) => ({ name, state: 'done' })),
      );
      // The source is never terminated unless the new instance passed its checks; the new instance
      // is terminated exactly when the run is not committed.
      const committed = log.count('terminateSourceInstance') > 0;
      assert.equal(log.count('terminateLaunchedInstance'), c.undone.includes(TERMINATE) ? 1 : 0);
      if (!committed) assert.equal(log.count('terminateSourceInstance'), 0);
      const terminate = log.inputs('terminateLaunchedInstance')[0];
      if (terminate) {
        // By id once RunInstances answered, by this run's tags otherwise.
        assert.equal(terminate.instanceId, c.fail === 'launchInstance' ? undefined : NEW_ID);
        assert.equal(terminate.owner.workflowId, log.inputs('launchInstance')[0]?.owner.workflowId);
      }
      if (c.undone.includes(EIP_BACK))
        assert.deepEqual(log.inputs('moveElasticIp').at(-1), {
          target: { region: 'eu-west-1' },
          allocationId: ALLOCATION_ID,
          instanceId: SOURCE_ID,
        });
      if (c.undone.includes(RESTART)) assert.equal(log.inputs('startInstance').at(-1)?.instanceId, SOURCE_ID);
    });
  }

  it('GIVEN the final image deletion fails WHEN the instance has moved THEN the migration succeeds and reports the image it left', async () => {
    const activities = failing(migrationActivities(), 'deleteImage', 'AwsUnauthorized');

    const { outcome, log } = await runLoggedMigration(env, activities, migrateInput());
    await saveHistory(outcome, 'migrate-instance-image-delete-failed');

    const result = migrated(outcome);
    assert.equal(result.sourceFinalState, 'terminated');
    assert.equal(result.image.deleted, false);
    assert.match(result.image.error ?? '', /injected AwsUnauthorized in deleteImage/);
    assert.equal(stepStates(outcome.progress)['delete intermediate image'], 'failed');
    assert.deepEqual(outcome.progress.compensations, []);
    assert.equal(log.count('terminateLaunchedInstance'), 0);
  });

  it('GIVEN a bad input WHEN started THEN it fails with InvalidInput naming the fields and no activity runs', async () => {
    const { outcome, log } = await runLoggedMigration(
      env,
      migrationActivities(),
      migrateInput({ targetAvailabilityZone: 'us-east-1b', sourceAction: 'delete' as never }),
    );
    await saveHistory(outcome, 'migrate-instance-bad-input');

    assert.deepEqual(failureChain(migrationFailed(outcome)), [
      'WorkflowFailedError',
      'ApplicationFailure(InvalidInput)',
    ]);
    assert.match(outcome.progress.error ?? '', /targetAvailabilityZone: .*sourceAction: /);
    assert.deepEqual(log.names(), []);
  });
});

const assertCancelled = assertWorkflowCancelled;

describe('migrateInstance cancelled', () => {
  it('GIVEN the new instance was launched and is being checked WHEN the run is cancelled THEN the new instance is terminated, the image deleted, the source started again, and the run ends cancelled', async () => {
    const log = new ActivityLog();
    const wait = blockingUntilCancelled();
    const activities: Activities = { ...migrationActivities(), waitForInstanceReady: wait.fn };

    const outcome = await cancelledMigration(env, recorded(log, activities), wait, { afterLaunch: true });
    await saveHistory(outcome, 'migrate-instance-cancelled-during-checks');

    assertCancelled(migrationFailed(outcome));
    assertCalls(log, [...UP_TO_LAUNCH, 'waitForInstanceReady', ...UNDO_ALL]);
    assert.equal(log.inputs('terminateLaunchedInstance')[0]?.instanceId, NEW_ID);
    assert.equal(log.count('terminateSourceInstance'), 0);
    assert.equal(outcome.progress.phase, 'cancelled');
    assert.deepEqual(
      outcome.progress.compensations,
      [TERMINATE, DELETE, RESTART].map((name) => ({ name, state: 'done' })),
    );
    const steps = stepStates(outcome.progress);
    assert.equal(steps['launch instance'], 'compensated');
    assert.equal(steps['image source'], 'compensated');
    assert.equal(steps['stop source'], 'compensated');
  });

  it('GIVEN the child is waiting for the image WHEN the migration is cancelled THEN the child deletes its image and the migration starts the source again', async () => {
    const log = new ActivityLog();
    const wait = blockingUntilCancelled();
    const activities: Activities = { ...migrationActivities(), waitForImageAvailable: wait.fn };

    const outcome = await cancelledMigration(env, recorded(log, activities), wait);
    await saveHistory(outcome, 'migrate-instance-cancelled-during-image');

    assertCancelled(migrationFailed(outcome));
    assertCalls(log, [...BEFORE_CHILD, ...IMAGE_AS_IS, 'deleteImage', 'startInstance']);
    assert.equal(log.count('launchInstance'), 0);
    assert.deepEqual(outcome.progress.compensations, [{ name: RESTART, state: 'done' }]);
  });

  it('GIVEN the new instance passed its checks WHEN a cancellation arrives while the source is terminated THEN the committed migration runs to its end and nothing is undone', async () => {
    const log = new ActivityLog();
    const terminating = deferred();
    const cancelSent = deferred();
    const base = migrationActivities();
    const activities: Activities = {
      ...base,
      terminateSourceInstance: async (input) => {
        terminating.resolve();
        await cancelSent.promise;
        return base.terminateSourceInstance(input);
      },
    };

    const outcome = await withMigrationWorker(env, recorded(log, activities), async (taskQueue) => {
      const handle = await startMigration(env, taskQueue, migrateInput());
      await terminating.promise;
      await handle.cancel();
      cancelSent.resolve();
      return migrationOutcome(handle);
    });
    await saveHistory(outcome, 'migrate-instance-cancel-after-commit');

    const result = migrated(outcome);
    assert.equal(result.sourceFinalState, 'terminated');
    assert.equal(result.image.deleted, true);
    assert.deepEqual(outcome.progress.compensations, []);
    assert.equal(log.count('terminateLaunchedInstance'), 0);
    assert.ok(
      (outcome.history.events ?? []).some((e) => e.workflowExecutionCancelRequestedEventAttributes),
      'the cancellation did reach the run',
    );
  });
});

describe('migrateInstance resumed on another worker', () => {
  it('GIVEN a run waiting for the new instance checks WHEN its worker shuts down and another takes over THEN the run completes there with the same new instance, and no finished step runs again', async () => {
    // GIVEN: the first worker imaged the source and launched the new instance, and waits for its checks.
    // WHEN: it shuts down and a second worker takes over.
    const { outcome, first, second } = await handedOverLogged(env, {
      queuePrefix: 'migrate-resume',
      activities: migrationActivities(),
      blocked: 'waitForInstanceReady',
      start: (tq) => startMigration(env, tq, migrateInput()),
      second: migrationActivities({ sourceState: 'stopped' }),
      then: migrationOutcome,
    });
    await saveHistory(outcome, 'migrate-instance-resumed-on-another-worker');

    // THEN
    const result = migrated(outcome);
    assert.equal(result.newInstanceId, NEW_ID);
    // The first worker keeps no workflow cache (see `handedOver`): a workflow task of the child can be
    // lost there and redelivered, and its local activities (describe, check name; tag snapshots) run
    // again (local activities are at least once); collapse such repeats (collapseReadOnlyRepeats).
    // Whatever changes AWS through a normal activity must still run exactly once: checked below.
    assertCalls(collapseReadOnlyRepeats(first), [...UP_TO_LAUNCH, 'waitForInstanceReady']);
    assertCalls(second, [
      'waitForInstanceReady',
      'copyVolumeTags',
      'moveElasticIp',
      'terminateSourceInstance',
      'deleteImage',
    ]);
    const total = (name: ActivityName) => first.count(name) + second.count(name);
    assert.equal(total('launchInstance'), 1, 'one new instance, launched once');
    for (const once of ['stopInstance', 'createImage', 'waitForImageAvailable'] as const)
      assert.equal(total(once), 1, `${once} ran ${total(once)} times`);
    assert.equal(total('terminateLaunchedInstance'), 0);
    // The retried wait keeps the deadline the workflow computed once.
    assert.equal(
      second.inputs('waitForInstanceReady')[0]?.deadline,
      first.inputs('waitForInstanceReady')[0]?.deadline,
    );
  });
});

/**
 * enforceAllowedAmis on the time-skipping server, driven through the client library
 * (client/enforcement.ts), with the REAL activities against Allowed AMIs settings in memory
 * (test/support/fake-fleet.ts): audit, then enabled, then off restoring exactly what each account
 * and region had before; enabled refused before audit; an organization-managed region reported while
 * the others proceed; settings changed by someone else left alone on off; no owner to allow.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityDeps } from '../../activities';
import { createActivities } from '../../activities';
import { DEFAULT_POLL_POLICY } from '../../activities/waiting';
import { enforcementState, enforcementWorkflowId, setAllowedAmisMode } from '../../client/enforcement';
import type { AllowedAmisState, EnforceAllowedAmisInput } from '../../workflows/contracts';
import { APPROVED_VALUE, FailureType, TAG } from '../../workflows/contracts';
import { VirtualClock } from '../activities/harness';
import { FakeFleet } from '../support/fake-fleet';
import { recordHistory, recordingHistories } from '../support/histories';
import { timeSkippingEnv, uniqueTaskQueue } from '../support/temporal';
import { startWorker, withinBound } from './stub-activities';
import { workflowEnv } from './harness';

const env = workflowEnv(timeSkippingEnv);

const TOOLING = '111100001111';
const ACCOUNT = '222200002222';
const REGIONS = ['eu-west-1', 'us-east-1'] as const;
const THEIRS = [{ ImageProviders: ['aws-marketplace'] }];
const OURS = [{ ImageProviders: [TOOLING, 'amazon'] }];
const MUTATIONS = [
  'EnableAllowedImagesSettingsCommand',
  'DisableAllowedImagesSettingsCommand',
  'ReplaceImageCriteriaInAllowedImagesSettingsCommand',
];

let names = 0;
function input(overrides: Partial<EnforceAllowedAmisInput> = {}): EnforceAllowedAmisInput {
  names += 1;
  return {
    name: `prod-${process.pid}-${names}`,
    accounts: [ACCOUNT],
    regions: [...REGIONS],
    catalogueAccounts: [TOOLING],
    allowList: [{ owner: 'amazon', reason: 'EKS-optimized images' }],
    ...overrides,
  };
}

/** Approved images in TOOLING in both regions; eu-west-1 disabled, us-east-1 in audit mode with other criteria. */
function fleet(): FakeFleet {
  const f = new FakeFleet();
  for (const [r, region] of REGIONS.entries())
    f.addImage({
      imageId: `ami-0a00000000000000${r}`,
      region,
      ownerId: TOOLING,
      sharedWith: [ACCOUNT],
      tags: { [TAG.approved]: APPROVED_VALUE, [TAG.pipeline]: 'web' },
    });
  f.setAllowedSettings(ACCOUNT, 'eu-west-1', { state: 'disabled', criteria: [], managedBy: 'account' });
  f.setAllowedSettings(ACCOUNT, 'us-east-1', { state: 'audit-mode', criteria: THEIRS, managedBy: 'account' });
  return f;
}

/**
 * `scenario` on a fresh worker over `f` (a fresh fleet unless given), for the default enforcement
 * scope.
 */
function onFleet(
  scenario: (taskQueue: string, scope: EnforceAllowedAmisInput, f: FakeFleet) => Promise<void>,
  f: FakeFleet = fleet(),
): Promise<void> {
  const scope = input();
  return withEnforceWorker(f, (tq) => scenario(tq, scope, f));
}

async function withEnforceWorker<T>(f: FakeFleet, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const deps: ActivityDeps = {
    aws: f.clients(),
    clock: new VirtualClock(),
    random: () => 0.5,
    policy: DEFAULT_POLL_POLICY,
  };
  const taskQueue = uniqueTaskQueue('enforce');
  const worker = await startWorker(env, taskQueue, createActivities(deps));
  return worker.runUntil(withinBound(fn(taskQueue), `the enforcement on ${taskQueue}`));
}

/** When recording (test/replay), waits for the scope's run to end and saves its history. */
async function recordEnded(scopeName: string, name: string): Promise<void> {
  if (!recordingHistories()) return;
  const handle = env.client.workflow.getHandle(enforcementWorkflowId(scopeName));
  await handle.result();
  await recordHistory(handle, name);
}

function mutations(f: FakeFleet): number {
  return REGIONS.reduce((n, r) => n + MUTATIONS.reduce((m, c) => m + f.count(ACCOUNT, r, c), 0), 0);
}

function byRegion(s: AllowedAmisState) {
  return Object.fromEntries(s.targets.map((t) => [t.region, t]));
}

async function refusal(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => assert.fail('expected the update to be refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
  assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
  return err.cause;
}

void describe('enforceAllowedAmis', () => {
  void it('GIVEN one region disabled and one in audit mode with other criteria WHEN audit, then enabled, then off THEN the catalogue’s owners are set, then enforced, then each region gets back exactly what it had, and the run ends', async () => {
    await onFleet(async (tq, scope, f) => {
      const audited = await setAllowedAmisMode(env.client, tq, scope, 'audit');
      assert.equal(audited.mode, 'audit');
      assert.ok(audited.auditSince);
      for (const region of REGIONS)
        assert.deepEqual(f.allowedSettings(ACCOUNT, region), {
          state: 'audit-mode',
          criteria: OURS,
          managedBy: 'account',
        });
      assert.deepEqual(byRegion(audited)['eu-west-1']?.original, {
        state: 'disabled',
        criteria: [],
        managedBy: 'account',
      });
      assert.deepEqual(byRegion(audited)['us-east-1']?.original, {
        state: 'audit-mode',
        criteria: THEIRS,
        managedBy: 'account',
      });

      const enabled = await setAllowedAmisMode(env.client, tq, scope, 'enabled');
      assert.equal(enabled.mode, 'enabled');
      assert.ok(enabled.targets.every((t) => t.applied?.state === 'enabled' && t.error === undefined));
      for (const region of REGIONS) assert.equal(f.allowedSettings(ACCOUNT, region).state, 'enabled');
      // The originals stay those from before amiflow's first change.
      assert.deepEqual(byRegion(enabled)['us-east-1']?.original?.criteria, THEIRS);

      const status = await enforcementState(env.client, scope.name);
      assert.equal(status?.mode, 'enabled');

      const off = await setAllowedAmisMode(env.client, tq, scope, 'off');
      assert.equal(off.mode, 'off');
      assert.deepEqual(f.allowedSettings(ACCOUNT, 'eu-west-1'), {
        state: 'disabled',
        criteria: [],
        managedBy: 'account',
      });
      assert.deepEqual(f.allowedSettings(ACCOUNT, 'us-east-1'), {
        state: 'audit-mode',
        criteria: THEIRS,
        managedBy: 'account',
      });
      assert.deepEqual(
        off.changes.map((c) => [c.mode, c.failedTargets]),
        [
          ['audit', 0],
          ['enabled', 0],
          ['off', 0],
        ],
      );
      const result = (await env.client.workflow
        .getHandle(enforcementWorkflowId(scope.name))
        .result()) as AllowedAmisState;
      assert.equal(result.mode, 'off');
      assert.equal(await enforcementState(env.client, scope.name), undefined);
      await recordEnded(scope.name, 'enforce-allowed-amis-audit-enable-off');
    });
  });

  void it('GIVEN an owner added to the allow list after the audit WHEN enabled with the new list THEN the criteria include it', async () => {
    await onFleet(async (tq, scope, f) => {
      await setAllowedAmisMode(env.client, tq, scope, 'audit');
      const wider = {
        ...scope,
        allowList: [...(scope.allowList ?? []), { owner: 'aws-marketplace', reason: 'licensed appliances' }],
      };
      const enabled = await setAllowedAmisMode(env.client, tq, wider, 'enabled');
      assert.deepEqual(f.allowedSettings(ACCOUNT, 'eu-west-1').criteria, [
        { ImageProviders: [TOOLING, 'amazon', 'aws-marketplace'] },
      ]);
      assert.deepEqual(enabled.selection.allowList, wider.allowList);
      await setAllowedAmisMode(env.client, tq, scope, 'off');
    });
  });

  void it('GIVEN an enforcement never audited WHEN enabled THEN it is refused (AllowedAmisAuditFirst) and nothing is changed', async () => {
    await onFleet(async (tq, scope, f) => {
      await assert.rejects(setAllowedAmisMode(env.client, tq, scope, 'enabled'), /run --mode audit first/);
      // Started, but not audited yet (as when an audit failed everywhere): the workflow refuses too.
      await env.client.workflow.start('enforceAllowedAmis', {
        taskQueue: tq,
        workflowId: enforcementWorkflowId(scope.name),
        args: [scope],
      });
      const cause = await refusal(setAllowedAmisMode(env.client, tq, scope, 'enabled'));
      assert.equal(cause.type, FailureType.AllowedAmisAuditFirst);
      assert.equal(mutations(f), 0);
      await setAllowedAmisMode(env.client, tq, scope, 'off');
      await recordEnded(scope.name, 'enforce-allowed-amis-audit-first-refused');
    });
  });

  void it('GIVEN one region managed by a declarative policy WHEN audited THEN that region reports the refusal, the other is set, and off restores only what was set', async () => {
    const f = fleet();
    f.setAllowedSettings(ACCOUNT, 'us-east-1', {
      state: 'enabled',
      criteria: THEIRS,
      managedBy: 'declarative-policy',
    });
    await onFleet(async (tq, scope) => {
      const audited = await setAllowedAmisMode(env.client, tq, scope, 'audit');
      assert.match(byRegion(audited)['us-east-1']?.error ?? '', /declarative policy/);
      assert.equal(byRegion(audited)['us-east-1']?.applied, undefined);
      assert.equal(byRegion(audited)['eu-west-1']?.applied?.state, 'audit-mode');
      assert.deepEqual(audited.changes.at(-1), {
        mode: 'audit',
        at: audited.changes.at(-1)?.at,
        failedTargets: 1,
      });

      const off = await setAllowedAmisMode(env.client, tq, scope, 'off');
      assert.equal(off.mode, 'off');
      assert.equal(f.allowedSettings(ACCOUNT, 'eu-west-1').state, 'disabled');
      assert.deepEqual(f.allowedSettings(ACCOUNT, 'us-east-1').criteria, THEIRS);
      assert.equal(f.count(ACCOUNT, 'us-east-1', 'ReplaceImageCriteriaInAllowedImagesSettingsCommand'), 0);
      await recordEnded(scope.name, 'enforce-allowed-amis-declarative-policy');
    }, f);
  });

  void it('GIVEN someone changed the settings after amiflow enabled them WHEN off THEN that region is left as it is, with a warning saying so, and the other restored', async () => {
    await onFleet(async (tq, scope, f) => {
      await setAllowedAmisMode(env.client, tq, scope, 'audit');
      await setAllowedAmisMode(env.client, tq, scope, 'enabled');
      const theirs = {
        state: 'enabled',
        criteria: [{ ImageProviders: ['777700007777'] }],
        managedBy: 'account',
      };
      f.setAllowedSettings(ACCOUNT, 'us-east-1', theirs);

      const off = await setAllowedAmisMode(env.client, tq, scope, 'off');

      assert.match(byRegion(off)['us-east-1']?.warning ?? '', /changed outside amiflow.*left as they are/);
      assert.deepEqual(f.allowedSettings(ACCOUNT, 'us-east-1'), theirs);
      assert.equal(f.allowedSettings(ACCOUNT, 'eu-west-1').state, 'disabled');
      assert.equal(
        await enforcementState(env.client, scope.name),
        undefined,
        'nothing of amiflow’s left: ended',
      );
      await recordEnded(scope.name, 'enforce-allowed-amis-changed-outside');
    });
  });

  void it('GIVEN no approved image and no allowed owner WHEN audited THEN each region says there is no owner to allow, and nothing is changed', async () => {
    const f = new FakeFleet();
    const { allowList: _none, ...scope } = input({ catalogueAccounts: ['888800008888'] });
    await withEnforceWorker(f, async (tq) => {
      const audited = await setAllowedAmisMode(env.client, tq, scope, 'audit');
      assert.ok(
        audited.targets.every((t) => /no approved image in .* has an owner to allow/.test(t.error ?? '')),
      );
      assert.equal(audited.auditSince, undefined);
      assert.equal(mutations(f), 0);
      await setAllowedAmisMode(env.client, tq, scope, 'off');
    });
  });
});

/**
 * activities/allowed-amis.ts at the SDK level: the EC2 Allowed AMIs calls in audit mode and in
 * enabled mode (criteria before state, so no moment has the new state with the old criteria), the
 * reversal to the settings found before (state before criteria when disabling), nothing sent when
 * nothing changes, a retry that finds its change half-made, settings changed by someone else left
 * alone, and settings managed by an organization declarative policy refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DisableAllowedImagesSettingsCommand,
  EnableAllowedImagesSettingsCommand,
  GetAllowedImagesSettingsCommand,
  ReplaceImageCriteriaInAllowedImagesSettingsCommand,
} from '@aws-sdk/client-ec2';
import type { AllowedImagesSettings } from '../../workflows/contracts';
import { FailureType } from '../../workflows/contracts';
import { awsError, nonRetryableFailure } from './failures';
import { REGION, TARGET } from './fixtures';
import { activityEnv, commandNames, harness } from './harness';

const TOOLING = '111100001111';
const OURS = [{ ImageProviders: [TOOLING, 'amazon'] }];
const THEIRS = [
  { ImageProviders: ['amazon'] },
  { ImageProviders: ['aws-marketplace'], ImageNames: ['vendor-*'] },
];

/** GetAllowedImagesSettings answers `states` in turn (the last one repeats); the changes succeed. */
function settingsSequence(h: ReturnType<typeof harness>, ...states: AllowedImagesSettings[]) {
  let reads = 0;
  h.ec2Mock.on(GetAllowedImagesSettingsCommand).callsFake(() => {
    const s = states[Math.min(reads, states.length - 1)] as AllowedImagesSettings;
    reads += 1;
    return { State: s.state, ImageCriteria: s.criteria, ManagedBy: s.managedBy ?? 'account' };
  });
  h.ec2Mock.on(ReplaceImageCriteriaInAllowedImagesSettingsCommand).resolves({ ReturnValue: true });
  h.ec2Mock
    .on(EnableAllowedImagesSettingsCommand)
    .callsFake((input: { AllowedImagesSettingsState: string }) => ({
      AllowedImagesSettingsState: input.AllowedImagesSettingsState,
    }));
  h.ec2Mock.on(DisableAllowedImagesSettingsCommand).resolves({ AllowedImagesSettingsState: 'disabled' });
}

void describe('readAllowedImagesSettings', () => {
  void it('GIVEN criteria in place WHEN read THEN state, criteria with EC2’s own field names and the manager are returned', async () => {
    const h = harness();
    h.ec2Mock.on(GetAllowedImagesSettingsCommand).resolves({
      State: 'audit-mode',
      ImageCriteria: [
        { ImageProviders: ['amazon'], CreationDateCondition: { MaximumDaysSinceCreated: 300 } },
      ],
      ManagedBy: 'account',
    });

    const out = await activityEnv().run(h.activities.readAllowedImagesSettings, { target: TARGET });

    assert.deepEqual(out, {
      state: 'audit-mode',
      criteria: [{ ImageProviders: ['amazon'], CreationDateCondition: { MaximumDaysSinceCreated: 300 } }],
      managedBy: 'account',
    });
  });
});

void describe('setAllowedImagesSettings', () => {
  void it('GIVEN Allowed AMIs disabled WHEN set to audit mode THEN the criteria are replaced first, then the state set to audit-mode, then read back', async () => {
    const h = harness();
    settingsSequence(h, { state: 'disabled', criteria: [] }, { state: 'audit-mode', criteria: OURS });

    const out = await activityEnv().run(h.activities.setAllowedImagesSettings, {
      target: TARGET,
      settings: { state: 'audit-mode', criteria: OURS },
    });

    assert.deepEqual(commandNames(h.ec2Mock), [
      'GetAllowedImagesSettings',
      'ReplaceImageCriteriaInAllowedImagesSettings',
      'EnableAllowedImagesSettings',
      'GetAllowedImagesSettings',
    ]);
    assert.deepEqual(
      h.ec2Mock.commandCalls(ReplaceImageCriteriaInAllowedImagesSettingsCommand)[0]?.args[0].input,
      {
        ImageCriteria: OURS,
      },
    );
    assert.deepEqual(h.ec2Mock.commandCalls(EnableAllowedImagesSettingsCommand)[0]?.args[0].input, {
      AllowedImagesSettingsState: 'audit-mode',
    });
    assert.deepEqual(out.before, { state: 'disabled', criteria: [], managedBy: 'account' });
    assert.deepEqual(out.after, { state: 'audit-mode', criteria: OURS, managedBy: 'account' });
    assert.equal(out.awsCalls, 4);
  });

  void it('GIVEN audit mode with the same criteria (in another order) WHEN set to enabled THEN only the state changes', async () => {
    const h = harness();
    settingsSequence(
      h,
      { state: 'audit-mode', criteria: [{ ImageProviders: ['amazon', TOOLING] }] },
      { state: 'enabled', criteria: OURS },
    );

    const out = await activityEnv().run(h.activities.setAllowedImagesSettings, {
      target: TARGET,
      settings: { state: 'enabled', criteria: OURS },
    });

    assert.deepEqual(commandNames(h.ec2Mock), [
      'GetAllowedImagesSettings',
      'EnableAllowedImagesSettings',
      'GetAllowedImagesSettings',
    ]);
    assert.deepEqual(h.ec2Mock.commandCalls(EnableAllowedImagesSettingsCommand)[0]?.args[0].input, {
      AllowedImagesSettingsState: 'enabled',
    });
    assert.equal(out.after.state, 'enabled');
  });

  void it('GIVEN the settings are already as asked WHEN set THEN nothing is changed (a retry after success)', async () => {
    const h = harness();
    settingsSequence(h, { state: 'enabled', criteria: OURS });

    await activityEnv().run(h.activities.setAllowedImagesSettings, {
      target: TARGET,
      settings: { state: 'enabled', criteria: OURS },
    });

    assert.deepEqual(commandNames(h.ec2Mock), ['GetAllowedImagesSettings', 'GetAllowedImagesSettings']);
  });

  void it('GIVEN amiflow’s settings enabled and the originals disabled without criteria WHEN restored THEN the state is disabled first, then the criteria cleared', async () => {
    const h = harness();
    settingsSequence(h, { state: 'enabled', criteria: OURS }, { state: 'disabled', criteria: [] });

    const out = await activityEnv().run(h.activities.setAllowedImagesSettings, {
      target: TARGET,
      settings: { state: 'disabled', criteria: [] },
      expect: { state: 'enabled', criteria: OURS },
    });

    assert.deepEqual(commandNames(h.ec2Mock), [
      'GetAllowedImagesSettings',
      'DisableAllowedImagesSettings',
      'ReplaceImageCriteriaInAllowedImagesSettings',
      'GetAllowedImagesSettings',
    ]);
    assert.deepEqual(
      h.ec2Mock.commandCalls(ReplaceImageCriteriaInAllowedImagesSettingsCommand)[0]?.args[0].input,
      {},
    );
    assert.deepEqual(out.after, { state: 'disabled', criteria: [], managedBy: 'account' });
  });

  void it('GIVEN originals in audit mode with other criteria WHEN restored THEN those criteria come back, then audit mode', async () => {
    const h = harness();
    settingsSequence(h, { state: 'enabled', criteria: OURS }, { state: 'audit-mode', criteria: THEIRS });

    await activityEnv().run(h.activities.setAllowedImagesSettings, {
      target: TARGET,
      settings: { state: 'audit-mode', criteria: THEIRS },
      expect: { state: 'enabled', criteria: OURS },
    });

    assert.deepEqual(commandNames(h.ec2Mock).slice(1, 3), [
      'ReplaceImageCriteriaInAllowedImagesSettings',
      'EnableAllowedImagesSettings',
    ]);
    assert.deepEqual(
      h.ec2Mock.commandCalls(ReplaceImageCriteriaInAllowedImagesSettingsCommand)[0]?.args[0].input,
      {
        ImageCriteria: THEIRS,
      },
    );
    assert.deepEqual(h.ec2Mock.commandCalls(EnableAllowedImagesSettingsCommand)[0]?.args[0].input, {
      AllowedImagesSettingsState: 'audit-mode',
    });
  });

  void it('GIVEN a restore whose first attempt disabled the state and then failed WHEN retried THEN it finds its own half-made change and only replaces the criteria', async () => {
    const h = harness();
    settingsSequence(h, { state: 'disabled', criteria: OURS }, { state: 'disabled', criteria: [] });

    await activityEnv().run(h.activities.setAllowedImagesSettings, {
      target: TARGET,
      settings: { state: 'disabled', criteria: [] },
      expect: { state: 'enabled', criteria: OURS },
    });

    assert.deepEqual(commandNames(h.ec2Mock), [
      'GetAllowedImagesSettings',
      'ReplaceImageCriteriaInAllowedImagesSettings',
      'GetAllowedImagesSettings',
    ]);
  });

  void it('GIVEN someone changed the criteria since amiflow set them WHEN restored THEN nothing is changed and AllowedAmisChangedOutside says what is there and what amiflow set', async () => {
    const h = harness();
    settingsSequence(h, { state: 'enabled', criteria: [{ ImageProviders: ['123456789012'] }] });

    const err = await nonRetryableFailure(
      activityEnv().run(h.activities.setAllowedImagesSettings, {
        target: TARGET,
        settings: { state: 'disabled', criteria: [] },
        expect: { state: 'enabled', criteria: OURS },
      }),
      FailureType.AllowedAmisChangedOutside,
      `region ${REGION}`,
      'changed outside amiflow',
      'providers 123456789012',
      `providers ${TOOLING}, amazon`,
    );
    assert.ok(err.details?.length);
    assert.deepEqual(commandNames(h.ec2Mock), ['GetAllowedImagesSettings']);
  });

  void it('GIVEN settings managed by a declarative policy WHEN set THEN AllowedAmisManagedByPolicy, and nothing is changed', async () => {
    const h = harness();
    settingsSequence(h, { state: 'enabled', criteria: THEIRS, managedBy: 'declarative-policy' });

    await nonRetryableFailure(
      activityEnv().run(h.activities.setAllowedImagesSettings, {
        target: TARGET,
        settings: { state: 'audit-mode', criteria: OURS },
      }),
      FailureType.AllowedAmisManagedByPolicy,
      'declarative policy',
    );
    assert.deepEqual(commandNames(h.ec2Mock), ['GetAllowedImagesSettings']);
  });

  void it('GIVEN the role may not change the settings WHEN set THEN AwsUnauthorized names the call', async () => {
    const h = harness();
    settingsSequence(h, { state: 'disabled', criteria: [] });
    h.ec2Mock
      .on(ReplaceImageCriteriaInAllowedImagesSettingsCommand)
      .rejects(awsError('UnauthorizedOperation', 403));

    await nonRetryableFailure(
      activityEnv().run(h.activities.setAllowedImagesSettings, {
        target: TARGET,
        settings: { state: 'audit-mode', criteria: OURS },
      }),
      FailureType.AwsUnauthorized,
      'replacing the Allowed AMIs criteria',
    );
    assert.equal(
      h.ec2Mock.commandCalls(EnableAllowedImagesSettingsCommand).length,
      0,
      'no state without its criteria',
    );
  });
});

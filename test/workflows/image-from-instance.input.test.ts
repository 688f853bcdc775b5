/**
 * imageFromInstance validates its input again at the workflow boundary: a run started directly
 * (bypassing the client library's checks) with a bad input fails at once, non-retryable, with
 * `InvalidInput` naming the field, before any activity (so any AWS call) runs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InputIssue } from '../../workflows/validation';
import { timeSkippingEnv } from '../support/temporal';
import {
  ActivityLog,
  assertWorkflowFailure,
  failed,
  happyActivities,
  imageInput,
  localActivityMarkers,
  RUN_TIMEOUT,
  recorded,
  runImageFromInstance,
  scheduledActivities,
  succeeded,
} from './stub-activities';
import { workflowEnv } from './harness';

const env = workflowEnv(timeSkippingEnv);

const valid = imageInput();

const BAD_INPUTS: { kind: string; input: unknown; field: string; says: RegExp }[] = [
  {
    kind: 'a malformed instance id',
    input: { ...valid, instanceId: 'i-12345' },
    field: 'instanceId',
    says: /'i-12345' is not an EC2 instance id/,
  },
  {
    kind: 'an instance id in upper case',
    input: { ...valid, instanceId: 'i-0123456789ABCDEF0' },
    field: 'instanceId',
    says: /not an EC2 instance id/,
  },
  {
    kind: 'a missing instance id',
    input: { ...valid, instanceId: undefined },
    field: 'instanceId',
    says: /is required/,
  },
  {
    kind: 'an unknown mode',
    input: { ...valid, mode: 'snapshot' },
    field: 'mode',
    says: /'snapshot' is not a consistency mode; use one of stop, reboot, no-reboot/,
  },
  {
    kind: 'an empty image name',
    input: { ...valid, imageName: '' },
    field: 'imageName',
    says: /is required/,
  },
  {
    kind: 'a 129-character image name',
    input: { ...valid, imageName: 'a'.repeat(129) },
    field: 'imageName',
    says: /must be 3 to 128 characters long, got 129/,
  },
  {
    kind: 'forbidden characters in the image name',
    input: { ...valid, imageName: 'web*server?' },
    field: 'imageName',
    says: /contains characters EC2 refuses in image names \('\*\?'\)/,
  },
  {
    kind: 'a bad region',
    input: { ...valid, region: 'europe-west1' },
    field: 'region',
    says: /'europe-west1' is not an AWS region name/,
  },
  {
    kind: 'an 11-digit account id',
    input: { ...valid, accountId: '12345678901' },
    field: 'accountId',
    says: /'12345678901' is not an AWS account id \(exactly 12 digits/,
  },
  {
    kind: 'an account id given as a number',
    input: { ...valid, accountId: 123456789012 },
    field: 'accountId',
    says: /is not an AWS account id/,
  },
  {
    kind: 'a negative image timeout',
    input: { ...valid, timeouts: { imageAvailableSeconds: -1 } },
    field: 'timeouts.imageAvailableSeconds',
    says: /must be a whole number of seconds from 60 to 604800, got -1/,
  },
  {
    kind: 'a fractional instance-state timeout',
    input: { ...valid, timeouts: { instanceStateSeconds: 90.5 } },
    field: 'timeouts.instanceStateSeconds',
    says: /whole number of seconds/,
  },
  {
    kind: 'a reserved tag prefix aws:',
    input: { ...valid, tags: { 'aws:cloudformation:stack-name': 'x' } },
    field: 'tags.aws:cloudformation:stack-name',
    says: /tag keys starting with 'aws:' are reserved/,
  },
  {
    kind: "amiflow's own tag prefix",
    input: { ...valid, tags: { 'amiflow:workflow-id': 'forged' } },
    field: 'tags.amiflow:workflow-id',
    says: /tag keys starting with 'amiflow:' are reserved/,
  },
  {
    kind: 'a tag value that is not a string',
    input: { ...valid, tags: { Owner: 7 } },
    field: 'tags.Owner',
    says: /tag values must be strings, got 7/,
  },
  {
    kind: 'an unknown field',
    input: { ...valid, noReboot: true },
    field: 'noReboot',
    says: /is not a known field/,
  },
  { kind: 'no input object at all', input: null, field: '(input)', says: /must be an object/ },
];

describe('imageFromInstance input validated at the workflow boundary', () => {
  for (const bad of BAD_INPUTS) {
    it(
      `GIVEN ${bad.kind} WHEN a run is started directly THEN it fails InvalidInput naming ${bad.field}, before any activity`,
      RUN_TIMEOUT,
      async () => {
        const log = new ActivityLog();

        const outcome = await runImageFromInstance(env, recorded(log, happyActivities()), bad.input);

        const failure = assertWorkflowFailure(failed(outcome), 'InvalidInput');
        assert.ok(failure.message.startsWith('invalid input: '), failure.message);
        assert.ok(
          failure.message.includes(`${bad.field}: `),
          `'${failure.message}' does not name ${bad.field}`,
        );
        assert.match(failure.message, bad.says);
        const [issues] = failure.details ?? [];
        assert.ok(
          (issues as InputIssue[]).some((i) => i.field === bad.field),
          `details name fields ${JSON.stringify(issues)}`,
        );
        assert.deepEqual(log.names(), [], 'no activity may run for a bad input');
        assert.deepEqual(scheduledActivities(outcome.history), []);
        assert.equal(localActivityMarkers(outcome.history), 0);
        assert.equal(outcome.progress.phase, 'failed');
        assert.ok(outcome.progress.steps.every((s) => s.state === 'pending'));
      },
    );
  }

  it(
    'GIVEN several bad fields WHEN a run is started directly THEN one failure names every one of them, in field order',
    RUN_TIMEOUT,
    async () => {
      const log = new ActivityLog();

      const outcome = await runImageFromInstance(env, recorded(log, happyActivities()), {
        ...valid,
        region: 'moon-1',
        instanceId: 'vol-0123',
        mode: 'fast',
      });

      const failure = assertWorkflowFailure(failed(outcome), 'InvalidInput');
      const [issues] = failure.details ?? [];
      assert.deepEqual(
        (issues as InputIssue[]).map((i) => i.field),
        ['region', 'instanceId', 'mode'],
      );
      assert.deepEqual(log.names(), []);
    },
  );

  it(
    'GIVEN values at the limits (128-character name, shortest timeouts, a tag key that merely starts with Aws) WHEN started directly THEN the run goes ahead',
    RUN_TIMEOUT,
    async () => {
      const log = new ActivityLog();

      const outcome = await runImageFromInstance(env, recorded(log, happyActivities()), {
        ...valid,
        imageName: 'a'.repeat(128),
        accountId: '123456789012',
        timeouts: { imageAvailableSeconds: 60, instanceStateSeconds: 30 },
        tags: { 'Aws-Team': 'x' },
      });

      succeeded(outcome);
      assert.equal(log.count('describeInstance'), 1);
    },
  );
});

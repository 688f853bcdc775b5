/**
 * imageFromInstance validates its input again at the workflow boundary: a run started directly
 * (bypassing the client library's checks) with a bad input fails at once, non-retryable, with
 * `InvalidInput` naming the field, before any activity (so any AWS call) runs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InputIssue } from '../../workflows/validation';
import { timeSkippingEnv } from '../support/temporal';
import { happyActivities, imageInput, runLogged } from './stub-activities';
import {
  assertWorkflowFailure,
  failed,
  localActivityMarkers,
  RUN_TIMEOUT,
  scheduledActivities,
  succeeded,
  workflowEnv,
} from './harness';

const env = workflowEnv(timeSkippingEnv);

const valid = imageInput();

interface BadInput {
  kind: string;
  input: unknown;
  field: string;
  says: RegExp;
}

/** `valid` with `change` made to it: a bad input of the kind `kind`, refused naming `field`. */
const bad = (kind: string, change: Record<string, unknown>, field: string, says: RegExp): BadInput => ({
  kind,
  input: { ...valid, ...change },
  field,
  says,
});

const BAD_INPUTS: BadInput[] = [
  bad(
    'a malformed instance id',
    { instanceId: 'i-12345' },
    'instanceId',
    /'i-12345' is not an EC2 instance id/,
  ),
  bad(
    'an instance id in upper case',
    { instanceId: 'i-0123456789ABCDEF0' },
    'instanceId',
    /not an EC2 instance id/,
  ),
  bad('a missing instance id', { instanceId: undefined }, 'instanceId', /is required/),
  bad(
    'an unknown mode',
    { mode: 'snapshot' },
    'mode',
    /'snapshot' is not a consistency mode; use one of stop, reboot, no-reboot/,
  ),
  bad('an empty image name', { imageName: '' }, 'imageName', /is required/),
  bad(
    'a 129-character image name',
    { imageName: 'a'.repeat(129) },
    'imageName',
    /must be 3 to 128 characters long, got 129/,
  ),
  bad(
    'forbidden characters in the image name',
    { imageName: 'web*server?' },
    'imageName',
    /contains characters EC2 refuses in image names \('\*\?'\)/,
  ),
  bad('a bad region', { region: 'europe-west1' }, 'region', /'europe-west1' is not an AWS region name/),
  bad(
    'an 11-digit account id',
    { accountId: '12345678901' },
    'accountId',
    /'12345678901' is not an AWS account id \(exactly 12 digits/,
  ),
  bad(
    'an account id given as a number',
    { accountId: 123456789012 },
    'accountId',
    /is not an AWS account id/,
  ),
  bad(
    'a negative image timeout',
    { timeouts: { imageAvailableSeconds: -1 } },
    'timeouts.imageAvailableSeconds',
    /must be a whole number of seconds from 60 to 604800, got -1/,
  ),
  bad(
    'a fractional instance-state timeout',
    { timeouts: { instanceStateSeconds: 90.5 } },
    'timeouts.instanceStateSeconds',
    /whole number of seconds/,
  ),
  bad(
    'a reserved tag prefix aws:',
    { tags: { 'aws:cloudformation:stack-name': 'x' } },
    'tags.aws:cloudformation:stack-name',
    /tag keys starting with 'aws:' are reserved/,
  ),
  bad(
    "amiflow's own tag prefix",
    { tags: { 'amiflow:workflow-id': 'forged' } },
    'tags.amiflow:workflow-id',
    /tag keys starting with 'amiflow:' are reserved/,
  ),
  bad(
    'a tag value that is not a string',
    { tags: { Owner: 7 } },
    'tags.Owner',
    /tag values must be strings, got 7/,
  ),
  bad('an unknown field', { noReboot: true }, 'noReboot', /is not a known field/),
  { kind: 'no input object at all', input: null, field: '(input)', says: /must be an object/ },
];

describe('imageFromInstance input validated at the workflow boundary', () => {
  for (const bad of BAD_INPUTS) {
    it(
      `GIVEN ${bad.kind} WHEN a run is started directly THEN it fails InvalidInput naming ${bad.field}, before any activity`,
      RUN_TIMEOUT,
      async () => {
        const { outcome, log } = await runLogged(env, happyActivities(), bad.input);

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
      const { outcome, log } = await runLogged(env, happyActivities(), {
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
      const { outcome, log } = await runLogged(env, happyActivities(), {
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

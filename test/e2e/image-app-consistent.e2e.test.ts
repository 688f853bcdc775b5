/**
 * Tier 3: imageFromInstance in mode `app-consistent`, end to end: the Temporal dev server and
 * moto_server started here, the real worker and the client. moto runs every SSM command as
 * instantly successful (status Success, empty output), so the scripts never run: this proves the
 * commands sent, their order and content, the image, and the freeze as the worker measures it (the
 * scripts' own timestamps are covered at tier 2 and in the workflow tests). Reading the commands
 * back is done from outside, with the test's own SSM client (ListCommands for the instance).
 *
 * AMIFLOW_RECORD_HISTORIES=1 also saves the run's history under test/replay/histories/ (tier 4).
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ListCommandsCommand, SSMClient } from '@aws-sdk/client-ssm';
import { commandComment } from '../../activities/run-command';
import type { AmiflowClient, ImageFromInstanceInput } from '../../client';
import { TAG } from '../../workflows/contracts';
import { recordHistory } from '../support/histories';
import { SANDBOX_CREDENTIALS } from '../support/moto';
import {
  SANDBOX_REGION,
  findImage,
  instanceState,
  launchInstance,
  observeInstanceState,
  tagMap,
} from '../support/sandbox-ec2';
import { withSandboxWorker } from '../support/sandbox-worker';
import { useE2eStack } from './stack';

const stack = useE2eStack({ stockAmi: true });
let ssm: SSMClient;

function withWorker<T>(name: string, fn: (client: AmiflowClient) => Promise<T>): Promise<T> {
  return withSandboxWorker(stack.env, stack.moto.endpoint, name, (client) => fn(client));
}

void describe('imageFromInstance app-consistent end to end (dev server + moto + real worker + client)', () => {
  before(() => {
    ssm = new SSMClient({
      region: SANDBOX_REGION,
      endpoint: stack.moto.endpoint,
      credentials: SANDBOX_CREDENTIALS,
      maxAttempts: 2,
    });
  });

  after(() => {
    ssm?.destroy();
  });

  beforeEach(async () => {
    await stack.moto.reset();
  });

  void it('GIVEN a running instance WHEN imaged app-consistent THEN SSM got the quiesce then the thaw (once each, in that order), the image is application-consistent, the instance never stopped, and the freeze is reported', async () => {
    const instanceId = await launchInstance(stack.ec2, stack.stockAmi);
    const imageName = `amiflow-e2e-app-consistent-${instanceId}`;
    const input: ImageFromInstanceInput = {
      region: SANDBOX_REGION,
      instanceId,
      imageName,
      tags: { Team: 'platform' },
      mode: 'app-consistent',
      appConsistent: { maxFreezeSeconds: 20 },
    };

    const { value, changes } = await withWorker('e2e-app-consistent', (client) =>
      observeInstanceState(stack.ec2, instanceId, async () => {
        const run = await client.startImageFromInstance(input);
        const result = await client.result(run.workflowId);
        await recordHistory(client.handle(run.workflowId), 'image-from-instance-app-consistent');
        return { result, run };
      }),
    );
    const { result, run } = value;

    // THEN the result: application-consistent, no downtime, both steps succeeded
    assert.equal(result.mode, 'app-consistent');
    assert.equal(result.consistency, 'application-consistent');
    assert.equal(result.downtimeSeconds, 0);
    const app = result.appConsistency;
    assert.ok(app, 'the result reports the app-consistent steps');
    assert.equal(app.quiesce, 'fsfreeze');
    assert.equal(app.maxFreezeSeconds, 20);
    assert.equal(app.pre.status, 'Success');
    assert.equal(app.post.status, 'Success');
    assert.equal(app.post.thawedBy, 'post step');
    assert.equal(app.fellBack, false);
    // moto's commands print nothing, so the freeze is the worker's measure (an upper bound)
    assert.equal(app.freezeMeasuredBy, 'worker');
    assert.ok(
      app.freezeSeconds !== undefined && app.freezeSeconds >= 0 && app.freezeSeconds < 20,
      `freeze ${app.freezeSeconds} s is within the watchdog's 20 s`,
    );
    console.log(
      `e2e app-consistent freeze: ${app.freezeSeconds.toFixed(3)} s (measured by the ${app.freezeMeasuredBy}; ` +
        `pre step ${app.pre.commandId}, thaw ${app.post.commandId})`,
    );

    // THEN SSM received exactly two commands for the instance: the quiesce, then the thaw
    const listed = (await ssm.send(new ListCommandsCommand({ InstanceId: instanceId }))).Commands ?? [];
    const commands = [...listed].sort(
      (a, b) => (a.RequestedDateTime?.getTime() ?? 0) - (b.RequestedDateTime?.getTime() ?? 0),
    );
    assert.deepEqual(
      commands.map((c) => ({ id: c.CommandId, comment: c.Comment, document: c.DocumentName })),
      [
        {
          id: app.pre.commandId,
          comment: commandComment(`${run.workflowId}/${run.runId}/quiesce`),
          document: 'AWS-RunShellScript',
        },
        {
          id: app.post.commandId,
          comment: commandComment(`${run.workflowId}/${run.runId}/thaw`),
          document: 'AWS-RunShellScript',
        },
      ],
    );
    const [pre, thaw] = commands.map((c) => c.Parameters?.commands?.[0] ?? '');
    assert.match(pre ?? '', /^MAX=20$/m, 'the watchdog is armed with the 20 s asked for');
    assert.ok(
      (pre ?? '').indexOf('amiflow-watchdog=') < (pre ?? '').indexOf('fsfreeze -f'),
      'the watchdog is armed before anything is frozen',
    );
    assert.match(pre ?? '', /\[ "\$target" = \/ \] && \[ 0 -ne 1 \]/, 'the root file system is skipped');
    assert.match(thaw ?? '', /fsfreeze -u/);
    assert.ok(commands.every((c) => c.InstanceIds?.includes(instanceId)));

    // THEN the image exists, tagged application-consistent, and the instance ran throughout
    const image = await findImage(stack.ec2, result.imageId);
    assert.equal(image?.State, 'available');
    assert.equal(tagMap(image?.Tags)[TAG.consistency], 'application-consistent');
    assert.equal(await instanceState(stack.ec2, instanceId), 'running');
    assert.ok(
      changes.every((c) => c.state === 'running'),
      `the instance never left running: ${JSON.stringify(changes)}`,
    );
  });
});

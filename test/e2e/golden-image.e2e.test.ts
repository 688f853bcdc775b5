/**
 * Tier 3: a golden-image pipeline end to end. The Temporal dev server and moto_server are started
 * here; the pipeline is declared in a plan file, applied as a Temporal Schedule and triggered; the
 * real worker images a builder instance in moto, launches a test instance from the image (running,
 * both status checks, the health marker on its console), waits for alice's approval (sent through
 * the client library), copies the image to a second region, marks both approved, publishes them as
 * SSM parameters, and retires. A second run retires the first version in both regions.
 *
 * What moto lacks, and how this test stands in for it (each covered with the SDK mocked in
 * test/activities/retention.test.ts): EnableImageDeprecation, DescribeImageReferences,
 * Enable/DisableImageDeregistrationProtection answer HTTP 500 in moto 5.2; a middleware on the
 * worker's EC2 clients answers them from a small model here (deprecation times, protection, no
 * references), shows them in DescribeImages, and refuses DeregisterImage on a protected image as
 * EC2 does. moto's SSM takes DataType aws:ec2:image but validates nothing (the asynchronous
 * validation and its wait are in test/activities/ssm.test.ts). moto's console output is a fixed
 * kernel log, so the health marker here is a line of it ('Linux version'). Everything else is moto.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type {
  DescribeImagesCommandOutput,
  EC2Client,
  ServiceInputTypes,
  ServiceOutputTypes,
} from '@aws-sdk/client-ec2';
import { DescribeInstancesCommand, DescribeSubnetsCommand, EC2ServiceException } from '@aws-sdk/client-ec2';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { InitializeMiddleware } from '@smithy/types';
import type { AwsClients } from '../../activities/aws';
import { createAwsClients } from '../../activities/aws';
import type { GoldenImageResult } from '../../client';
import { AmiflowClient, loadPlanFile } from '../../client';
import { readWorkerSettings } from '../../worker/config';
import { buildWorker } from '../../worker/worker';
import { APPROVED_VALUE, TAG } from '../../workflows/contracts';
import { recordHistory } from '../support/histories';
import { SANDBOX_CREDENTIALS } from '../support/moto';
import {
  SANDBOX_REGION,
  findImage,
  launchInstance,
  sandboxEc2,
  snapshotsByIds,
  stockEbsAmi,
  tagMap,
} from '../support/sandbox-ec2';
import { uniqueTaskQueue, workflowBundle } from '../support/temporal';
import { eventually } from '../workflows/stub-activities';
import { useE2eStack } from './stack';

const OTHER_REGION = 'us-west-2';
const PARAMETER = '/golden/web/latest';
const SCHEDULE = 'amiflow/e2e-golden/golden/web';

/** Deprecation and deregistration protection, as EC2 keeps them, for the APIs moto lacks. */
class RetirementModel {
  readonly deprecated = new Map<string, string>();
  readonly protectedImages = new Set<string>();
  readonly calls: string[] = [];

  /** The worker's clients, with the missing EC2 APIs answered here and everything else by moto. */
  wrap(inner: AwsClients): AwsClients {
    const patched = new WeakSet<EC2Client>();
    const middleware: InitializeMiddleware<ServiceInputTypes, ServiceOutputTypes> =
      (next, context) => async (args) => {
        const input = args.input as { ImageId?: string; DeprecateAt?: Date };
        const answer = (output: object) => ({
          output: { $metadata: {}, ...output } as ServiceOutputTypes,
          response: {},
        });
        switch (context.commandName) {
          case 'EnableImageDeprecationCommand':
            this.calls.push(`deprecate ${input.ImageId ?? ''}`);
            this.deprecated.set(input.ImageId ?? '', (input.DeprecateAt ?? new Date()).toISOString());
            return answer({ Return: true });
          case 'DescribeImageReferencesCommand':
            return answer({ ImageReferences: [] });
          case 'EnableImageDeregistrationProtectionCommand':
            this.calls.push(`protect ${input.ImageId ?? ''}`);
            this.protectedImages.add(input.ImageId ?? '');
            return answer({ Return: 'true' });
          case 'DisableImageDeregistrationProtectionCommand':
            this.calls.push(`unprotect ${input.ImageId ?? ''}`);
            this.protectedImages.delete(input.ImageId ?? '');
            return answer({ Return: 'false' });
          case 'DeregisterImageCommand':
            if (this.protectedImages.has(input.ImageId ?? ''))
              throw new EC2ServiceException({
                name: 'OperationNotPermitted',
                $fault: 'client',
                $metadata: { httpStatusCode: 400 },
                message: `image ${input.ImageId ?? ''} has deregistration protection`,
              });
            break;
          default:
            break;
        }
        const result = await next(args);
        if (context.commandName === 'DescribeImagesCommand')
          for (const image of (result.output as DescribeImagesCommandOutput).Images ?? []) {
            const id = image.ImageId ?? '';
            if (this.deprecated.has(id)) image.DeprecationTime = this.deprecated.get(id);
            image.DeregistrationProtection = this.protectedImages.has(id)
              ? 'enabled-without-cooldown'
              : 'disabled';
          }
        return result;
      };
    return {
      async ec2(target) {
        const client = await inner.ec2(target);
        if (!patched.has(client)) {
          client.middlewareStack.add(middleware, { step: 'initialize', name: 'amiflowRetirementModel' });
          patched.add(client);
        }
        return client;
      },
      kms: (target) => inner.kms(target),
      ssm: (target) => {
        if (!inner.ssm) throw new Error('no SSM client');
        return inner.ssm(target);
      },
      destroy: () => inner.destroy(),
    };
  }
}

const stack = useE2eStack();
/** What moto's STS answers for the sandbox credentials: the approver the plan names. */
const SANDBOX_APPROVER = 'arn:aws:iam::123456789012:user/moto';
let ec2Other: EC2Client;
const ssm = (region: string) =>
  new SSMClient({ region, endpoint: stack.moto.endpoint, credentials: SANDBOX_CREDENTIALS, maxAttempts: 2 });

async function parameter(region: string): Promise<string | undefined> {
  const client = ssm(region);
  try {
    return (await client.send(new GetParameterCommand({ Name: PARAMETER }))).Parameter?.Value;
  } finally {
    client.destroy();
  }
}

/**
 * Triggers the schedule, approves the run once it waits (signed with the sandbox credentials: the
 * worker sends the proof to the sandbox's STS, which answers as moto's user), and returns its result
 * and history size.
 */
async function triggerAndApprove(
  amiflow: AmiflowClient,
  recordAs: string,
): Promise<{ result: GoldenImageResult; events: number; seconds: number }> {
  const t0 = Date.now();
  const run = await amiflow.schedules.trigger(SCHEDULE, { waitForStart: true });
  assert.ok(run, 'the trigger started a run');
  await eventually(
    'the run to wait for approval',
    async () => {
      const p = await amiflow.progress(run.workflowId).catch(() => undefined);
      return p?.steps.find((s) => s.name === 'await approval' && s.state === 'running') ? true : undefined;
    },
    60_000,
  );
  const ack = await amiflow.approveGoldenImage(
    run.workflowId,
    { comment: 'e2e' },
    { credentials: SANDBOX_CREDENTIALS, endpoint: stack.moto.endpoint, region: SANDBOX_REGION },
  );
  assert.equal(ack.decision, 'approved');
  const result = await amiflow.result<GoldenImageResult>(run.workflowId);
  const history = await amiflow.handle(run.workflowId).fetchHistory();
  await recordHistory(amiflow.handle(run.workflowId), recordAs);
  return { result, events: history.events?.length ?? 0, seconds: (Date.now() - t0) / 1000 };
}

describe('goldenImage end to end (dev server + sandbox)', () => {
  // Inside the suite, so they run after the stack's hooks (./stack.ts).
  before(() => {
    ec2Other = sandboxEc2(stack.moto.endpoint, OTHER_REGION);
  });
  after(() => {
    ec2Other?.destroy();
  });

  it('GIVEN a pipeline in a plan file, applied as a schedule WHEN triggered twice and approved THEN each run makes an approved image in two regions, published in both, and the second retires the first', async () => {
    const stock = await stockEbsAmi(stack.ec2);
    const builder = await launchInstance(stack.ec2, stock);
    const subnets = await stack.ec2.send(
      new DescribeSubnetsCommand({
        Filters: [{ Name: 'availability-zone', Values: [`${SANDBOX_REGION}a`] }],
      }),
    );
    const subnet = subnets.Subnets?.[0]?.SubnetId ?? '';
    const dir = await mkdtemp(path.join(tmpdir(), 'amiflow-golden-'));
    const file = path.join(dir, 'plan.yaml');
    await writeFile(
      file,
      `apiVersion: amiflow/v1
plan: e2e-golden
pipelines:
  - name: web
    region: ${SANDBOX_REGION}
    builderInstanceId: ${builder}
    mode: stop
    tags: { team: platform }
    validation:
      subnetId: ${subnet}
      healthCheck: { successMarker: 'Linux version', timeout: 2m }
    approval: { timeout: 1h, approvers: ['${SANDBOX_APPROVER}'] }
    distribution:
      copies: [{ region: ${OTHER_REGION} }]
    publish: { parameterName: ${PARAMETER} }
    retention: { keep: 1, deprecateAfter: 0s, deregisterAfter: 0s }
    schedule:
      cron: '0 4 1 1 *'
      timeZone: UTC
      paused: true
`,
    );
    const taskQueue = uniqueTaskQueue('golden-e2e');
    const settings = readWorkerSettings({
      AMIFLOW_AWS_ENDPOINT: stack.moto.endpoint,
      AMIFLOW_TASK_QUEUE: taskQueue,
      AMIFLOW_SHUTDOWN_GRACE_MS: '500',
    });
    settings.aws.credentials = SANDBOX_CREDENTIALS;
    const model = new RetirementModel();
    const aws = model.wrap(createAwsClients(settings.aws));
    const { worker } = await buildWorker({
      connection: stack.env.nativeConnection,
      settings,
      deps: { aws },
      worker: { taskQueue, workflowBundle: await workflowBundle() },
    });
    const amiflow = AmiflowClient.fromClient(stack.env.client, taskQueue);
    /** Run 1, checked in the sandbox before run 2 retires it. */
    const checkFirst = async (r1: GoldenImageResult) => {
      // Run 1: an approved image in each region, published in each, the test instance terminated.
      assert.equal(r1.images.length, 2);
      const [orig1, copy1] = r1.images;
      assert.equal(copy1?.region, OTHER_REGION);
      for (const [client, img] of [
        [stack.ec2, orig1],
        [ec2Other, copy1],
      ] as const) {
        const tags = tagMap((await findImage(client, img?.imageId ?? ''))?.Tags);
        assert.equal(tags[TAG.approved], APPROVED_VALUE);
        assert.equal(tags[TAG.approvedBy], SANDBOX_APPROVER);
        assert.equal(tags[TAG.pipeline], 'web');
        assert.equal(tags[TAG.version], r1.version);
        assert.equal(tags.team, 'platform');
      }
      assert.equal(tagMap((await findImage(stack.ec2, orig1?.imageId ?? ''))?.Tags)[TAG.sourceImage], stock);
      assert.equal(
        tagMap((await findImage(ec2Other, copy1?.imageId ?? ''))?.Tags)[TAG.sourceImage],
        orig1?.imageId,
      );
      assert.equal(r1.validation?.statusChecks, 'ok');
      assert.match(r1.validation?.healthCheck?.marker ?? '', /Linux version/);
      const testInstance = await stack.ec2.send(
        new DescribeInstancesCommand({ InstanceIds: [r1.validation?.testInstanceId ?? ''] }),
      );
      assert.equal(testInstance.Reservations?.[0]?.Instances?.[0]?.State?.Name, 'terminated');
    };

    const { first, second } = await worker.runUntil(async () => {
      const report = await amiflow.schedules.apply(await loadPlanFile(file));
      assert.deepEqual(report.created, [SCHEDULE]);
      const first = await triggerAndApprove(amiflow, 'e2e-golden-image-approved');
      await checkFirst(first.result);
      const second = await triggerAndApprove(amiflow, 'e2e-golden-image-approved-retiring-first');
      return { first, second };
    });
    aws.destroy();
    console.log(
      `golden e2e: run 1 ${first.seconds.toFixed(1)} s, ${first.events} history events; run 2 ${second.seconds.toFixed(1)} s, ${second.events} history events`,
    );

    // Run 2: its own images current everywhere; run 1's deregistered with their snapshots.
    const r1 = first.result;
    const [orig1, copy1] = r1.images;
    const r2 = second.result;
    assert.notEqual(r2.version, r1.version);
    const [orig2, copy2] = r2.images;
    assert.equal(await parameter(SANDBOX_REGION), orig2?.imageId);
    assert.equal(await parameter(OTHER_REGION), copy2?.imageId);
    assert.equal(orig2?.parameter?.previousValue, orig1?.imageId);
    for (const region of [SANDBOX_REGION, OTHER_REGION]) {
      const decided = r2.retention.actions
        .filter((a) => a.region === region)
        .map((a) => [a.action, a.outcome]);
      assert.deepEqual(decided, [
        ['protect', 'done'],
        ['deregister', 'done'],
      ]);
    }
    assert.equal(await findImage(stack.ec2, orig1?.imageId ?? ''), undefined);
    assert.equal(await findImage(ec2Other, copy1?.imageId ?? ''), undefined);
    const retiredSnapshots = r2.retention.actions.flatMap((a) => a.deletedSnapshotIds ?? []);
    assert.ok(retiredSnapshots.length >= 2);
    assert.deepEqual(await snapshotsByIds(stack.ec2, retiredSnapshots), []);
    assert.ok(
      model.protectedImages.has(orig2?.imageId ?? '') && model.protectedImages.has(copy2?.imageId ?? ''),
    );
    // Run 1's newest-protection was turned off before its images were deregistered.
    assert.ok(model.calls.includes(`unprotect ${orig1?.imageId ?? ''}`));
    assert.ok((await findImage(stack.ec2, orig2?.imageId ?? '')) !== undefined);
  });
});

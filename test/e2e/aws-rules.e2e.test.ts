/**
 * Tier 3 under the AWS rules of issue 16 that the sandbox does not keep, as the fault layer
 * (devkit/faults/aws-rules.ts) models them: DescribeImageReferences takes at most 10 image ids,
 * CreateImage meets a concurrency limit, an AMI name stays taken for a while after its image was
 * deregistered, and Allowed AMIs `enabled` hides the images it does not allow. The dev server, moto
 * behind the layer and the real worker; the sandbox is read directly (no layer) for the truth.
 *
 * Each test waits out what amiflow waits on real EC2: a limit error and a held name are retried
 * 15 s later (activities/errors.ts, activities/copying.ts), so those two take about 20 s each.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { AmiflowClient } from '../../client';
import { RunFailedError } from '../../client';
import type { BackupResult, ComplianceReport, ImageFromInstanceResult } from '../../workflows/contracts';
import { MANAGED_BY_VALUE, TAG } from '../../workflows/contracts';
import { REFERENCE_ID_LIMIT } from '../../devkit/faults/aws-rules';
import { NO_FAULTS } from '../../devkit/faults/options';
import { unitDraw } from '../../devkit/faults/random';
import { SANDBOX_ACCOUNT } from '../../devkit/moto';
import {
  SANDBOX_REGION,
  createImageDirectly,
  findImage,
  imagesTagged,
  launchInstance,
  sandboxEc2,
  stockEbsAmi,
  tagResource,
} from '../../devkit/sandbox-ec2';
import { withSandboxWorker } from '../../devkit/sandbox-worker';
import { tagApproved } from './fixtures';
import { useE2eStack } from './stack';

const stack = useE2eStack({ faultLayer: true, stockAmi: true });

async function withWorker<T>(name: string, fn: (client: AmiflowClient) => Promise<T>): Promise<T> {
  return withSandboxWorker(stack.env, stack.proxy.endpoint, name, (client) => fn(client));
}

/**
 * A seed under which the first `action` call meets the limit error `code` and the second none, as
 * the layer draws them (keyed by seed, action and n-th call: see devkit/faults/random.ts).
 */
function seedForOneLimitError(action: string, code: number, rate: number): number {
  for (let seed = 1; seed < 10_000; seed++)
    if (
      unitDraw(seed, `limit|${action}|1`) < rate &&
      Math.floor(unitDraw(seed, `limit-code|${action}|1`) * 2) === code &&
      unitDraw(seed, `limit|${action}|2`) >= rate
    )
      return seed;
  throw new Error(`no seed gives one ${action} limit error`);
}

describe('AWS rules through the fault layer (dev server, real worker)', () => {
  beforeEach(() => {
    stack.proxy.reset();
    stack.proxy.configure(NO_FAULTS);
  });

  it('GIVEN an instance with 12 older backups, one still launched from WHEN a backup keeping 1 runs THEN the 12 due are checked in batches of at most 10 ids, 11 deregistered and the referenced one kept', async () => {
    const plan = `refs-${Date.now()}`;
    const instanceId = await launchInstance(stack.ec2, stack.stockAmi);
    const older: string[] = [];
    for (let i = 0; i < 12; i++) {
      const imageId = await createImageDirectly(stack.ec2, instanceId, `${plan}-old-${i}`);
      await tagResource(stack.ec2, imageId, {
        [TAG.managedBy]: MANAGED_BY_VALUE,
        [TAG.backupPlan]: plan,
        [TAG.sourceInstance]: instanceId,
        // Retention ranks by this time before the creation date: these are older than the new backup.
        [TAG.approvedAt]: `2026-01-01T00:${String(i).padStart(2, '0')}:00Z`,
      });
      older.push(imageId);
    }
    // The oldest is ranked last: it falls in the second batch of DescribeImageReferences.
    const referenced = older[0]!;
    const user = await launchInstance(stack.ec2, referenced);

    const result = await withWorker('rules-refs', async (client) => {
      const run = await client.startBackup({
        region: SANDBOX_REGION,
        plan,
        instanceIds: [instanceId],
        retention: { keep: 1 },
      });
      return client.result<BackupResult>(run.workflowId);
    });

    const byImage = Object.fromEntries(result.retention.actions.map((a) => [a.imageId, a]));
    assert.equal(result.retention.failures, 0, JSON.stringify(result.retention));
    assert.deepEqual(result.retention.errors, []);
    assert.equal(byImage[referenced]?.action, 'keep', JSON.stringify(byImage[referenced]));
    assert.ok(
      byImage[referenced]?.references?.some((arn) => arn.endsWith(`instance/${user}`)),
      JSON.stringify(byImage[referenced]),
    );
    for (const imageId of older.slice(1)) {
      assert.equal(byImage[imageId]?.action, 'deregister', `${imageId}: ${JSON.stringify(byImage[imageId])}`);
      assert.equal(await findImage(stack.ec2, imageId), undefined, `${imageId} is deregistered`);
    }
    assert.ok(await findImage(stack.ec2, referenced), 'the referenced backup is still registered');
    const newest = result.instances[0]?.imageId;
    assert.ok(newest && (await findImage(stack.ec2, newest)), 'the new backup is kept');
    const stats = stack.proxy.stats();
    assert.equal(stats.faults.referenceIdLimit ?? 0, 0, 'no call named more than 10 ids');
    assert.ok((stats.calls.DescribeImageReferences ?? 0) >= Math.ceil(12 / REFERENCE_ID_LIMIT));
  });

  it('GIVEN CreateImage refused once with SnapshotCreationPerVolumeRateExceeded WHEN an image run images an instance THEN the step is retried and the run completes with one image', async () => {
    const rate = 0.5;
    stack.proxy.configure({ seed: seedForOneLimitError('CreateImage', 0, rate), limitErrorRate: rate });
    const instanceId = await launchInstance(stack.ec2, stack.stockAmi);

    const { result, workflowId } = await withWorker('rules-limit', async (client) => {
      const run = await client.startImageFromInstance({
        region: SANDBOX_REGION,
        instanceId,
        imageName: `limit-${instanceId}`,
        mode: 'no-reboot',
      });
      return {
        result: await client.result<ImageFromInstanceResult>(run.workflowId),
        workflowId: run.workflowId,
      };
    });

    assert.equal(stack.proxy.stats().faults.limitExceeded, 1, 'the limit error was met');
    assert.equal(stack.proxy.stats().calls.CreateImage, 2, 'CreateImage was called again');
    const made = await imagesTagged(stack.ec2, TAG.workflowId, workflowId);
    assert.deepEqual(
      made.map((i) => i.ImageId),
      [result.imageId],
    );
  });

  it('GIVEN a copy rolled back after its destination name was refused elsewhere WHEN it is re-run with the same name while EC2 still holds it THEN the copy waits out the hold and completes', async () => {
    stack.proxy.configure({ nameHeldMs: 5_000 });
    const source = await createImageDirectly(
      stack.ec2,
      await launchInstance(stack.ec2, stack.stockAmi),
      `rules-src-${Date.now()}`,
    );
    const name = `rules-copy-${Date.now()}`;
    const taken = `rules-taken-${Date.now()}`;
    const eu = sandboxEc2(stack.moto.endpoint, 'eu-west-1');
    const west = sandboxEc2(stack.moto.endpoint, 'us-west-2');
    try {
      await createImageDirectly(eu, await launchInstance(eu, await stockEbsAmi(eu)), taken);
      const { first, second } = await withWorker('rules-name', async (client) => {
        const run1 = await client.startCopyImage({
          region: SANDBOX_REGION,
          imageId: source,
          destinations: [
            { region: 'us-west-2', name },
            { region: 'eu-west-1', name: taken },
          ],
        });
        const first = await client.result(run1.workflowId).then(
          () => 'completed',
          (err: unknown) => err,
        );
        const run2 = await client.startCopyImage({
          region: SANDBOX_REGION,
          imageId: source,
          destinations: [{ region: 'us-west-2', name }],
        });
        await client.result(run2.workflowId);
        return { first, second: run2.workflowId };
      });

      assert.ok(first instanceof RunFailedError && !first.cancelled, `run 1 ended ${String(first)}`);
      assert.ok((stack.proxy.stats().faults.nameHeld ?? 0) >= 1, 'the re-run met the held name');
      const copies = await imagesTagged(west, TAG.workflowId, second);
      assert.deepEqual(
        copies.map((i) => i.Name),
        [name],
      );
    } finally {
      eu.destroy();
      west.destroy();
    }
  });

  it('GIVEN Allowed AMIs enabled for the account’s own images WHEN a compliance scan runs THEN an instance of a stock image is reported not-allowed, not missing', async () => {
    // Only this test's instances: the earlier tests' would be counted too.
    await stack.moto.reset();
    stack.proxy.configure({ allowedAmis: { state: 'enabled', imageProviders: [SANDBOX_ACCOUNT] } });
    const builder = await launchInstance(stack.ec2, stack.stockAmi);
    const approved = await createImageDirectly(stack.ec2, builder, `rules-web-${Date.now()}`);
    const approval = { pipeline: 'rules-web', version: '1.0.0', approvedAt: '2026-01-01T10:00:00Z' };
    await tagApproved(stack.ec2, approved, approval);
    const onApproved = await launchInstance(stack.ec2, approved);

    const report = await withWorker('rules-allowed', async (client) => {
      const run = await client.startComplianceScan({
        name: `rules-${process.pid}`,
        regions: [SANDBOX_REGION],
      });
      return client.result<ComplianceReport>(run.workflowId);
    });

    const target = report.targets[0];
    const findings = Object.fromEntries(target?.findings.map((f) => [f.instanceId, f.classification]) ?? []);
    assert.equal(findings[builder], 'not-allowed', JSON.stringify(target?.findings));
    assert.equal(findings[onApproved], undefined, 'the approved instance is compliant');
    assert.equal(target?.counts.missing, 0, JSON.stringify(target?.counts));
    assert.ok((target?.counts['not-allowed'] ?? 0) >= 1);
    assert.ok((stack.proxy.stats().faults.notAllowed ?? 0) >= 1, 'the layer hid the stock image');
  });
});

/**
 * Tier 3: the guardrails end to end. The Temporal dev server and moto_server are started here, the
 * real worker talks to moto as it would to EC2, and the test drives it through the client library
 * and the CLI: images tagged approved the way golden-image runs tag them, instances launched from an
 * approved image, from an unknown one and from an image deregistered since, a scan classifying each,
 * the last report found by name (by hand and from a Temporal Schedule), the catalogue and the
 * launch helper.
 *
 * What moto does not model here (covered at the SDK level instead; docs/testing.md, "What the
 * sandbox does not model"): EC2 Allowed AMIs (every call answers HTTP 500:
 * test/activities/allowed-amis.test.ts and test/workflows/enforce-allowed-amis.test.ts), image deprecation (EnableImageDeprecation answers
 * HTTP 500; test/activities/catalogue.test.ts and compliance.test.ts), throttling, images shared across
 * accounts and the `ImageAllowed` verdict.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeregisterImageCommand } from '@aws-sdk/client-ec2';
import type { AmiflowClient } from '../../client';
import { NoApprovedImageError } from '../../client';
import { run } from '../../client/cli';
import { complianceWorkflowId } from '../../client/compliance';
import type { ComplianceReport } from '../../workflows/contracts';
import { recordHistory } from '../support/histories';
import { SANDBOX_ACCOUNT } from '../support/moto';
import { SANDBOX_REGION, createImageDirectly, launchInstance, stockEbsAmi } from '../support/sandbox-ec2';
import { withSandboxWorker } from '../support/sandbox-worker';
import { eventually, tagApproved } from './fixtures';
import { useE2eStack } from './stack';

const stack = useE2eStack();

async function withWorker<T>(name: string, fn: (client: AmiflowClient) => Promise<T>): Promise<T> {
  return withSandboxWorker(stack.env, stack.moto.endpoint, name, fn);
}

/** Tags an image as a golden-image run marks an approved version. */
async function approve(imageId: string, pipeline: string, version: string): Promise<void> {
  const approvedAt = `2026-01-0${version.endsWith('0') ? 1 : 2}T10:00:00Z`;
  await tagApproved(stack.ec2, imageId, { pipeline, version, approvedAt });
}

/** Captures what the CLI prints while `fn` runs. */
async function cliOutput(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(' '));
  try {
    return { code: await fn(), out: lines.join('\n') };
  } finally {
    console.log = log;
  }
}

void describe('guardrails end to end (dev server + moto + real worker + client)', () => {
  void it('GIVEN instances from an approved image, a stock image and a deregistered image WHEN scanned THEN each is classified as such, and the last report, the catalogue and the launch helper agree', async () => {
    await stack.moto.reset();
    const stock = await stockEbsAmi(stack.ec2);
    const builder = await launchInstance(stack.ec2, stock);
    const v1 = await createImageDirectly(stack.ec2, builder, 'web-1.0.0');
    const v2 = await createImageDirectly(stack.ec2, builder, 'web-1.1.0');
    const doomed = await createImageDirectly(stack.ec2, builder, 'scratch');
    await approve(v1, 'web', '1.0.0');
    await approve(v2, 'web', '1.1.0');
    const onApproved = await launchInstance(stack.ec2, v2);
    const onOlderStopped = await launchInstance(stack.ec2, v1, { stopped: true });
    const onStock = await launchInstance(stack.ec2, stock);
    const onDeregistered = await launchInstance(stack.ec2, doomed);
    await stack.ec2.send(new DeregisterImageCommand({ ImageId: doomed }));
    const name = `sandbox-${process.pid}`;

    await withWorker('compliance-e2e', async (client) => {
      const t0 = Date.now();
      const started = await client.startComplianceScan({ name, regions: [SANDBOX_REGION] });
      assert.equal(started.workflowId, complianceWorkflowId(name));
      const report = await client.result<ComplianceReport>(started.workflowId);
      await recordHistory(client.handle(started.workflowId), 'e2e-compliance-scan');
      const scanMs = Date.now() - t0;

      const [target] = report.targets;
      assert.equal(report.targets.length, 1);
      assert.equal(target?.status, 'scanned');
      assert.equal(target?.account, 'self');
      assert.deepEqual(target?.counts, {
        approved: 2,
        'approved-deprecated': 0,
        unknown: 2,
        'not-allowed': 0,
        missing: 1,
        instances: 5,
      });
      assert.deepEqual(
        Object.fromEntries(
          target?.findings.map((f) => [f.instanceId, [f.classification, f.imageId, f.state]]) ?? [],
        ),
        {
          [builder]: ['unknown', stock, 'running'],
          [onStock]: ['unknown', stock, 'running'],
          [onDeregistered]: ['missing', doomed, 'running'],
        },
      );
      assert.ok(
        !target?.findings.some((f) => f.instanceId === onApproved || f.instanceId === onOlderStopped),
      );
      const images = Object.fromEntries(target?.images.map((i) => [i.imageId, i]) ?? []);
      assert.deepEqual(
        [images[v2]?.classification, images[v2]?.pipeline, images[v2]?.version, images[v2]?.instances],
        ['approved', 'web', '1.1.0', 1],
      );
      assert.deepEqual([images[v1]?.classification, images[v1]?.instances], ['approved', 1]);
      assert.equal(images[stock]?.classification, 'unknown');
      assert.equal(
        images[stock]?.ownerId === SANDBOX_ACCOUNT,
        false,
        'a stock image is not the account’s own',
      );
      assert.equal(report.catalogue.images, 2);
      assert.equal(report.compliant, false);

      // The last report, by name, without scanning again (visibility catches up within moments).
      const last = await eventually('the scan in visibility', () => client.lastComplianceReport(name));
      assert.deepEqual(last, report);

      // The CLI shows the same report to people.
      const cli = await cliOutput(() =>
        run(['compliance', 'report', '--name', name, '--strict'], () => Promise.resolve(client)),
      );
      assert.equal(cli.code, 3, 'not compliant, --strict');
      assert.match(cli.out, /NOT COMPLIANT: 3 of 5 instance\(s\)/);
      assert.match(cli.out, new RegExp(`${onStock}\\s+running\\s+${stock}\\s+unknown`));

      // The catalogue and the launch helper.
      const catalogue = await client.listApprovedImages({ regions: [SANDBOX_REGION], pipelines: ['web'] });
      assert.deepEqual(
        catalogue.images.map((i) => [i.imageId, i.version, i.approvedBy]).sort(),
        [
          [v1, '1.0.0', 'alice@example.com'],
          [v2, '1.1.0', 'alice@example.com'],
        ].sort(),
      );
      const resolved = await client.resolveApprovedImage('web', SANDBOX_REGION);
      assert.deepEqual(
        [resolved.imageId, resolved.version, resolved.ownerId],
        [v2, '1.1.0', SANDBOX_ACCOUNT],
      );
      await assert.rejects(client.resolveApprovedImage('batch', SANDBOX_REGION), (err: unknown) => {
        assert.ok(err instanceof NoApprovedImageError);
        assert.match(err.message, /pipeline 'batch' has no approved image to launch in us-east-1/);
        return true;
      });
      console.log(
        `compliance scan in the sandbox (5 instances, 1 region): ${scanMs} ms from start to report`,
      );
    });
  });

  void it('GIVEN a scan on a Temporal Schedule WHEN triggered THEN its run is found as the last report of that name', async () => {
    await stack.moto.reset();
    const stock = await stockEbsAmi(stack.ec2);
    await launchInstance(stack.ec2, stock);
    const name = `scheduled-${process.pid}`;

    await withWorker('compliance-schedule-e2e', async (client) => {
      const { scheduleId } = await client.scheduleComplianceScan(
        { name, regions: [SANDBOX_REGION] },
        { every: '24h' },
      );
      const schedule = client.temporal.schedule.getHandle(scheduleId);
      try {
        await schedule.trigger();
        const last = await eventually(
          'the scheduled scan, completed, in visibility',
          () => client.lastComplianceReport(name),
          60_000,
        );
        assert.ok(last.workflowId.startsWith(`${complianceWorkflowId(name)}-`), last.workflowId);
        assert.equal(last.totals.instances, 1);
        assert.equal(last.totals.unknown, 1);
        // The schedule commands (amiflow schedule describe|pause|trigger|delete) see it like any other.
        const details = await client.schedules.describe(scheduleId);
        assert.deepEqual(
          [details.workflowType, details.overlap, details.workflowId],
          ['complianceScan', 'SKIP', complianceWorkflowId(name)],
        );
      } finally {
        await schedule.delete();
      }
    });
  });
});

/**
 * Tier 3: shareImage, unshareImage and copyImage end to end. The Temporal dev server and moto_server
 * are started by the e2e stack; the real worker talks to moto; the test drives it with the client
 * library and checks the sandbox from outside, region by region, with its own EC2 clients.
 *
 * What moto cannot do is covered at the SDK level (test/activities) and said in docs/testing.md
 * ("What the sandbox does not model"): it has one account (no cross-account visibility, so no cross-account copy), makes unencrypted
 * snapshots from encrypted volumes (so no KMS grant path), ignores CopyImage's ClientToken,
 * encryption and TagSpecifications (the copy activity tags the copy itself right after), and makes
 * copies `available` at once (a `failed` copy is injected with `hookWorkerAws`).
 */
import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';
import type { EC2Client, Image } from '@aws-sdk/client-ec2';
import {
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeSnapshotAttributeCommand,
  ModifyImageAttributeCommand,
} from '@aws-sdk/client-ec2';
import type { CopyImageResult, ShareImageResult, UnshareImageResult, AmiflowClient } from '../../client';
import type { DestinationOutcome } from '../../workflows/contracts';
import { FailureType, MANAGED_BY_VALUE, TAG, WORKFLOW_TYPES } from '../../workflows/contracts';
import { recordHistory } from '../support/histories';
import type { WorkerAwsHooks } from '../support/sandbox-ec2';
import {
  SANDBOX_REGION,
  createImageDirectly,
  findImage,
  launchInstance,
  ownSnapshots,
  sandboxEc2,
  snapshotIdsOfImage,
  snapshotsByIds,
  stockEbsAmi,
  tagMap,
  tagResource,
} from '../support/sandbox-ec2';
import { withSandboxWorker } from '../support/sandbox-worker';
import { recordedFailure, recordedResult, stepRunning } from './fixtures';
import { useE2eStack } from './stack';

const TARGET_ACCOUNT = '444455556666';
const OTHER_ACCOUNT = '555566667777';
const OU = 'arn:aws:organizations::111122223333:ou/o-a1b2c3d4e5/ou-ab12-cdef3456';
const COPY_REGIONS = ['us-west-2', 'eu-west-1'] as const;
const SOURCE_TAGS = { team: 'platform', app: 'web' };

const stack = useE2eStack();
/** The sandbox's EC2 in the copy regions (the stack's client is the source region's). */
const ec2: Record<string, EC2Client> = {};
let stockAmi: string;

function ec2In(region: string): EC2Client {
  if (region === SANDBOX_REGION) return stack.ec2;
  ec2[region] ??= sandboxEc2(stack.moto.endpoint, region);
  return ec2[region];
}

async function withWorker<T>(
  name: string,
  fn: (client: AmiflowClient, hooks: WorkerAwsHooks) => Promise<T>,
): Promise<T> {
  return withSandboxWorker(stack.env, stack.moto.endpoint, name, fn);
}

/**
 * An AMI of the sandbox account in the source region, with user tags; `image` is where a run finds
 * it (region and id, as every share and copy input names its source).
 */
async function sourceImage(
  name: string,
): Promise<{ imageId: string; snapshotIds: string[]; image: { region: string; imageId: string } }> {
  const source = ec2In(SANDBOX_REGION);
  const imageId = await createImageDirectly(source, await launchInstance(source, stockAmi), name);
  await tagResource(source, imageId, SOURCE_TAGS);
  const image = await findImage(source, imageId);
  return {
    imageId,
    snapshotIds: image ? snapshotIdsOfImage(image) : [],
    image: { region: SANDBOX_REGION, imageId },
  };
}

async function launchPermissions(imageId: string): Promise<unknown[]> {
  const out = await ec2In(SANDBOX_REGION).send(
    new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'launchPermission' }),
  );
  return out.LaunchPermissions ?? [];
}

async function volumePermissions(snapshotId: string): Promise<unknown[]> {
  const out = await ec2In(SANDBOX_REGION).send(
    new DescribeSnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: 'createVolumePermission' }),
  );
  return out.CreateVolumePermissions ?? [];
}

async function imagesOfRun(region: string, workflowId: string): Promise<Image[]> {
  const out = await ec2In(region).send(
    new DescribeImagesCommand({
      Owners: ['self'],
      Filters: [{ Name: `tag:${TAG.workflowId}`, Values: [workflowId] }],
    }),
  );
  return out.Images ?? [];
}

async function snapshotIdsIn(region: string): Promise<string[]> {
  return (await ownSnapshots(ec2In(region))).map((s) => s.SnapshotId ?? '').sort();
}

void describe('shareImage and copyImage end to end (dev server + moto + real worker + client)', () => {
  after(() => {
    for (const c of Object.values(ec2)) c.destroy();
  });

  beforeEach(async () => {
    await stack.moto.reset();
    stockAmi = await stockEbsAmi(ec2In(SANDBOX_REGION));
  });

  void it('GIVEN an image another account can launch already WHEN it is shared with an account and an OU (copy allowed), then unshared THEN the permissions are visible in EC2, and unsharing removes exactly those it added', async () => {
    const { imageId, snapshotIds, image } = await sourceImage('amiflow-e2e-share');
    await ec2In(SANDBOX_REGION).send(
      new ModifyImageAttributeCommand({
        ImageId: imageId,
        LaunchPermission: { Add: [{ UserId: OTHER_ACCOUNT }] },
      }),
    );

    const { shared, during, unshared } = await withWorker('e2e-share', async (client) => {
      const run = await client.startShareImage({
        ...image,
        targets: { accountIds: [TARGET_ACCOUNT, OTHER_ACCOUNT], organizationalUnitArns: [OU] },
        allowCopy: true,
      });
      const shared = await client.result<ShareImageResult>(run.workflowId);
      const during = {
        launch: await launchPermissions(imageId),
        volumes: await Promise.all(snapshotIds.map(volumePermissions)),
      };
      const un = await client.startUnshareImage(run.workflowId);
      const unshared = await client.result<UnshareImageResult>(un.workflowId);
      await recordHistory(client.handle(run.workflowId), 'e2e-share-image-open-ended');
      await recordHistory(client.handle(un.workflowId), 'e2e-unshare-image');
      return { shared, during, unshared };
    });

    // THEN the share recorded only what it added, and EC2 shows it
    assert.deepEqual(shared.added.launchPermissions, [
      { userId: TARGET_ACCOUNT },
      { organizationalUnitArn: OU },
    ]);
    assert.deepEqual(shared.alreadyPresent.launchPermissions, [{ userId: OTHER_ACCOUNT }]);
    assert.equal(shared.encryption, 'unencrypted');
    assert.deepEqual(
      new Set(during.launch),
      new Set([{ UserId: OTHER_ACCOUNT }, { UserId: TARGET_ACCOUNT }, { OrganizationalUnitArn: OU }]),
    );
    assert.ok(snapshotIds.length > 0);
    for (const v of during.volumes)
      assert.deepEqual(
        v.map((p) => (p as { UserId?: string }).UserId).sort(),
        [OTHER_ACCOUNT, TARGET_ACCOUNT].sort(),
      );
    // The other account could launch it before, but not copy it: its copy right is the share's.
    assert.deepEqual(
      shared.added.snapshotPermissions,
      snapshotIds.map((snapshotId) => ({ snapshotId, userIds: [TARGET_ACCOUNT, OTHER_ACCOUNT] })),
    );
    // THEN unsharing withdrew exactly that: the account that could launch it before still can
    assert.deepEqual(unshared.withdrawn, shared.added);
    assert.deepEqual(await launchPermissions(imageId), [{ UserId: OTHER_ACCOUNT }]);
    for (const s of snapshotIds) assert.deepEqual(await volumePermissions(s), []);
  });

  void it('GIVEN a time-limited share on the dev server WHEN the end is brought to now by an update THEN it is withdrawn at once', async () => {
    const { imageId, image } = await sourceImage('amiflow-e2e-share-expiry');

    const { result, seen } = await withWorker('e2e-share-expiry', async (client) => {
      const run = await client.startShareImage({
        ...image,
        targets: { accountIds: [TARGET_ACCOUNT] },
        durationSeconds: 7 * 24 * 3600,
      });
      await stepRunning(client, run.workflowId, 'shared until expiry');
      const seen = await launchPermissions(imageId);
      await client.setShareExpiry(run.workflowId, { expiresInSeconds: 0 });
      const result = await recordedResult<ShareImageResult>(
        client,
        run.workflowId,
        'e2e-share-image-ended-by-update',
      );
      return { result, seen };
    });

    assert.deepEqual(seen, [{ UserId: TARGET_ACCOUNT }]);
    assert.ok(result.withdrawnAt, 'the result says when it was withdrawn');
    assert.ok(Date.parse(result.withdrawnAt) - Date.parse(result.sharedAt) < 60_000);
    assert.deepEqual(await launchPermissions(imageId), []);
  });

  void it('GIVEN an image WHEN it is copied to two more regions THEN each region has an available copy with the source tags, the run tags and tagged snapshots', async () => {
    const { imageId, image } = await sourceImage('amiflow-e2e-copy');

    const { result, workflowId } = await withWorker('e2e-copy', async (client) => {
      const run = await client.startCopyImage({
        ...image,
        destinations: COPY_REGIONS.map((region) => ({ region })),
        tags: { purpose: 'dr' },
      });
      const result = await recordedResult<CopyImageResult>(
        client,
        run.workflowId,
        'e2e-copy-image-two-regions',
      );
      return { result, workflowId: run.workflowId };
    });

    assert.equal(result.outcome, 'complete');
    assert.equal(result.share, undefined, 'same account: nothing shared');
    for (const region of COPY_REGIONS) {
      const d = result.destinations.find((x) => x.region === region) as DestinationOutcome;
      assert.equal(d.status, 'copied');
      const copies = await imagesOfRun(region, workflowId);
      assert.deepEqual(
        copies.map((c) => c.ImageId),
        [d.imageId],
        `one copy in ${region}`,
      );
      const copy = copies[0] as Image;
      assert.equal(copy.State, 'available');
      assert.equal(copy.Name, 'amiflow-e2e-copy');
      const expected = {
        ...SOURCE_TAGS,
        purpose: 'dr',
        [TAG.managedBy]: MANAGED_BY_VALUE,
        [TAG.workflowId]: workflowId,
        [TAG.workflowType]: WORKFLOW_TYPES.copyImage,
        [TAG.sourceImage]: imageId,
        [TAG.sourceRegion]: SANDBOX_REGION,
      };
      const { [TAG.runId]: runId, ...tags } = tagMap(copy.Tags);
      assert.ok(runId, 'the copy names the run');
      assert.deepEqual(tags, expected);
      const snaps = await snapshotsByIds(ec2In(region), snapshotIdsOfImage(copy));
      assert.ok(snaps.length > 0);
      for (const s of snaps)
        assert.equal(tagMap(s.Tags)[TAG.workflowId], workflowId, `snapshot ${s.SnapshotId} tagged`);
    }
  });

  void it("GIVEN one of two destinations whose copy ends 'failed' WHEN copied under 'rollback' THEN the run fails with CopyFailed and no copy, snapshot or tag of the run is left in any region", async () => {
    const { imageId, image } = await sourceImage('amiflow-e2e-rollback');
    const before = Object.fromEntries(
      await Promise.all(
        [SANDBOX_REGION, ...COPY_REGIONS].map(async (r) => [r, await snapshotIdsIn(r)] as const),
      ),
    );

    const { failure, workflowId, progress } = await withWorker('e2e-rollback', async (client, hooks) => {
      hooks.setImageState({
        imageName: 'amiflow-e2e-rollback eu',
        state: 'failed',
        reason: { Code: 'Client.InternalError', Message: 'copy failed (injected by the test)' },
      });
      const run = await client.startCopyImage({
        ...image,
        destinations: [
          { region: 'us-west-2', name: 'amiflow-e2e-rollback us' },
          { region: 'eu-west-1', name: 'amiflow-e2e-rollback eu' },
        ],
      });
      const failure = await recordedFailure(client, run.workflowId, 'e2e-copy-image-rollback');
      return { failure, workflowId: run.workflowId, progress: await client.progress(run.workflowId) };
    });

    assert.equal(failure.failureType, FailureType.CopyFailed);
    assert.match(failure.message, /copy to eu-west-1 failed: .*Client\.InternalError: copy failed/);
    assert.ok(
      progress.compensations.length > 0 && progress.compensations.every((c) => c.state === 'done'),
      JSON.stringify(progress.compensations),
    );
    // THEN region by region: no image of the run, no new snapshot; the source untouched
    for (const region of [SANDBOX_REGION, ...COPY_REGIONS]) {
      assert.deepEqual(await imagesOfRun(region, workflowId), [], `no image of the run in ${region}`);
      assert.deepEqual(await snapshotIdsIn(region), before[region], `no snapshot left in ${region}`);
    }
    assert.equal((await findImage(ec2In(SANDBOX_REGION), imageId))?.State, 'available');
  });
});

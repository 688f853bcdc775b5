/**
 * The AWS rules the fault layer models (devkit/faults/aws-rules.ts) in front of a real moto_server,
 * driven with the AWS SDK as the worker drives it: the 10-id limit of DescribeImageReferences,
 * concurrency limit errors, names held after deregistration, launch permissions reaching the
 * grantee late and Allowed AMIs. The layer's clock is the test's, so windows pass without sleeping;
 * the sandbox is read directly (no layer) to tell what was applied.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DescribeImagesCommandInput } from '@aws-sdk/client-ec2';
import {
  CopyImageCommand,
  CreateImageCommand,
  DeregisterImageCommand,
  DescribeImageReferencesCommand,
  DescribeImagesCommand,
  EC2Client,
  GetAllowedImagesSettingsCommand,
  ModifyImageAttributeCommand,
} from '@aws-sdk/client-ec2';
import { REFERENCE_ID_LIMIT, limitError } from '../../devkit/faults/aws-rules';
import { NO_FAULTS } from '../../devkit/faults/options';
import { SANDBOX_ACCOUNT, SANDBOX_CREDENTIALS } from '../../devkit/moto';
import { SANDBOX_REGION, createImageDirectly, launchInstance, ownImages } from '../../devkit/sandbox-ec2';
import type { LayeredSandbox } from './layered-sandbox';
import { errorOf, useLayeredSandbox } from './layered-sandbox';

const GRANTEE = '444455556666';

let sandbox: LayeredSandbox;
let now = 5_000_000;
const clock = (): number => now;

async function visibleIds(input: DescribeImagesCommandInput): Promise<string[]> {
  const out = await sandbox.layered.send(new DescribeImagesCommand(input));
  return (out.Images ?? []).flatMap((i) => (i.ImageId ? [i.ImageId] : []));
}

describe('AWS rules modelled by the fault layer', () => {
  sandbox = useLayeredSandbox(clock);

  it('GIVEN images, one launched from WHEN DescribeImageReferences names 11 ids THEN it is refused InvalidParameterValue, and 10 ids are answered with the instance that uses one', async () => {
    const instanceId = await launchInstance(sandbox.direct, sandbox.stockAmi);
    const used = await createImageDirectly(sandbox.direct, instanceId, 'refs-used');
    const user = await launchInstance(sandbox.direct, used);
    const ids = [
      used,
      ...Array.from({ length: REFERENCE_ID_LIMIT }, (_, i) => `ami-${String(i).padStart(17, '0')}`),
    ];
    const refs = { ResourceTypes: [{ ResourceType: 'ec2:Instance' as const }] };

    const refused = await errorOf(
      sandbox.layered.send(new DescribeImageReferencesCommand({ ImageIds: ids, ...refs })),
    );
    assert.equal(refused.name, 'InvalidParameterValue');
    assert.match(refused.message, /between 1 and 10 image ids \(it has 11\)/);

    const out = await sandbox.layered.send(
      new DescribeImageReferencesCommand({ ImageIds: ids.slice(0, REFERENCE_ID_LIMIT), ...refs }),
    );
    assert.deepEqual(
      (out.ImageReferences ?? []).map((r) => [r.ImageId, r.ResourceType, r.Arn]),
      [[used, 'ec2:Instance', `arn:aws:ec2:${SANDBOX_REGION}:${SANDBOX_ACCOUNT}:instance/${user}`]],
    );
    assert.equal(sandbox.proxy.stats().faults.referenceIdLimit, 1);
  });

  it('GIVEN limit errors at rate 1 WHEN CreateImage and CopyImage are called THEN they fail with a concurrency limit code and nothing is applied; at rate 0 they succeed', async () => {
    const instanceId = await launchInstance(sandbox.direct, sandbox.stockAmi);
    sandbox.proxy.configure({ limitErrorRate: 1 });
    const created = await errorOf(
      sandbox.layered.send(
        new CreateImageCommand({ InstanceId: instanceId, Name: 'limited', NoReboot: true }),
      ),
    );
    assert.ok(
      ['SnapshotCreationPerVolumeRateExceeded', 'ConcurrentSnapshotLimitExceeded'].includes(created.name),
      created.name,
    );
    const copied = await errorOf(
      sandbox.layered.send(
        new CopyImageCommand({ SourceImageId: sandbox.stockAmi, SourceRegion: SANDBOX_REGION, Name: 'c' }),
      ),
    );
    assert.equal(copied.name, 'ResourceLimitExceeded');
    assert.deepEqual(await ownImages(sandbox.direct), [], 'a refused call is not applied');
    assert.equal(sandbox.proxy.stats().faults.limitExceeded, 2);

    sandbox.proxy.configure({ limitErrorRate: 0 });
    const out = await sandbox.layered.send(
      new CreateImageCommand({ InstanceId: instanceId, Name: 'limited', NoReboot: true }),
    );
    assert.ok(out.ImageId);
  });

  it('GIVEN a code draw WHEN a limit error is chosen THEN CreateImage gets one of its two codes by the draw and other actions none', () => {
    assert.match(limitError('CreateImage', 0.1)?.body ?? '', /SnapshotCreationPerVolumeRateExceeded/);
    assert.match(limitError('CreateImage', 0.9)?.body ?? '', /ConcurrentSnapshotLimitExceeded/);
    assert.match(limitError('CopyImage', 0.99)?.body ?? '', /ResourceLimitExceeded/);
    assert.equal(limitError('DescribeImages', 0.1), undefined);
  });

  it('GIVEN a 60 s name hold WHEN an image is deregistered and its name reused THEN CreateImage and CopyImage fail InvalidAMIName.Duplicate, though no image of that name is visible, until the hold has passed', async () => {
    sandbox.proxy.configure({ nameHeldMs: 60_000 });
    const instanceId = await launchInstance(sandbox.direct, sandbox.stockAmi);
    const first = await createImageDirectly(sandbox.direct, instanceId, 'held-name');
    await sandbox.layered.send(new DeregisterImageCommand({ ImageId: first }));

    assert.deepEqual(
      await visibleIds({ Owners: ['self'], Filters: [{ Name: 'name', Values: ['held-name'] }] }),
      [],
    );
    const again = await errorOf(
      sandbox.layered.send(
        new CreateImageCommand({ InstanceId: instanceId, Name: 'held-name', NoReboot: true }),
      ),
    );
    assert.equal(again.name, 'InvalidAMIName.Duplicate');
    assert.match(again.message, new RegExp(first));
    const copy = await errorOf(
      sandbox.layered.send(
        new CopyImageCommand({
          SourceImageId: sandbox.stockAmi,
          SourceRegion: SANDBOX_REGION,
          Name: 'held-name',
        }),
      ),
    );
    assert.equal(copy.name, 'InvalidAMIName.Duplicate');
    // Another region does not hold it.
    const west = new EC2Client({
      region: 'us-west-2',
      endpoint: sandbox.proxy.endpoint,
      credentials: SANDBOX_CREDENTIALS,
      maxAttempts: 1,
    });
    try {
      const out = await west.send(
        new CopyImageCommand({
          SourceImageId: sandbox.stockAmi,
          SourceRegion: SANDBOX_REGION,
          Name: 'held-name',
        }),
      );
      assert.ok(out.ImageId);
    } finally {
      west.destroy();
    }

    now += 60_000;
    const later = await sandbox.layered.send(
      new CreateImageCommand({ InstanceId: instanceId, Name: 'held-name', NoReboot: true }),
    );
    assert.ok(later.ImageId);
    assert.equal(sandbox.proxy.stats().faults.nameHeld, 2);
  });

  it('GIVEN a 30 s share visibility delay WHEN a launch permission is added THEN DescribeImages ExecutableBy the grantee leaves the image out until the delay has passed, and the owner sees it at once', async () => {
    sandbox.proxy.configure({ shareVisibilityMs: 30_000 });
    const imageId = await createImageDirectly(
      sandbox.direct,
      await launchInstance(sandbox.direct, sandbox.stockAmi),
      'shared',
    );
    await sandbox.layered.send(
      new ModifyImageAttributeCommand({ ImageId: imageId, LaunchPermission: { Add: [{ UserId: GRANTEE }] } }),
    );

    // moto ignores ExecutableBy (it lists every image), so the image is asked for by id as well.
    const asGrantee = { ImageIds: [imageId], ExecutableUsers: [GRANTEE] };
    assert.deepEqual(await visibleIds(asGrantee), []);
    assert.deepEqual(await visibleIds({ ImageIds: [imageId] }), [imageId], 'the owner sees it');
    now += 30_000;
    assert.deepEqual(await visibleIds(asGrantee), [imageId]);
    assert.equal(sandbox.proxy.stats().faults.shareNotVisible, 1);
  });

  it('GIVEN Allowed AMIs enabled for the account own images only WHEN images are described THEN GetAllowedImagesSettings says so and a stock image is left out by id and in listings; disabled or in audit mode, it is shown', async () => {
    const own = await createImageDirectly(
      sandbox.direct,
      await launchInstance(sandbox.direct, sandbox.stockAmi),
      'own',
    );
    sandbox.proxy.configure({ allowedAmis: { state: 'enabled', imageProviders: [SANDBOX_ACCOUNT] } });

    const settings = await sandbox.layered.send(new GetAllowedImagesSettingsCommand({}));
    assert.equal(settings.State, 'enabled');
    assert.deepEqual(
      settings.ImageCriteria?.map((c) => c.ImageProviders),
      [[SANDBOX_ACCOUNT]],
    );
    assert.deepEqual(await visibleIds({ ImageIds: [sandbox.stockAmi, own] }), [own]);
    assert.ok(!(await visibleIds({ Owners: ['amazon'] })).includes(sandbox.stockAmi));
    assert.ok((sandbox.proxy.stats().faults.notAllowed ?? 0) >= 2);

    sandbox.proxy.configure({ allowedAmis: { state: 'enabled', imageProviders: ['amazon'] } });
    assert.deepEqual(await visibleIds({ ImageIds: [sandbox.stockAmi, own] }), [sandbox.stockAmi]);

    sandbox.proxy.configure({ allowedAmis: { state: 'audit-mode', imageProviders: [] } });
    assert.deepEqual(
      (await visibleIds({ ImageIds: [sandbox.stockAmi, own] })).sort(),
      [sandbox.stockAmi, own].sort(),
    );
    sandbox.proxy.configure(NO_FAULTS);
    assert.equal((await sandbox.layered.send(new GetAllowedImagesSettingsCommand({}))).State, 'disabled');
  });
});

/**
 * The AWS rules the fault layer models (devkit/faults/aws-rules.ts) in front of a real moto_server,
 * driven with the AWS SDK as the worker drives it: the 10-id limit of DescribeImageReferences,
 * concurrency limit errors, names held after deregistration, launch permissions reaching the
 * grantee late and Allowed AMIs. The layer's clock is the test's, so windows pass without sleeping;
 * the sandbox is read directly (no layer) to tell what was applied.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { DescribeImagesCommandInput, EC2ServiceException } from '@aws-sdk/client-ec2';
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
import type { FaultProxy } from '../../devkit/faults/fault-proxy';
import { startFaultProxy } from '../../devkit/faults/fault-proxy';
import { NO_FAULTS, faultOptionsFromEnv } from '../../devkit/faults/options';
import type { Moto } from '../../devkit/moto';
import { SANDBOX_ACCOUNT, SANDBOX_CREDENTIALS, startMoto } from '../../devkit/moto';
import {
  SANDBOX_REGION,
  createImageDirectly,
  launchInstance,
  ownImages,
  sandboxEc2,
  stockEbsAmi,
} from '../../devkit/sandbox-ec2';

const GRANTEE = '444455556666';

let moto: Moto;
let proxy: FaultProxy;
/** The sandbox itself, without the layer: the truth. */
let direct: EC2Client;
/** The sandbox through the layer, with no SDK retries so every fault is seen. */
let layered: EC2Client;
let stockAmi: string;
let now = 5_000_000;
const clock = (): number => now;

async function errorOf(p: Promise<unknown>): Promise<EC2ServiceException> {
  try {
    await p;
  } catch (err) {
    return err as EC2ServiceException;
  }
  throw new Error('expected the call to fail');
}

async function visibleIds(input: DescribeImagesCommandInput): Promise<string[]> {
  const out = await layered.send(new DescribeImagesCommand(input));
  return (out.Images ?? []).flatMap((i) => (i.ImageId ? [i.ImageId] : []));
}

describe('AWS rules modelled by the fault layer', () => {
  before(async () => {
    moto = await startMoto();
    proxy = await startFaultProxy({ target: moto.endpoint, clock });
    direct = sandboxEc2(moto.endpoint);
    layered = new EC2Client({
      region: SANDBOX_REGION,
      endpoint: proxy.endpoint,
      credentials: SANDBOX_CREDENTIALS,
      maxAttempts: 1,
    });
    stockAmi = await stockEbsAmi(direct);
  });
  after(async () => {
    layered?.destroy();
    direct?.destroy();
    await proxy?.stop();
    await moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    proxy.reset();
    proxy.configure(NO_FAULTS);
  });

  it('GIVEN images, one launched from WHEN DescribeImageReferences names 11 ids THEN it is refused InvalidParameterValue, and 10 ids are answered with the instance that uses one', async () => {
    const instanceId = await launchInstance(direct, stockAmi);
    const used = await createImageDirectly(direct, instanceId, 'refs-used');
    const user = await launchInstance(direct, used);
    const ids = [
      used,
      ...Array.from({ length: REFERENCE_ID_LIMIT }, (_, i) => `ami-${String(i).padStart(17, '0')}`),
    ];
    const refs = { ResourceTypes: [{ ResourceType: 'ec2:Instance' as const }] };

    const refused = await errorOf(
      layered.send(new DescribeImageReferencesCommand({ ImageIds: ids, ...refs })),
    );
    assert.equal(refused.name, 'InvalidParameterValue');
    assert.match(refused.message, /between 1 and 10 image ids \(it has 11\)/);

    const out = await layered.send(
      new DescribeImageReferencesCommand({ ImageIds: ids.slice(0, REFERENCE_ID_LIMIT), ...refs }),
    );
    assert.deepEqual(
      (out.ImageReferences ?? []).map((r) => [r.ImageId, r.ResourceType, r.Arn]),
      [[used, 'ec2:Instance', `arn:aws:ec2:${SANDBOX_REGION}:${SANDBOX_ACCOUNT}:instance/${user}`]],
    );
    assert.equal(proxy.stats().faults.referenceIdLimit, 1);
  });

  it('GIVEN limit errors at rate 1 WHEN CreateImage and CopyImage are called THEN they fail with a concurrency limit code and nothing is applied; at rate 0 they succeed', async () => {
    const instanceId = await launchInstance(direct, stockAmi);
    proxy.configure({ limitErrorRate: 1 });
    const created = await errorOf(
      layered.send(new CreateImageCommand({ InstanceId: instanceId, Name: 'limited', NoReboot: true })),
    );
    assert.ok(
      ['SnapshotCreationPerVolumeRateExceeded', 'ConcurrentSnapshotLimitExceeded'].includes(created.name),
      created.name,
    );
    const copied = await errorOf(
      layered.send(
        new CopyImageCommand({ SourceImageId: stockAmi, SourceRegion: SANDBOX_REGION, Name: 'c' }),
      ),
    );
    assert.equal(copied.name, 'ResourceLimitExceeded');
    assert.deepEqual(await ownImages(direct), [], 'a refused call is not applied');
    assert.equal(proxy.stats().faults.limitExceeded, 2);

    proxy.configure({ limitErrorRate: 0 });
    const out = await layered.send(
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
    proxy.configure({ nameHeldMs: 60_000 });
    const instanceId = await launchInstance(direct, stockAmi);
    const first = await createImageDirectly(direct, instanceId, 'held-name');
    await layered.send(new DeregisterImageCommand({ ImageId: first }));

    assert.deepEqual(
      await visibleIds({ Owners: ['self'], Filters: [{ Name: 'name', Values: ['held-name'] }] }),
      [],
    );
    const again = await errorOf(
      layered.send(new CreateImageCommand({ InstanceId: instanceId, Name: 'held-name', NoReboot: true })),
    );
    assert.equal(again.name, 'InvalidAMIName.Duplicate');
    assert.match(again.message, new RegExp(first));
    const copy = await errorOf(
      layered.send(
        new CopyImageCommand({ SourceImageId: stockAmi, SourceRegion: SANDBOX_REGION, Name: 'held-name' }),
      ),
    );
    assert.equal(copy.name, 'InvalidAMIName.Duplicate');
    // Another region does not hold it.
    const west = new EC2Client({
      region: 'us-west-2',
      endpoint: proxy.endpoint,
      credentials: SANDBOX_CREDENTIALS,
      maxAttempts: 1,
    });
    try {
      const out = await west.send(
        new CopyImageCommand({ SourceImageId: stockAmi, SourceRegion: SANDBOX_REGION, Name: 'held-name' }),
      );
      assert.ok(out.ImageId);
    } finally {
      west.destroy();
    }

    now += 60_000;
    const later = await layered.send(
      new CreateImageCommand({ InstanceId: instanceId, Name: 'held-name', NoReboot: true }),
    );
    assert.ok(later.ImageId);
    assert.equal(proxy.stats().faults.nameHeld, 2);
  });

  it('GIVEN a 30 s share visibility delay WHEN a launch permission is added THEN DescribeImages ExecutableBy the grantee leaves the image out until the delay has passed, and the owner sees it at once', async () => {
    proxy.configure({ shareVisibilityMs: 30_000 });
    const imageId = await createImageDirectly(direct, await launchInstance(direct, stockAmi), 'shared');
    await layered.send(
      new ModifyImageAttributeCommand({ ImageId: imageId, LaunchPermission: { Add: [{ UserId: GRANTEE }] } }),
    );

    // moto ignores ExecutableBy (it lists every image), so the image is asked for by id as well.
    const asGrantee = { ImageIds: [imageId], ExecutableUsers: [GRANTEE] };
    assert.deepEqual(await visibleIds(asGrantee), []);
    assert.deepEqual(await visibleIds({ ImageIds: [imageId] }), [imageId], 'the owner sees it');
    now += 30_000;
    assert.deepEqual(await visibleIds(asGrantee), [imageId]);
    assert.equal(proxy.stats().faults.shareNotVisible, 1);
  });

  it('GIVEN Allowed AMIs enabled for the account own images only WHEN images are described THEN GetAllowedImagesSettings says so and a stock image is left out by id and in listings; disabled or in audit mode, it is shown', async () => {
    const own = await createImageDirectly(direct, await launchInstance(direct, stockAmi), 'own');
    proxy.configure({ allowedAmis: { state: 'enabled', imageProviders: [SANDBOX_ACCOUNT] } });

    const settings = await layered.send(new GetAllowedImagesSettingsCommand({}));
    assert.equal(settings.State, 'enabled');
    assert.deepEqual(
      settings.ImageCriteria?.map((c) => c.ImageProviders),
      [[SANDBOX_ACCOUNT]],
    );
    assert.deepEqual(await visibleIds({ ImageIds: [stockAmi, own] }), [own]);
    assert.ok(!(await visibleIds({ Owners: ['amazon'] })).includes(stockAmi));
    assert.ok((proxy.stats().faults.notAllowed ?? 0) >= 2);

    proxy.configure({ allowedAmis: { state: 'enabled', imageProviders: ['amazon'] } });
    assert.deepEqual(await visibleIds({ ImageIds: [stockAmi, own] }), [stockAmi]);

    proxy.configure({ allowedAmis: { state: 'audit-mode', imageProviders: [] } });
    assert.deepEqual((await visibleIds({ ImageIds: [stockAmi, own] })).sort(), [stockAmi, own].sort());
    proxy.configure(NO_FAULTS);
    assert.equal((await layered.send(new GetAllowedImagesSettingsCommand({}))).State, 'disabled');
  });

  it('GIVEN AMIFLOW_FAULT_* variables for the rules WHEN read THEN each lands in its option, and a bad state is refused naming the variable', () => {
    const o = faultOptionsFromEnv({
      AMIFLOW_FAULT_LIMIT_ERROR_RATE: '0.25',
      AMIFLOW_FAULT_NAME_HELD_MS: '5000',
      AMIFLOW_FAULT_SHARE_VISIBILITY_MS: '7000',
      AMIFLOW_FAULT_ALLOWED_AMIS_STATE: 'enabled',
      AMIFLOW_FAULT_ALLOWED_IMAGE_PROVIDERS: 'amazon, 123456789012',
    });
    assert.deepEqual(
      [o.limitErrorRate, o.nameHeldMs, o.shareVisibilityMs, o.allowedAmis],
      [0.25, 5000, 7000, { state: 'enabled', imageProviders: ['amazon', '123456789012'] }],
    );
    assert.throws(
      () => faultOptionsFromEnv({ AMIFLOW_FAULT_ALLOWED_AMIS_STATE: 'on' }),
      /AMIFLOW_FAULT_ALLOWED_AMIS_STATE=on must be disabled, enabled or audit-mode/,
    );
  });
});

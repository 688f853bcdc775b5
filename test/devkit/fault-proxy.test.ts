/**
 * The fault layer (devkit/faults) in front of a real moto_server, driven with the AWS SDK as the
 * worker drives it. The layer's clock is the test's, so windows pass without sleeping. The sandbox
 * is read directly (no layer) to tell what was really applied from what the caller was told.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CopyImageCommand,
  CreateImageCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { FaultOptions } from '../../devkit/faults/options';
import { faultOptionsFromEnv } from '../../devkit/faults/options';
import { unitDraw } from '../../devkit/faults/random';
import {
  SANDBOX_REGION,
  findImage,
  instanceState,
  launchInstance,
  ownImages,
  snapshotIdsOfImage,
  tagMap,
} from '../../devkit/sandbox-ec2';
import type { LayeredSandbox } from './layered-sandbox';
import { errorOf, useLayeredSandbox } from './layered-sandbox';

let sandbox: LayeredSandbox;
let now = 1_000_000;
const clock = (): number => now;

async function imageOf(instanceId: string, name: string): Promise<string> {
  const out = await sandbox.layered.send(
    new CreateImageCommand({ InstanceId: instanceId, Name: name, NoReboot: true }),
  );
  assert.ok(out.ImageId);
  return out.ImageId;
}

/**
 * The layer shows the instance `state` (mid-transition, where the sandbox has already finished)
 * and refuses the opposite call with IncorrectInstanceState, as EC2 does.
 */
async function assertMidTransition(
  instanceId: string,
  state: 'stopping' | 'pending',
  refused: 'StartInstances' | 'StopInstances',
): Promise<void> {
  const ids = { InstanceIds: [instanceId] };
  const seen = await sandbox.layered.send(new DescribeInstancesCommand(ids));
  assert.equal(seen.Reservations?.[0]?.Instances?.[0]?.State?.Name, state);
  const err = await errorOf(
    refused === 'StartInstances'
      ? sandbox.layered.send(new StartInstancesCommand(ids))
      : sandbox.layered.send(new StopInstancesCommand(ids)),
  );
  assert.equal(err.name, 'IncorrectInstanceState', `${refused} while ${state}`);
}

describe('fault layer in front of the sandbox', () => {
  sandbox = useLayeredSandbox(clock);

  it('GIVEN a 10 s consistency window WHEN an image is created THEN by id it is NotFound and listings omit it until the window has passed', async () => {
    sandbox.proxy.configure({ consistencyMs: 10_000 });
    const instanceId = await launchInstance(sandbox.direct, sandbox.stockAmi);
    const imageId = await imageOf(instanceId, 'window-1');
    const snapshotIds = snapshotIdsOfImage((await findImage(sandbox.direct, imageId))!);
    assert.ok(snapshotIds.length > 0);

    const byId = await errorOf(sandbox.layered.send(new DescribeImagesCommand({ ImageIds: [imageId] })));
    assert.equal(byId.name, 'InvalidAMIID.NotFound');
    const bySnap = await errorOf(
      sandbox.layered.send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotIds })),
    );
    assert.equal(bySnap.name, 'InvalidSnapshot.NotFound');
    const listed = await sandbox.layered.send(new DescribeImagesCommand({ Owners: ['self'] }));
    assert.deepEqual(listed.Images ?? [], []);
    // A mutating call is not refused unless asked for.
    await sandbox.layered.send(
      new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: 'k', Value: 'v' }] }),
    );

    now += 10_000;
    const later = await sandbox.layered.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    assert.equal(later.Images?.[0]?.ImageId, imageId);
    assert.equal(sandbox.proxy.stats().faults.notVisible, 2);
    assert.equal(sandbox.proxy.stats().faults.hiddenFromListing, 1);
  });

  it('GIVEN mutating calls inside the window WHEN CreateTags names a new copy THEN it fails NotFound and the copy still exists', async () => {
    sandbox.proxy.configure({ consistencyMs: 5_000, mutatingNotFound: true });
    const copy = await sandbox.layered.send(
      new CopyImageCommand({ SourceImageId: sandbox.stockAmi, SourceRegion: SANDBOX_REGION, Name: 'copy-1' }),
    );
    assert.ok(copy.ImageId);
    const err = await errorOf(
      sandbox.layered.send(
        new CreateTagsCommand({ Resources: [copy.ImageId], Tags: [{ Key: 'k', Value: 'v' }] }),
      ),
    );
    assert.equal(err.name, 'InvalidAMIID.NotFound');
    assert.ok(await findImage(sandbox.direct, copy.ImageId), 'the copy exists in the sandbox all along');
  });

  it('GIVEN stopping and pending durations WHEN an instance is stopped and started THEN the states show and calls in them fail IncorrectInstanceState', async () => {
    sandbox.proxy.configure({ stoppingMs: 3_000, pendingMs: 2_000, statusChecksMs: 4_000 });
    const instanceId = await launchInstance(sandbox.direct, sandbox.stockAmi);
    await sandbox.layered.send(new StopInstancesCommand({ InstanceIds: [instanceId] }));
    await assertMidTransition(instanceId, 'stopping', 'StartInstances');
    assert.equal(
      await instanceState(sandbox.direct, instanceId),
      'stopped',
      'the sandbox stopped it at once',
    );

    now += 3_000;
    await sandbox.layered.send(new StartInstancesCommand({ InstanceIds: [instanceId] }));
    await assertMidTransition(instanceId, 'pending', 'StopInstances');

    now += 2_000;
    const checks = await sandbox.layered.send(
      new DescribeInstanceStatusCommand({ InstanceIds: [instanceId] }),
    );
    assert.equal(checks.InstanceStatuses?.[0]?.InstanceStatus?.Status, 'initializing');
    now += 4_000;
    const ok = await sandbox.layered.send(new DescribeInstanceStatusCommand({ InstanceIds: [instanceId] }));
    assert.equal(ok.InstanceStatuses?.[0]?.InstanceStatus?.Status, 'ok');
  });

  it('GIVEN throttling at rate 1 WHEN any EC2 call is made THEN it fails RequestLimitExceeded without reaching the sandbox', async () => {
    sandbox.proxy.configure({ throttleRate: 1 });
    const err = await errorOf(
      sandbox.layered.send(new RunInstancesCommand({ ImageId: sandbox.stockAmi, MinCount: 1, MaxCount: 1 })),
    );
    assert.equal(err.name, 'RequestLimitExceeded');
    assert.equal(err.$metadata.httpStatusCode, 503);
    const running = await sandbox.direct.send(new DescribeInstancesCommand({}));
    assert.equal(running.Reservations?.length ?? 0, 0);
    assert.deepEqual(sandbox.proxy.stats(), { calls: { RunInstances: 1 }, faults: { throttled: 1 } });
  });

  it('GIVEN 5xx after apply WHEN CreateImage is called THEN the caller sees a 503 but the image exists, and its retry meets the unique name', async () => {
    const instanceId = await launchInstance(sandbox.direct, sandbox.stockAmi);
    sandbox.proxy.configure({ serverErrorRate: 1, serverErrorAfterApplyShare: 1 });
    const err = await errorOf(imageOf(instanceId, 'after-apply'));
    assert.equal(err.$metadata.httpStatusCode, 503);
    const made = await ownImages(sandbox.direct);
    assert.deepEqual(
      made.map((i) => i.Name),
      ['after-apply'],
    );

    sandbox.proxy.configure({ serverErrorRate: 0 });
    const retry = await errorOf(imageOf(instanceId, 'after-apply'));
    assert.equal(retry.name, 'InvalidAMIName.Duplicate');
    assert.match(retry.message, new RegExp(`in use by AMI ${made[0]?.ImageId}`));
  });

  it('GIVEN 5xx before apply WHEN CreateImage is called THEN nothing is made', async () => {
    const instanceId = await launchInstance(sandbox.direct, sandbox.stockAmi);
    sandbox.proxy.configure({ serverErrorRate: 1, serverErrorAfterApplyShare: 0 });
    const err = await errorOf(imageOf(instanceId, 'before-apply'));
    assert.equal(err.name, 'InternalError');
    assert.deepEqual(await ownImages(sandbox.direct), []);
  });

  it('GIVEN a ClientToken WHEN CopyImage and RunInstances are repeated with it THEN one copy and one instance exist, and other parameters are refused', async () => {
    const copy = () =>
      sandbox.layered.send(
        new CopyImageCommand({
          SourceImageId: sandbox.stockAmi,
          SourceRegion: SANDBOX_REGION,
          Name: 'c',
          ClientToken: 't-1',
        }),
      );
    const first = await copy();
    const second = await copy();
    assert.equal(second.ImageId, first.ImageId);
    assert.equal((await ownImages(sandbox.direct)).length, 1);
    const mismatch = await errorOf(
      sandbox.layered.send(
        new CopyImageCommand({
          SourceImageId: sandbox.stockAmi,
          SourceRegion: SANDBOX_REGION,
          Name: 'd',
          ClientToken: 't-1',
        }),
      ),
    );
    assert.equal(mismatch.name, 'IdempotentParameterMismatch');

    const run = () =>
      sandbox.layered.send(
        new RunInstancesCommand({ ImageId: sandbox.stockAmi, MinCount: 1, MaxCount: 1, ClientToken: 'r-1' }),
      );
    const a = await run();
    const b = await run();
    assert.equal(b.Instances?.[0]?.InstanceId, a.Instances?.[0]?.InstanceId);
    const all = await sandbox.direct.send(new DescribeInstancesCommand({}));
    assert.equal(all.Reservations?.flatMap((r) => r.Instances ?? []).length, 1);
    assert.equal(sandbox.proxy.stats().faults.tokenReplay, 2);
  });

  it('GIVEN CopyImage with tag specifications WHEN the copy is made THEN the copy and its snapshots carry the tags', async () => {
    const out = await sandbox.layered.send(
      new CopyImageCommand({
        SourceImageId: sandbox.stockAmi,
        SourceRegion: SANDBOX_REGION,
        Name: 'tagged',
        TagSpecifications: [
          { ResourceType: 'image', Tags: [{ Key: 'amiflow:run', Value: 'r1' }] },
          { ResourceType: 'snapshot', Tags: [{ Key: 'amiflow:run', Value: 'r1' }] },
        ],
      }),
    );
    const image = await findImage(sandbox.direct, out.ImageId!);
    assert.equal(tagMap(image?.Tags)['amiflow:run'], 'r1');
    const snaps = await sandbox.direct.send(
      new DescribeSnapshotsCommand({ SnapshotIds: snapshotIdsOfImage(image!) }),
    );
    assert.ok((snaps.Snapshots ?? []).length > 0, 'the copy has snapshots');
    for (const s of snaps.Snapshots ?? []) assert.equal(tagMap(s.Tags)['amiflow:run'], 'r1');
  });

  it('GIVEN images pending for 4 s WHEN a new image is described THEN it is pending, then available', async () => {
    sandbox.proxy.configure({ imagePendingMs: 4_000 });
    const imageId = await imageOf(await launchInstance(sandbox.direct, sandbox.stockAmi), 'slow');
    const first = await sandbox.layered.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    assert.equal(first.Images?.[0]?.State, 'pending');
    now += 4_000;
    const later = await sandbox.layered.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    assert.equal(later.Images?.[0]?.State, 'available');
  });

  it('GIVEN the same seed WHEN the same calls are made THEN the same calls are throttled; another seed throttles others', async () => {
    const pattern = async (seed: number): Promise<string> => {
      sandbox.proxy.reset();
      sandbox.proxy.configure({ seed, throttleRate: 0.5 });
      let out = '';
      for (let i = 0; i < 16; i++) {
        const ok = await sandbox.layered.send(new DescribeImagesCommand({ Owners: ['self'] })).then(
          () => true,
          () => false,
        );
        out += ok ? '.' : 'T';
      }
      return out;
    };
    const a = await pattern(7);
    assert.equal(await pattern(7), a);
    assert.notEqual(await pattern(8), a);
    assert.ok(a.includes('T') && a.includes('.'), a);
  });
});

describe('fault layer options and draws', () => {
  // Each row: the variables set, what lands in the options (the rest stay at their base), and one
  // bad value refused naming its variable.
  const fromEnv = [
    {
      what: 'the fault figures',
      then: 'they override the base, and a bad one is refused by name',
      env: {
        AMIFLOW_FAULT_SEED: '42',
        AMIFLOW_FAULT_CONSISTENCY_MS: '10000',
        AMIFLOW_FAULT_MUTATING_NOT_FOUND: '1',
        AMIFLOW_FAULT_THROTTLE_RATE: '0.2',
        AMIFLOW_FAULT_LATENCY_MS: '5-40',
      },
      options: {
        seed: 42,
        consistencyMs: 10_000,
        mutatingNotFound: true,
        throttleRate: 0.2,
        latencyMs: [5, 40],
      },
      unset: { stoppingMs: 0 },
      bad: { AMIFLOW_FAULT_THROTTLE_RATE: '2' },
      refused: /AMIFLOW_FAULT_THROTTLE_RATE=2/,
    },
    {
      what: 'the AWS rules',
      then: 'each lands in its option, and a bad state is refused naming the variable',
      env: {
        AMIFLOW_FAULT_LIMIT_ERROR_RATE: '0.25',
        AMIFLOW_FAULT_NAME_HELD_MS: '5000',
        AMIFLOW_FAULT_SHARE_VISIBILITY_MS: '7000',
        AMIFLOW_FAULT_ALLOWED_AMIS_STATE: 'enabled',
        AMIFLOW_FAULT_ALLOWED_IMAGE_PROVIDERS: 'amazon, 123456789012',
      },
      options: {
        limitErrorRate: 0.25,
        nameHeldMs: 5000,
        shareVisibilityMs: 7000,
        allowedAmis: { state: 'enabled', imageProviders: ['amazon', '123456789012'] },
      },
      unset: {},
      bad: { AMIFLOW_FAULT_ALLOWED_AMIS_STATE: 'on' },
      refused: /AMIFLOW_FAULT_ALLOWED_AMIS_STATE=on must be disabled, enabled or audit-mode/,
    },
  ] satisfies {
    what: string;
    then: string;
    env: Record<string, string>;
    options: Partial<FaultOptions>;
    unset: Partial<FaultOptions>;
    bad: Record<string, string>;
    refused: RegExp;
  }[];
  for (const c of fromEnv)
    it(`GIVEN AMIFLOW_FAULT_* variables for ${c.what} WHEN read THEN ${c.then}`, () => {
      const o = faultOptionsFromEnv(c.env);
      const expected = { ...c.options, ...c.unset };
      const read = Object.fromEntries(Object.keys(expected).map((k) => [k, o[k as keyof FaultOptions]]));
      assert.deepEqual(read, expected);
      assert.throws(() => faultOptionsFromEnv(c.bad), c.refused);
    });

  it('GIVEN many keys WHEN drawn THEN draws are uniform enough and stable per (seed, key)', () => {
    const draws = Array.from({ length: 10_000 }, (_, i) => unitDraw(3, `k|${i}`));
    const below = draws.filter((d) => d < 0.2).length;
    assert.ok(below > 1_800 && below < 2_200, `${below} of 10000 below 0.2`);
    assert.equal(unitDraw(3, 'k|1'), draws[1]);
    assert.ok(draws.every((d) => d >= 0 && d < 1));
  });
});

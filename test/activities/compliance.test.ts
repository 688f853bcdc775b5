/**
 * activities/compliance.ts at the SDK level: the DescribeInstances request (running and stopped,
 * MaxResults, NextToken) and its pagination across thousands of instances in several regions, the
 * images described in batches of 100, each classification (approved by the catalogue, by the
 * account's own approval tags, by an allowed owner; approved-deprecated by time and by disabling;
 * unknown; missing), findings capped, throttled pages asked for again, and permanent errors.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  GetAllowedImagesSettingsCommand,
} from '@aws-sdk/client-ec2';
import type { ScanInstancesInput } from '../../activities/compliance';
import { INSTANCE_PAGE } from '../../activities/compliance';
import { IMAGE_BATCH } from '../../activities/throttled-reads';
import type { TargetReport } from '../../workflows/contracts';
import { APPROVED_VALUE, FailureType, TAG } from '../../workflows/contracts';
import type { FleetInstance } from '../support/fake-fleet';
import { FLEET_SELF, FakeFleet } from '../support/fake-fleet';
import type { ActivityDeps } from '../../activities';
import { createActivities } from '../../activities';
import { DEFAULT_POLL_POLICY } from '../../activities/waiting';
import { awsError, nonRetryableFailure } from './failures';
import { ACCOUNT, REGION, T0, TARGET } from './fixtures';
import { VirtualClock, activityEnv, commandNames, harness } from './harness';

const DAY = 24 * 3600 * 1000;
const TOOLING = '111100001111';
const REGIONS = ['eu-west-1', 'eu-central-1', 'us-east-1'] as const;

function fleetActivities(fleet: FakeFleet) {
  const clock = new VirtualClock();
  const deps: ActivityDeps = { aws: fleet.clients(), clock, random: () => 0.5, policy: DEFAULT_POLL_POLICY };
  return { clock, activities: createActivities(deps) };
}

function scanInput(region: string, overrides: Partial<ScanInstancesInput> = {}): ScanInstancesInput {
  return {
    target: { region, accountId: ACCOUNT },
    approved: [],
    allowedOwners: [],
    maxFindings: 100,
    ...overrides,
  };
}

void describe('scanInstances: pagination', () => {
  void it('GIVEN one page WHEN scanned THEN DescribeInstances asks for running and stopped instances, 1000 a page', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });

    const out = await activityEnv().run(h.activities.scanInstances, scanInput(REGION, { target: TARGET }));

    assert.deepEqual(h.ec2Mock.commandCalls(DescribeInstancesCommand)[0]?.args[0].input, {
      Filters: [{ Name: 'instance-state-name', Values: ['running', 'stopped'] }],
      MaxResults: 1000,
    });
    assert.equal(
      h.ec2Mock.commandCalls(DescribeImagesCommand).length,
      0,
      'no instances: no image to describe',
    );
    assert.equal(out.counts.instances, 0);
    assert.equal(out.status, 'scanned');
  });

  void it('GIVEN 2,500, 1,000 and 7 instances in three regions, on 250 images WHEN each region is scanned THEN every page is read once (3, 1, 1 pages), each instance counted once, and the images described 100 at a time', async () => {
    const fleet = new FakeFleet();
    const images = Array.from({ length: 250 }, (_, i) => `ami-0${i.toString(16).padStart(16, '0')}`);
    for (const id of images)
      fleet.addImage({ imageId: id, region: 'eu-west-1', ownerId: TOOLING, sharedWith: [ACCOUNT] });
    fleet.addImage({ imageId: 'ami-0cccccccccccccccc', region: 'eu-central-1', ownerId: ACCOUNT });
    fleet.addImage({ imageId: 'ami-0dddddddddddddddd', region: 'us-east-1', ownerId: ACCOUNT });
    fleet.addInstances(
      ACCOUNT,
      'eu-west-1',
      ...Array.from({ length: 2_500 }, (_, i): FleetInstance => ({
        instanceId: `i-0${i.toString(16).padStart(16, '0')}`,
        imageId: images[i % images.length] as string,
        state: i % 5 === 0 ? 'stopped' : 'running',
      })),
      // Not scanned: on their way out or in.
      { instanceId: 'i-0fffffffffffffff1', imageId: images[0] as string, state: 'terminated' },
      { instanceId: 'i-0fffffffffffffff2', imageId: images[0] as string, state: 'pending' },
    );
    fleet.addMany(ACCOUNT, 'eu-central-1', 'ami-0cccccccccccccccc', 1_000, 'c');
    fleet.addMany(ACCOUNT, 'us-east-1', 'ami-0dddddddddddddddd', 7, 'd');
    const { activities } = fleetActivities(fleet);

    const reports: TargetReport[] = [];
    for (const region of REGIONS)
      reports.push(await activityEnv().run(activities.scanInstances, scanInput(region)));

    assert.deepEqual(
      reports.map((r) => [r.region, r.counts.instances, r.counts.unknown]),
      [
        ['eu-west-1', 2_500, 2_500],
        ['eu-central-1', 1_000, 1_000],
        ['us-east-1', 7, 7],
      ],
    );
    assert.deepEqual(
      REGIONS.map((r) => fleet.count(ACCOUNT, r, 'DescribeInstancesCommand')),
      [Math.ceil(2_500 / INSTANCE_PAGE), 1, 1],
    );
    assert.deepEqual(
      REGIONS.map((r) => fleet.count(ACCOUNT, r, 'DescribeImagesCommand')),
      [Math.ceil(250 / IMAGE_BATCH), 1, 1],
    );
    const westImages = reports[0]?.images ?? [];
    assert.equal(westImages.length, 250);
    assert.equal(
      westImages.reduce((n, i) => n + i.instances, 0),
      2_500,
    );
    assert.equal(
      reports[0]?.awsCalls,
      1 + 3 + 3,
      'Allowed AMIs state, 3 pages of instances, 3 batches of images',
    );
    assert.equal(reports[0]?.findings.length, 100, 'findings capped at maxFindings');
    assert.equal(reports[0]?.findingsOmitted, 2_400);
  });

  void it('GIVEN 2,100 instances and DescribeInstances throttled three times WHEN scanned THEN the throttled request is sent again after backoffs, every instance counted once, and the throttling counted', async () => {
    const fleet = new FakeFleet();
    fleet.addImage({ imageId: 'ami-0cccccccccccccccc', region: REGION, ownerId: ACCOUNT });
    fleet.addMany(ACCOUNT, REGION, 'ami-0cccccccccccccccc', 2_100, 'e');
    const { activities, clock } = fleetActivities(fleet);
    const env = activityEnv();
    const first = await env.run(activities.scanInstances, scanInput(REGION));
    const pagesServed = fleet.count(ACCOUNT, REGION, 'DescribeInstancesCommand');
    assert.equal(pagesServed, 3);
    fleet.throttle(ACCOUNT, REGION, 'DescribeInstancesCommand', 3);

    const again = await env.run(activities.scanInstances, scanInput(REGION));

    assert.equal(first.counts.instances, 2_100);
    assert.equal(again.counts.instances, 2_100);
    assert.equal(again.throttled, 3);
    assert.equal(fleet.count(ACCOUNT, REGION, 'DescribeInstancesCommand') - pagesServed, 3 + 3);
    assert.deepEqual(clock.sleeps, [1000, 2000, 4000]);
    assert.ok(
      env.heartbeats.length >= 3 + 3,
      `heartbeats per wait and per page, got ${env.heartbeats.length}`,
    );
  });

  void it('GIVEN a throttled page in the middle WHEN scanned THEN the request repeated carries the NextToken of that page', async () => {
    const h = harness();
    h.ec2Mock
      .on(DescribeInstancesCommand, { NextToken: undefined })
      .resolves({
        Reservations: [
          {
            Instances: [
              {
                InstanceId: 'i-0aaaaaaaaaaaaaaa1',
                ImageId: 'ami-0aaaaaaaaaaaaaaa1',
                State: { Name: 'running' },
              },
            ],
          },
        ],
        NextToken: 't2',
      })
      .on(DescribeInstancesCommand, { NextToken: 't2' })
      .rejectsOnce(awsError('RequestLimitExceeded', 503))
      .resolves({
        Reservations: [
          {
            Instances: [
              {
                InstanceId: 'i-0aaaaaaaaaaaaaaa2',
                ImageId: 'ami-0aaaaaaaaaaaaaaa1',
                State: { Name: 'stopped' },
              },
            ],
          },
        ],
      });
    h.ec2Mock
      .on(DescribeImagesCommand)
      .resolves({ Images: [{ ImageId: 'ami-0aaaaaaaaaaaaaaa1', OwnerId: ACCOUNT, State: 'available' }] });

    const out = await activityEnv().run(h.activities.scanInstances, scanInput(REGION, { target: TARGET }));

    assert.deepEqual(
      h.ec2Mock.commandCalls(DescribeInstancesCommand).map((c) => c.args[0].input.NextToken),
      [undefined, 't2', 't2'],
    );
    assert.equal(out.counts.instances, 2);
    assert.deepEqual(
      out.findings.map((f) => [f.instanceId, f.state]),
      [
        ['i-0aaaaaaaaaaaaaaa1', 'running'],
        ['i-0aaaaaaaaaaaaaaa2', 'stopped'],
      ],
    );
  });

  void it('GIVEN the role may not list instances WHEN scanned THEN a non-retryable AwsUnauthorized names the region and account', async () => {
    const h = harness();
    h.ec2Mock.on(DescribeInstancesCommand).rejects(awsError('UnauthorizedOperation', 403));

    await nonRetryableFailure(
      activityEnv().run(h.activities.scanInstances, scanInput(REGION, { target: TARGET })),
      FailureType.AwsUnauthorized,
      `listing instances in region ${REGION}, account ${ACCOUNT}`,
    );
  });
});

void describe('scanInstances: classification', () => {
  const APPROVED = 'ami-0a00000000000000a';
  const OWN_COPY = 'ami-0a00000000000000b';
  const OTHER_PIPELINE = 'ami-0a00000000000000c';
  const AMAZON = 'ami-0a00000000000000d';
  const DEPRECATED = 'ami-0a00000000000000e';
  const DISABLED = 'ami-0a00000000000000f';
  const SOMEONES = 'ami-0b00000000000000a';
  const GONE = 'ami-0b00000000000000b';
  const approvalTags = (pipeline: string) => ({
    [TAG.approved]: APPROVED_VALUE,
    [TAG.pipeline]: pipeline,
    [TAG.version]: '2.0.0',
  });

  function scenario() {
    const fleet = new FakeFleet()
      .addImage({
        imageId: APPROVED,
        region: REGION,
        ownerId: TOOLING,
        sharedWith: [ACCOUNT],
        name: 'web-1.0.0',
      })
      .addImage({ imageId: OWN_COPY, region: REGION, ownerId: ACCOUNT, tags: approvalTags('web') })
      .addImage({ imageId: OTHER_PIPELINE, region: REGION, ownerId: ACCOUNT, tags: approvalTags('batch') })
      .addImage({
        imageId: AMAZON,
        region: REGION,
        ownerId: '137112412989',
        ownerAlias: 'amazon',
        public: true,
      })
      .addImage({
        imageId: DEPRECATED,
        region: REGION,
        ownerId: TOOLING,
        sharedWith: [ACCOUNT],
        deprecationTime: new Date(T0 - DAY).toISOString(),
      })
      .addImage({
        imageId: DISABLED,
        region: REGION,
        ownerId: TOOLING,
        sharedWith: [ACCOUNT],
        state: 'disabled',
      })
      .addImage({
        imageId: SOMEONES,
        region: REGION,
        ownerId: '222233334444',
        public: true,
        name: 'community-image',
      });
    const ids = [APPROVED, OWN_COPY, OTHER_PIPELINE, AMAZON, DEPRECATED, DISABLED, SOMEONES, GONE];
    fleet.addInstances(
      ACCOUNT,
      REGION,
      ...ids.map((imageId, i) => ({
        instanceId: `i-0c0000000000000${i.toString(16).padStart(2, '0')}`,
        imageId,
        state: 'running' as const,
        name: `app-${i}`,
      })),
    );
    return fleet;
  }

  void it('GIVEN one instance on each kind of image WHEN scanned THEN each is classified as the catalogue, its own tags, the allow list, deprecation and EC2 say', async () => {
    const fleet = scenario();
    const { activities } = fleetActivities(fleet);

    const out = await activityEnv().run(
      activities.scanInstances,
      scanInput(REGION, {
        approved: [
          { imageId: APPROVED, basis: 'approval-tags', pipeline: 'web', version: '1.0.0' },
          { imageId: DEPRECATED, basis: 'approval-tags', pipeline: 'web', version: '0.9.0' },
          { imageId: DISABLED, basis: 'approval-tags', pipeline: 'web', version: '0.8.0' },
        ],
        allowedOwners: ['amazon'],
        pipelines: ['web'],
      }),
    );

    const by = Object.fromEntries(out.images.map((i) => [i.imageId, i]));
    assert.deepEqual(Object.fromEntries(out.images.map((i) => [i.imageId, [i.classification, i.basis]])), {
      [APPROVED]: ['approved', 'approval-tags'],
      [OWN_COPY]: ['approved', 'approval-tags'], // the account's own copy, tagged approved
      [OTHER_PIPELINE]: ['unknown', undefined], // tagged approved, but for a pipeline not asked for
      [AMAZON]: ['approved', 'allow-list'], // an allowed owner, by alias
      [DEPRECATED]: ['approved-deprecated', 'approval-tags'],
      [DISABLED]: ['approved-deprecated', 'approval-tags'],
      [SOMEONES]: ['unknown', undefined],
      [GONE]: ['missing', undefined],
    });
    assert.equal(by[APPROVED]?.version, '1.0.0');
    assert.equal(by[OWN_COPY]?.pipeline, 'web');
    assert.equal(by[SOMEONES]?.ownerId, '222233334444');
    assert.deepEqual(out.counts, {
      approved: 3,
      'approved-deprecated': 2,
      unknown: 2,
      'not-allowed': 0,
      missing: 1,
      instances: 8,
    });
    // Most severe first.
    assert.deepEqual(out.images.map((i) => i.classification).slice(0, 3), ['missing', 'unknown', 'unknown']);
    assert.deepEqual(
      out.findings.map((f) => [f.imageId, f.classification, f.name]).sort(),
      [
        [DEPRECATED, 'approved-deprecated', 'app-4'],
        [DISABLED, 'approved-deprecated', 'app-5'],
        [GONE, 'missing', 'app-7'],
        [OTHER_PIPELINE, 'unknown', 'app-2'],
        [SOMEONES, 'unknown', 'app-6'],
      ].sort(),
    );
    assert.match(out.warnings.join(' '), /1 instance\(s\) run images EC2 no longer describes/);
    // The batch of 8 named an id EC2 does not know: split 8 → 4 + 4 → … until it was alone.
    assert.equal(fleet.count(ACCOUNT, REGION, 'DescribeImagesCommand'), 1 + 2 + 2 + 2);
  });

  void it('GIVEN the catalogue marks an image retired that this account still sees current WHEN scanned THEN it is approved-deprecated', async () => {
    const fleet = scenario();
    const { activities } = fleetActivities(fleet);

    const out = await activityEnv().run(
      activities.scanInstances,
      scanInput(REGION, { approved: [{ imageId: APPROVED, basis: 'approval-tags', deprecated: true }] }),
    );

    assert.equal(out.images.find((i) => i.imageId === APPROVED)?.classification, 'approved-deprecated');
  });

  void it('GIVEN the account scanned is the worker’s own WHEN scanned THEN the report names it self', async () => {
    const fleet = new FakeFleet().addImage({ imageId: APPROVED, region: REGION, ownerId: FLEET_SELF });
    fleet.addInstances(FLEET_SELF, REGION, {
      instanceId: 'i-0d00000000000000a',
      imageId: APPROVED,
      state: 'stopped',
    });
    const { activities } = fleetActivities(fleet);

    const out = await activityEnv().run(activities.scanInstances, {
      target: { region: REGION },
      approved: [{ imageId: APPROVED, basis: 'approval-tags' }],
      allowedOwners: [],
      maxFindings: 10,
    });

    assert.equal(out.account, 'self');
    assert.deepEqual(out.counts, {
      approved: 1,
      'approved-deprecated': 0,
      unknown: 0,
      'not-allowed': 0,
      missing: 0,
      instances: 1,
    });
    assert.deepEqual(out.findings, []);
  });
});

void describe('scanInstances: Allowed AMIs hides images', () => {
  const ALLOWED = 'ami-0a0000000000000a1';
  const HIDDEN = 'ami-0b0000000000000b1';

  /** Two instances, one on an image DescribeImages shows and one on an image it leaves out. */
  function fleetWithHiddenImage(h: ReturnType<typeof harness>) {
    h.ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            { InstanceId: 'i-0a0000000000000a1', ImageId: ALLOWED, State: { Name: 'running' } },
            { InstanceId: 'i-0b0000000000000b1', ImageId: HIDDEN, State: { Name: 'running' } },
          ],
        },
      ],
    });
    h.ec2Mock
      .on(DescribeImagesCommand)
      .resolves({ Images: [{ ImageId: ALLOWED, OwnerId: '555500005555', State: 'available' }] });
  }

  void it('GIVEN Allowed AMIs enabled WHEN scanned THEN its state is read first, and the image DescribeImages leaves out is "not-allowed", not "missing"', async () => {
    const h = harness();
    fleetWithHiddenImage(h);
    h.ec2Mock.on(GetAllowedImagesSettingsCommand).resolves({ State: 'enabled', ImageCriteria: [] });

    const out = await activityEnv().run(h.activities.scanInstances, scanInput(REGION, { target: TARGET }));

    assert.equal(commandNames(h.ec2Mock)[0], 'GetAllowedImagesSettings');
    assert.equal(out.counts['not-allowed'], 1);
    assert.equal(out.counts.missing, 0);
    assert.equal(out.counts.unknown, 1);
    assert.deepEqual(
      out.findings.map((f) => [f.imageId, f.classification]),
      [
        [ALLOWED, 'unknown'],
        [HIDDEN, 'not-allowed'],
      ],
    );
    assert.deepEqual(
      out.images.find((i) => i.imageId === HIDDEN),
      {
        imageId: HIDDEN,
        classification: 'not-allowed',
        allowedByEc2: false,
        instances: 1,
      },
    );
    assert.ok(
      out.warnings.some((w) => w.includes('Allowed AMIs (enabled) does not allow')),
      String(out.warnings),
    );
  });

  for (const state of ['disabled', 'audit-mode']) {
    void it(`GIVEN Allowed AMIs ${state} WHEN scanned THEN an image EC2 does not describe is "missing" (deregistered)`, async () => {
      const h = harness();
      fleetWithHiddenImage(h);
      h.ec2Mock.on(GetAllowedImagesSettingsCommand).resolves({ State: state });

      const out = await activityEnv().run(h.activities.scanInstances, scanInput(REGION, { target: TARGET }));

      assert.equal(out.counts.missing, 1);
      assert.equal(out.counts['not-allowed'], 0);
    });
  }

  void it('GIVEN the state cannot be read (not authorized) WHEN scanned THEN the scan goes on, counts the image as missing and says why it may be wrong', async () => {
    const h = harness();
    fleetWithHiddenImage(h);
    h.ec2Mock.on(GetAllowedImagesSettingsCommand).rejects(awsError('UnauthorizedOperation', 403));

    const out = await activityEnv().run(h.activities.scanInstances, scanInput(REGION, { target: TARGET }));

    assert.equal(out.status, 'scanned');
    assert.equal(out.counts.missing, 1);
    assert.ok(
      out.warnings.some((w) => w.includes('Allowed AMIs state could not be read (UnauthorizedOperation)')),
      String(out.warnings),
    );
  });
});

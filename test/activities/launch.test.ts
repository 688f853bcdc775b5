/**
 * The migration activities (activities/launch.ts) against a mocked EC2 client: the plan mirrors the
 * source attribute by attribute and is read-only, the subnet choice, every refusal, the RunInstances
 * request and its stable ClientToken, idempotent launches, the status-check wait, and the
 * compensation that terminates only what this run launched.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Address, Instance, Subnet, Volume } from '@aws-sdk/client-ec2';
import * as EC2 from '@aws-sdk/client-ec2';
import type { LaunchInput, MigrationPlan, MigrationPlanInput } from '../../activities/launch';
import { launchClientToken, pickSubnet, runInstancesRequest, userTags } from '../../activities/launch';
import { FailureType, MANAGED_BY_VALUE, TAG } from '../../workflows/contracts';
import type { Harness } from './harness';
import { awsError, errorOf, nonRetryableFailure } from './failures';
import { INSTANCE_ID, RUN_ID, T0, TARGET, WORKFLOW_ID, reservation } from './fixtures';
import { activityEnv, commandNames, harness } from './harness';
import { SOURCE_SUBNET, VPC, subnet, vpcInstance } from './migration-fixtures';

const NEW_ID = 'i-0bbbbbbbbbbbbbbb1';
const AMI = 'ami-0cccccccccccccccc';
const KEY_ROOT = 'arn:aws:kms:eu-west-1:111122223333:key/11111111-1111-1111-1111-111111111111';
const KEY_DATA = 'arn:aws:kms:eu-west-1:111122223333:key/22222222-2222-2222-2222-222222222222';
const USER_DATA = Buffer.from('#!/bin/sh\nsystemctl start web\n').toString('base64');
const owner = { workflowId: WORKFLOW_ID, runId: RUN_ID };
/** The compensation of a launch: terminate NEW_ID if this run launched it. */
const undoNewInstance = { target: TARGET, owner, instanceId: NEW_ID };

/** A source with every attribute the migration mirrors set to something other than its default. */
function source(extra: Partial<Instance> = {}): Instance {
  return vpcInstance({
    RootDeviceName: '/dev/xvda',
    Placement: { AvailabilityZone: 'eu-west-1a', Tenancy: 'dedicated', GroupName: 'web-spread' },
    SecurityGroups: [
      { GroupId: 'sg-0aaaaaaaaaaaaaaa1', GroupName: 'web' },
      { GroupId: 'sg-0aaaaaaaaaaaaaaa2', GroupName: 'ssh' },
    ],
    KeyName: 'ops-2025',
    IamInstanceProfile: { Arn: 'arn:aws:iam::111122223333:instance-profile/web', Id: 'AIPAEXAMPLE' },
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { VolumeId: 'vol-0root000000000001', DeleteOnTermination: true } },
      { DeviceName: '/dev/sdf', Ebs: { VolumeId: 'vol-0data000000000001', DeleteOnTermination: false } },
      { DeviceName: '/dev/sdg', Ebs: { VolumeId: 'vol-0logs000000000001', DeleteOnTermination: true } },
    ],
    Tags: [
      { Key: 'Name', Value: 'web-1' },
      { Key: 'team', Value: 'web' },
      { Key: 'aws:cloudformation:stack-name', Value: 'web-stack' },
      { Key: 'amiflow:workflow-id', Value: 'an-earlier-migration' },
    ],
    MetadataOptions: {
      State: 'applied',
      HttpTokens: 'required',
      HttpPutResponseHopLimit: 2,
      HttpEndpoint: 'enabled',
      HttpProtocolIpv6: 'disabled',
      InstanceMetadataTags: 'enabled',
    },
    EbsOptimized: true,
    Monitoring: { State: 'enabled' },
    HibernationOptions: { Configured: true },
    EnclaveOptions: { Enabled: false },
    PrivateDnsNameOptions: {
      HostnameType: 'resource-name',
      EnableResourceNameDnsARecord: true,
      EnableResourceNameDnsAAAARecord: false,
    },
    NetworkInterfaces: [
      {
        NetworkInterfaceId: 'eni-0aaaaaaaaaaaaaaa1',
        Attachment: { DeviceIndex: 0, DeleteOnTermination: true },
        PrivateIpAddress: '10.0.1.17',
        PrivateIpAddresses: [{ PrivateIpAddress: '10.0.1.17', Primary: true }],
        Ipv6Addresses: [],
      },
    ],
    ...extra,
  });
}

const VOLUMES: Volume[] = [
  {
    VolumeId: 'vol-0root000000000001',
    Size: 30,
    VolumeType: 'gp3',
    Iops: 4000,
    Throughput: 250,
    Encrypted: true,
    KmsKeyId: KEY_ROOT,
    Tags: [
      { Key: 'backup', Value: 'daily' },
      { Key: 'aws:backup:source-resource', Value: 'x' },
    ],
  },
  {
    VolumeId: 'vol-0data000000000001',
    Size: 500,
    VolumeType: 'io2',
    Iops: 16000,
    Encrypted: true,
    KmsKeyId: KEY_DATA,
  },
  // st1 reports no IOPS to carry; unencrypted stays as the account's default makes it.
  {
    VolumeId: 'vol-0logs000000000001',
    Size: 125,
    VolumeType: 'st1',
    Encrypted: false,
    Tags: [{ Key: 'purpose', Value: 'logs' }],
  },
];

const TARGET_SUBNETS = [
  subnet('subnet-0bbbbbbbbbbbbbbb1', 'eu-west-1b', 100),
  subnet('subnet-0bbbbbbbbbbbbbbb2', 'eu-west-1b', 250),
  // Most free addresses, but public while the source's subnet is private.
  subnet('subnet-0bbbbbbbbbbbbbbb3', 'eu-west-1b', 4000, true),
];

interface World {
  instance?: Instance;
  attributes?: {
    userData?: string;
    terminationProtected?: boolean;
    stopProtected?: boolean;
    shutdown?: string;
  };
  volumes?: Volume[];
  addresses?: Address[];
  targetSubnets?: Subnet[];
  zone?: { state: string } | 'unknown' | 'error';
  offered?: boolean;
  placementStrategy?: string;
}

/** EC2 as it answers for `world`: the source, its attributes, volumes, addresses and the target AZ's network. */
function mockSource(h: Harness, world: World = {}): void {
  const i = world.instance ?? source();
  const a = world.attributes ?? {};
  h.ec2Mock.on(EC2.DescribeInstancesCommand, { InstanceIds: [INSTANCE_ID] }).resolves(reservation(i));
  h.ec2Mock
    .on(EC2.DescribeInstanceAttributeCommand, { Attribute: 'userData' })
    .resolves({ UserData: { Value: a.userData ?? USER_DATA } })
    .on(EC2.DescribeInstanceAttributeCommand, { Attribute: 'disableApiTermination' })
    .resolves({ DisableApiTermination: { Value: a.terminationProtected ?? true } })
    .on(EC2.DescribeInstanceAttributeCommand, { Attribute: 'disableApiStop' })
    .resolves({ DisableApiStop: { Value: a.stopProtected ?? false } })
    .on(EC2.DescribeInstanceAttributeCommand, { Attribute: 'instanceInitiatedShutdownBehavior' })
    .resolves({ InstanceInitiatedShutdownBehavior: { Value: a.shutdown ?? 'terminate' } });
  h.ec2Mock
    .on(EC2.DescribeSubnetsCommand, { SubnetIds: [SOURCE_SUBNET] })
    .resolves({ Subnets: [subnet(SOURCE_SUBNET, 'eu-west-1a', 10)] })
    .on(EC2.DescribeSubnetsCommand, {
      Filters: [
        { Name: 'vpc-id', Values: [VPC] },
        { Name: 'availability-zone', Values: ['eu-west-1b'] },
      ],
    })
    .resolves({ Subnets: world.targetSubnets ?? TARGET_SUBNETS });
  for (const s of [...TARGET_SUBNETS, ...(world.targetSubnets ?? [])])
    h.ec2Mock.on(EC2.DescribeSubnetsCommand, { SubnetIds: [s.SubnetId ?? ''] }).resolves({ Subnets: [s] });
  const zone = world.zone ?? { state: 'available' };
  if (zone === 'error')
    h.ec2Mock
      .on(EC2.DescribeAvailabilityZonesCommand)
      .rejects(awsError('InvalidParameterValue', 400, "The zone 'x' does not exist"));
  else
    h.ec2Mock.on(EC2.DescribeAvailabilityZonesCommand).resolves({
      AvailabilityZones:
        zone === 'unknown' ? [] : [{ ZoneName: 'eu-west-1b', State: zone.state as 'available' }],
    });
  h.ec2Mock.on(EC2.DescribeVolumesCommand).resolves({ Volumes: world.volumes ?? VOLUMES });
  h.ec2Mock.on(EC2.DescribeAddressesCommand).resolves({ Addresses: world.addresses ?? [] });
  h.ec2Mock
    .on(EC2.DescribeInstanceCreditSpecificationsCommand)
    .resolves({ InstanceCreditSpecifications: [{ InstanceId: INSTANCE_ID, CpuCredits: 'unlimited' }] });
  h.ec2Mock
    .on(EC2.DescribeInstanceTypeOfferingsCommand)
    .callsFake((input: { Filters?: { Values?: string[] }[] }) => ({
      InstanceTypeOfferings:
        world.offered === false
          ? []
          : [
              {
                InstanceType: input.Filters?.[1]?.Values?.[0],
                LocationType: 'availability-zone',
                Location: 'eu-west-1b',
              },
            ],
    }));
  h.ec2Mock.on(EC2.DescribePlacementGroupsCommand).resolves({
    PlacementGroups: [
      { GroupName: 'web-spread', Strategy: (world.placementStrategy ?? 'spread') as 'spread' },
    ],
  });
}

const planInput: MigrationPlanInput = {
  target: TARGET,
  instanceId: INSTANCE_ID,
  targetAvailabilityZone: 'eu-west-1b',
  sourceAction: 'stop',
};

function plan(h: Harness, input: Partial<MigrationPlanInput> = {}): Promise<MigrationPlan> {
  return activityEnv().run(h.activities.planMigration, { ...planInput, ...input });
}

/** What the plan for `source()` is: each attribute of the source, carried over. */
const EXPECTED_PLAN: MigrationPlan = {
  source: {
    instanceId: INSTANCE_ID,
    state: 'running',
    availabilityZone: 'eu-west-1a',
    subnetId: SOURCE_SUBNET,
    vpcId: VPC,
    instanceType: 't3.large',
    privateIpAddress: '10.0.1.17',
    terminationProtected: true,
  },
  launch: {
    instanceType: 't3.large',
    availabilityZone: 'eu-west-1b',
    subnetId: 'subnet-0bbbbbbbbbbbbbbb2',
    securityGroupIds: ['sg-0aaaaaaaaaaaaaaa1', 'sg-0aaaaaaaaaaaaaaa2'],
    keyName: 'ops-2025',
    iamInstanceProfileArn: 'arn:aws:iam::111122223333:instance-profile/web',
    blockDevices: [
      {
        deviceName: '/dev/xvda',
        volumeSize: 30,
        volumeType: 'gp3',
        iops: 4000,
        throughput: 250,
        deleteOnTermination: true,
        encrypted: true,
        kmsKeyId: KEY_ROOT,
      },
      {
        deviceName: '/dev/sdf',
        volumeSize: 500,
        volumeType: 'io2',
        iops: 16000,
        deleteOnTermination: false,
        encrypted: true,
        kmsKeyId: KEY_DATA,
      },
      {
        deviceName: '/dev/sdg',
        volumeSize: 125,
        volumeType: 'st1',
        deleteOnTermination: true,
        encrypted: false,
      },
    ],
    tags: { Name: 'web-1', team: 'web' },
    userData: USER_DATA,
    metadataOptions: {
      httpTokens: 'required',
      httpPutResponseHopLimit: 2,
      httpEndpoint: 'enabled',
      httpProtocolIpv6: 'disabled',
      instanceMetadataTags: 'enabled',
    },
    disableApiTermination: true,
    ebsOptimized: true,
    monitoring: true,
    tenancy: 'dedicated',
    placementGroupName: 'web-spread',
    cpuCredits: 'unlimited',
    shutdownBehavior: 'terminate',
    hibernation: true,
    privateDnsNameOptions: {
      hostnameType: 'resource-name',
      enableResourceNameDnsARecord: true,
      enableResourceNameDnsAAAARecord: false,
    },
  },
  volumeTags: { '/dev/xvda': { backup: 'daily' }, '/dev/sdg': { purpose: 'logs' } },
  notCarriedOver: ['private IP 10.0.1.17 (the new subnet has other addresses)'],
};

const OWNER_TAGS = {
  [TAG.managedBy]: MANAGED_BY_VALUE,
  [TAG.workflowId]: WORKFLOW_ID,
  [TAG.runId]: RUN_ID,
  [TAG.workflowType]: 'migrateInstance',
  [TAG.sourceInstance]: INSTANCE_ID,
};

function launchInput(spec = EXPECTED_PLAN.launch): LaunchInput {
  return { target: TARGET, imageId: AMI, spec, owner, ownerTags: OWNER_TAGS };
}

void describe('planMigration', () => {
  void it('GIVEN a source with every mirrored attribute set WHEN planned THEN the launch spec carries each one over, and only Describe calls were made', async () => {
    const h = harness();
    mockSource(h);

    const p = await plan(h);

    assert.deepEqual(p, EXPECTED_PLAN);
    assert.ok(
      commandNames(h.ec2Mock).every((c) => c.startsWith('Describe')),
      `read-only: ${commandNames(h.ec2Mock).join(', ')}`,
    );
    assert.deepEqual(h.ec2Mock.commandCalls(EC2.DescribeSubnetsCommand)[1]?.args[0].input, {
      Filters: [
        { Name: 'vpc-id', Values: [VPC] },
        { Name: 'availability-zone', Values: ['eu-west-1b'] },
      ],
    });
    assert.deepEqual(h.ec2Mock.commandCalls(EC2.DescribeInstanceTypeOfferingsCommand)[0]?.args[0].input, {
      LocationType: 'availability-zone',
      Filters: [
        { Name: 'location', Values: ['eu-west-1b'] },
        { Name: 'instance-type', Values: ['t3.large'] },
      ],
    });
    assert.deepEqual(h.ec2Mock.commandCalls(EC2.DescribeAddressesCommand)[0]?.args[0].input, {
      Filters: [{ Name: 'instance-id', Values: [INSTANCE_ID] }],
    });
  });

  void it('GIVEN overrides WHEN planned THEN the instance type, subnet and security groups are the given ones, and a non-burstable type gets no credit option', async () => {
    const h = harness();
    mockSource(h);

    const p = await plan(h, {
      targetAvailabilityZone: undefined,
      overrides: {
        instanceType: 'm7i.large',
        subnetId: 'subnet-0bbbbbbbbbbbbbbb1',
        securityGroupIds: ['sg-0cccccccccccccccc'],
      },
    });

    assert.equal(p.launch.instanceType, 'm7i.large');
    assert.equal(p.launch.subnetId, 'subnet-0bbbbbbbbbbbbbbb1');
    assert.equal(p.launch.availabilityZone, 'eu-west-1b');
    assert.deepEqual(p.launch.securityGroupIds, ['sg-0cccccccccccccccc']);
    assert.equal(p.launch.cpuCredits, undefined);
    assert.equal(h.ec2Mock.commandCalls(EC2.DescribeInstanceCreditSpecificationsCommand).length, 0);
    assert.equal(
      h.ec2Mock.commandCalls(EC2.DescribeAvailabilityZonesCommand).length,
      0,
      'the subnet names the AZ',
    );
  });

  void it('GIVEN an auto-assigned public IP and a target subnet that does not assign one WHEN planned THEN the public address is asked for explicitly', async () => {
    const h = harness();
    mockSource(h, {
      instance: source({ PublicIpAddress: '198.51.100.7' }),
      targetSubnets: [subnet('subnet-0bbbbbbbbbbbbbbb1', 'eu-west-1b', 100)],
    });

    const p = await plan(h);

    assert.equal(p.launch.associatePublicIpAddress, true);
    assert.ok(
      p.notCarriedOver.includes('public IP 198.51.100.7 (auto-assigned: the new instance gets another)'),
    );
  });

  void it("GIVEN an Elastic IP and elasticIp 'move' WHEN planned THEN the plan names it; with 'leave' it stays and is listed as not carried over", async () => {
    const eip: Address = {
      AllocationId: 'eipalloc-0123456789abcdef0',
      PublicIp: '203.0.113.10',
      InstanceId: INSTANCE_ID,
      PrivateIpAddress: '10.0.1.17',
    };
    const moved = harness();
    mockSource(moved, { addresses: [eip] });
    const left = harness();
    mockSource(left, { addresses: [eip] });

    const m = await plan(moved, { elasticIp: 'move' });
    const l = await plan(left, { elasticIp: 'leave' });

    assert.deepEqual(m.elasticIp, {
      allocationId: 'eipalloc-0123456789abcdef0',
      publicIp: '203.0.113.10',
      action: 'move',
    });
    assert.equal(m.launch.associatePublicIpAddress, undefined, 'the Elastic IP brings the public address');
    assert.equal(l.elasticIp?.action, 'leave');
    assert.ok(
      l.notCarriedOver.includes(
        'Elastic IP 203.0.113.10 (eipalloc-0123456789abcdef0) (it stays with the source)',
      ),
    );
  });

  void it("GIVEN extra network interfaces and extraNetworkInterfaces 'leave' WHEN planned THEN they are listed as left behind, and secondary addresses keep their count", async () => {
    const h = harness();
    const primary = source().NetworkInterfaces?.[0];
    mockSource(h, {
      instance: source({
        NetworkInterfaces: [
          {
            ...primary,
            PrivateIpAddresses: [
              { PrivateIpAddress: '10.0.1.17', Primary: true },
              { PrivateIpAddress: '10.0.1.18', Primary: false },
            ],
          },
          { NetworkInterfaceId: 'eni-0aaaaaaaaaaaaaaa2', Attachment: { DeviceIndex: 1 } },
        ],
      }),
    });

    const p = await plan(h, { extraNetworkInterfaces: 'leave' });

    assert.equal(p.launch.secondaryPrivateIpAddressCount, 1);
    assert.ok(
      p.notCarriedOver.includes('network interfaces eni-0aaaaaaaaaaaaaaa2 (they stay with the source)'),
    );
  });
});

void describe('pickSubnet', () => {
  void it('GIVEN several subnets in the AZ WHEN one is picked THEN the source subnet’s public/private kind wins, then free addresses, then the lowest id', () => {
    const privateSource = subnet(SOURCE_SUBNET, 'eu-west-1a', 10, false);
    const publicSource = subnet(SOURCE_SUBNET, 'eu-west-1a', 10, true);
    const tie = [
      subnet('subnet-0bbbbbbbbbbbbbbb9', 'eu-west-1b', 50),
      subnet('subnet-0bbbbbbbbbbbbbbb4', 'eu-west-1b', 50),
    ];
    const full = [subnet('subnet-0bbbbbbbbbbbbbbb5', 'eu-west-1b', 0)];

    assert.equal(pickSubnet(TARGET_SUBNETS, privateSource)?.SubnetId, 'subnet-0bbbbbbbbbbbbbbb2');
    assert.equal(pickSubnet(TARGET_SUBNETS, publicSource)?.SubnetId, 'subnet-0bbbbbbbbbbbbbbb3');
    assert.equal(pickSubnet(tie, privateSource)?.SubnetId, 'subnet-0bbbbbbbbbbbbbbb4');
    assert.equal(pickSubnet(full, privateSource), undefined, 'a full subnet is no choice');
    // The order EC2 lists them in does not matter.
    assert.equal(
      pickSubnet([...TARGET_SUBNETS].reverse(), privateSource)?.SubnetId,
      'subnet-0bbbbbbbbbbbbbbb2',
    );
  });
});

interface RefusalCase {
  why: string;
  world?: World;
  input?: Partial<MigrationPlanInput>;
  type: FailureType;
  message: string[];
}

const ENI_2 = { NetworkInterfaceId: 'eni-0aaaaaaaaaaaaaaa2', Attachment: { DeviceIndex: 1 } };
const REFUSALS: RefusalCase[] = [
  {
    why: 'an instance-store root',
    world: { instance: source({ RootDeviceType: 'instance-store' }) },
    type: FailureType.InstanceStoreRoot,
    message: ['instance-store root volume'],
  },
  {
    why: 'the target AZ being the source AZ',
    input: { targetAvailabilityZone: 'eu-west-1a' },
    type: FailureType.AvailabilityZoneUnchanged,
    message: ['already in eu-west-1a'],
  },
  {
    why: 'an AZ the region does not have (empty answer)',
    world: { zone: 'unknown' },
    type: FailureType.AvailabilityZoneUnknown,
    message: ['eu-west-1b does not exist in region eu-west-1'],
  },
  {
    why: 'an AZ the region does not have (InvalidParameterValue)',
    world: { zone: 'error' },
    type: FailureType.AvailabilityZoneUnknown,
    message: ['does not exist'],
  },
  {
    why: 'an impaired AZ',
    world: { zone: { state: 'impaired' } },
    type: FailureType.AvailabilityZoneUnknown,
    message: ['eu-west-1b is impaired'],
  },
  {
    why: 'no subnet of the VPC in the target AZ',
    world: { targetSubnets: [] },
    type: FailureType.NoSubnetInZone,
    message: [`its VPC ${VPC} has no subnet in eu-west-1b`, 'overrides.subnetId'],
  },
  {
    why: 'only full subnets in the target AZ',
    world: { targetSubnets: [subnet('subnet-0bbbbbbbbbbbbbbb5', 'eu-west-1b', 0)] },
    type: FailureType.NoSubnetInZone,
    message: ['have no free address'],
  },
  {
    why: 'a named subnet in another AZ than the target',
    world: { targetSubnets: [subnet('subnet-0ccccccccccccccc1', 'eu-west-1c', 10)] },
    input: { overrides: { subnetId: 'subnet-0ccccccccccccccc1' } },
    type: FailureType.NoSubnetInZone,
    message: ['subnet-0ccccccccccccccc1 is in eu-west-1c, not in the target eu-west-1b'],
  },
  {
    why: 'an Elastic IP nobody said what to do with',
    world: {
      addresses: [
        { AllocationId: 'eipalloc-0123456789abcdef0', PublicIp: '203.0.113.10', InstanceId: INSTANCE_ID },
      ],
    },
    type: FailureType.ElasticIpUnhandled,
    message: ['Elastic IP 203.0.113.10', "elasticIp 'move'", "'leave'"],
  },
  {
    why: 'two Elastic IPs to move',
    world: {
      addresses: [
        {
          AllocationId: 'eipalloc-01',
          PublicIp: '203.0.113.10',
          InstanceId: INSTANCE_ID,
          PrivateIpAddress: '10.0.1.17',
        },
        {
          AllocationId: 'eipalloc-02',
          PublicIp: '203.0.113.11',
          InstanceId: INSTANCE_ID,
          PrivateIpAddress: '10.0.1.18',
        },
      ],
    },
    input: { elasticIp: 'move' },
    type: FailureType.MigrationUnsupported,
    message: ['only one Elastic IP on the primary private address can be moved'],
  },
  {
    why: 'an extra network interface nobody said what to do with',
    world: { instance: source({ NetworkInterfaces: [...(source().NetworkInterfaces ?? []), ENI_2] }) },
    type: FailureType.NetworkInterfacesUnhandled,
    message: ['eni-0aaaaaaaaaaaaaaa2', "extraNetworkInterfaces 'leave'"],
  },
  {
    why: 'termination protection with source action terminate',
    input: { sourceAction: 'terminate' },
    type: FailureType.MigrationUnsupported,
    message: ['termination protection', "source action 'stop'"],
  },
  {
    why: 'stop protection on a running source',
    world: { attributes: { stopProtected: true } },
    type: FailureType.MigrationUnsupported,
    message: ['stop protection'],
  },
  {
    why: 'a spot instance',
    world: { instance: source({ InstanceLifecycle: 'spot' }) },
    type: FailureType.MigrationUnsupported,
    message: ['spot instance'],
  },
  {
    why: 'a cluster placement group',
    world: { placementStrategy: 'cluster' },
    type: FailureType.MigrationUnsupported,
    message: ['cluster placement group web-spread'],
  },
  {
    why: 'an instance type the target AZ does not offer',
    world: { offered: false },
    type: FailureType.MigrationUnsupported,
    message: ['t3.large is not offered in eu-west-1b'],
  },
  {
    why: 'a Multi-Attach volume',
    world: { volumes: VOLUMES.map((v, i) => (i === 1 ? { ...v, MultiAttachEnabled: true } : v)) },
    type: FailureType.MigrationUnsupported,
    message: ['vol-0data000000000001 (/dev/sdf) is Multi-Attach enabled'],
  },
  {
    why: "a 'stopping' source",
    world: { instance: source({ State: { Name: 'stopping' } }) },
    type: FailureType.InstanceStateUnsupported,
    message: ["is 'stopping'"],
  },
];

void describe('planMigration refuses what cannot move faithfully, before anything is changed', () => {
  for (const r of REFUSALS) {
    void it(`GIVEN ${r.why} WHEN planned THEN ${r.type}, non-retryable, and only reads were made`, async () => {
      const h = harness();
      mockSource(h, r.world);

      const failure = await nonRetryableFailure(plan(h, r.input), r.type, ...r.message);

      assert.match(failure.message, new RegExp(INSTANCE_ID.replace(/-/g, '\\-')));
      assert.ok(
        commandNames(h.ec2Mock).every((c) => c.startsWith('Describe')),
        commandNames(h.ec2Mock).join(', '),
      );
    });
  }

  void it('GIVEN several problems at once WHEN planned THEN one failure names them all, typed by the first', async () => {
    const h = harness();
    mockSource(h, {
      instance: source({ NetworkInterfaces: [...(source().NetworkInterfaces ?? []), ENI_2] }),
      addresses: [
        { AllocationId: 'eipalloc-0123456789abcdef0', PublicIp: '203.0.113.10', InstanceId: INSTANCE_ID },
      ],
      attributes: { stopProtected: true },
    });

    const failure = await nonRetryableFailure(
      plan(h),
      FailureType.MigrationUnsupported,
      'nothing was changed',
      'stop protection',
      'eni-0aaaaaaaaaaaaaaa2',
      'Elastic IP 203.0.113.10',
    );
    const [details] = failure.details as [{ refusals: { type: string }[] }];
    assert.deepEqual(
      details.refusals.map((r) => r.type),
      [
        FailureType.MigrationUnsupported,
        FailureType.NetworkInterfacesUnhandled,
        FailureType.ElasticIpUnhandled,
      ],
    );
  });

  void it('GIVEN the source does not exist WHEN planned THEN InstanceNotFound', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeInstancesCommand).rejects(awsError('InvalidInstanceID.NotFound', 400));

    await nonRetryableFailure(
      plan(h),
      FailureType.InstanceNotFound,
      INSTANCE_ID,
      'region eu-west-1, account 111122223333',
    );
  });
});

/** The RunInstances request for EXPECTED_PLAN, written out: each source attribute, once. */
const EXPECTED_REQUEST = {
  ImageId: AMI,
  MinCount: 1,
  MaxCount: 1,
  ClientToken: launchClientToken(owner),
  InstanceType: 't3.large',
  SubnetId: 'subnet-0bbbbbbbbbbbbbbb2',
  SecurityGroupIds: ['sg-0aaaaaaaaaaaaaaa1', 'sg-0aaaaaaaaaaaaaaa2'],
  Placement: { AvailabilityZone: 'eu-west-1b', Tenancy: 'dedicated', GroupName: 'web-spread' },
  KeyName: 'ops-2025',
  IamInstanceProfile: { Arn: 'arn:aws:iam::111122223333:instance-profile/web' },
  BlockDeviceMappings: [
    {
      DeviceName: '/dev/xvda',
      Ebs: {
        VolumeSize: 30,
        VolumeType: 'gp3',
        DeleteOnTermination: true,
        Iops: 4000,
        Throughput: 250,
        Encrypted: true,
        KmsKeyId: KEY_ROOT,
      },
    },
    {
      DeviceName: '/dev/sdf',
      Ebs: {
        VolumeSize: 500,
        VolumeType: 'io2',
        DeleteOnTermination: false,
        Iops: 16000,
        Encrypted: true,
        KmsKeyId: KEY_DATA,
      },
    },
    { DeviceName: '/dev/sdg', Ebs: { VolumeSize: 125, VolumeType: 'st1', DeleteOnTermination: true } },
  ],
  UserData: USER_DATA,
  MetadataOptions: {
    HttpTokens: 'required',
    HttpPutResponseHopLimit: 2,
    HttpEndpoint: 'enabled',
    HttpProtocolIpv6: 'disabled',
    InstanceMetadataTags: 'enabled',
  },
  DisableApiTermination: true,
  EbsOptimized: true,
  Monitoring: { Enabled: true },
  CreditSpecification: { CpuCredits: 'unlimited' },
  InstanceInitiatedShutdownBehavior: 'terminate',
  HibernationOptions: { Configured: true },
  PrivateDnsNameOptions: {
    HostnameType: 'resource-name',
    EnableResourceNameDnsARecord: true,
    EnableResourceNameDnsAAAARecord: false,
  },
  TagSpecifications: [
    {
      ResourceType: 'instance',
      Tags: [
        { Key: 'Name', Value: 'web-1' },
        { Key: 'team', Value: 'web' },
        ...Object.entries(OWNER_TAGS).map(([Key, Value]) => ({ Key, Value })),
      ],
    },
    { ResourceType: 'volume', Tags: Object.entries(OWNER_TAGS).map(([Key, Value]) => ({ Key, Value })) },
  ],
};

/** No instance of this run yet: the tag lookup finds nothing. */
function nothingLaunched(h: Harness): void {
  h.ec2Mock
    .on(EC2.DescribeInstancesCommand, {
      Filters: [
        { Name: `tag:${TAG.workflowId}`, Values: [WORKFLOW_ID] },
        { Name: `tag:${TAG.runId}`, Values: [RUN_ID] },
      ],
    })
    .resolves({ Reservations: [] });
}

void describe('launchInstance', () => {
  void it('GIVEN the plan of a fully configured source WHEN launched THEN RunInstances mirrors the source attribute by attribute, in the target AZ, tagged as the source plus amiflow', async () => {
    const h = harness();
    nothingLaunched(h);
    h.ec2Mock.on(EC2.RunInstancesCommand).resolves({ Instances: [{ InstanceId: NEW_ID }] });

    const out = await activityEnv().run(h.activities.launchInstance, launchInput());

    assert.deepEqual(out, { instanceId: NEW_ID, created: true, clientToken: launchClientToken(owner) });
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeInstances', 'RunInstances']);
    assert.deepEqual(h.ec2Mock.commandCalls(EC2.RunInstancesCommand)[0]?.args[0].input, EXPECTED_REQUEST);
  });

  void it('GIVEN the plan WHEN the request is built twice, or for another run of the same workflow THEN the ClientToken is the same for the run, different for the other, and at most 64 characters', () => {
    const token = launchClientToken(owner);

    assert.equal(runInstancesRequest(launchInput()).ClientToken, token);
    assert.equal(runInstancesRequest(launchInput()).ClientToken, token);
    assert.equal(token.length, 64);
    assert.match(token, /^amiflow-[0-9a-f]{56}$/);
    assert.notEqual(launchClientToken({ workflowId: WORKFLOW_ID, runId: 'another-run' }), token);
    assert.notEqual(launchClientToken({ workflowId: 'another-workflow', runId: RUN_ID }), token);
    const long = launchClientToken({ workflowId: 'w'.repeat(1000), runId: RUN_ID });
    assert.equal(long.length, 64);
  });

  void it('GIVEN RunInstances fails on the network WHEN the activity is retried THEN the retry sends the same request with the same ClientToken', async () => {
    const h = harness();
    nothingLaunched(h);
    h.ec2Mock
      .on(EC2.RunInstancesCommand)
      .rejectsOnce(Object.assign(new Error('socket hang up'), { name: 'TimeoutError' }))
      .resolves({ Instances: [{ InstanceId: NEW_ID }] });

    const first = await errorOf(activityEnv().run(h.activities.launchInstance, launchInput()));
    const second = await activityEnv({ attempt: 2 }).run(h.activities.launchInstance, launchInput());

    assert.ok(
      first instanceof Error && first.name === 'TimeoutError',
      'a transient error is rethrown as is (retried)',
    );
    assert.equal(second.instanceId, NEW_ID);
    const [a, b] = h.ec2Mock.commandCalls(EC2.RunInstancesCommand).map((c) => c.args[0].input);
    assert.deepEqual(a, b);
    assert.equal(a?.ClientToken, launchClientToken(owner));
  });

  void it('GIVEN this run launched its instance already WHEN the activity runs again THEN it returns that instance and launches nothing', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeInstancesCommand).resolves(
      reservation({
        InstanceId: NEW_ID,
        State: { Name: 'pending' },
        Tags: [
          { Key: TAG.workflowId, Value: WORKFLOW_ID },
          { Key: TAG.runId, Value: RUN_ID },
        ],
      }),
    );

    const out = await activityEnv().run(h.activities.launchInstance, launchInput());

    assert.deepEqual(out, { instanceId: NEW_ID, created: false, clientToken: launchClientToken(owner) });
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeInstances']);
  });

  void it('GIVEN a public address must be explicit WHEN launched THEN the subnet, groups and address go in the primary interface specification', () => {
    const request = runInstancesRequest(
      launchInput({
        ...EXPECTED_PLAN.launch,
        associatePublicIpAddress: true,
        secondaryPrivateIpAddressCount: 2,
      }),
    );

    assert.equal(request.SubnetId, undefined);
    assert.equal(request.SecurityGroupIds, undefined);
    assert.deepEqual(request.NetworkInterfaces, [
      {
        DeviceIndex: 0,
        SubnetId: 'subnet-0bbbbbbbbbbbbbbb2',
        Groups: ['sg-0aaaaaaaaaaaaaaa1', 'sg-0aaaaaaaaaaaaaaa2'],
        DeleteOnTermination: true,
        AssociatePublicIpAddress: true,
        SecondaryPrivateIpAddressCount: 2,
      },
    ]);
  });

  void it('GIVEN the instance type is not supported in the AZ WHEN launched THEN AwsPolicyRefused, non-retryable; no capacity is retried', async () => {
    const unsupported = harness();
    nothingLaunched(unsupported);
    unsupported.ec2Mock
      .on(EC2.RunInstancesCommand)
      .rejects(awsError('Unsupported', 400, 'Your requested instance type is not supported'));
    const noCapacity = harness();
    nothingLaunched(noCapacity);
    noCapacity.ec2Mock.on(EC2.RunInstancesCommand).rejects(awsError('InsufficientInstanceCapacity', 500));

    await nonRetryableFailure(
      activityEnv().run(unsupported.activities.launchInstance, launchInput()),
      FailureType.AwsPolicyRefused,
      'launching from ami-0cccccccccccccccc in eu-west-1b',
      'Unsupported',
    );
    const err = await errorOf(activityEnv().run(noCapacity.activities.launchInstance, launchInput()));
    assert.equal(
      (err as Error).name,
      'InsufficientInstanceCapacity',
      'rethrown untouched: Temporal retries it',
    );
  });

  void it('GIVEN source tags with aws: and amiflow: keys WHEN filtered THEN only the user tags stay', () => {
    assert.deepEqual(
      userTags([
        { Key: 'Name', Value: 'a' },
        { Key: 'AWS:x', Value: 'b' },
        { Key: 'amiflow:run-id', Value: 'c' },
        { Key: 'owner' },
      ]),
      { Name: 'a', owner: '' },
    );
  });
});

const HEARTBEAT_TIMEOUT = 120_000;
/** An attempt of the status-check wait, with its heartbeat timeout. */
const readyWaitEnv = () => activityEnv({ heartbeatTimeoutMs: HEARTBEAT_TIMEOUT });
const waitInput = { target: TARGET, instanceId: NEW_ID, deadline: T0 + 30 * 60_000 };

function statuses(
  h: Harness,
  ...answers: ({ state: string; system?: string; instance?: string } | 'not-found')[]
) {
  let b = h.ec2Mock.on(EC2.DescribeInstanceStatusCommand, {
    InstanceIds: [NEW_ID],
    IncludeAllInstances: true,
  });
  const answer = (a: (typeof answers)[number]) =>
    a === 'not-found'
      ? { rejects: awsError('InvalidInstanceID.NotFound', 400) }
      : {
          resolves: {
            InstanceStatuses: [
              {
                InstanceId: NEW_ID,
                InstanceState: { Name: a.state as 'running', Code: 16 },
                SystemStatus: { Status: (a.system ?? 'initializing') as 'ok' },
                InstanceStatus: { Status: (a.instance ?? 'initializing') as 'ok' },
              },
            ],
          },
        };
  for (const a of answers.slice(0, -1)) {
    const x = answer(a);
    b = 'rejects' in x ? b.rejectsOnce(x.rejects) : b.resolvesOnce(x.resolves);
  }
  const last = answer(answers[answers.length - 1] ?? { state: 'pending' });
  if ('rejects' in last) b.rejects(last.rejects);
  else b.resolves(last.resolves);
}

void describe('waitForInstanceReady', () => {
  void it('GIVEN a new instance that is invisible, pending, then initializing WHEN waited for THEN it returns once both status checks are ok', async () => {
    const h = harness();
    statuses(
      h,
      'not-found',
      { state: 'pending', system: 'not-applicable', instance: 'not-applicable' },
      { state: 'running' },
      { state: 'running', system: 'ok', instance: 'initializing' },
      { state: 'running', system: 'ok', instance: 'ok' },
    );
    h.ec2Mock.on(EC2.DescribeInstancesCommand, { InstanceIds: [NEW_ID] }).resolves(
      reservation({
        InstanceId: NEW_ID,
        Placement: { AvailabilityZone: 'eu-west-1b' },
        PrivateIpAddress: '10.0.2.9',
      }),
    );
    const run = readyWaitEnv();

    const ready = await run.run(h.activities.waitForInstanceReady, waitInput);

    assert.deepEqual(ready, {
      instanceId: NEW_ID,
      availabilityZone: 'eu-west-1b',
      privateIpAddress: '10.0.2.9',
      at: h.clock.now(),
      awsCalls: 6,
    });
    assert.equal(h.ec2Mock.commandCalls(EC2.DescribeInstanceStatusCommand).length, 5);
    assert.ok(run.heartbeats.length >= 1, 'progress is heartbeated');
    assert.deepEqual((run.heartbeats[0] as { progress: unknown }).progress, { state: 'not visible yet' });
  });

  for (const [why, answer, fragment] of [
    [
      'an impaired instance check',
      { state: 'running', system: 'ok', instance: 'impaired' },
      'failed its status checks (system: ok, instance: impaired)',
    ],
    [
      'an impaired system check',
      { state: 'running', system: 'impaired', instance: 'initializing' },
      'system: impaired',
    ],
    [
      'a launch EC2 terminated',
      { state: 'terminated', system: 'not-applicable', instance: 'not-applicable' },
      "is 'terminated' instead of running",
    ],
    [
      'an instance someone stopped',
      { state: 'stopped', system: 'not-applicable', instance: 'not-applicable' },
      "is 'stopped'",
    ],
  ] as const) {
    void it(`GIVEN ${why} WHEN waited for THEN InstanceChecksFailed, non-retryable`, async () => {
      const h = harness();
      statuses(h, { state: 'pending' }, answer);

      await nonRetryableFailure(
        readyWaitEnv().run(h.activities.waitForInstanceReady, waitInput),
        FailureType.InstanceChecksFailed,
        NEW_ID,
        fragment,
      );
    });
  }

  void it('GIVEN checks that stay initializing WHEN the deadline passes THEN WaitTimedOut, non-retryable', async () => {
    const h = harness();
    statuses(h, { state: 'running' });

    await nonRetryableFailure(
      readyWaitEnv().run(h.activities.waitForInstanceReady, waitInput),
      FailureType.WaitTimedOut,
      `instance ${NEW_ID} to run and pass its status checks`,
    );
    assert.ok(h.clock.now() >= waitInput.deadline);
  });
});

function ours(extra: Partial<Instance> = {}): Instance {
  return {
    InstanceId: NEW_ID,
    State: { Name: 'running' },
    Tags: [
      { Key: TAG.workflowId, Value: WORKFLOW_ID },
      { Key: TAG.runId, Value: RUN_ID },
    ],
    ...extra,
  };
}

void describe('terminateLaunchedInstance (compensation)', () => {
  void it('GIVEN the new instance has termination protection (mirrored from the source) WHEN compensating THEN the protection is turned off, then it is terminated', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeInstancesCommand, { InstanceIds: [NEW_ID] }).resolves(reservation(ours()));
    h.ec2Mock
      .on(EC2.DescribeInstanceAttributeCommand, { InstanceId: NEW_ID, Attribute: 'disableApiTermination' })
      .resolves({ DisableApiTermination: { Value: true } });
    h.ec2Mock.on(EC2.ModifyInstanceAttributeCommand).resolves({});
    h.ec2Mock.on(EC2.TerminateInstancesCommand).resolves({});

    const out = await activityEnv().run(h.activities.terminateLaunchedInstance, undoNewInstance);

    assert.deepEqual(out, { instanceId: NEW_ID, terminated: true });
    assert.deepEqual(commandNames(h.ec2Mock), [
      'DescribeInstances',
      'DescribeInstanceAttribute',
      'ModifyInstanceAttribute',
      'TerminateInstances',
    ]);
    assert.deepEqual(h.ec2Mock.commandCalls(EC2.ModifyInstanceAttributeCommand)[0]?.args[0].input, {
      InstanceId: NEW_ID,
      DisableApiTermination: { Value: false },
    });
  });

  void it('GIVEN RunInstances never answered WHEN compensating THEN the instance is found by this run’s tags and terminated', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeInstancesCommand).resolves(reservation(ours({ State: { Name: 'pending' } })));
    h.ec2Mock.on(EC2.DescribeInstanceAttributeCommand).resolves({ DisableApiTermination: { Value: false } });
    h.ec2Mock.on(EC2.TerminateInstancesCommand).resolves({});

    const out = await activityEnv().run(h.activities.terminateLaunchedInstance, { target: TARGET, owner });

    assert.deepEqual(out, { instanceId: NEW_ID, terminated: true });
    assert.deepEqual(h.ec2Mock.commandCalls(EC2.DescribeInstancesCommand)[0]?.args[0].input.Filters, [
      { Name: `tag:${TAG.workflowId}`, Values: [WORKFLOW_ID] },
      { Name: `tag:${TAG.runId}`, Values: [RUN_ID] },
    ]);
    assert.deepEqual(h.ec2Mock.commandCalls(EC2.TerminateInstancesCommand)[0]?.args[0].input, {
      InstanceIds: [NEW_ID],
    });
  });

  void it('GIVEN an instance without this run’s tags WHEN compensating THEN it is left alone', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeInstancesCommand).resolves(
      reservation(
        ours({
          Tags: [
            { Key: TAG.workflowId, Value: WORKFLOW_ID },
            { Key: TAG.runId, Value: 'older-run' },
          ],
        }),
      ),
    );

    const out = await activityEnv().run(h.activities.terminateLaunchedInstance, undoNewInstance);

    assert.deepEqual(out, {
      instanceId: NEW_ID,
      terminated: false,
      note: 'not launched by this run: left alone',
    });
    assert.deepEqual(commandNames(h.ec2Mock), ['DescribeInstances']);
  });

  void it('GIVEN the instance is terminated already, or none was launched and the consistency window has passed WHEN compensating again THEN nothing is sent', async () => {
    const gone = harness();
    gone.ec2Mock
      .on(EC2.DescribeInstancesCommand)
      .resolves(reservation(ours({ State: { Name: 'terminated' } })));
    const never = harness();
    never.ec2Mock.on(EC2.DescribeInstancesCommand).resolves({ Reservations: [] });

    assert.deepEqual(await activityEnv().run(gone.activities.terminateLaunchedInstance, undoNewInstance), {
      instanceId: NEW_ID,
      terminated: true,
    });
    assert.deepEqual(
      await activityEnv().run(never.activities.terminateLaunchedInstance, { target: TARGET, owner }),
      {
        terminated: false,
        note: 'no instance launched by this run was found after the consistency window: none was launched',
      },
    );
    assert.deepEqual(commandNames(gone.ec2Mock), ['DescribeInstances']);
    assert.deepEqual(commandNames(never.ec2Mock), ['DescribeInstances']);
  });
});

void describe('terminateSourceInstance, moveElasticIp, copyVolumeTags', () => {
  void it('GIVEN a stopped source WHEN terminated THEN TerminateInstances is sent once and the wait ends when it is terminated', async () => {
    const h = harness();
    h.ec2Mock
      .on(EC2.DescribeInstancesCommand, { InstanceIds: [INSTANCE_ID] })
      .resolvesOnce(reservation(source({ State: { Name: 'stopped' } })))
      .resolvesOnce(reservation(source({ State: { Name: 'shutting-down' } })))
      .resolves(reservation(source({ State: { Name: 'terminated' } })));
    h.ec2Mock.on(EC2.TerminateInstancesCommand).resolves({});

    const out = await activityEnv({ heartbeatTimeoutMs: 60_000 }).run(h.activities.terminateSourceInstance, {
      target: TARGET,
      instanceId: INSTANCE_ID,
      deadline: T0 + 15 * 60_000,
    });

    assert.equal(out.instanceId, INSTANCE_ID);
    assert.deepEqual(commandNames(h.ec2Mock), [
      'DescribeInstances',
      'TerminateInstances',
      'DescribeInstances',
      'DescribeInstances',
    ]);
  });

  void it('GIVEN an Elastic IP WHEN moved THEN it is associated with the instance, taking it from the source', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.AssociateAddressCommand).resolves({ AssociationId: 'eipassoc-0123456789abcdef0' });

    const out = await activityEnv().run(h.activities.moveElasticIp, {
      target: TARGET,
      allocationId: 'eipalloc-0123456789abcdef0',
      instanceId: NEW_ID,
    });

    assert.deepEqual(out, { associationId: 'eipassoc-0123456789abcdef0' });
    assert.deepEqual(h.ec2Mock.commandCalls(EC2.AssociateAddressCommand)[0]?.args[0].input, {
      AllocationId: 'eipalloc-0123456789abcdef0',
      InstanceId: NEW_ID,
      AllowReassociation: true,
    });
  });

  void it('GIVEN source volume tags by device WHEN copied THEN each new volume gets its own source volume’s tags', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeInstancesCommand, { InstanceIds: [NEW_ID] }).resolves(
      reservation(
        ours({
          BlockDeviceMappings: [
            { DeviceName: '/dev/xvda', Ebs: { VolumeId: 'vol-0new000000000001' } },
            { DeviceName: '/dev/sdf', Ebs: { VolumeId: 'vol-0new000000000002' } },
            { DeviceName: '/dev/sdg', Ebs: { VolumeId: 'vol-0new000000000003' } },
          ],
        }),
      ),
    );
    h.ec2Mock.on(EC2.CreateTagsCommand).resolves({});

    const out = await activityEnv().run(h.activities.copyVolumeTags, {
      target: TARGET,
      instanceId: NEW_ID,
      volumeTags: EXPECTED_PLAN.volumeTags,
    });

    assert.deepEqual(out, { volumeIds: ['vol-0new000000000001', 'vol-0new000000000003'] });
    assert.deepEqual(
      h.ec2Mock.commandCalls(EC2.CreateTagsCommand).map((c) => c.args[0].input),
      [
        { Resources: ['vol-0new000000000001'], Tags: [{ Key: 'backup', Value: 'daily' }] },
        { Resources: ['vol-0new000000000003'], Tags: [{ Key: 'purpose', Value: 'logs' }] },
      ],
    );
  });
});

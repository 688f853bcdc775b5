/**
 * The decisions of a migration plan (activities/migration-plan.ts) as pure functions of what EC2
 * answered: every refusal with its failure type and sentence, what is not carried over, the network
 * and volume plans and the launch specification. No EC2 client, mocked or real: the inputs are the
 * shapes DescribeInstances, DescribeSubnets, DescribeAddresses and DescribeVolumes return.
 * (test/activities/launch.test.ts proves the activity reads EC2 and hands these functions the answers.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Address, Instance, Volume } from '@aws-sdk/client-ec2';
import type { NetworkPlan } from '../../activities/migration-plan';
import * as plan from '../../activities/migration-plan';
import { FailureType } from '../../contracts';
import { INSTANCE_ID as ID } from './fixtures';
import { VPC, subnet, vpcInstance } from './migration-fixtures';

const TARGET = { region: 'eu-west-1' };

function instance(extra: Partial<Instance> = {}): Instance {
  return vpcInstance({
    NetworkInterfaces: [
      {
        NetworkInterfaceId: 'eni-0primary00000001',
        Attachment: { DeviceIndex: 0 },
        PrivateIpAddresses: [{ PrivateIpAddress: '10.0.1.17', Primary: true }],
      },
    ],
    ...extra,
  });
}

const SUBNET_B = subnet('subnet-0bbbbbbbbbbbbbbb1', 'eu-west-1b', 200);

describe('immediateRefusal: what stops a plan before anything else is read', () => {
  it('GIVEN an instance that is stopping WHEN planned THEN the state is refused alone, naming it', () => {
    const r = plan.immediateRefusal(ID, instance({ State: { Name: 'stopping' } }), 'eu-west-1b');
    assert.deepEqual(r, {
      alone: true,
      type: FailureType.InstanceStateUnsupported,
      message: `instance ${ID} is 'stopping'; migrate it when it is running or stopped`,
    });
  });

  it('GIVEN an instance-store root WHEN planned THEN it is refused alone as InstanceStoreRoot', () => {
    const r = plan.immediateRefusal(ID, instance({ RootDeviceType: 'instance-store' }), 'eu-west-1b');
    assert.equal(r?.type, FailureType.InstanceStoreRoot);
    assert.equal(r?.alone, true);
  });

  it('GIVEN the target AZ is the source AZ WHEN planned THEN AvailabilityZoneUnchanged names the AZ', () => {
    const r = plan.immediateRefusal(ID, instance(), 'eu-west-1a');
    assert.deepEqual(r, {
      alone: false,
      type: FailureType.AvailabilityZoneUnchanged,
      message: 'it is already in eu-west-1a; choose another Availability Zone',
    });
  });

  it('GIVEN an instance outside a VPC WHEN planned THEN it is refused as unsupported', () => {
    const r = plan.immediateRefusal(ID, instance({ SubnetId: undefined, VpcId: undefined }), 'eu-west-1b');
    assert.equal(r?.type, FailureType.MigrationUnsupported);
    assert.match(r?.message ?? '', /not in a VPC subnet/);
  });

  it('GIVEN a running or stopped EBS instance in a VPC WHEN planned for another AZ THEN nothing stops it', () => {
    assert.equal(plan.immediateRefusal(ID, instance(), 'eu-west-1b'), undefined);
    assert.equal(plan.immediateRefusal(ID, instance({ State: { Name: 'stopped' } }), undefined), undefined);
  });
});

describe('refusals that are reported together', () => {
  it('GIVEN a spot instance on a Dedicated Host WHEN planned THEN both are refused, in that order', () => {
    const r = plan.lifecycleRefusals(
      instance({ InstanceLifecycle: 'spot', Placement: { Tenancy: 'host', HostId: 'h-0abc' } }),
    );
    assert.deepEqual(
      r.map((x) => x.message),
      [
        'it is a spot instance; the new one would be on-demand',
        'it runs on a Dedicated Host (h-0abc), which belongs to one AZ',
      ],
    );
  });

  it('GIVEN termination protection WHEN the source action is terminate THEN refused; WHEN stop THEN not', () => {
    const base = { state: 'running' as const, terminationProtected: true, stopProtected: false };
    assert.equal(plan.protectionRefusals({ ...base, sourceAction: 'terminate' }).length, 1);
    assert.deepEqual(plan.protectionRefusals({ ...base, sourceAction: 'stop' }), []);
  });

  it('GIVEN stop protection WHEN the source runs THEN refused; WHEN it is stopped already THEN not', () => {
    const base = { sourceAction: 'keep' as const, terminationProtected: false, stopProtected: true };
    assert.match(plan.protectionRefusals({ ...base, state: 'running' })[0]?.message ?? '', /disableApiStop/);
    assert.deepEqual(plan.protectionRefusals({ ...base, state: 'stopped' }), []);
  });

  it('GIVEN a cluster placement group WHEN planned THEN refused naming the group; a spread group is not', () => {
    const base = { state: 'running' as const, sourceAction: 'keep' as const, terminationProtected: false };
    const cluster = plan.protectionRefusals({
      ...base,
      stopProtected: false,
      placementGroupName: 'hpc',
      placementStrategy: 'cluster',
    });
    assert.deepEqual(cluster, [
      {
        type: FailureType.MigrationUnsupported,
        message: 'it is in cluster placement group hpc, whose instances all share one AZ',
      },
    ]);
    assert.deepEqual(
      plan.protectionRefusals({ ...base, stopProtected: false, placementStrategy: 'spread' }),
      [],
    );
  });

  it('GIVEN an instance type the AZ does not offer WHEN planned THEN refused naming type and AZ', () => {
    assert.deepEqual(plan.instanceTypeRefusals(true, 'm7i.large', 'eu-west-1b'), []);
    assert.equal(
      plan.instanceTypeRefusals(false, 'm7i.large', 'eu-west-1b')[0]?.message,
      'instance type m7i.large is not offered in eu-west-1b; choose another type (overrides.instanceType) or AZ',
    );
  });

  it(`GIVEN source tags WHEN they leave room for amiflow's ${plan.OWNER_TAG_COUNT} under 50 THEN accepted, else refused`, () => {
    const tags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, k) => [`k${k}`, 'v']));
    assert.deepEqual(plan.tagRefusals(tags(50 - plan.OWNER_TAG_COUNT)), []);
    assert.match(plan.tagRefusals(tags(51 - plan.OWNER_TAG_COUNT))[0]?.message ?? '', /it has 46 tags/);
  });

  it('GIVEN several refusals WHEN reported THEN one sentence names every one, in order', () => {
    const message = plan.refusalMessage(ID, [
      { type: FailureType.MigrationUnsupported, message: 'first' },
      { type: FailureType.ElasticIpUnhandled, message: 'second' },
    ]);
    assert.equal(message, `instance ${ID} cannot be moved faithfully, nothing was changed: first; second`);
  });
});

describe('the target subnet and AZ', () => {
  const named = {
    target: TARGET,
    subnetId: SUBNET_B.SubnetId ?? '',
    targetAvailabilityZone: undefined,
    sourceZone: 'eu-west-1a',
    sourceVpcId: VPC,
    securityGroupsGiven: false,
  };

  it('GIVEN a named subnet that does not exist WHEN planned THEN NoSubnetInZone stops the plan', () => {
    const r = plan.namedSubnetRefusals({ ...named, subnet: undefined });
    assert.deepEqual(r.immediate, {
      type: FailureType.NoSubnetInZone,
      message: `subnet ${named.subnetId} (overrides.subnetId) was not found in region eu-west-1`,
    });
  });

  it('GIVEN a named subnet in another AZ than the target WHEN planned THEN NoSubnetInZone names both', () => {
    const r = plan.namedSubnetRefusals({ ...named, subnet: SUBNET_B, targetAvailabilityZone: 'eu-west-1c' });
    assert.match(r.immediate?.message ?? '', /is in eu-west-1b, not in the target eu-west-1c/);
  });

  it('GIVEN a named subnet in the source AZ WHEN planned THEN AvailabilityZoneUnchanged', () => {
    const r = plan.namedSubnetRefusals({ ...named, subnet: { ...SUBNET_B, AvailabilityZone: 'eu-west-1a' } });
    assert.equal(r.immediate?.type, FailureType.AvailabilityZoneUnchanged);
  });

  it('GIVEN a named subnet of another VPC WHEN no security groups are given THEN refused with the others; WHEN given THEN accepted', () => {
    const other = { ...SUBNET_B, VpcId: 'vpc-0ffffffffffffffff' };
    const without = plan.namedSubnetRefusals({ ...named, subnet: other });
    assert.equal(without.immediate, undefined);
    assert.match(
      without.deferred[0]?.message ?? '',
      /give overrides.securityGroupIds of vpc-0ffffffffffffffff/,
    );
    assert.deepEqual(plan.namedSubnetRefusals({ ...named, subnet: other, securityGroupsGiven: true }), {
      deferred: [],
    });
  });

  it('GIVEN a zone EC2 does not know, or one that is impaired WHEN planned THEN AvailabilityZoneUnknown says which', () => {
    assert.match(
      plan.zoneRefusal(TARGET, 'eu-west-1z', undefined)?.message ?? '',
      /does not exist in region eu-west-1/,
    );
    assert.equal(
      plan.zoneRefusal(TARGET, 'eu-west-1b', 'impaired')?.message,
      'Availability Zone eu-west-1b is impaired; choose another',
    );
    assert.equal(plan.zoneRefusal(TARGET, 'eu-west-1b', 'available'), undefined);
  });

  it('GIVEN no subnet of the VPC in the AZ, or only full ones WHEN planned THEN the message tells which', () => {
    assert.match(plan.noSubnetRefusal(VPC, 'eu-west-1b', []).message, /has no subnet in eu-west-1b/);
    assert.match(
      plan.noSubnetRefusal(VPC, 'eu-west-1b', [SUBNET_B]).message,
      /\(subnet-0bbbbbbbbbbbbbbb1\) have no free address/,
    );
  });
});

describe('planNetwork: interfaces and addresses', () => {
  const eip: Address = {
    AllocationId: 'eipalloc-0abc',
    PublicIp: '203.0.113.10',
    PrivateIpAddress: '10.0.1.17',
    InstanceId: ID,
  };

  it('GIVEN an extra network interface WHEN nothing is said THEN refused; WHEN leave THEN it is listed as not carried over', () => {
    const i = instance({
      NetworkInterfaces: [
        ...(instance().NetworkInterfaces ?? []),
        { NetworkInterfaceId: 'eni-0extra000000001', Attachment: { DeviceIndex: 1 } },
      ],
    });
    const refused = plan.planNetwork(i, {}, SUBNET_B, []);
    assert.equal(refused.refusals[0]?.type, FailureType.NetworkInterfacesUnhandled);
    const left = plan.planNetwork(i, { extraNetworkInterfaces: 'leave' }, SUBNET_B, []);
    assert.deepEqual(left.refusals, []);
    assert.ok(
      left.notCarriedOver.includes('network interfaces eni-0extra000000001 (they stay with the source)'),
    );
  });

  it('GIVEN an Elastic IP WHEN nothing is said THEN ElasticIpUnhandled; WHEN move THEN the plan moves it', () => {
    assert.equal(
      plan.planNetwork(instance(), {}, SUBNET_B, [eip]).refusals[0]?.type,
      FailureType.ElasticIpUnhandled,
    );
    const moved = plan.planNetwork(instance(), { elasticIp: 'move' }, SUBNET_B, [eip]);
    assert.deepEqual(moved.elasticIp, {
      allocationId: 'eipalloc-0abc',
      publicIp: '203.0.113.10',
      action: 'move',
    });
    assert.equal(moved.associatePublicIpAddress, undefined, 'the Elastic IP stands in for a public address');
  });

  it('GIVEN two Elastic IPs WHEN move THEN refused: only one on the primary address can move', () => {
    const second = { ...eip, AllocationId: 'eipalloc-0def', PublicIp: '203.0.113.11' };
    const r = plan.planNetwork(instance(), { elasticIp: 'move' }, SUBNET_B, [eip, second]);
    assert.match(
      r.refusals[0]?.message ?? '',
      /only one Elastic IP on the primary private address can be moved/,
    );
  });

  it('GIVEN an Elastic IP WHEN leave THEN it stays, listed as not carried over', () => {
    const r = plan.planNetwork(instance(), { elasticIp: 'leave' }, SUBNET_B, [eip]);
    assert.equal(r.elasticIp?.action, 'leave');
    assert.ok(
      r.notCarriedOver.includes('Elastic IP 203.0.113.10 (eipalloc-0abc) (it stays with the source)'),
    );
  });

  it('GIVEN an auto-assigned public IP and a private target subnet WHEN planned THEN a public address is asked for explicitly', () => {
    const r = plan.planNetwork(instance({ PublicIpAddress: '198.51.100.7' }), {}, SUBNET_B, []);
    assert.equal(r.associatePublicIpAddress, true);
    assert.deepEqual(r.notCarriedOver, [
      'public IP 198.51.100.7 (auto-assigned: the new instance gets another)',
      'private IP 10.0.1.17 (the new subnet has other addresses)',
    ]);
  });

  it('GIVEN secondary addresses and IPv6 WHEN the subnet has no IPv6 block THEN the count is kept and IPv6 refused', () => {
    const i = instance({
      NetworkInterfaces: [
        {
          Attachment: { DeviceIndex: 0 },
          PrivateIpAddresses: [{ PrivateIpAddress: '10.0.1.17' }, { PrivateIpAddress: '10.0.1.18' }],
          Ipv6Addresses: [{ Ipv6Address: '2001:db8::1' }],
        },
      ],
    });
    const r = plan.planNetwork(i, {}, SUBNET_B, []);
    assert.equal(r.secondaryPrivateIpAddressCount, 1);
    assert.equal(r.ipv6AddressCount, 1);
    assert.match(
      r.refusals[0]?.message ?? '',
      /1 IPv6 address\(es\) and subnet subnet-0bbbbbbbbbbbbbbb1 has no IPv6 CIDR block/,
    );
  });
});

describe('planVolumes and launchSpec: the mirror of the source', () => {
  const volumes: Volume[] = [
    {
      VolumeId: 'vol-0root',
      Size: 20,
      VolumeType: 'gp3',
      Iops: 4000,
      Throughput: 250,
      Encrypted: true,
      KmsKeyId: 'arn:aws:kms:eu-west-1:111122223333:key/1',
      Tags: [
        { Key: 'aws:backup', Value: 'x' },
        { Key: 'role', Value: 'root' },
      ],
    },
    { VolumeId: 'vol-0data', Size: 100, VolumeType: 'gp2', Iops: 300, MultiAttachEnabled: true },
  ];
  const i = instance({
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { VolumeId: 'vol-0root', DeleteOnTermination: true } },
      { DeviceName: '/dev/sdf', Ebs: { VolumeId: 'vol-0data', DeleteOnTermination: false } },
    ],
  });

  it('GIVEN gp3 and gp2 volumes WHEN planned THEN IOPS and throughput only where EC2 takes them, keys kept, user tags only', () => {
    const r = plan.planVolumes(i, volumes);
    assert.deepEqual(r.blockDevices, [
      {
        deviceName: '/dev/xvda',
        volumeSize: 20,
        volumeType: 'gp3',
        iops: 4000,
        throughput: 250,
        deleteOnTermination: true,
        encrypted: true,
        kmsKeyId: 'arn:aws:kms:eu-west-1:111122223333:key/1',
      },
      {
        deviceName: '/dev/sdf',
        volumeSize: 100,
        volumeType: 'gp2',
        deleteOnTermination: false,
        encrypted: false,
      },
    ]);
    assert.deepEqual(r.volumeTags, { '/dev/xvda': { role: 'root' } });
  });

  it('GIVEN a Multi-Attach volume WHEN planned THEN refused naming volume and device', () => {
    assert.deepEqual(
      plan.planVolumes(i, volumes).refusals.map((x) => x.message),
      ['volume vol-0data (/dev/sdf) is Multi-Attach enabled and shared with other instances'],
    );
  });

  it('GIVEN a source without hostname options WHEN the spec is built THEN none are sent; security groups can be overridden', () => {
    const network: NetworkPlan = {
      refusals: [],
      notCarriedOver: [],
      secondaryPrivateIpAddressCount: 0,
      ipv6AddressCount: 0,
    };
    const spec = plan.launchSpec(
      instance({ SecurityGroups: [{ GroupId: 'sg-0source' }], PrivateDnsNameOptions: {} }),
      { instanceType: 't3.large', availabilityZone: 'eu-west-1b', subnetId: 'subnet-0bbbbbbbbbbbbbbb1' },
      { securityGroupIds: ['sg-0override'] },
      { terminationProtected: true, cpuCredits: 'unlimited' },
      network,
      [],
    );
    assert.equal(spec.privateDnsNameOptions, undefined);
    assert.deepEqual(spec.securityGroupIds, ['sg-0override']);
    assert.equal(spec.disableApiTermination, true);
    assert.equal(spec.cpuCredits, 'unlimited');
  });

  it('GIVEN burstable and other types WHEN moving THEN CPU credits carry over only between burstable ones', () => {
    assert.equal(plan.carriesCpuCredits('t3.large', 't4g.large'), true);
    assert.equal(plan.carriesCpuCredits('t3.large', 'm6i.large'), false);
    assert.equal(plan.carriesCpuCredits(undefined, 't3.large'), false);
  });
});

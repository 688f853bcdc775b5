/**
 * The network a migration's source instance sits in, shared by the plan's pure tests
 * (migration-plan.test.ts) and the activity tests against mocked EC2 (launch.test.ts), so both
 * describe the same source in the same VPC.
 */
import type { Instance, Subnet } from '@aws-sdk/client-ec2';
import { instance } from './fixtures';

export const VPC = 'vpc-0aaaaaaaaaaaaaaa0';
export const SOURCE_SUBNET = 'subnet-0aaaaaaaaaaaaaaa1';

/** The simplest source a migration moves: a running EBS t3.large in SOURCE_SUBNET (eu-west-1a). */
export function vpcInstance(extra: Partial<Instance> = {}): Instance {
  return instance('running', {
    InstanceType: 't3.large',
    Placement: { AvailabilityZone: 'eu-west-1a' },
    SubnetId: SOURCE_SUBNET,
    VpcId: VPC,
    PrivateIpAddress: '10.0.1.17',
    ...extra,
  });
}

/** A subnet of VPC as DescribeSubnets answers it. */
export function subnet(id: string, zone: string, free: number, isPublic = false): Subnet {
  return {
    SubnetId: id,
    VpcId: VPC,
    AvailabilityZone: zone,
    AvailableIpAddressCount: free,
    MapPublicIpOnLaunch: isPublic,
    State: 'available',
  };
}

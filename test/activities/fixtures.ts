/**
 * The world the tier-2 activity tests share: one region, account, instance and image, the owner
 * tags of one run, and builders for the EC2 shapes DescribeInstances/DescribeImages answer with.
 * Values only: the mocked clients and the activity context live in harness.ts.
 */
import type { Image, Instance, InstanceStateName } from '@aws-sdk/client-ec2';
import type { AwsTarget, Tags } from '../../workflows/contracts';
import { TAG } from '../../workflows/contracts';

export const REGION = 'eu-west-1';
export const ACCOUNT = '111122223333';
export const TARGET: AwsTarget = { region: REGION, accountId: ACCOUNT };
export const INSTANCE_ID = 'i-0123456789abcdef0';
export const IMAGE_ID = 'ami-0123456789abcdef0';
export const IMAGE_NAME = 'web-2025-01-01';
export const WORKFLOW_ID = 'image-web-1';
export const RUN_ID = '0b7a4c1e-0000-4000-8000-000000000001';
/** 2025-01-01T00:00:00Z: the virtual clock starts here. */
export const T0 = Date.UTC(2025, 0, 1);
export const SNAPSHOTS = ['snap-0aaaaaaaaaaaaaaa1', 'snap-0aaaaaaaaaaaaaaa2'] as const;
export const USER_TAGS: Tags = { team: 'web', env: 'prod' };

export function instance(state: InstanceStateName | undefined, extra: Partial<Instance> = {}): Instance {
  return {
    InstanceId: INSTANCE_ID,
    RootDeviceType: 'ebs',
    ...(state ? { State: { Name: state } } : {}),
    ...extra,
  };
}

/** A DescribeInstances answer holding one instance. */
export function reservation(i: Instance) {
  return { Reservations: [{ Instances: [i] }] };
}

export function ownerTags(workflowId = WORKFLOW_ID, runId = RUN_ID) {
  return [
    { Key: TAG.workflowId, Value: workflowId },
    { Key: TAG.runId, Value: runId },
  ];
}

/** An image made by this run (its owner tags), with two EBS snapshots and an ephemeral volume. */
export function image(state: Image['State'], extra: Partial<Image> = {}): Image {
  return {
    ImageId: IMAGE_ID,
    Name: IMAGE_NAME,
    State: state,
    Tags: ownerTags(),
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { SnapshotId: SNAPSHOTS[0], VolumeSize: 8 } },
      { DeviceName: '/dev/xvdb', Ebs: { SnapshotId: SNAPSHOTS[1], VolumeSize: 100 } },
      { DeviceName: '/dev/sdc', VirtualName: 'ephemeral0' },
    ],
    ...extra,
  };
}

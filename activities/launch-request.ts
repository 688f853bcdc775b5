/**
 * The RunInstances request of a migration's launch: the idempotency token of the run and the
 * attribute-by-attribute mirror of the source's launch specification (activities/migration-plan.ts).
 * Pure, so the request is tested field by field without EC2 (test/activities/launch.test.ts).
 */
import { createHash } from 'node:crypto';
import type {
  _InstanceType,
  HostnameType,
  HttpTokensState,
  InstanceMetadataEndpointState,
  InstanceMetadataProtocolState,
  InstanceMetadataTagsState,
  RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import type { AwsTarget, Tags } from '../contracts';
import { toAwsTags } from './images';
import type { LaunchSpec } from './migration-plan';

/** The run that launches: its ids are in the `amiflow:workflow-id` and `amiflow:run-id` tags. */
export interface LaunchOwner {
  workflowId: string;
  runId: string;
}

export interface LaunchInput {
  target: AwsTarget;
  imageId: string;
  spec: LaunchSpec;
  owner: LaunchOwner;
  /** amiflow's tags, on the instance (with the source's) and on its volumes. */
  ownerTags: Tags;
}

/**
 * RunInstances' idempotency token: the same for every attempt of one run, different for another
 * run of the same workflow id (EC2 keeps a token's answer for at least a day after the instance is
 * terminated, so a token from the workflow id alone would hand a re-run the old, terminated instance).
 */
export function launchClientToken(owner: LaunchOwner): string {
  const digest = createHash('sha256').update(`${owner.workflowId}\n${owner.runId}`).digest('hex');
  return `amiflow-${digest.slice(0, 56)}`; // 64 characters, EC2's limit
}

/**
 * An option block with only the fields the source stated: an unset one (undefined, or the empty
 * string a describe can answer) is left out of the request rather than sent empty, so EC2 applies
 * its own default, as it did for the source. `false` and `0` are stated values and are kept.
 */
function stated<T extends object>(fields: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined && v !== '')) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

/** The RunInstances request for a plan: one line per attribute of the source it mirrors. */
export function runInstancesRequest(input: LaunchInput): RunInstancesCommandInput {
  const s = input.spec;
  const nicForm = s.associatePublicIpAddress !== undefined || (s.secondaryPrivateIpAddressCount ?? 0) > 0;
  const network: Partial<RunInstancesCommandInput> = nicForm
    ? {
        // AssociatePublicIpAddress and secondary addresses exist only on an interface specification.
        NetworkInterfaces: [
          {
            DeviceIndex: 0,
            SubnetId: s.subnetId,
            Groups: s.securityGroupIds,
            DeleteOnTermination: true,
            ...(s.associatePublicIpAddress !== undefined
              ? { AssociatePublicIpAddress: s.associatePublicIpAddress }
              : {}),
            ...(s.secondaryPrivateIpAddressCount
              ? { SecondaryPrivateIpAddressCount: s.secondaryPrivateIpAddressCount }
              : {}),
            ...(s.ipv6AddressCount ? { Ipv6AddressCount: s.ipv6AddressCount } : {}),
          },
        ],
      }
    : {
        SubnetId: s.subnetId,
        SecurityGroupIds: s.securityGroupIds,
        ...(s.ipv6AddressCount ? { Ipv6AddressCount: s.ipv6AddressCount } : {}),
      };
  const m = s.metadataOptions;
  const dns = s.privateDnsNameOptions;
  return {
    ImageId: input.imageId,
    MinCount: 1,
    MaxCount: 1,
    ClientToken: launchClientToken(input.owner),
    InstanceType: s.instanceType as _InstanceType,
    ...network,
    Placement: {
      AvailabilityZone: s.availabilityZone,
      ...(s.tenancy ? { Tenancy: s.tenancy as 'dedicated' } : {}),
      ...(s.placementGroupName ? { GroupName: s.placementGroupName } : {}),
    },
    ...(s.keyName ? { KeyName: s.keyName } : {}),
    ...(s.iamInstanceProfileArn ? { IamInstanceProfile: { Arn: s.iamInstanceProfileArn } } : {}),
    BlockDeviceMappings: s.blockDevices.map((d) => ({
      DeviceName: d.deviceName,
      // No SnapshotId: the AMI's snapshot for this device is used; these settings override the AMI's.
      Ebs: {
        VolumeSize: d.volumeSize,
        VolumeType: d.volumeType as 'gp3',
        DeleteOnTermination: d.deleteOnTermination,
        ...(d.iops !== undefined ? { Iops: d.iops } : {}),
        ...(d.throughput !== undefined ? { Throughput: d.throughput } : {}),
        // An unencrypted source stays as the account's EBS encryption default makes it.
        ...(d.encrypted ? { Encrypted: true, ...(d.kmsKeyId ? { KmsKeyId: d.kmsKeyId } : {}) } : {}),
      },
    })),
    ...(s.userData ? { UserData: s.userData } : {}),
    ...(m
      ? {
          MetadataOptions: stated({
            HttpTokens: m.httpTokens as HttpTokensState | undefined,
            HttpPutResponseHopLimit: m.httpPutResponseHopLimit,
            HttpEndpoint: m.httpEndpoint as InstanceMetadataEndpointState | undefined,
            HttpProtocolIpv6: m.httpProtocolIpv6 as InstanceMetadataProtocolState | undefined,
            InstanceMetadataTags: m.instanceMetadataTags as InstanceMetadataTagsState | undefined,
          }),
        }
      : {}),
    DisableApiTermination: s.disableApiTermination,
    EbsOptimized: s.ebsOptimized,
    Monitoring: { Enabled: s.monitoring },
    ...(s.cpuCredits ? { CreditSpecification: { CpuCredits: s.cpuCredits } } : {}),
    ...(s.shutdownBehavior ? { InstanceInitiatedShutdownBehavior: s.shutdownBehavior as 'stop' } : {}),
    ...(s.hibernation ? { HibernationOptions: { Configured: true } } : {}),
    ...(s.enclave ? { EnclaveOptions: { Enabled: true } } : {}),
    ...(dns
      ? {
          PrivateDnsNameOptions: stated({
            HostnameType: dns.hostnameType as HostnameType | undefined,
            EnableResourceNameDnsARecord: dns.enableResourceNameDnsARecord,
            EnableResourceNameDnsAAAARecord: dns.enableResourceNameDnsAAAARecord,
          }),
        }
      : {}),
    TagSpecifications: [
      { ResourceType: 'instance', Tags: toAwsTags({ ...s.tags, ...input.ownerTags }) },
      { ResourceType: 'volume', Tags: toAwsTags(input.ownerTags) },
    ],
  };
}

/**
 * Launching an equivalent instance in another Availability Zone, for `migrateInstance`:
 * - `planMigration` reads the source's whole configuration and the target AZ's network, and refuses,
 *   before anything is touched, what cannot move faithfully;
 * - `launchInstance` runs the plan from the intermediate AMI (ClientToken from the run, plus a lookup
 *   by the run's tags first, so a retry finds the instance instead of launching a second);
 * - `waitForInstanceReady` waits, heartbeating, until it runs and both status checks are `ok`;
 * - `copyVolumeTags`, `moveElasticIp`, `terminateSourceInstance`;
 * - `terminateLaunchedInstance`: the compensation; only ever an instance this run launched.
 */
import { createHash } from 'node:crypto';
import type {
  _InstanceType,
  Address,
  EC2Client,
  Instance,
  InstanceNetworkInterface,
  RunInstancesCommandInput,
  Subnet,
  Tag,
  Volume,
} from '@aws-sdk/client-ec2';
import {
  AssociateAddressCommand,
  CreateTagsCommand,
  DescribeAddressesCommand,
  DescribeAvailabilityZonesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstanceCreditSpecificationsCommand,
  DescribeInstanceStatusCommand,
  DescribeInstanceTypeOfferingsCommand,
  DescribeInstancesCommand,
  DescribePlacementGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  ModifyInstanceAttributeCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type {
  AwsTarget,
  ElasticIpAction,
  FailureType as FailureTypeName,
  InstanceState,
  MigrateInstanceOverrides,
  SourceAction,
  Tags,
} from '../contracts';
import { FailureType, RESERVED_TAG_PREFIXES, TAG } from '../contracts';
import { isNotFound, notVisibleYet, withinWindow } from './consistency';
import type { ActivityDeps } from './deps';
import { aws, failure, isAwsCode, rethrowAws } from './errors';
import { toAwsTags } from './images';
import type { InstanceWaitInput } from './instances';
import { readInstance } from './instances';
import { waitUntil } from './waiting';

// ---------------------------------------------------------------------------------------------
// Shapes (plain data: they travel through workflow history)
// ---------------------------------------------------------------------------------------------

export interface MigrationPlanInput {
  target: AwsTarget;
  instanceId: string;
  targetAvailabilityZone?: string;
  sourceAction: SourceAction;
  elasticIp?: ElasticIpAction;
  extraNetworkInterfaces?: 'leave';
  overrides?: MigrateInstanceOverrides;
}

export interface BlockDeviceSpec {
  deviceName: string;
  volumeSize: number;
  volumeType: string;
  /** io1, io2 and gp3 only. */
  iops?: number;
  /** gp3 only (MiB/s). */
  throughput?: number;
  deleteOnTermination: boolean;
  encrypted: boolean;
  /** The source volume's key: the new volume is encrypted with the same one. */
  kmsKeyId?: string;
}

/** Everything RunInstances needs besides the image, the token and amiflow's own tags. */
export interface LaunchSpec {
  instanceType: string;
  availabilityZone: string;
  subnetId: string;
  securityGroupIds: string[];
  /** Set only when it must be explicit: the source's public-address choice differs from the subnet's default. */
  associatePublicIpAddress?: boolean;
  secondaryPrivateIpAddressCount?: number;
  ipv6AddressCount?: number;
  keyName?: string;
  iamInstanceProfileArn?: string;
  blockDevices: BlockDeviceSpec[];
  /** The source's tags without `aws:` and `amiflow:` keys. */
  tags: Tags;
  /** Base64, as DescribeInstanceAttribute returns it and RunInstances takes it. */
  userData?: string;
  metadataOptions?: {
    httpTokens?: string;
    httpPutResponseHopLimit?: number;
    httpEndpoint?: string;
    httpProtocolIpv6?: string;
    instanceMetadataTags?: string;
  };
  disableApiTermination: boolean;
  ebsOptimized: boolean;
  monitoring: boolean;
  tenancy?: string;
  placementGroupName?: string;
  cpuCredits?: string;
  shutdownBehavior?: string;
  hibernation?: boolean;
  enclave?: boolean;
  privateDnsNameOptions?: {
    hostnameType?: string;
    enableResourceNameDnsARecord?: boolean;
    enableResourceNameDnsAAAARecord?: boolean;
  };
}

export interface MigrationPlan {
  source: {
    instanceId: string;
    state: 'running' | 'stopped';
    availabilityZone: string;
    subnetId: string;
    vpcId: string;
    instanceType: string;
    privateIpAddress?: string;
    terminationProtected: boolean;
  };
  launch: LaunchSpec;
  /** Each source volume's own tags, by device name, copied to the new volumes once they exist. */
  volumeTags: Record<string, Tags>;
  elasticIp?: { allocationId: string; publicIp: string; action: ElasticIpAction };
  notCarriedOver: string[];
}

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

export interface LaunchedInstance {
  instanceId: string;
  /** false when an earlier attempt of this run had launched it already. */
  created: boolean;
  clientToken: string;
}

export interface InstanceReady {
  instanceId: string;
  availabilityZone?: string;
  privateIpAddress?: string;
  /** When this activity saw both checks `ok` (epoch ms). */
  at: number;
  awsCalls: number;
}

export interface CopyVolumeTagsInput {
  target: AwsTarget;
  instanceId: string;
  volumeTags: Record<string, Tags>;
}

export interface MoveElasticIpInput {
  target: AwsTarget;
  allocationId: string;
  instanceId: string;
}

export interface TerminateLaunchedInput {
  target: AwsTarget;
  owner: LaunchOwner;
  /** Known once RunInstances answered; otherwise the instance is found by the run's tags. */
  instanceId?: string;
}

export interface TerminatedInstance {
  instanceId?: string;
  terminated: boolean;
  /** Why nothing was terminated, when nothing was. */
  note?: string;
}

// ---------------------------------------------------------------------------------------------
// Pure helpers (exported for the tier-2 tests)
// ---------------------------------------------------------------------------------------------

/** amiflow writes this many tags of its own on the new instance (see the workflow's ownerTags). */
export const OWNER_TAG_COUNT = 5;
const MAX_TAGS = 50;

/**
 * RunInstances' idempotency token: the same for every attempt of one run, different for another
 * run of the same workflow id (EC2 keeps a token's answer for at least a day after the instance is
 * terminated, so a token from the workflow id alone would hand a re-run the old, terminated instance).
 */
export function launchClientToken(owner: LaunchOwner): string {
  const digest = createHash('sha256').update(`${owner.workflowId}\n${owner.runId}`).digest('hex');
  return `amiflow-${digest.slice(0, 56)}`; // 64 characters, EC2's limit
}

/** Tags a user set, without the keys AWS (`aws:`) and amiflow (`amiflow:`) reserve. */
export function userTags(tags: Tag[] | undefined): Tags {
  const out: Tags = {};
  for (const t of tags ?? []) {
    if (!t.Key || RESERVED_TAG_PREFIXES.some((p) => t.Key?.toLowerCase().startsWith(p))) continue;
    out[t.Key] = t.Value ?? '';
  }
  return out;
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
          MetadataOptions: {
            ...(m.httpTokens ? { HttpTokens: m.httpTokens as 'required' } : {}),
            ...(m.httpPutResponseHopLimit !== undefined
              ? { HttpPutResponseHopLimit: m.httpPutResponseHopLimit }
              : {}),
            ...(m.httpEndpoint ? { HttpEndpoint: m.httpEndpoint as 'enabled' } : {}),
            ...(m.httpProtocolIpv6 ? { HttpProtocolIpv6: m.httpProtocolIpv6 as 'enabled' } : {}),
            ...(m.instanceMetadataTags ? { InstanceMetadataTags: m.instanceMetadataTags as 'enabled' } : {}),
          },
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
          PrivateDnsNameOptions: {
            ...(dns.hostnameType ? { HostnameType: dns.hostnameType as 'ip-name' } : {}),
            ...(dns.enableResourceNameDnsARecord !== undefined
              ? { EnableResourceNameDnsARecord: dns.enableResourceNameDnsARecord }
              : {}),
            ...(dns.enableResourceNameDnsAAAARecord !== undefined
              ? { EnableResourceNameDnsAAAARecord: dns.enableResourceNameDnsAAAARecord }
              : {}),
          },
        }
      : {}),
    TagSpecifications: [
      { ResourceType: 'instance', Tags: toAwsTags({ ...s.tags, ...input.ownerTags }) },
      { ResourceType: 'volume', Tags: toAwsTags(input.ownerTags) },
    ],
  };
}

/**
 * The subnet to launch into, when several of the VPC's subnets are in the target AZ: one whose
 * public-address default matches the source's subnet (public stays public, private stays private),
 * then the one with the most free addresses, then the lowest id (deterministic).
 */
export function pickSubnet(candidates: Subnet[], sourceSubnet: Subnet | undefined): Subnet | undefined {
  const sourcePublic = sourceSubnet?.MapPublicIpOnLaunch === true;
  return candidates
    .filter((s) => s.SubnetId && (s.State === undefined || s.State === 'available'))
    .filter((s) => (s.AvailableIpAddressCount ?? 0) > 0)
    .sort(
      (a, b) =>
        Number((b.MapPublicIpOnLaunch === true) === sourcePublic) -
          Number((a.MapPublicIpOnLaunch === true) === sourcePublic) ||
        (b.AvailableIpAddressCount ?? 0) - (a.AvailableIpAddressCount ?? 0) ||
        (a.SubnetId ?? '').localeCompare(b.SubnetId ?? ''),
    )[0];
}

// ---------------------------------------------------------------------------------------------
// AWS reads
// ---------------------------------------------------------------------------------------------

function where(t: AwsTarget): string {
  return `region ${t.region}${t.accountId ? `, account ${t.accountId}` : ''}`;
}

function stateOf(i: Instance): InstanceState {
  return i.State?.Name ?? 'pending';
}

function tagValue(i: Instance, key: string): string | undefined {
  return i.Tags?.find((t) => t.Key === key)?.Value;
}

function launchedBy(i: Instance, owner: LaunchOwner): boolean {
  return tagValue(i, TAG.workflowId) === owner.workflowId && tagValue(i, TAG.runId) === owner.runId;
}

async function attribute<K extends keyof AttributeValues>(
  ec2: EC2Client,
  instanceId: string,
  name: K,
): Promise<AttributeValues[K]> {
  const out = await aws(`reading attribute ${name} of ${instanceId}`, () =>
    ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: name })),
  );
  switch (name) {
    case 'userData':
      return (out.UserData?.Value || undefined) as AttributeValues[K];
    case 'disableApiTermination':
      return (out.DisableApiTermination?.Value === true) as AttributeValues[K];
    case 'disableApiStop':
      return (out.DisableApiStop?.Value === true) as AttributeValues[K];
    default:
      return (out.InstanceInitiatedShutdownBehavior?.Value || undefined) as AttributeValues[K];
  }
}
interface AttributeValues {
  userData: string | undefined;
  disableApiTermination: boolean;
  disableApiStop: boolean;
  instanceInitiatedShutdownBehavior: string | undefined;
}

async function subnetsById(ec2: EC2Client, ids: string[]): Promise<Subnet[]> {
  try {
    const out = await ec2.send(new DescribeSubnetsCommand({ SubnetIds: ids }));
    return out.Subnets ?? [];
  } catch (err) {
    if (isAwsCode(err, 'InvalidSubnetID.NotFound', 'InvalidSubnetID.Malformed')) return [];
    rethrowAws(err, `reading subnets ${ids.join(', ')}`);
  }
}

/** Undefined when the AZ does not exist in the region (or is not usable). */
async function zoneState(ec2: EC2Client, zone: string): Promise<string | undefined> {
  try {
    const out = await ec2.send(new DescribeAvailabilityZonesCommand({ ZoneNames: [zone] }));
    const z = out.AvailabilityZones?.find((a) => a.ZoneName === zone);
    if (!z) return undefined;
    if (z.OptInStatus === 'not-opted-in') return 'not opted in';
    return z.State ?? 'available';
  } catch (err) {
    // EC2 answers an unknown zone name with InvalidParameterValue.
    if (isAwsCode(err, 'InvalidParameterValue')) return undefined;
    rethrowAws(err, `reading Availability Zone ${zone}`);
  }
}

async function findLaunched(ec2: EC2Client, owner: LaunchOwner): Promise<Instance | undefined> {
  const out = await aws(`looking up the instance launched by ${owner.workflowId}`, () =>
    ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${TAG.workflowId}`, Values: [owner.workflowId] },
          { Name: `tag:${TAG.runId}`, Values: [owner.runId] },
        ],
      }),
    ),
  );
  const found = (out.Reservations ?? [])
    .flatMap((r) => r.Instances ?? [])
    .filter((i) => launchedBy(i, owner));
  // Prefer one that is not on its way out; there is only ever one unless someone copied our tags.
  return found.find((i) => !['shutting-down', 'terminated'].includes(stateOf(i))) ?? found[0];
}

async function describeOptional(ec2: EC2Client, instanceId: string): Promise<Instance | undefined> {
  try {
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    return out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
  } catch (err) {
    if (isAwsCode(err, 'InvalidInstanceID.NotFound')) return undefined;
    rethrowAws(err, `reading instance ${instanceId}`);
  }
}

interface Refusal {
  type: FailureTypeName;
  message: string;
}

function refuse(instanceId: string, refusals: Refusal[]): never {
  const [first] = refusals;
  if (!first) throw new Error('refuse() needs a reason');
  throw failure(
    first.type,
    `instance ${instanceId} cannot be moved faithfully, nothing was changed: ${refusals.map((r) => r.message).join('; ')}`,
    { refusals },
  );
}

const BURSTABLE_RE = /^t\d/;

// ---------------------------------------------------------------------------------------------
// Activities
// ---------------------------------------------------------------------------------------------

export function launchActivities(deps: ActivityDeps) {
  return {
    /**
     * Reads everything the new instance must mirror and everything that could stop it from
     * mirroring the source, and refuses the latter, all before anything is changed. Read-only.
     */
    async planMigration(input: MigrationPlanInput): Promise<MigrationPlan> {
      const ec2 = await deps.aws.ec2(input.target);
      const id = input.instanceId;
      const i = await readInstance(ec2, { target: input.target, instanceId: id });
      const state = stateOf(i);
      if (state !== 'running' && state !== 'stopped')
        throw failure(
          FailureType.InstanceStateUnsupported,
          `instance ${id} is '${state}'; migrate it when it is running or stopped`,
        );
      if (i.RootDeviceType === 'instance-store')
        throw failure(
          FailureType.InstanceStoreRoot,
          `instance ${id} has an instance-store root volume, which cannot be imaged with CreateImage or moved; only EBS-backed instances can be migrated`,
        );
      const sourceZone = i.Placement?.AvailabilityZone ?? '';
      if (input.targetAvailabilityZone !== undefined && input.targetAvailabilityZone === sourceZone)
        refuse(id, [
          {
            type: FailureType.AvailabilityZoneUnchanged,
            message: `it is already in ${sourceZone}; choose another Availability Zone`,
          },
        ]);
      if (!i.SubnetId || !i.VpcId)
        refuse(id, [
          {
            type: FailureType.MigrationUnsupported,
            message: 'it is not in a VPC subnet; only VPC instances can be migrated',
          },
        ]);

      const refusals: Refusal[] = [];
      if (i.InstanceLifecycle === 'spot' || i.InstanceLifecycle === 'scheduled')
        refusals.push({
          type: FailureType.MigrationUnsupported,
          message: `it is a ${i.InstanceLifecycle} instance; the new one would be on-demand`,
        });
      if (i.Placement?.Tenancy === 'host')
        refusals.push({
          type: FailureType.MigrationUnsupported,
          message: `it runs on a Dedicated Host (${i.Placement.HostId ?? 'host tenancy'}), which belongs to one AZ`,
        });

      const volumeIds = (i.BlockDeviceMappings ?? []).flatMap((m) =>
        m.Ebs?.VolumeId ? [m.Ebs.VolumeId] : [],
      );
      const instanceType = input.overrides?.instanceType ?? i.InstanceType ?? '';
      const groupName = i.Placement?.GroupName || undefined;
      const [
        userData,
        terminationProtected,
        stopProtected,
        shutdownBehavior,
        sourceSubnets,
        volumes,
        addresses,
        credits,
        placementGroup,
      ] = await Promise.all([
        attribute(ec2, id, 'userData'),
        attribute(ec2, id, 'disableApiTermination'),
        attribute(ec2, id, 'disableApiStop'),
        attribute(ec2, id, 'instanceInitiatedShutdownBehavior'),
        subnetsById(ec2, [i.SubnetId]),
        volumeIds.length
          ? aws(`reading the volumes of ${id}`, () =>
              ec2.send(new DescribeVolumesCommand({ VolumeIds: volumeIds })),
            ).then((o) => o.Volumes ?? [])
          : Promise.resolve<Volume[]>([]),
        aws(`reading the Elastic IPs of ${id}`, () =>
          ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: 'instance-id', Values: [id] }] })),
        ).then((o) => (o.Addresses ?? []).filter((a) => a.InstanceId === id)),
        BURSTABLE_RE.test(i.InstanceType ?? '') && BURSTABLE_RE.test(instanceType)
          ? aws(`reading the CPU credit option of ${id}`, () =>
              ec2.send(new DescribeInstanceCreditSpecificationsCommand({ InstanceIds: [id] })),
            ).then((o) => o.InstanceCreditSpecifications?.[0]?.CpuCredits)
          : Promise.resolve(undefined),
        groupName
          ? aws(`reading placement group ${groupName}`, () =>
              ec2.send(new DescribePlacementGroupsCommand({ GroupNames: [groupName] })),
            ).then((o) => o.PlacementGroups?.[0])
          : Promise.resolve(undefined),
      ]);

      if (terminationProtected && input.sourceAction === 'terminate')
        refusals.push({
          type: FailureType.MigrationUnsupported,
          message:
            'it has termination protection (disableApiTermination) and the source action is terminate; ' +
            "turn the protection off yourself or choose source action 'stop'",
        });
      if (stopProtected && state === 'running')
        refusals.push({
          type: FailureType.MigrationUnsupported,
          message:
            'it has stop protection (disableApiStop) and must be stopped to be imaged consistently; turn stop protection off for the migration',
        });
      if (placementGroup?.Strategy === 'cluster')
        refusals.push({
          type: FailureType.MigrationUnsupported,
          message: `it is in cluster placement group ${groupName}, whose instances all share one AZ`,
        });

      // --- target AZ and subnet ----------------------------------------------------------
      const sourceSubnet = sourceSubnets[0];
      let subnet: Subnet | undefined;
      let zone = input.targetAvailabilityZone;
      const wantedSubnet = input.overrides?.subnetId;
      if (wantedSubnet) {
        subnet = (await subnetsById(ec2, [wantedSubnet]))[0];
        if (!subnet)
          refuse(id, [
            {
              type: FailureType.NoSubnetInZone,
              message: `subnet ${wantedSubnet} (overrides.subnetId) was not found in ${where(input.target)}`,
            },
          ]);
        if (zone !== undefined && subnet.AvailabilityZone !== zone)
          refuse(id, [
            {
              type: FailureType.NoSubnetInZone,
              message: `subnet ${wantedSubnet} is in ${subnet.AvailabilityZone}, not in the target ${zone}; name a subnet of ${zone} or leave targetAvailabilityZone out`,
            },
          ]);
        zone = subnet.AvailabilityZone ?? '';
        if (zone === sourceZone)
          refuse(id, [
            {
              type: FailureType.AvailabilityZoneUnchanged,
              message: `subnet ${wantedSubnet} is in ${zone}, where it already is; choose a subnet of another AZ`,
            },
          ]);
        if (subnet.VpcId !== i.VpcId && !input.overrides?.securityGroupIds)
          refusals.push({
            type: FailureType.MigrationUnsupported,
            message: `subnet ${wantedSubnet} is in ${subnet.VpcId}, the source in ${i.VpcId}; its security groups do not exist there: give overrides.securityGroupIds of ${subnet.VpcId}`,
          });
      } else {
        zone = zone ?? '';
        const zoneIs = await zoneState(ec2, zone);
        if (zoneIs !== 'available')
          refuse(id, [
            {
              type: FailureType.AvailabilityZoneUnknown,
              message:
                zoneIs === undefined
                  ? `Availability Zone ${zone} does not exist in ${where(input.target)}; list them with 'aws ec2 describe-availability-zones'`
                  : `Availability Zone ${zone} is ${zoneIs}; choose another`,
            },
          ]);
        const candidates = await aws(`listing the subnets of ${i.VpcId} in ${zone}`, () =>
          ec2.send(
            new DescribeSubnetsCommand({
              Filters: [
                { Name: 'vpc-id', Values: [i.VpcId ?? ''] },
                { Name: 'availability-zone', Values: [zone ?? ''] },
              ],
            }),
          ),
        ).then((o) => (o.Subnets ?? []).filter((s) => s.VpcId === i.VpcId && s.AvailabilityZone === zone));
        subnet = pickSubnet(candidates, sourceSubnet);
        if (!subnet)
          refuse(id, [
            {
              type: FailureType.NoSubnetInZone,
              message:
                candidates.length === 0
                  ? `its VPC ${i.VpcId} has no subnet in ${zone}; create one there, or name one with overrides.subnetId`
                  : `the subnets of VPC ${i.VpcId} in ${zone} (${candidates.map((s) => s.SubnetId).join(', ')}) have no free address`,
            },
          ]);
      }
      const subnetId = subnet.SubnetId ?? '';
      const offered = await aws(`checking that ${instanceType} is offered in ${zone}`, () =>
        ec2.send(
          new DescribeInstanceTypeOfferingsCommand({
            LocationType: 'availability-zone',
            Filters: [
              { Name: 'location', Values: [zone ?? ''] },
              { Name: 'instance-type', Values: [instanceType] },
            ],
          }),
        ),
      ).then((o) => (o.InstanceTypeOfferings ?? []).some((x) => x.InstanceType === instanceType));
      if (!offered)
        refusals.push({
          type: FailureType.MigrationUnsupported,
          message: `instance type ${instanceType} is not offered in ${zone}; choose another type (overrides.instanceType) or AZ`,
        });

      // --- network: addresses and interfaces ---------------------------------------------
      const notCarriedOver: string[] = [];
      const nics = i.NetworkInterfaces ?? [];
      const primary: InstanceNetworkInterface | undefined =
        nics.find((n) => n.Attachment?.DeviceIndex === 0) ?? nics[0];
      const extras = nics.filter((n) => n !== primary);
      if (extras.length > 0) {
        const list = extras.map((n) => n.NetworkInterfaceId ?? '?').join(', ');
        if (input.extraNetworkInterfaces !== 'leave')
          refusals.push({
            type: FailureType.NetworkInterfacesUnhandled,
            message: `it has network interfaces besides its primary one (${list}), which cannot change AZ; pass extraNetworkInterfaces 'leave' to migrate without them (they stay with the source)`,
          });
        else notCarriedOver.push(`network interfaces ${list} (they stay with the source)`);
      }
      const eips: Address[] = addresses;
      let elasticIp: MigrationPlan['elasticIp'];
      if (eips.length > 0) {
        const list = eips.map((a) => `${a.PublicIp ?? '?'} (${a.AllocationId ?? '?'})`).join(', ');
        const first = eips[0];
        if (input.elasticIp === undefined)
          refusals.push({
            type: FailureType.ElasticIpUnhandled,
            message: `it has the Elastic IP ${list}; say what to do with it: elasticIp 'move' (to the new instance once it passed its checks) or 'leave' (it stays with the source)`,
          });
        else if (
          input.elasticIp === 'move' &&
          (eips.length > 1 || !first?.AllocationId || first.PrivateIpAddress !== i.PrivateIpAddress)
        )
          refusals.push({
            type: FailureType.MigrationUnsupported,
            message: `only one Elastic IP on the primary private address can be moved, and it has ${list}; move them yourself and pass elasticIp 'leave'`,
          });
        else if (first?.AllocationId) {
          elasticIp = {
            allocationId: first.AllocationId,
            publicIp: first.PublicIp ?? '',
            action: input.elasticIp,
          };
          if (input.elasticIp === 'leave')
            notCarriedOver.push(`Elastic IP ${list} (it stays with the source)`);
        }
      } else if (i.PublicIpAddress) {
        notCarriedOver.push(`public IP ${i.PublicIpAddress} (auto-assigned: the new instance gets another)`);
      }
      if (i.PrivateIpAddress)
        notCarriedOver.push(`private IP ${i.PrivateIpAddress} (the new subnet has other addresses)`);
      const targetPublic = subnet.MapPublicIpOnLaunch === true;
      const wantPublic = eips.length > 0 ? undefined : i.PublicIpAddress !== undefined;
      const secondaryIps = Math.max(0, (primary?.PrivateIpAddresses?.length ?? 1) - 1);
      if (secondaryIps > 0)
        notCarriedOver.push(`the values of ${secondaryIps} secondary private IP(s) (the count is kept)`);
      const ipv6Count = primary?.Ipv6Addresses?.length ?? 0;
      if (ipv6Count > 0 && !(subnet.Ipv6CidrBlockAssociationSet ?? []).length)
        refusals.push({
          type: FailureType.MigrationUnsupported,
          message: `it has ${ipv6Count} IPv6 address(es) and subnet ${subnetId} has no IPv6 CIDR block`,
        });

      // --- volumes ----------------------------------------------------------------------
      const blockDevices: BlockDeviceSpec[] = [];
      const volumeTags: Record<string, Tags> = {};
      for (const m of i.BlockDeviceMappings ?? []) {
        const v = volumes.find((x) => x.VolumeId === m.Ebs?.VolumeId);
        if (!m.DeviceName || !v) continue;
        if (v.MultiAttachEnabled)
          refusals.push({
            type: FailureType.MigrationUnsupported,
            message: `volume ${v.VolumeId} (${m.DeviceName}) is Multi-Attach enabled and shared with other instances`,
          });
        const type = v.VolumeType ?? 'gp3';
        blockDevices.push({
          deviceName: m.DeviceName,
          volumeSize: v.Size ?? 1,
          volumeType: type,
          ...(['io1', 'io2', 'gp3'].includes(type) && v.Iops !== undefined ? { iops: v.Iops } : {}),
          ...(type === 'gp3' && v.Throughput !== undefined ? { throughput: v.Throughput } : {}),
          deleteOnTermination: m.Ebs?.DeleteOnTermination === true,
          encrypted: v.Encrypted === true,
          ...(v.Encrypted && v.KmsKeyId ? { kmsKeyId: v.KmsKeyId } : {}),
        });
        const tags = userTags(v.Tags);
        if (Object.keys(tags).length > 0) volumeTags[m.DeviceName] = tags;
      }

      const tags = userTags(i.Tags);
      if (Object.keys(tags).length + OWNER_TAG_COUNT > MAX_TAGS)
        refusals.push({
          type: FailureType.MigrationUnsupported,
          message: `it has ${Object.keys(tags).length} tags; with amiflow's ${OWNER_TAG_COUNT} that is over EC2's ${MAX_TAGS} per resource`,
        });
      if (refusals.length > 0) refuse(id, refusals);

      const md = i.MetadataOptions;
      const dns = i.PrivateDnsNameOptions;
      const launch: LaunchSpec = {
        instanceType,
        availabilityZone: zone,
        subnetId,
        securityGroupIds:
          input.overrides?.securityGroupIds ??
          (i.SecurityGroups ?? []).flatMap((g) => (g.GroupId ? [g.GroupId] : [])),
        ...(wantPublic !== undefined && wantPublic !== targetPublic
          ? { associatePublicIpAddress: wantPublic }
          : {}),
        ...(secondaryIps > 0 ? { secondaryPrivateIpAddressCount: secondaryIps } : {}),
        ...(ipv6Count > 0 ? { ipv6AddressCount: ipv6Count } : {}),
        ...(i.KeyName ? { keyName: i.KeyName } : {}),
        ...(i.IamInstanceProfile?.Arn ? { iamInstanceProfileArn: i.IamInstanceProfile.Arn } : {}),
        blockDevices,
        tags,
        ...(userData ? { userData } : {}),
        ...(md
          ? {
              metadataOptions: {
                ...(md.HttpTokens ? { httpTokens: md.HttpTokens } : {}),
                ...(md.HttpPutResponseHopLimit !== undefined
                  ? { httpPutResponseHopLimit: md.HttpPutResponseHopLimit }
                  : {}),
                ...(md.HttpEndpoint ? { httpEndpoint: md.HttpEndpoint } : {}),
                ...(md.HttpProtocolIpv6 ? { httpProtocolIpv6: md.HttpProtocolIpv6 } : {}),
                ...(md.InstanceMetadataTags ? { instanceMetadataTags: md.InstanceMetadataTags } : {}),
              },
            }
          : {}),
        disableApiTermination: terminationProtected,
        ebsOptimized: i.EbsOptimized === true,
        monitoring: i.Monitoring?.State === 'enabled' || i.Monitoring?.State === 'pending',
        ...(i.Placement?.Tenancy === 'dedicated' ? { tenancy: 'dedicated' } : {}),
        ...(groupName && placementGroup ? { placementGroupName: groupName } : {}),
        ...(credits ? { cpuCredits: credits } : {}),
        ...(shutdownBehavior ? { shutdownBehavior } : {}),
        ...(i.HibernationOptions?.Configured ? { hibernation: true } : {}),
        ...(i.EnclaveOptions?.Enabled ? { enclave: true } : {}),
        ...(dns &&
        (dns.HostnameType || dns.EnableResourceNameDnsARecord || dns.EnableResourceNameDnsAAAARecord)
          ? {
              privateDnsNameOptions: {
                ...(dns.HostnameType ? { hostnameType: dns.HostnameType } : {}),
                ...(dns.EnableResourceNameDnsARecord !== undefined
                  ? { enableResourceNameDnsARecord: dns.EnableResourceNameDnsARecord }
                  : {}),
                ...(dns.EnableResourceNameDnsAAAARecord !== undefined
                  ? { enableResourceNameDnsAAAARecord: dns.EnableResourceNameDnsAAAARecord }
                  : {}),
              },
            }
          : {}),
      };
      return {
        source: {
          instanceId: id,
          state,
          availabilityZone: sourceZone,
          subnetId: i.SubnetId,
          vpcId: i.VpcId,
          instanceType: i.InstanceType ?? '',
          ...(i.PrivateIpAddress ? { privateIpAddress: i.PrivateIpAddress } : {}),
          terminationProtected,
        },
        launch,
        volumeTags,
        ...(elasticIp ? { elasticIp } : {}),
        notCarriedOver,
      };
    },

    /**
     * Launches the plan from the intermediate image. Safe to repeat: an instance this run launched
     * already (found by its tags) is returned instead, and EC2 answers a repeated ClientToken with
     * the instance of the first request.
     */
    async launchInstance(input: LaunchInput): Promise<LaunchedInstance> {
      const ec2 = await deps.aws.ec2(input.target);
      const clientToken = launchClientToken(input.owner);
      const existing = await findLaunched(ec2, input.owner);
      if (existing?.InstanceId) return { instanceId: existing.InstanceId, created: false, clientToken };
      const out = await aws(`launching from ${input.imageId} in ${input.spec.availabilityZone}`, () =>
        ec2.send(new RunInstancesCommand(runInstancesRequest(input))),
      );
      const instanceId = out.Instances?.[0]?.InstanceId;
      // Retryable on purpose: the retry finds the instance by its tags or its ClientToken.
      if (!instanceId) throw new Error(`RunInstances answered without an instance id (${input.imageId})`);
      return { instanceId, created: true, clientToken };
    },

    /**
     * Waits until the instance is `running` and both status checks (system and instance) are `ok`.
     * A terminated or stopped instance, or an `impaired` check, fails at once and non-retryable,
     * with EC2's reason.
     */
    async waitForInstanceReady(input: InstanceWaitInput): Promise<InstanceReady> {
      const ec2 = await deps.aws.ec2(input.target);
      const out = await waitUntil(deps, {
        what: `instance ${input.instanceId} to run and pass its status checks`,
        poll: async () => {
          let statuses;
          try {
            statuses = await ec2.send(
              new DescribeInstanceStatusCommand({
                InstanceIds: [input.instanceId],
                IncludeAllInstances: true,
              }),
            );
          } catch (err) {
            // Read-after-write: a new instance can be invisible for a few seconds.
            if (isAwsCode(err, 'InvalidInstanceID.NotFound')) return { state: 'not visible yet' };
            rethrowAws(err, `reading the status of ${input.instanceId}`);
          }
          const s = statuses.InstanceStatuses?.find((x) => x.InstanceId === input.instanceId);
          return {
            state: s?.InstanceState?.Name ?? 'not visible yet',
            system: s?.SystemStatus?.Status ?? 'not-applicable',
            instance: s?.InstanceStatus?.Status ?? 'not-applicable',
          };
        },
        done: (s) => {
          if (['shutting-down', 'terminated', 'stopping', 'stopped'].includes(s.state))
            throw failure(
              FailureType.InstanceChecksFailed,
              `the new instance ${input.instanceId} is '${s.state}' instead of running (EC2 stops a launch that fails, e.g. for an unusable KMS key or capacity; see its state reason)`,
              s,
            );
          if (s.system === 'impaired' || s.instance === 'impaired')
            throw failure(
              FailureType.InstanceChecksFailed,
              `the new instance ${input.instanceId} failed its status checks (system: ${s.system}, instance: ${s.instance})`,
              s,
            );
          return s.state === 'running' && s.system === 'ok' && s.instance === 'ok';
        },
        progress: (s) => s,
        progressCalls: 0,
        deadline: input.deadline,
        maxCalls: 500,
      });
      const described = await describeOptional(ec2, input.instanceId);
      return {
        instanceId: input.instanceId,
        ...(described?.Placement?.AvailabilityZone
          ? { availabilityZone: described.Placement.AvailabilityZone }
          : {}),
        ...(described?.PrivateIpAddress ? { privateIpAddress: described.PrivateIpAddress } : {}),
        at: deps.clock.now(),
        awsCalls: out.calls + 1,
      };
    },

    /** Gives each new volume its source volume's tags (RunInstances can tag volumes only all alike). */
    async copyVolumeTags(input: CopyVolumeTagsInput): Promise<{ volumeIds: string[] }> {
      const devices = Object.keys(input.volumeTags);
      if (devices.length === 0) return { volumeIds: [] };
      const ec2 = await deps.aws.ec2(input.target);
      const i = await readInstance(ec2, input);
      const volumeIds: string[] = [];
      for (const m of i.BlockDeviceMappings ?? []) {
        const tags = m.DeviceName ? input.volumeTags[m.DeviceName] : undefined;
        const volumeId = m.Ebs?.VolumeId;
        if (!tags || !volumeId) continue;
        await aws(`tagging volume ${volumeId}`, () =>
          ec2.send(new CreateTagsCommand({ Resources: [volumeId], Tags: toAwsTags(tags) })),
        );
        volumeIds.push(volumeId);
      }
      return { volumeIds };
    },

    /** Associates the Elastic IP with the instance (taking it from wherever it is). Safe to repeat. */
    async moveElasticIp(input: MoveElasticIpInput): Promise<{ associationId?: string }> {
      const ec2 = await deps.aws.ec2(input.target);
      const out = await aws(`moving Elastic IP ${input.allocationId} to ${input.instanceId}`, () =>
        ec2.send(
          new AssociateAddressCommand({
            AllocationId: input.allocationId,
            InstanceId: input.instanceId,
            AllowReassociation: true,
          }),
        ),
      );
      return out.AssociationId ? { associationId: out.AssociationId } : {};
    },

    /**
     * Terminates the source once the new instance passed its checks, and waits until it is
     * `terminated`. Safe to repeat. Termination protection is the user's: it is never turned off here
     * (planMigration refuses a protected source with source action `terminate`).
     */
    async terminateSourceInstance(input: InstanceWaitInput): Promise<{ instanceId: string; at: number }> {
      const ec2 = await deps.aws.ec2(input.target);
      let sent = false;
      await waitUntil(deps, {
        what: `instance ${input.instanceId} to terminate`,
        poll: async () => {
          const state = stateOf(await readInstance(ec2, input));
          if (state !== 'terminated' && state !== 'shutting-down' && !sent) {
            await aws(`terminating instance ${input.instanceId}`, () =>
              ec2.send(new TerminateInstancesCommand({ InstanceIds: [input.instanceId] })),
            );
            sent = true;
          }
          return state;
        },
        done: (state) => state === 'terminated',
        progress: (state) => ({ instanceState: state }),
        progressCalls: 0,
        deadline: input.deadline,
        maxCalls: 500,
      });
      return { instanceId: input.instanceId, at: deps.clock.now() };
    },

    /**
     * Compensation: terminates the instance this run launched, turning its termination protection
     * off first when it has one (mirrored from the source). Never touches an instance without this
     * run's tags. Safe to repeat.
     */
    async terminateLaunchedInstance(input: TerminateLaunchedInput): Promise<TerminatedInstance> {
      const ec2 = await deps.aws.ec2(input.target);
      const found = input.instanceId
        ? await describeOptional(ec2, input.instanceId)
        : await findLaunched(ec2, input.owner);
      if (!found?.InstanceId) {
        // RunInstances answered (or may have): within the window its instance can be invisible
        // to DescribeInstances, by id and even more so by tag filter. Not "none launched" yet.
        if (withinWindow(deps))
          throw notVisibleYet(
            deps,
            input.instanceId
              ? `instance ${input.instanceId}`
              : `the instance launched by ${input.owner.runId}`,
          );
        return {
          ...(input.instanceId ? { instanceId: input.instanceId } : {}),
          terminated: false,
          note: input.instanceId
            ? `instance ${input.instanceId} was not found after the consistency window: already gone`
            : 'no instance launched by this run was found after the consistency window: none was launched',
        };
      }
      const instanceId = found.InstanceId;
      if (!launchedBy(found, input.owner)) {
        // Launched with its tags (TagSpecifications), which an endpoint may show a moment later.
        if (input.instanceId && (found.Tags ?? []).length === 0 && withinWindow(deps))
          throw notVisibleYet(deps, `the tags of instance ${instanceId}`);
        return { instanceId, terminated: false, note: 'not launched by this run: left alone' };
      }
      const state = stateOf(found);
      if (state === 'terminated' || state === 'shutting-down') return { instanceId, terminated: true };
      if (await attribute(ec2, instanceId, 'disableApiTermination')) {
        await aws(`turning termination protection of ${instanceId} off`, () =>
          ec2.send(
            new ModifyInstanceAttributeCommand({
              InstanceId: instanceId,
              DisableApiTermination: { Value: false },
            }),
          ),
        );
      }
      try {
        await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
      } catch (err) {
        // Seen a moment ago, unknown to TerminateInstances now: another endpoint's lag.
        if (isNotFound(err, 'instance') && withinWindow(deps))
          throw notVisibleYet(deps, `instance ${instanceId} (to terminate)`, err);
        rethrowAws(err, `terminating instance ${instanceId}`);
      }
      return { instanceId, terminated: true };
    },
  };
}

/**
 * The decisions of `planMigration`, as pure functions of what EC2 answered: every refusal (what
 * cannot move faithfully, with the failure type and the sentence the user reads), the subnet choice,
 * what is not carried over, and the launch specification that mirrors the source. The activity in
 * `launch.ts` only reads EC2 and hands the answers here, so each rule is tested without EC2 mocks
 * (test/activities/migration-plan.test.ts). Nothing here calls AWS or throws.
 */
import type {
  Address,
  Instance,
  InstanceMetadataOptionsResponse,
  InstanceNetworkInterface,
  PrivateDnsNameOptionsResponse,
  Subnet,
  Tag,
  Volume,
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
import { FailureType, RESERVED_TAG_PREFIXES } from '../contracts';

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

/** One reason an instance cannot be moved faithfully; a plan's refusals are reported together. */
export interface Refusal {
  type: FailureTypeName;
  message: string;
}

/** amiflow writes this many tags of its own on the new instance (see the workflow's ownerTags). */
export const OWNER_TAG_COUNT = 5;
const MAX_TAGS = 50;
const BURSTABLE_RE = /^t\d/;

// ---------------------------------------------------------------------------------------------
// Small facts
// ---------------------------------------------------------------------------------------------

export function where(t: AwsTarget): string {
  return `region ${t.region}${t.accountId ? `, account ${t.accountId}` : ''}`;
}

export function stateOf(i: Instance): InstanceState {
  return i.State?.Name ?? 'pending';
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

/** CPU credits carry over only between burstable types: a t3 moving to an m6i has none to keep. */
export function carriesCpuCredits(sourceType: string | undefined, newType: string): boolean {
  return BURSTABLE_RE.test(sourceType ?? '') && BURSTABLE_RE.test(newType);
}

/** The message of the one failure that names every refusal. */
export function refusalMessage(instanceId: string, refusals: readonly Refusal[]): string {
  return `instance ${instanceId} cannot be moved faithfully, nothing was changed: ${refusals.map((r) => r.message).join('; ')}`;
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
// Refusals, in the order the plan meets them
// ---------------------------------------------------------------------------------------------

/**
 * What stops a plan at once, from the instance alone, before anything else is read. `alone` means
 * the failure is the refusal's own sentence (a state or root-device problem is not "cannot be moved
 * faithfully": nothing about it could be mirrored).
 */
export function immediateRefusal(
  id: string,
  i: Instance,
  targetAvailabilityZone: string | undefined,
): (Refusal & { alone: boolean }) | undefined {
  const state = stateOf(i);
  if (state !== 'running' && state !== 'stopped')
    return {
      alone: true,
      type: FailureType.InstanceStateUnsupported,
      message: `instance ${id} is '${state}'; migrate it when it is running or stopped`,
    };
  if (i.RootDeviceType === 'instance-store')
    return {
      alone: true,
      type: FailureType.InstanceStoreRoot,
      message: `instance ${id} has an instance-store root volume, which cannot be imaged with CreateImage or moved; only EBS-backed instances can be migrated`,
    };
  const sourceZone = i.Placement?.AvailabilityZone ?? '';
  if (targetAvailabilityZone !== undefined && targetAvailabilityZone === sourceZone)
    return {
      alone: false,
      type: FailureType.AvailabilityZoneUnchanged,
      message: `it is already in ${sourceZone}; choose another Availability Zone`,
    };
  if (!i.SubnetId || !i.VpcId)
    return {
      alone: false,
      type: FailureType.MigrationUnsupported,
      message: 'it is not in a VPC subnet; only VPC instances can be migrated',
    };
  return undefined;
}

/** How the instance is bought and hosted: a spot instance or a Dedicated Host does not move. */
export function lifecycleRefusals(i: Instance): Refusal[] {
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
  return refusals;
}

export interface ProtectionFacts {
  state: InstanceState;
  sourceAction: SourceAction;
  terminationProtected: boolean;
  stopProtected: boolean;
  placementGroupName?: string;
  placementStrategy?: string;
}

/** The user's protections and a cluster placement group, which the migration must not override. */
export function protectionRefusals(f: ProtectionFacts): Refusal[] {
  const refusals: Refusal[] = [];
  if (f.terminationProtected && f.sourceAction === 'terminate')
    refusals.push({
      type: FailureType.MigrationUnsupported,
      message:
        'it has termination protection (disableApiTermination) and the source action is terminate; ' +
        "turn the protection off yourself or choose source action 'stop'",
    });
  if (f.stopProtected && f.state === 'running')
    refusals.push({
      type: FailureType.MigrationUnsupported,
      message:
        'it has stop protection (disableApiStop) and must be stopped to be imaged consistently; turn stop protection off for the migration',
    });
  if (f.placementStrategy === 'cluster')
    refusals.push({
      type: FailureType.MigrationUnsupported,
      message: `it is in cluster placement group ${f.placementGroupName}, whose instances all share one AZ`,
    });
  return refusals;
}

export interface NamedSubnetFacts {
  target: AwsTarget;
  subnetId: string;
  /** What DescribeSubnets answered for it; undefined when it does not exist. */
  subnet: Subnet | undefined;
  targetAvailabilityZone: string | undefined;
  sourceZone: string;
  sourceVpcId: string;
  securityGroupsGiven: boolean;
}

/**
 * A subnet the caller named (`overrides.subnetId`): `immediate` stops the plan at once (no such
 * subnet, another AZ than the one asked for, the source's own AZ); `deferred` is reported with the
 * plan's other refusals (another VPC without security groups of that VPC).
 */
export function namedSubnetRefusals(f: NamedSubnetFacts): { immediate?: Refusal; deferred: Refusal[] } {
  const { subnet, subnetId: wanted } = f;
  if (!subnet)
    return {
      immediate: {
        type: FailureType.NoSubnetInZone,
        message: `subnet ${wanted} (overrides.subnetId) was not found in ${where(f.target)}`,
      },
      deferred: [],
    };
  const zone = f.targetAvailabilityZone;
  if (zone !== undefined && subnet.AvailabilityZone !== zone)
    return {
      immediate: {
        type: FailureType.NoSubnetInZone,
        message: `subnet ${wanted} is in ${subnet.AvailabilityZone}, not in the target ${zone}; name a subnet of ${zone} or leave targetAvailabilityZone out`,
      },
      deferred: [],
    };
  const subnetZone = subnet.AvailabilityZone ?? '';
  if (subnetZone === f.sourceZone)
    return {
      immediate: {
        type: FailureType.AvailabilityZoneUnchanged,
        message: `subnet ${wanted} is in ${subnetZone}, where it already is; choose a subnet of another AZ`,
      },
      deferred: [],
    };
  if (subnet.VpcId !== f.sourceVpcId && !f.securityGroupsGiven)
    return {
      deferred: [
        {
          type: FailureType.MigrationUnsupported,
          message: `subnet ${wanted} is in ${subnet.VpcId}, the source in ${f.sourceVpcId}; its security groups do not exist there: give overrides.securityGroupIds of ${subnet.VpcId}`,
        },
      ],
    };
  return { deferred: [] };
}

/** The target AZ as DescribeAvailabilityZones described it (`zoneIs` undefined: no such zone). */
export function zoneRefusal(
  target: AwsTarget,
  zone: string,
  zoneIs: string | undefined,
): Refusal | undefined {
  if (zoneIs === 'available') return undefined;
  return {
    type: FailureType.AvailabilityZoneUnknown,
    message:
      zoneIs === undefined
        ? `Availability Zone ${zone} does not exist in ${where(target)}; list them with 'aws ec2 describe-availability-zones'`
        : `Availability Zone ${zone} is ${zoneIs}; choose another`,
  };
}

/** No usable subnet of the source's VPC in the target AZ: none at all, or none with a free address. */
export function noSubnetRefusal(vpcId: string, zone: string, candidates: readonly Subnet[]): Refusal {
  return {
    type: FailureType.NoSubnetInZone,
    message:
      candidates.length === 0
        ? `its VPC ${vpcId} has no subnet in ${zone}; create one there, or name one with overrides.subnetId`
        : `the subnets of VPC ${vpcId} in ${zone} (${candidates.map((s) => s.SubnetId).join(', ')}) have no free address`,
  };
}

export function instanceTypeRefusals(offered: boolean, instanceType: string, zone: string): Refusal[] {
  if (offered) return [];
  return [
    {
      type: FailureType.MigrationUnsupported,
      message: `instance type ${instanceType} is not offered in ${zone}; choose another type (overrides.instanceType) or AZ`,
    },
  ];
}

/** What the network plan decided: the refusals and what stays behind, and the new instance's addresses. */
export interface NetworkPlan {
  refusals: Refusal[];
  notCarriedOver: string[];
  elasticIp?: MigrationPlan['elasticIp'];
  /** undefined: the subnet's default is right (or an Elastic IP will be moved). */
  associatePublicIpAddress?: boolean;
  secondaryPrivateIpAddressCount: number;
  ipv6AddressCount: number;
}

/**
 * Interfaces and addresses: extra interfaces and Elastic IPs cannot change AZ by themselves, so the
 * caller must say what to do with them; private addresses cannot be kept (another subnet), their
 * count can; a public address is asked for explicitly only when the target subnet's default differs.
 */
export function planNetwork(
  i: Instance,
  input: Pick<MigrationPlanInput, 'elasticIp' | 'extraNetworkInterfaces'>,
  subnet: Subnet,
  eips: readonly Address[],
): NetworkPlan {
  const refusals: Refusal[] = [];
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
      if (input.elasticIp === 'leave') notCarriedOver.push(`Elastic IP ${list} (it stays with the source)`);
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
      message: `it has ${ipv6Count} IPv6 address(es) and subnet ${subnet.SubnetId ?? ''} has no IPv6 CIDR block`,
    });
  return {
    refusals,
    notCarriedOver,
    ...(elasticIp ? { elasticIp } : {}),
    ...(wantPublic !== undefined && wantPublic !== targetPublic
      ? { associatePublicIpAddress: wantPublic }
      : {}),
    secondaryPrivateIpAddressCount: secondaryIps,
    ipv6AddressCount: ipv6Count,
  };
}

/** Each EBS volume's settings and own tags, by device; Multi-Attach volumes are shared and refused. */
export function planVolumes(
  i: Instance,
  volumes: readonly Volume[],
): { blockDevices: BlockDeviceSpec[]; volumeTags: Record<string, Tags>; refusals: Refusal[] } {
  const blockDevices: BlockDeviceSpec[] = [];
  const volumeTags: Record<string, Tags> = {};
  const refusals: Refusal[] = [];
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
  return { blockDevices, volumeTags, refusals };
}

/** EC2 allows 50 tags a resource; the new instance carries amiflow's besides the source's. */
export function tagRefusals(tags: Tags): Refusal[] {
  const count = Object.keys(tags).length;
  if (count + OWNER_TAG_COUNT <= MAX_TAGS) return [];
  return [
    {
      type: FailureType.MigrationUnsupported,
      message: `it has ${count} tags; with amiflow's ${OWNER_TAG_COUNT} that is over EC2's ${MAX_TAGS} per resource`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// The launch specification
// ---------------------------------------------------------------------------------------------

/** What DescribeInstanceAttribute and the other reads told about the source, besides the instance. */
export interface SourceAttributes {
  userData?: string;
  terminationProtected: boolean;
  shutdownBehavior?: string;
  cpuCredits?: string;
  /** Set when the source is in a placement group that still exists. */
  placementGroupName?: string;
}

export interface LaunchPlacement {
  instanceType: string;
  availabilityZone: string;
  subnetId: string;
}

function metadataOptionsOf(md: InstanceMetadataOptionsResponse): LaunchSpec['metadataOptions'] {
  return {
    ...(md.HttpTokens ? { httpTokens: md.HttpTokens } : {}),
    ...(md.HttpPutResponseHopLimit !== undefined
      ? { httpPutResponseHopLimit: md.HttpPutResponseHopLimit }
      : {}),
    ...(md.HttpEndpoint ? { httpEndpoint: md.HttpEndpoint } : {}),
    ...(md.HttpProtocolIpv6 ? { httpProtocolIpv6: md.HttpProtocolIpv6 } : {}),
    ...(md.InstanceMetadataTags ? { instanceMetadataTags: md.InstanceMetadataTags } : {}),
  };
}

/** Hostname options only when the source set any: an empty object would still be sent. */
function dnsOptionsOf(
  dns: PrivateDnsNameOptionsResponse | undefined,
): Pick<LaunchSpec, 'privateDnsNameOptions'> {
  if (!dns || !(dns.HostnameType || dns.EnableResourceNameDnsARecord || dns.EnableResourceNameDnsAAAARecord))
    return {};
  return {
    privateDnsNameOptions: {
      ...(dns.HostnameType ? { hostnameType: dns.HostnameType } : {}),
      ...(dns.EnableResourceNameDnsARecord !== undefined
        ? { enableResourceNameDnsARecord: dns.EnableResourceNameDnsARecord }
        : {}),
      ...(dns.EnableResourceNameDnsAAAARecord !== undefined
        ? { enableResourceNameDnsAAAARecord: dns.EnableResourceNameDnsAAAARecord }
        : {}),
    },
  };
}

/** The new instance as a mirror of the source, in the chosen placement, with the chosen network. */
export function launchSpec(
  i: Instance,
  where_: LaunchPlacement,
  overrides: MigrateInstanceOverrides | undefined,
  attrs: SourceAttributes,
  network: NetworkPlan,
  blockDevices: BlockDeviceSpec[],
): LaunchSpec {
  const md = i.MetadataOptions;
  return {
    ...where_,
    securityGroupIds:
      overrides?.securityGroupIds ?? (i.SecurityGroups ?? []).flatMap((g) => (g.GroupId ? [g.GroupId] : [])),
    ...(network.associatePublicIpAddress !== undefined
      ? { associatePublicIpAddress: network.associatePublicIpAddress }
      : {}),
    ...(network.secondaryPrivateIpAddressCount > 0
      ? { secondaryPrivateIpAddressCount: network.secondaryPrivateIpAddressCount }
      : {}),
    ...(network.ipv6AddressCount > 0 ? { ipv6AddressCount: network.ipv6AddressCount } : {}),
    ...(i.KeyName ? { keyName: i.KeyName } : {}),
    ...(i.IamInstanceProfile?.Arn ? { iamInstanceProfileArn: i.IamInstanceProfile.Arn } : {}),
    blockDevices,
    tags: userTags(i.Tags),
    ...(attrs.userData ? { userData: attrs.userData } : {}),
    ...(md ? { metadataOptions: metadataOptionsOf(md) } : {}),
    disableApiTermination: attrs.terminationProtected,
    ebsOptimized: i.EbsOptimized === true,
    monitoring: i.Monitoring?.State === 'enabled' || i.Monitoring?.State === 'pending',
    ...(i.Placement?.Tenancy === 'dedicated' ? { tenancy: 'dedicated' } : {}),
    ...(attrs.placementGroupName ? { placementGroupName: attrs.placementGroupName } : {}),
    ...(attrs.cpuCredits ? { cpuCredits: attrs.cpuCredits } : {}),
    ...(attrs.shutdownBehavior ? { shutdownBehavior: attrs.shutdownBehavior } : {}),
    ...(i.HibernationOptions?.Configured ? { hibernation: true } : {}),
    ...(i.EnclaveOptions?.Enabled ? { enclave: true } : {}),
    ...dnsOptionsOf(i.PrivateDnsNameOptions),
  };
}

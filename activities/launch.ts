/**
 * Launching an equivalent instance in another Availability Zone, for `migrateInstance`:
 * - `planMigration` reads the source's whole configuration and the target AZ's network, and refuses,
 *   before anything is touched, what cannot move faithfully (the decisions are the pure functions of
 *   `migration-plan.ts`; this file only reads EC2);
 * - `launchInstance` runs the plan from the intermediate AMI (ClientToken from the run, plus a lookup
 *   by the run's tags first, so a retry finds the instance instead of launching a second; the request
 *   is `launch-request.ts`);
 * - `waitForInstanceReady` waits, heartbeating, until it runs and both status checks are `ok`;
 * - `copyVolumeTags`, `moveElasticIp`, `terminateSourceInstance`;
 * - `terminateLaunchedInstance`: the compensation; only ever an instance this run launched.
 */
import type { Address, EC2Client, Instance, PlacementGroup, Subnet, Volume } from '@aws-sdk/client-ec2';
import {
  AssociateAddressCommand,
  CreateTagsCommand,
  DescribeAddressesCommand,
  DescribeAvailabilityZonesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstanceCreditSpecificationsCommand,
  DescribeInstanceTypeOfferingsCommand,
  DescribeInstancesCommand,
  DescribePlacementGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  ModifyInstanceAttributeCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { AwsTarget, Tags } from '../contracts';
import { FailureType, TAG } from '../contracts';
import { notVisibleYet, withinWindow } from './consistency';
import type { ActivityDeps } from './deps';
import { aws, failure, isAwsCode, rethrowAws } from './errors';
import { toAwsTags } from './images';
import type { InstanceWaitInput } from './instances';
import { instanceReadsOf } from './instance-reads';
import {
  findInstanceToTerminate,
  mergedRead,
  pollInstanceState,
  readInstance,
  terminateOwnInstance,
} from './instances';
import type { LaunchInput, LaunchOwner } from './launch-request';
import { launchClientToken, runInstancesRequest } from './launch-request';
import type { MigrationPlan, MigrationPlanInput, Refusal } from './migration-plan';
import {
  carriesCpuCredits,
  immediateRefusal,
  instanceTypeRefusals,
  launchSpec,
  lifecycleRefusals,
  namedSubnetRefusals,
  noSubnetRefusal,
  pickSubnet,
  planNetwork,
  planVolumes,
  protectionRefusals,
  refusalMessage,
  stateOf,
  tagRefusals,
  userTags,
  zoneRefusal,
} from './migration-plan';
import { waitUntil } from './waiting';

// Where the shapes and pure helpers used to live: callers keep importing them from here.
export type { LaunchInput, LaunchOwner } from './launch-request';
export { launchClientToken, runInstancesRequest } from './launch-request';
export type { BlockDeviceSpec, LaunchSpec, MigrationPlan, MigrationPlanInput } from './migration-plan';
export { OWNER_TAG_COUNT, pickSubnet, userTags } from './migration-plan';

// ---------------------------------------------------------------------------------------------
// Shapes (plain data: they travel through workflow history)
// ---------------------------------------------------------------------------------------------

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
// AWS reads
// ---------------------------------------------------------------------------------------------

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

/** The instance as the merged reader sees it now (undefined: not shown), for a wait's answer. */
async function describedNow(deps: ActivityDeps, ref: InstanceWaitInput): Promise<Instance | undefined> {
  const read = await mergedRead(
    (signal) => instanceReadsOf(deps).describe(ref.target, ref.instanceId, signal),
    `reading instance ${ref.instanceId}`,
  );
  return 'found' in read ? read.found : undefined;
}

function refuse(instanceId: string, refusals: Refusal[]): never {
  const [first] = refusals;
  if (!first) throw new Error('refuse() needs a reason');
  throw failure(first.type, refusalMessage(instanceId, refusals), { refusals });
}

/** What the plan needs besides the instance, read at once (all read-only). */
interface SourceFacts {
  userData: string | undefined;
  terminationProtected: boolean;
  stopProtected: boolean;
  shutdownBehavior: string | undefined;
  sourceSubnet: Subnet | undefined;
  volumes: Volume[];
  /** The Elastic IPs associated with the instance. */
  addresses: Address[];
  credits: string | undefined;
  placementGroup: PlacementGroup | undefined;
}

async function readSourceFacts(
  ec2: EC2Client,
  id: string,
  i: Instance,
  instanceType: string,
  groupName: string | undefined,
): Promise<SourceFacts> {
  const volumeIds = (i.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.VolumeId ? [m.Ebs.VolumeId] : []));
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
    subnetsById(ec2, [i.SubnetId ?? '']),
    volumeIds.length
      ? aws(`reading the volumes of ${id}`, () =>
          ec2.send(new DescribeVolumesCommand({ VolumeIds: volumeIds })),
        ).then((o) => o.Volumes ?? [])
      : Promise.resolve<Volume[]>([]),
    aws(`reading the Elastic IPs of ${id}`, () =>
      ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: 'instance-id', Values: [id] }] })),
    ).then((o) => (o.Addresses ?? []).filter((a) => a.InstanceId === id)),
    carriesCpuCredits(i.InstanceType, instanceType)
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
  return {
    userData,
    terminationProtected,
    stopProtected,
    shutdownBehavior,
    sourceSubnet: sourceSubnets[0],
    volumes,
    addresses,
    credits,
    placementGroup,
  };
}

/**
 * The subnet and AZ to launch into: the subnet the caller named, else the best of the source VPC's
 * subnets in the target AZ. An impossible choice stops the plan at once; a named subnet of another
 * VPC without security groups for it joins the plan's other refusals.
 */
async function targetSubnet(
  ec2: EC2Client,
  input: MigrationPlanInput,
  i: Instance,
  sourceSubnet: Subnet | undefined,
  refusals: Refusal[],
): Promise<{ subnet: Subnet; zone: string }> {
  const id = input.instanceId;
  const vpcId = i.VpcId ?? '';
  const wanted = input.overrides?.subnetId;
  if (wanted) {
    const subnet = (await subnetsById(ec2, [wanted]))[0];
    const checked = namedSubnetRefusals({
      target: input.target,
      subnetId: wanted,
      subnet,
      targetAvailabilityZone: input.targetAvailabilityZone,
      sourceZone: i.Placement?.AvailabilityZone ?? '',
      sourceVpcId: vpcId,
      securityGroupsGiven: input.overrides?.securityGroupIds !== undefined,
    });
    // namedSubnetRefusals always refuses a subnet that does not exist.
    if (checked.immediate || !subnet) refuse(id, checked.immediate ? [checked.immediate] : []);
    refusals.push(...checked.deferred);
    return { subnet, zone: subnet.AvailabilityZone ?? '' };
  }
  const zone = input.targetAvailabilityZone ?? '';
  const badZone = zoneRefusal(input.target, zone, await zoneState(ec2, zone));
  if (badZone) refuse(id, [badZone]);
  const candidates = await aws(`listing the subnets of ${vpcId} in ${zone}`, () =>
    ec2.send(
      new DescribeSubnetsCommand({
        Filters: [
          { Name: 'vpc-id', Values: [vpcId] },
          { Name: 'availability-zone', Values: [zone] },
        ],
      }),
    ),
  ).then((o) => (o.Subnets ?? []).filter((s) => s.VpcId === i.VpcId && s.AvailabilityZone === zone));
  const subnet = pickSubnet(candidates, sourceSubnet);
  if (!subnet) refuse(id, [noSubnetRefusal(vpcId, zone, candidates)]);
  return { subnet, zone };
}

async function typeOffered(ec2: EC2Client, instanceType: string, zone: string): Promise<boolean> {
  const out = await aws(`checking that ${instanceType} is offered in ${zone}`, () =>
    ec2.send(
      new DescribeInstanceTypeOfferingsCommand({
        LocationType: 'availability-zone',
        Filters: [
          { Name: 'location', Values: [zone] },
          { Name: 'instance-type', Values: [instanceType] },
        ],
      }),
    ),
  );
  return (out.InstanceTypeOfferings ?? []).some((x) => x.InstanceType === instanceType);
}

// ---------------------------------------------------------------------------------------------
// Activities
// ---------------------------------------------------------------------------------------------

export function launchActivities(deps: ActivityDeps) {
  return {
    /**
     * Reads everything the new instance must mirror and everything that could stop it from
     * mirroring the source, and refuses the latter, all before anything is changed. Read-only.
     * Every decision is a pure function of migration-plan.ts; the refusals are reported together.
     */
    async planMigration(input: MigrationPlanInput): Promise<MigrationPlan> {
      const ec2 = await deps.aws.ec2(input.target);
      const id = input.instanceId;
      const i = await readInstance(ec2, { target: input.target, instanceId: id });
      const stop = immediateRefusal(id, i, input.targetAvailabilityZone);
      if (stop?.alone) throw failure(stop.type, stop.message);
      if (stop) refuse(id, [{ type: stop.type, message: stop.message }]);
      // immediateRefusal refused every other state.
      const state = stateOf(i) as 'running' | 'stopped';
      const refusals: Refusal[] = lifecycleRefusals(i);
      const instanceType = input.overrides?.instanceType ?? i.InstanceType ?? '';
      const groupName = i.Placement?.GroupName || undefined;
      const facts = await readSourceFacts(ec2, id, i, instanceType, groupName);
      refusals.push(
        ...protectionRefusals({
          state,
          sourceAction: input.sourceAction,
          terminationProtected: facts.terminationProtected,
          stopProtected: facts.stopProtected,
          placementGroupName: groupName,
          placementStrategy: facts.placementGroup?.Strategy,
        }),
      );
      const { subnet, zone } = await targetSubnet(ec2, input, i, facts.sourceSubnet, refusals);
      refusals.push(...instanceTypeRefusals(await typeOffered(ec2, instanceType, zone), instanceType, zone));
      const network = planNetwork(i, input, subnet, facts.addresses);
      const volumes = planVolumes(i, facts.volumes);
      refusals.push(...network.refusals, ...volumes.refusals, ...tagRefusals(userTags(i.Tags)));
      if (refusals.length > 0) refuse(id, refusals);

      const launch = launchSpec(
        i,
        { instanceType, availabilityZone: zone, subnetId: subnet.SubnetId ?? '' },
        input.overrides,
        {
          userData: facts.userData,
          terminationProtected: facts.terminationProtected,
          shutdownBehavior: facts.shutdownBehavior,
          cpuCredits: facts.credits,
          placementGroupName: groupName && facts.placementGroup ? groupName : undefined,
        },
        network,
        volumes.blockDevices,
      );
      return {
        source: {
          instanceId: id,
          state,
          availabilityZone: i.Placement?.AvailabilityZone ?? '',
          subnetId: i.SubnetId ?? '',
          vpcId: i.VpcId ?? '',
          instanceType: i.InstanceType ?? '',
          ...(i.PrivateIpAddress ? { privateIpAddress: i.PrivateIpAddress } : {}),
          terminationProtected: facts.terminationProtected,
        },
        launch,
        volumeTags: volumes.volumeTags,
        ...(network.elasticIp ? { elasticIp: network.elasticIp } : {}),
        notCarriedOver: network.notCarriedOver,
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
      const out = await waitUntil(deps, {
        what: `instance ${input.instanceId} to run and pass its status checks`,
        poll: async () => {
          const read = await mergedRead(
            (signal) => instanceReadsOf(deps).status(input.target, input.instanceId, signal),
            `reading the status of ${input.instanceId}`,
          );
          // Read-after-write: a new instance can be invisible for a few seconds (EC2 refused its id).
          if ('absent' in read && read.aws) return { state: 'not visible yet' };
          const s = 'found' in read ? read.found : undefined;
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
      const described = await describedNow(deps, input);
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
          const state = await pollInstanceState(deps, input);
          if (state !== 'terminated' && state !== 'shutting-down' && !sent) {
            await aws(`terminating instance ${input.instanceId}`, () =>
              ec2.send(new TerminateInstancesCommand({ InstanceIds: [input.instanceId] })),
            );
            sent = true;
            // The first poll at once, then the schedule: the termination may have landed already.
            return pollInstanceState(deps, input);
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
      const lookup = await findInstanceToTerminate(deps, ec2, {
        ...(input.instanceId ? { instanceId: input.instanceId } : {}),
        byTags: () => findLaunched(ec2, input.owner),
        byTagsName: `the instance launched by ${input.owner.runId}`,
        noneByTags:
          'no instance launched by this run was found after the consistency window: none was launched',
      });
      if ('none' in lookup) return lookup.none;
      const { instance: found, instanceId } = lookup;
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
      await terminateOwnInstance(deps, ec2, instanceId, `instance ${instanceId}`);
      return { instanceId, terminated: true };
    },
  };
}

/**
 * What a recipe build needs from EC2 and SSM besides running its steps: finding the parent image
 * (an AMI id, an SSM parameter, or the newest image matching a filter), finding an image an
 * earlier build made from the same content, launching the builder and the test instance (one
 * ClientToken per run, role and instance type; amiflow's tags; IMDSv2; no public address unless
 * asked; the next instance type when EC2 has no capacity for one), terminating them, and tagging
 * the accepted image with its content hash.
 */
import { createHash } from 'node:crypto';
import type {
  EC2Client,
  Image,
  Instance,
  RunInstancesCommandInput,
  _InstanceType,
} from '@aws-sdk/client-ec2';
import {
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/activity';
import type { AwsTarget, Tags } from '../contracts';
import { FailureType, TAG } from '../contracts';
import type { BuildImageInput, BuilderSpec, ParentSpec } from '../contracts/recipe';
import { BuildFailure, RECIPE_TAG } from '../contracts/recipe';
import { recipeContentHash } from './build-steps';
import { isNotFound, notVisibleYet, withinWindow } from './consistency';
import type { ActivityDeps } from './deps';
import { aws, awsErrorCode, failure, isAwsCode, rethrowAws } from './errors';
import { snapshotIdsOf, toAwsTags } from './images';
import { findInstanceToTerminate, terminateOwnInstance } from './instances';
import { sdk } from './sdk-modules';

export type BuildRole = 'builder' | 'test';

export interface ResolveParentInput {
  target: AwsTarget;
  parent: ParentSpec;
}

export interface ResolvedParent {
  imageId: string;
  /** How it was found: `imageId`, `ssm:<name>`, `filter: owners … name …`. */
  source: string;
  name?: string;
  rootDeviceName?: string;
  platform: 'linux' | 'windows';
  creationDate?: string;
}

export interface FindUnchangedInput {
  target: AwsTarget;
  parentImageId: string;
  recipe: BuildImageInput;
}

export interface UnchangedImage {
  contentHash: string;
  existing?: { imageId: string; imageName: string; snapshotIds: string[] };
}

export interface BuildOwner {
  workflowId: string;
  runId: string;
}

export interface LaunchBuildInstanceInput {
  target: AwsTarget;
  imageId: string;
  role: BuildRole;
  owner: BuildOwner;
  builder: BuilderSpec;
  rootDeviceName?: string;
  /** amiflow's tags (run, recipe, role) with the builder's own. */
  tags: Tags;
}

export interface LaunchedBuildInstance {
  instanceId: string;
  instanceType: string;
  /** false when an earlier attempt of this run had launched it already. */
  created: boolean;
  /** Instance types EC2 had no capacity for (or does not offer here), tried before this one. */
  skippedTypes: string[];
}

export interface TerminateBuildInstanceInput {
  target: AwsTarget;
  owner: BuildOwner;
  role: BuildRole;
  /** Known once RunInstances answered; otherwise the instance is found by the run's tags. */
  instanceId?: string;
}

export interface TerminatedBuildInstance {
  instanceId?: string;
  terminated: boolean;
  note?: string;
}

export interface TagBuildResourceInput {
  target: AwsTarget;
  /** An image (its snapshots are tagged too) or an instance. */
  resourceId: string;
  tags: Tags;
}

/** Answers of RunInstances that mean "not this instance type here, now": try the next one. */
const TRY_NEXT_TYPE = new Set([
  'InsufficientInstanceCapacity',
  'Unsupported',
  'InstanceLimitExceeded',
  'UnsupportedOperation',
]);

/** RunInstances' token: one per run, role and instance type (a new type is a new request, not a retry). */
export function buildClientToken(owner: BuildOwner, role: BuildRole, instanceType: string): string {
  const digest = createHash('sha256')
    .update(`${owner.workflowId}\n${owner.runId}\n${role}\n${instanceType}`)
    .digest('hex');
  return `amiflow-b-${digest.slice(0, 54)}`; // 64 characters, EC2's limit
}

/** The RunInstances request for a builder or test instance. */
export function buildRunInstancesRequest(
  input: LaunchBuildInstanceInput,
  instanceType: string,
): RunInstancesCommandInput {
  const b = input.builder;
  const groups = b.securityGroupIds ?? [];
  // Always the interface form: it is the only place AssociatePublicIpAddress can be said, and a
  // builder gets no public address unless the recipe asks (default-VPC subnets would give one).
  const nic = {
    DeviceIndex: 0,
    DeleteOnTermination: true,
    AssociatePublicIpAddress: b.associatePublicIp ?? false,
    ...(b.subnetId ? { SubnetId: b.subnetId } : {}),
    ...(groups.length ? { Groups: groups } : {}),
  };
  const root = b.rootVolume;
  return {
    ImageId: input.imageId,
    MinCount: 1,
    MaxCount: 1,
    InstanceType: instanceType as _InstanceType,
    ClientToken: buildClientToken(input.owner, input.role, instanceType),
    NetworkInterfaces: [nic],
    ...(b.instanceProfile ? { IamInstanceProfile: { Name: b.instanceProfile } } : {}),
    // IMDSv2 only: a build script's curl to the metadata service cannot be turned into SSRF.
    MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 2 },
    ...(root && input.rootDeviceName
      ? {
          BlockDeviceMappings: [
            {
              DeviceName: input.rootDeviceName,
              Ebs: {
                DeleteOnTermination: true,
                ...(root.sizeGiB ? { VolumeSize: root.sizeGiB } : {}),
                ...(root.type ? { VolumeType: root.type } : {}),
                ...(root.encrypted
                  ? { Encrypted: true, ...(root.kmsKeyId ? { KmsKeyId: root.kmsKeyId } : {}) }
                  : {}),
              },
            },
          ],
        }
      : {}),
    // A builder that shuts itself down (a step's `poweroff`) stops, so the run can still image or undo it.
    InstanceInitiatedShutdownBehavior: 'stop',
    TagSpecifications: [
      { ResourceType: 'instance', Tags: toAwsTags(input.tags) },
      { ResourceType: 'volume', Tags: toAwsTags(input.tags) },
    ],
  };
}

function tagValue(i: Instance, key: string): string | undefined {
  return i.Tags?.find((t) => t.Key === key)?.Value;
}

function ownedBy(i: Instance, owner: BuildOwner, role: BuildRole): boolean {
  return (
    tagValue(i, TAG.workflowId) === owner.workflowId &&
    tagValue(i, TAG.runId) === owner.runId &&
    tagValue(i, RECIPE_TAG.role) === role
  );
}

async function findBuildInstance(
  ec2: EC2Client,
  owner: BuildOwner,
  role: BuildRole,
): Promise<Instance | undefined> {
  const out = await aws(`looking up the ${role} instance of ${owner.workflowId}`, () =>
    ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${TAG.workflowId}`, Values: [owner.workflowId] },
          { Name: `tag:${TAG.runId}`, Values: [owner.runId] },
          { Name: `tag:${RECIPE_TAG.role}`, Values: [role] },
        ],
      }),
    ),
  );
  return (out.Reservations ?? [])
    .flatMap((r) => r.Instances ?? [])
    .find((i) => i.State?.Name !== 'terminated' && i.State?.Name !== 'shutting-down');
}

function parentNotFound(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: BuildFailure.ParentImageNotFound, nonRetryable: true, message });
}

function resolved(image: Image, source: string): ResolvedParent {
  return {
    imageId: image.ImageId ?? '',
    source,
    platform: image.Platform?.toLowerCase() === 'windows' ? 'windows' : 'linux',
    ...(image.Name ? { name: image.Name } : {}),
    ...(image.RootDeviceName ? { rootDeviceName: image.RootDeviceName } : {}),
    ...(image.CreationDate ? { creationDate: image.CreationDate } : {}),
  };
}

export function buildActivities(deps: ActivityDeps) {
  async function describeImage(ec2: EC2Client, imageId: string, source: string): Promise<Image> {
    let image: Image | undefined;
    try {
      const out = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
      image = out.Images?.find((i) => i.ImageId === imageId);
    } catch (err) {
      if (!isNotFound(err, 'image')) rethrowAws(err, `reading parent image ${imageId}`);
    }
    if (!image)
      throw parentNotFound(
        `parent image ${imageId} (${source}) does not exist or is not visible to this account`,
      );
    if (image.State !== 'available')
      throw parentNotFound(
        `parent image ${imageId} (${source}) is '${image.State ?? '?'}'; a build starts from an available image`,
      );
    return image;
  }

  return {
    /** The parent image, resolved once per run (the workflow records it). */
    async resolveParentImage(input: ResolveParentInput): Promise<ResolvedParent> {
      const ec2 = await deps.aws.ec2(input.target);
      const p = input.parent;
      if (p.imageId) return resolved(await describeImage(ec2, p.imageId, 'imageId'), 'imageId');
      if (p.ssmParameter) {
        if (!deps.aws.ssm)
          throw failure(
            FailureType.AwsMalformedRequest,
            'this worker has no SSM client; an SSM parent needs one',
          );
        const ssm = await deps.aws.ssm(input.target);
        const { GetParameterCommand } = await sdk.ssm();
        let value: string | undefined;
        try {
          const out = await ssm.send(new GetParameterCommand({ Name: p.ssmParameter }));
          value = out.Parameter?.Value;
        } catch (err) {
          if (isAwsCode(err, 'ParameterNotFound'))
            throw parentNotFound(`SSM parameter ${p.ssmParameter} does not exist in ${input.target.region}`);
          rethrowAws(err, `reading SSM parameter ${p.ssmParameter}`);
        }
        if (!value || !/^ami-[0-9a-f]+$/.test(value))
          throw parentNotFound(
            `SSM parameter ${p.ssmParameter} holds ${JSON.stringify(value)}, not an AMI id`,
          );
        const source = `ssm:${p.ssmParameter}`;
        return resolved(await describeImage(ec2, value, source), source);
      }
      const f = p.filter;
      if (!f) throw failure(FailureType.InvalidInput, 'parent: give one of imageId, ssmParameter or filter');
      const out = await aws(`finding the parent image (owners ${f.owners.join(', ')}, name ${f.name})`, () =>
        ec2.send(
          new DescribeImagesCommand({
            Owners: f.owners,
            Filters: [
              { Name: 'name', Values: [f.name] },
              { Name: 'state', Values: ['available'] },
              ...(f.architecture ? [{ Name: 'architecture', Values: [f.architecture] }] : []),
            ],
          }),
        ),
      );
      // Newest wins; equal dates fall back to the id, so two workers resolve alike.
      const newest = (out.Images ?? [])
        .filter((i) => i.ImageId)
        .sort(
          (a, b) =>
            (b.CreationDate ?? '').localeCompare(a.CreationDate ?? '') ||
            (a.ImageId ?? '').localeCompare(b.ImageId ?? ''),
        )[0];
      const source = `filter: owners ${f.owners.join(',')} name ${f.name}${f.architecture ? ` architecture ${f.architecture}` : ''}`;
      if (!newest)
        throw parentNotFound(
          `no available image matches the parent ${source} in ${input.target.region}; check the name pattern and owners`,
        );
      return resolved(newest, source);
    },

    /**
     * The recipe's content hash, and the newest available image of this account tagged with it
     * (an earlier build of the same parent and recipe), if any.
     */
    async findUnchangedImage(input: FindUnchangedInput): Promise<UnchangedImage> {
      const contentHash = recipeContentHash(input.parentImageId, input.recipe);
      const ec2 = await deps.aws.ec2(input.target);
      const out = await aws(`looking for an image built from recipe hash ${contentHash.slice(0, 12)}`, () =>
        ec2.send(
          new DescribeImagesCommand({
            Owners: ['self'],
            Filters: [
              { Name: `tag:${RECIPE_TAG.contentHash}`, Values: [contentHash] },
              { Name: 'state', Values: ['available'] },
            ],
          }),
        ),
      );
      const image = (out.Images ?? [])
        .filter((i) => i.ImageId && i.State === 'available')
        .sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''))[0];
      return image?.ImageId
        ? {
            contentHash,
            existing: {
              imageId: image.ImageId,
              imageName: image.Name ?? '',
              snapshotIds: snapshotIdsOf(image),
            },
          }
        : { contentHash };
    },

    /**
     * Launches the builder (or test instance) of this run, trying the recipe's instance types in
     * order. Safe to repeat: an instance of this run and role found by its tags is returned, and a
     * repeated ClientToken gets EC2's first answer.
     */
    async launchBuildInstance(input: LaunchBuildInstanceInput): Promise<LaunchedBuildInstance> {
      const ec2 = await deps.aws.ec2(input.target);
      const existing = await findBuildInstance(ec2, input.owner, input.role);
      if (existing?.InstanceId)
        return {
          instanceId: existing.InstanceId,
          instanceType: existing.InstanceType ?? '?',
          created: false,
          skippedTypes: [],
        };
      const skippedTypes: string[] = [];
      for (const instanceType of input.builder.instanceTypes) {
        try {
          const out = await ec2.send(new RunInstancesCommand(buildRunInstancesRequest(input, instanceType)));
          const instanceId = out.Instances?.[0]?.InstanceId;
          // Retryable on purpose: the retry finds the instance by its tags or its ClientToken.
          if (!instanceId) throw new Error(`RunInstances answered without an instance id (${instanceType})`);
          return { instanceId, instanceType, created: true, skippedTypes };
        } catch (err) {
          if (!TRY_NEXT_TYPE.has(awsErrorCode(err)))
            rethrowAws(err, `launching the ${input.role} instance (${instanceType}) from ${input.imageId}`);
          skippedTypes.push(`${instanceType} (${awsErrorCode(err)})`);
        }
      }
      // Retryable: capacity comes back; the activity's schedule-to-close bounds the patience.
      throw ApplicationFailure.create({
        type: BuildFailure.NoInstanceCapacity,
        nonRetryable: false,
        message: `no capacity for any of the instance types: ${skippedTypes.join(', ')}; add instance types to builder.instanceTypes or try another subnet`,
      });
    },

    /**
     * Terminates this run's builder or test instance (found by id, or by the run's tags). Never
     * touches an instance without this run's tags and role. Safe to repeat.
     */
    async terminateBuildInstance(input: TerminateBuildInstanceInput): Promise<TerminatedBuildInstance> {
      const ec2 = await deps.aws.ec2(input.target);
      const lookup = await findInstanceToTerminate(deps, ec2, {
        ...(input.instanceId ? { instanceId: input.instanceId } : {}),
        byTags: () => findBuildInstance(ec2, input.owner, input.role),
        byTagsName: `the ${input.role} instance of ${input.owner.runId}`,
        noneByTags: `no ${input.role} instance of this run was found after the consistency window: none was launched`,
      });
      if ('none' in lookup) return lookup.none;
      const { instance: found, instanceId } = lookup;
      if (!ownedBy(found, input.owner, input.role)) {
        if ((found.Tags ?? []).length === 0 && withinWindow(deps))
          throw notVisibleYet(deps, `the tags of instance ${instanceId}`);
        return { instanceId, terminated: false, note: `not this run's ${input.role} instance: left alone` };
      }
      const state = found.State?.Name;
      if (state === 'terminated' || state === 'shutting-down')
        return { instanceId, terminated: true, note: `already ${state}` };
      await terminateOwnInstance(deps, ec2, instanceId, `${input.role} instance ${instanceId}`);
      return { instanceId, terminated: true };
    },

    /** Tags an image and its snapshots, or an instance. Safe to repeat. */
    async tagBuildResource(input: TagBuildResourceInput): Promise<{ resourceIds: string[] }> {
      const ec2 = await deps.aws.ec2(input.target);
      let ids = [input.resourceId];
      if (input.resourceId.startsWith('ami-')) {
        const out = await aws(`reading image ${input.resourceId}`, () =>
          ec2.send(new DescribeImagesCommand({ ImageIds: [input.resourceId] })),
        );
        const image = out.Images?.[0];
        if (!image) throw notVisibleYet(deps, `image ${input.resourceId}`);
        ids = [input.resourceId, ...snapshotIdsOf(image)];
      }
      await aws(`tagging ${ids.join(', ')}`, () =>
        ec2.send(new CreateTagsCommand({ Resources: ids, Tags: toAwsTags(input.tags) })),
      );
      return { resourceIds: ids };
    },
  };
}

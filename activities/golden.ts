/**
 * What golden-image and backup runs need besides imaging, copying and sharing:
 * - `readBuilderInstance`: the builder's state and the AMI it runs (the golden image's lineage);
 * - `planTestLaunch`: the launch of a test instance from a new image in a given subnet, as a
 *   `LaunchSpec` for `launchInstance` (activities/launch.ts), which does the launch idempotently;
 * - `checkConsoleHealth`: the image's own health report, read from the serial console;
 * - `tagImage`: amiflow's tags (pipeline, version, approval) on an image and its snapshots;
 * - `findInstancesByTags`: the instances a backup plan selects by tag.
 */
import type { Instance } from '@aws-sdk/client-ec2';
import {
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  GetConsoleOutputCommand,
} from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/activity';
import type { AwsTarget, InstanceState, Tags } from '../contracts';
import { FailureType } from '../contracts';
import type { ActivityDeps } from './deps';
import { aws, failure, isAwsCode, rethrowAws } from './errors';
import { snapshotIdsOf, toAwsTags } from './images';
import type { InstanceRef } from './instances';
import { readInstance } from './instances';
import type { LaunchSpec } from './launch';
import { waitUntil } from './waiting';

export interface BuilderInstance {
  instanceId: string;
  state: InstanceState;
  rootDeviceType: 'ebs' | 'instance-store';
  /** The AMI the builder was launched from. */
  imageId?: string;
}

export interface TestLaunchInput {
  target: AwsTarget;
  subnetId: string;
  instanceType: string;
  securityGroupIds?: string[];
  instanceProfileArn?: string;
  /** Tags for the test instance (its Name and what it tests). */
  tags: Tags;
}

export interface ConsoleHealthInput extends InstanceRef {
  successMarker: string;
  failureMarker?: string;
  /** Epoch ms, shared by every attempt. */
  deadline: number;
}

export interface ConsoleHealth {
  marker: string;
  /** The console line holding the marker. */
  line: string;
  seenAt: number;
  awsCalls: number;
}

export interface TagImageInput {
  target: AwsTarget;
  imageId: string;
  tags: Tags;
  /** Also tag the image's snapshots. */
  snapshots?: boolean;
}

export interface FindInstancesInput {
  target: AwsTarget;
  tags: Tags;
}

const MAX_CONSOLE_LINES_REPORTED = 5;

function decodeConsole(output: string | undefined): string {
  return output ? Buffer.from(output, 'base64').toString('utf8') : '';
}

function lastLines(text: string): string {
  return text.trimEnd().split('\n').slice(-MAX_CONSOLE_LINES_REPORTED).join(' ⏎ ');
}

export function goldenActivities(deps: ActivityDeps) {
  return {
    async readBuilderInstance(ref: InstanceRef): Promise<BuilderInstance> {
      const ec2 = await deps.aws.ec2(ref.target);
      const i: Instance = await readInstance(ec2, ref);
      return {
        instanceId: ref.instanceId,
        state: i.State?.Name ?? 'pending',
        rootDeviceType: i.RootDeviceType === 'instance-store' ? 'instance-store' : 'ebs',
        ...(i.ImageId ? { imageId: i.ImageId } : {}),
      };
    },

    /**
     * The test instance's launch: the subnet's AZ, the instance type, the security groups (default:
     * the VPC's default group) and no block-device overrides (the image's own mapping). Read-only.
     */
    async planTestLaunch(input: TestLaunchInput): Promise<LaunchSpec> {
      const ec2 = await deps.aws.ec2(input.target);
      let subnet;
      try {
        const out = await ec2.send(new DescribeSubnetsCommand({ SubnetIds: [input.subnetId] }));
        subnet = out.Subnets?.find((s) => s.SubnetId === input.subnetId);
      } catch (err) {
        if (!isAwsCode(err, 'InvalidSubnetID.NotFound', 'InvalidSubnetID.Malformed'))
          rethrowAws(err, `reading subnet ${input.subnetId}`);
      }
      if (!subnet?.AvailabilityZone)
        throw failure(
          FailureType.ValidationFailed,
          `the validation subnet ${input.subnetId} does not exist in ${input.target.region}${input.target.accountId ? ` (account ${input.target.accountId})` : ''}; name a subnet the test instance can be launched in`,
        );
      return {
        instanceType: input.instanceType,
        availabilityZone: subnet.AvailabilityZone,
        subnetId: input.subnetId,
        securityGroupIds: input.securityGroupIds ?? [],
        ...(input.instanceProfileArn ? { iamInstanceProfileArn: input.instanceProfileArn } : {}),
        blockDevices: [],
        tags: input.tags,
        metadataOptions: { httpTokens: 'required', httpEndpoint: 'enabled' },
        disableApiTermination: false,
        ebsOptimized: false,
        monitoring: false,
        shutdownBehavior: 'terminate',
      };
    },

    /**
     * Waits until the instance's serial console shows `successMarker` (the image's boot writes it once
     * its own checks passed); `failureMarker`, or no marker by the deadline, fails non-retryable with
     * the last console lines. Reads the latest output where the instance type supports it (Nitro).
     */
    async checkConsoleHealth(input: ConsoleHealthInput): Promise<ConsoleHealth> {
      const ec2 = await deps.aws.ec2(input.target);
      let latest = true;
      let last = '';
      const read = async (): Promise<string> => {
        try {
          const out = await ec2.send(
            new GetConsoleOutputCommand({ InstanceId: input.instanceId, Latest: latest }),
          );
          return decodeConsole(out.Output);
        } catch (err) {
          // Xen instance types keep only the buffered output: ask for that instead.
          if (latest && isAwsCode(err, 'UnsupportedOperation', 'InvalidParameterCombination')) {
            latest = false;
            return '';
          }
          rethrowAws(err, `reading the console of ${input.instanceId}`);
        }
      };
      const found = (text: string, marker: string | undefined) =>
        marker ? text.split('\n').find((l) => l.includes(marker)) : undefined;
      let out;
      try {
        out = await waitUntil(deps, {
          what: `'${input.successMarker}' on the console of ${input.instanceId}`,
          poll: async () => {
            last = await read();
            return last;
          },
          done: (text) => {
            const bad = found(text, input.failureMarker);
            if (bad !== undefined)
              throw failure(
                FailureType.ValidationFailed,
                `the test instance ${input.instanceId} reported failure on its console: ${bad.trim()}`,
                { line: bad },
              );
            return found(text, input.successMarker) !== undefined;
          },
          progress: (text) => ({ consoleBytes: text.length }),
          progressCalls: 0,
          deadline: input.deadline,
          maxCalls: 1_000,
        });
      } catch (err) {
        if (err instanceof ApplicationFailure && err.type === FailureType.WaitTimedOut)
          throw failure(
            FailureType.ValidationFailed,
            `the test instance ${input.instanceId} did not report '${input.successMarker}' on its console by ${new Date(input.deadline).toISOString()}; last lines: ${lastLines(last) || '(no console output yet)'}`,
          );
        throw err;
      }
      const line = found(out.state, input.successMarker) ?? input.successMarker;
      return {
        marker: input.successMarker,
        line: line.trim(),
        seenAt: deps.clock.now(),
        awsCalls: out.calls,
      };
    },

    /** Writes tags on the image (and its snapshots). Safe to repeat. */
    async tagImage(input: TagImageInput): Promise<{ imageId: string; snapshotIds: string[] }> {
      const ec2 = await deps.aws.ec2(input.target);
      let snapshotIds: string[] = [];
      if (input.snapshots) {
        const out = await aws(`reading image ${input.imageId}`, () =>
          ec2.send(
            new DescribeImagesCommand({
              ImageIds: [input.imageId],
              IncludeDeprecated: true,
              IncludeDisabled: true,
            }),
          ),
        );
        const image = out.Images?.find((i) => i.ImageId === input.imageId);
        if (!image)
          throw failure(
            FailureType.ImageNotFound,
            `image ${input.imageId} not found in ${input.target.region}`,
          );
        snapshotIds = snapshotIdsOf(image);
      }
      await aws(`tagging ${input.imageId}`, () =>
        ec2.send(
          new CreateTagsCommand({ Resources: [input.imageId, ...snapshotIds], Tags: toAwsTags(input.tags) }),
        ),
      );
      return { imageId: input.imageId, snapshotIds };
    },

    /** Instances (running or stopped) carrying every given tag, sorted by id. Read-only. */
    async findInstancesByTags(input: FindInstancesInput): Promise<string[]> {
      const filters = Object.entries(input.tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
      if (filters.length === 0)
        throw failure(FailureType.InvalidInput, 'a backup selector needs at least one tag');
      const ec2 = await deps.aws.ec2(input.target);
      const ids = new Set<string>();
      let token: string | undefined;
      do {
        const out = await aws(`finding instances tagged ${JSON.stringify(input.tags)}`, () =>
          ec2.send(
            new DescribeInstancesCommand({
              Filters: [...filters, { Name: 'instance-state-name', Values: ['running', 'stopped'] }],
              ...(token ? { NextToken: token } : {}),
            }),
          ),
        );
        for (const i of (out.Reservations ?? []).flatMap((r) => r.Instances ?? []))
          if (i.InstanceId) ids.add(i.InstanceId);
        token = out.NextToken;
      } while (token);
      return [...ids].sort();
    },
  };
}

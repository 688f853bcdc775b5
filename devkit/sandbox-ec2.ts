/**
 * EC2 in the AWS sandbox, seen from a test: launch instances, read what is there, and observe the
 * instance state while a run goes on. Also a hook the worker can be given to make moto's images
 * linger in a state (moto makes every image `available` at once).
 */
import type {
  DescribeImagesCommandOutput,
  Image,
  ServiceInputTypes,
  ServiceOutputTypes,
  Snapshot,
  StateReason,
  Tag,
} from '@aws-sdk/client-ec2';
import {
  CreateImageCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  RunInstancesCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { InitializeHandlerOptions, InitializeMiddleware } from '@smithy/types';
import type { AwsClients } from '../activities/aws';
import { SANDBOX_ACCOUNT, SANDBOX_CREDENTIALS } from './moto';

/** The sandbox has every region; the tests use this one. */
export const SANDBOX_REGION = 'us-east-1';

export function sandboxEc2(endpoint: string, region = SANDBOX_REGION): EC2Client {
  return new EC2Client({ region, endpoint, credentials: SANDBOX_CREDENTIALS, maxAttempts: 2 });
}

/** An EBS-backed stock AMI to launch from (moto's ids are fixed, so one lookup per file is enough). */
export async function stockEbsAmi(ec2: EC2Client): Promise<string> {
  const out = await ec2.send(
    new DescribeImagesCommand({
      Owners: ['amazon'],
      Filters: [{ Name: 'root-device-type', Values: ['ebs'] }],
    }),
  );
  const id = out.Images?.find((i) => i.RootDeviceType === 'ebs' && i.ImageId)?.ImageId;
  if (!id) throw new Error('the sandbox lists no EBS-backed amazon AMI');
  return id;
}

export async function launchInstance(
  ec2: EC2Client,
  imageId: string,
  opts: { stopped?: boolean } = {},
): Promise<string> {
  const out = await ec2.send(
    new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1, InstanceType: 't3.micro' }),
  );
  const id = out.Instances?.[0]?.InstanceId;
  if (!id) throw new Error('RunInstances returned no instance');
  if (opts.stopped) await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
  return id;
}

export async function instanceState(ec2: EC2Client, instanceId: string): Promise<string> {
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  const state = out.Reservations?.[0]?.Instances?.[0]?.State?.Name;
  if (!state) throw new Error(`instance ${instanceId} not found`);
  return state;
}

/** Makes an image directly (not through amiflow), e.g. to take a name. */
export async function createImageDirectly(ec2: EC2Client, instanceId: string, name: string): Promise<string> {
  const out = await ec2.send(new CreateImageCommand({ InstanceId: instanceId, Name: name, NoReboot: true }));
  if (!out.ImageId) throw new Error('CreateImage returned no ImageId');
  return out.ImageId;
}

/** The image, or undefined when it does not exist (any more). */
export async function findImage(ec2: EC2Client, imageId: string): Promise<Image | undefined> {
  try {
    const out = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    return out.Images?.find((i) => i.ImageId === imageId);
  } catch (err) {
    if (err instanceof Error && err.name.startsWith('InvalidAMIID')) return undefined;
    throw err;
  }
}

/** Images the sandbox account owns. */
export async function ownImages(ec2: EC2Client): Promise<Image[]> {
  const out = await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
  return (out.Images ?? []).filter((i) => i.OwnerId === SANDBOX_ACCOUNT);
}

/** Images carrying a tag with this value (e.g. `amiflow:workflow-id`). */
export async function imagesTagged(ec2: EC2Client, key: string, value: string): Promise<Image[]> {
  const out = await ec2.send(
    new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: `tag:${key}`, Values: [value] }] }),
  );
  return out.Images ?? [];
}

/**
 * Snapshots the sandbox account owns. moto's `OwnerIds: ['self']` also lists the stock AMIs'
 * snapshots, so the owner is checked here.
 */
export async function ownSnapshots(ec2: EC2Client): Promise<Snapshot[]> {
  const out = await ec2.send(
    new DescribeSnapshotsCommand({ Filters: [{ Name: 'owner-id', Values: [SANDBOX_ACCOUNT] }] }),
  );
  return (out.Snapshots ?? []).filter((s) => s.OwnerId === SANDBOX_ACCOUNT);
}

export async function snapshotsByIds(ec2: EC2Client, ids: string[]): Promise<Snapshot[]> {
  if (ids.length === 0) return [];
  const found: Snapshot[] = [];
  for (const id of ids) {
    try {
      const out = await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [id] }));
      found.push(...(out.Snapshots ?? []));
    } catch (err) {
      if (!(err instanceof Error && err.name === 'InvalidSnapshot.NotFound')) throw err;
    }
  }
  return found;
}

/** Tags a resource from outside the worker (what another tool or run would have left). */
export async function tagResource(
  ec2: EC2Client,
  resourceId: string,
  tags: Record<string, string>,
): Promise<void> {
  await ec2.send(
    new CreateTagsCommand({
      Resources: [resourceId],
      Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
    }),
  );
}

export function tagMap(tags: Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}

export function snapshotIdsOfImage(image: Image): string[] {
  return (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []));
}

export interface StateChange {
  state: string;
  /** Epoch ms at which the observer first saw this state. */
  at: number;
}

/**
 * Runs `fn` while reading the instance state every `intervalMs` from outside the worker, and returns
 * `fn`'s value with each state change seen: a measurement independent of what the workflow reports.
 */
export async function observeInstanceState<T>(
  ec2: EC2Client,
  instanceId: string,
  fn: () => Promise<T>,
  intervalMs = 25,
): Promise<{ value: T; changes: StateChange[] }> {
  const changes: StateChange[] = [];
  let observing = true;
  // An error ends the loop and is thrown after `fn`, never as an unhandled rejection mid-test.
  const loop = (async (): Promise<Error | undefined> => {
    try {
      while (observing) {
        const state = await instanceState(ec2, instanceId);
        if (changes.at(-1)?.state !== state) changes.push({ state, at: Date.now() });
        await new Promise((r) => setTimeout(r, intervalMs));
      }
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  })();
  let value: T;
  try {
    value = await fn();
  } finally {
    observing = false;
  }
  const err = await loop;
  if (err !== undefined) throw err;
  return { value, changes };
}

/** Seconds from the first change away from `running` to the next time it was seen `running`. */
export function observedDowntimeSeconds(changes: StateChange[]): number | undefined {
  const down = changes.findIndex((c) => c.state !== 'running');
  if (down < 0) return undefined;
  const up = changes.slice(down).find((c) => c.state === 'running');
  const downChange = changes[down];
  if (!up || !downChange) return undefined;
  return (up.at - downChange.at) / 1000;
}

export interface ImageStateOverride {
  imageName: string;
  state: Image['State'];
  reason?: StateReason;
}

/** An EC2 call held back before it is sent: `entered` once one arrives, `release()` lets it go. */
export interface HeldCall {
  entered: Promise<void>;
  release(): void;
}

/**
 * Test hooks on the worker's AWS clients, for what moto cannot be made to do:
 * - `setImageState`: DescribeImages reports the chosen state for the image with the chosen name,
 *   whatever moto says, so a run waits (`pending`) or sees its image fail (`failed`);
 * - `hold`: the next call of a command (e.g. `StopInstancesCommand`) waits before it is sent, so a
 *   test can act while that call is in flight.
 * Everything else goes through untouched.
 */
export interface WorkerAwsHooks {
  clients: AwsClients;
  setImageState(override: ImageStateOverride | undefined): void;
  hold(commandName: string): HeldCall;
}

export function hookWorkerAws(inner: AwsClients): WorkerAwsHooks {
  let override: ImageStateOverride | undefined;
  const holds = new Map<string, { arrived(): void; released: Promise<void> }>();
  const patched = new WeakSet<EC2Client>();
  const middleware: InitializeMiddleware<ServiceInputTypes, ServiceOutputTypes> =
    (next, context) => async (args) => {
      const held = context.commandName ? holds.get(context.commandName) : undefined;
      if (held && context.commandName) {
        holds.delete(context.commandName);
        held.arrived();
        await held.released;
      }
      const result = await next(args);
      if (override && context.commandName === 'DescribeImagesCommand') {
        const output = result.output as DescribeImagesCommandOutput;
        for (const image of output.Images ?? []) {
          if (image.Name !== override.imageName) continue;
          image.State = override.state;
          if (override.reason) image.StateReason = override.reason;
        }
      }
      return result;
    };
  const options: InitializeHandlerOptions & { name: string } = {
    step: 'initialize',
    name: 'amiflowTestHooks',
  };
  return {
    clients: {
      async ec2(target) {
        const client = await inner.ec2(target);
        if (!patched.has(client)) {
          client.middlewareStack.add(middleware, options);
          patched.add(client);
        }
        return client;
      },
      kms: (target) => inner.kms(target),
      // The other services pass through untouched (rollouts: Auto Scaling and CloudWatch).
      ...(inner.ssm ? { ssm: inner.ssm.bind(inner) } : {}),
      ...(inner.autoScaling ? { autoScaling: inner.autoScaling.bind(inner) } : {}),
      ...(inner.cloudWatch ? { cloudWatch: inner.cloudWatch.bind(inner) } : {}),
      destroy: () => inner.destroy(),
    },
    setImageState(o) {
      override = o;
    },
    hold(commandName) {
      let arrived!: () => void;
      let release!: () => void;
      const entered = new Promise<void>((r) => (arrived = r));
      const released = new Promise<void>((r) => (release = r));
      holds.set(commandName, { arrived, released });
      return { entered, release };
    },
  };
}

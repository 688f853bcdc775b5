/**
 * A virtual clock and an EC2 client that answers from it, for running the REAL waiting activity
 * through hours of AWS time in milliseconds of wall time. The clock's `sleep` advances virtual time
 * at once; the client (the SDK's own EC2Client, its `send` replaced by aws-sdk-client-mock) reports
 * an image `pending` until its virtual availability time, then `available`.
 */
import type {
  DescribeImagesCommandInput,
  DescribeImagesCommandOutput,
  DescribeSnapshotsCommandInput,
  DescribeSnapshotsCommandOutput,
} from '@aws-sdk/client-ec2';
import { DescribeImagesCommand, DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import type { Activities, ActivityDeps } from '../../activities';
import { createActivities } from '../../activities';
import { DEFAULT_POLL_POLICY } from '../../activities/waiting';
import { DEFAULT_TIMEOUTS } from '../../workflows/contracts';
import { VirtualClock } from '../../devkit/virtual-clock';
import { IMAGE_ID, SNAPSHOT_IDS } from './stub-activities';

export interface VirtualImageOptions {
  /** Virtual ms from the start of the wait until the image is `available`; `never` keeps it pending. */
  availableAfterMs: number | 'never';
  /** The input's `timeouts.imageAvailableSeconds` (the start of the wait is derived from the deadline). */
  imageAvailableSeconds?: number;
}

export interface VirtualEc2 {
  clock: VirtualClock;
  deps: ActivityDeps;
  /** The real `waitForImageAvailable`, run on the virtual clock against the virtual image. */
  waitForImageAvailable: Activities['waitForImageAvailable'];
  describeImagesCalls(): number;
  describeSnapshotsCalls(): number;
  heartbeats(): number;
  /** Virtual ms from the start of the wait to the image being available (set once the wait starts). */
  availableAt(): number | undefined;
  /** Virtual time at which the wait started, as the workflow's clock had it. */
  waitStartedAt(): number | undefined;
}

export function virtualEc2(opts: VirtualImageOptions): VirtualEc2 {
  // Yields to the event loop on each sleep: the waiting activity heartbeats to a real worker.
  const clock = new VirtualClock(0, { yieldToEventLoop: true });
  const client = new EC2Client({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'virtual', secretAccessKey: 'virtual' },
  });
  const ec2 = mockClient(client);
  let startedAt: number | undefined;
  let availableAt: number | undefined;
  let heartbeats = 0;

  const stateNow = (): 'pending' | 'available' =>
    availableAt !== undefined && clock.now() >= availableAt ? 'available' : 'pending';
  const progressNow = (): string => {
    if (startedAt === undefined || availableAt === undefined) return '0%';
    const pct = Math.min(100, Math.floor((100 * (clock.now() - startedAt)) / (availableAt - startedAt)));
    return `${pct}%`;
  };

  ec2.onAnyCommand().rejects(new Error('the virtual EC2 answers DescribeImages and DescribeSnapshots only'));
  ec2
    .on(DescribeImagesCommand)
    .callsFake((input: DescribeImagesCommandInput): DescribeImagesCommandOutput => {
      const ids = input.ImageIds ?? [];
      return {
        $metadata: { httpStatusCode: 200 },
        Images: ids
          .filter((id) => id === IMAGE_ID)
          .map((id) => ({
            ImageId: id,
            Name: 'virtual image',
            State: stateNow(),
            BlockDeviceMappings: SNAPSHOT_IDS.map((snapshotId, i) => ({
              DeviceName: `/dev/xvd${String.fromCharCode(97 + i)}`,
              Ebs: { SnapshotId: snapshotId },
            })),
          })),
      };
    });
  ec2
    .on(DescribeSnapshotsCommand)
    .callsFake((input: DescribeSnapshotsCommandInput): DescribeSnapshotsCommandOutput => ({
      $metadata: { httpStatusCode: 200 },
      Snapshots: (input.SnapshotIds ?? []).map((id) => ({
        SnapshotId: id,
        Progress: progressNow(),
        State: stateNow() === 'available' ? 'completed' : 'pending',
      })),
    }));

  const deps: ActivityDeps = {
    aws: {
      ec2: () => Promise.resolve(client),
      kms: () => Promise.reject(new Error('the virtual EC2 has no KMS')),
      destroy: () => client.destroy(),
    },
    clock,
    random: Math.random,
    policy: DEFAULT_POLL_POLICY,
    onHeartbeat: () => {
      heartbeats += 1;
    },
  };
  const real = createActivities(deps);
  const timeoutMs = (opts.imageAvailableSeconds ?? DEFAULT_TIMEOUTS.imageAvailableSeconds) * 1000;

  return {
    clock,
    deps,
    waitForImageAvailable: (input) => {
      // The workflow set deadline = its now + timeout: virtual time starts where the workflow's was.
      if (startedAt === undefined) {
        startedAt = input.deadline - timeoutMs;
        clock.set(startedAt);
        availableAt = opts.availableAfterMs === 'never' ? undefined : startedAt + opts.availableAfterMs;
      }
      return real.waitForImageAvailable(input);
    },
    describeImagesCalls: () => ec2.commandCalls(DescribeImagesCommand).length,
    describeSnapshotsCalls: () => ec2.commandCalls(DescribeSnapshotsCommand).length,
    heartbeats: () => heartbeats,
    availableAt: () => availableAt,
    waitStartedAt: () => startedAt,
  };
}

/**
 * A fake EC2 for the benchmarks: an object with `send` that answers DescribeImages and
 * DescribeSnapshots from a clock, so the real `waitForImageAvailable` can wait an hour (or
 * forever, until released) without AWS. It counts every call it answers.
 */
import type { EC2Client, Image, Snapshot } from '@aws-sdk/client-ec2';
import { DescribeImagesCommand, DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import type { AwsClients } from '../activities/aws';
import type { Clock } from '../activities/waiting';
import { VirtualClock } from '../devkit/virtual-clock';

/** Virtual time (devkit's one virtual clock): an hour of waiting takes milliseconds. */
export { VirtualClock };

interface FakeImage {
  imageId: string;
  snapshotId: string;
  createdAt: number;
  /** Epoch ms at which the image becomes available; Infinity until released. */
  availableAt: number;
  /** Clock time of the first DescribeImages answer that said `available`. */
  seenAvailableAt?: number;
  /** Clock time of the last DescribeImages call that asked about it. */
  lastAskedAt?: number;
  /** Clock time of the first DescribeImages call that asked about it: when its run was waiting. */
  firstAskedAt?: number;
  polled: boolean;
}

export interface FakeEc2Counts {
  describeImages: number;
  describeSnapshots: number;
}

export class FakeEc2 {
  readonly counts: FakeEc2Counts = { describeImages: 0, describeSnapshots: 0 };
  private readonly images = new Map<string, FakeImage>();
  private readonly snapshots = new Map<string, FakeImage>();

  constructor(private readonly clock: Pick<Clock, 'now'>) {}

  /** Registers an image (as CreateImage would) that becomes available `afterMs` from now. */
  addImage(imageId: string, afterMs: number = Infinity): FakeImage {
    const createdAt = this.clock.now();
    const image: FakeImage = {
      imageId,
      snapshotId: `snap-${imageId.replace(/^ami-/, '')}`,
      createdAt,
      availableAt: createdAt + afterMs,
      polled: false,
    };
    this.images.set(imageId, image);
    this.snapshots.set(image.snapshotId, image);
    return image;
  }

  image(imageId: string): FakeImage | undefined {
    return this.images.get(imageId);
  }

  /** Makes every image available now (the "never until told" images of the memory benchmark). */
  releaseAll(): void {
    const now = this.clock.now();
    for (const image of this.images.values()) image.availableAt = Math.min(image.availableAt, now);
  }

  /**
   * The worst case for detection: every image turns available just after the last call that asked
   * about it, so its waiter only learns of it at the next one. Returns how many were released.
   */
  releaseEachAfterItsLastAsk(): number {
    let n = 0;
    for (const image of this.images.values())
      if (image.lastAskedAt !== undefined) {
        image.availableAt = Math.min(image.availableAt, image.lastAskedAt + 1);
        n += 1;
      }
    return n;
  }

  get imageCount(): number {
    return this.images.size;
  }

  /** Image id → clock time of the first DescribeImages call that asked about it. */
  firstAsks(): Map<string, number> {
    const out = new Map<string, number>();
    for (const image of this.images.values())
      if (image.firstAskedAt !== undefined) out.set(image.imageId, image.firstAskedAt);
    return out;
  }

  /** Images some waiter has asked about at least once. */
  get polledCount(): number {
    let n = 0;
    for (const image of this.images.values()) if (image.polled) n += 1;
    return n;
  }

  async send(command: unknown): Promise<unknown> {
    await Promise.resolve();
    const now = this.clock.now();
    if (command instanceof DescribeImagesCommand) {
      this.counts.describeImages += 1;
      const ids = command.input.ImageIds ?? [];
      const found = ids.flatMap((id) => {
        const image = this.images.get(id);
        return image ? [image] : [];
      });
      return {
        Images: found.map((image): Image => {
          image.polled = true;
          image.firstAskedAt ??= now;
          image.lastAskedAt = now;
          const available = now >= image.availableAt;
          if (available) image.seenAvailableAt ??= now;
          return {
            ImageId: image.imageId,
            Name: `bench-${image.imageId}`,
            State: available ? 'available' : 'pending',
            BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: image.snapshotId } }],
          };
        }),
      };
    }
    if (command instanceof DescribeSnapshotsCommand) {
      this.counts.describeSnapshots += 1;
      const ids = command.input.SnapshotIds ?? [];
      return {
        Snapshots: ids.flatMap((id): Snapshot[] => {
          const image = this.snapshots.get(id);
          if (!image) return [];
          const span = image.availableAt - image.createdAt;
          const done = Number.isFinite(span) && span > 0 ? Math.min(1, (now - image.createdAt) / span) : 0;
          return [
            {
              SnapshotId: id,
              State: done >= 1 ? 'completed' : 'pending',
              Progress: `${Math.floor(done * 100)}%`,
            },
          ];
        }),
      };
    }
    const name = typeof command === 'object' && command !== null ? command.constructor.name : typeof command;
    throw new Error(`the benchmark's fake EC2 does not answer ${name}`);
  }

  /** The activities' AWS dependency, answering every (account, region) with this fake. */
  clients(): AwsClients {
    const ec2 = this as unknown as EC2Client;
    return {
      ec2: () => Promise.resolve(ec2),
      kms: () => Promise.reject(new Error("the benchmark's fake AWS has no KMS")),
      destroy: () => undefined,
    };
  }
}

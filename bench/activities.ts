/**
 * The activities the benchmarks register: stubs for every step except the real
 * `waitForImageAvailable`, which talks to a fake EC2. Typed against the real activity signatures.
 */
import type { Activities, ActivityDeps } from '../activities';
import { createActivities } from '../activities';
import type { FakeEc2 } from './fake-ec2';

export interface BenchActivityOptions {
  ec2: FakeEc2;
  deps: Omit<ActivityDeps, 'aws'>;
  /** How long after CreateImage each image becomes available (Infinity: until released). */
  imageReadyAfterMs: number;
}

/** Stub activities around the real waiter. Each CreateImage makes a new image in the fake EC2. */
export function benchActivities(opts: BenchActivityOptions): Activities {
  const real = createActivities({ ...opts.deps, aws: opts.ec2.clients() });
  let images = 0;
  return {
    ...real,
    describeInstance: (ref) =>
      Promise.resolve({ instanceId: ref.instanceId, state: 'running', rootDeviceType: 'ebs' }),
    checkImageName: () => Promise.resolve({ status: 'free' }),
    stopInstance: (input) =>
      Promise.resolve({ instanceId: input.instanceId, state: 'stopped', at: Date.now(), awsCalls: 2 }),
    startInstance: (input) =>
      Promise.resolve({ instanceId: input.instanceId, state: 'running', at: Date.now(), awsCalls: 2 }),
    createImage: () => {
      images += 1;
      const imageId = `ami-${images.toString(16).padStart(17, '0')}`;
      opts.ec2.addImage(imageId, opts.imageReadyAfterMs);
      return Promise.resolve({ imageId, created: true });
    },
    tagSnapshots: (input) => {
      const image = opts.ec2.image(input.imageId);
      return Promise.resolve({ snapshotIds: image ? [image.snapshotId] : [] });
    },
    deleteImage: (input) =>
      Promise.resolve({
        ...(input.imageId ? { imageId: input.imageId } : {}),
        deregistered: true,
        deletedSnapshotIds: [],
      }),
  };
}

/** A repeatable random source (mulberry32), so jittered poll schedules are the same on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * What the image-wait watcher's tests share: one account-region, a virtual clock's start, image ids,
 * an EC2 client mocked at the SDK level whose DescribeImages stamps every call and every image it was
 * asked about, and the held waits `wf-1` … `wf-N` on a watcher.
 */
import type { ImageState } from '@aws-sdk/client-ec2';
import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import type { AwsClients } from '../../activities/aws';
import type { WaitCompletion, WatcherOptions } from '../../activities/image-wait-watcher';
import { DEFAULT_WATCHER_OPTIONS, ImageWaitWatcher } from '../../activities/image-wait-watcher';
import type { AwsTarget } from '../../workflows/contracts';
import type { VirtualTimers } from '../support/virtual-timers';

export const EU: AwsTarget = { region: 'eu-west-1', accountId: '111122223333' };
export const T0 = Date.UTC(2026, 0, 1);
export const ami = (n: number): string => `ami-${n.toString(16).padStart(17, '0')}`;

/** EC2 answering each image with `state()` at the time of the call; `calls` and `askedAt` record them. */
export function stampedImagesEc2(timers: VirtualTimers, state: () => ImageState = () => 'pending') {
  const ec2 = new EC2Client({ region: 'eu-west-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  const calls: number[] = [];
  const askedAt = new Map<string, number[]>();
  mockClient(ec2)
    .on(DescribeImagesCommand)
    .callsFake((input: { ImageIds?: string[] }) => {
      const ids = input.ImageIds ?? [];
      calls.push(timers.now());
      for (const id of ids) askedAt.set(id, [...(askedAt.get(id) ?? []), timers.now()]);
      return { Images: ids.map((id) => ({ ImageId: id, State: state() })) };
    });
  const aws: AwsClients = {
    ec2: () => Promise.resolve(ec2),
    kms: () => Promise.reject(new Error('no KMS here')),
    destroy: () => ec2.destroy(),
  };
  return { aws, calls, askedAt };
}

/** The wait of run `wf-<n>` on image `ami(n)` in EU, with its deadline (a day from T0 unless given). */
export function waitOf(n: number, deadline = T0 + 24 * 3600_000) {
  return {
    token: Buffer.from(`wf-${n}`),
    ref: { workflowId: `wf-${n}`, runId: 'run', activityId: '7' },
    target: EU,
    imageId: ami(n),
    deadline,
  };
}

/** Adds `waitOf(n)` to the watcher. */
export function addWait(watcher: ImageWaitWatcher, n: number): void {
  watcher.add(waitOf(n));
}

/** A watcher on virtual time holding the waits `wf-1` … `wf-<waits>`. */
export function watcherHolding(
  waits: number,
  deps: { aws: AwsClients; completion: WaitCompletion; timers: VirtualTimers },
  opts: Partial<WatcherOptions> = {},
): ImageWaitWatcher {
  const watcher = new ImageWaitWatcher(
    { aws: deps.aws, completion: deps.completion, now: deps.timers.now, sleep: deps.timers.sleep },
    { ...DEFAULT_WATCHER_OPTIONS, ...opts },
  );
  for (let n = 1; n <= waits; n++) addWait(watcher, n);
  return watcher;
}

/**
 * A watcher for the wait lease's tests: no AWS (a poll would fail loudly), no polling of its own,
 * `completion` as the test fakes it, and the clock `now` (T0 unless the test moves it).
 */
export function leaseTestWatcher(completion: WaitCompletion, now: () => number = () => T0): ImageWaitWatcher {
  const aws: AwsClients = {
    ec2: () => Promise.reject(new Error('no EC2 here')),
    kms: () => Promise.reject(new Error('no KMS here')),
    destroy: () => undefined,
  };
  return new ImageWaitWatcher(
    { aws, completion, now, sleep: () => Promise.resolve(), autoPoll: false },
    DEFAULT_WATCHER_OPTIONS,
  );
}

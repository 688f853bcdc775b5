/**
 * One DescribeImages for many waits. Each waiting activity polls on its own schedule, but when
 * several images are awaited in the same account and region, whoever polls first asks about all of
 * them (up to 100 ids a call) and the others use that answer while it is fresh. A thousand
 * concurrent waits then cost a handful of calls per poll interval instead of a thousand: EC2
 * throttles per account and region, and every other amiflow call shares that budget.
 * A single wait behaves exactly as if it polled alone.
 */
import type { EC2Client, Image } from '@aws-sdk/client-ec2';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import type { AwsTarget } from '../contracts';
import type { AwsClients } from './aws';
import { isAwsCode, rethrowAws } from './errors';
import type { Clock } from './waiting';

export interface ImageWatchOptions {
  /** An answer younger than this, and newer than what the reader last saw, is shared instead of asking again. */
  freshnessMs: number;
  maxIdsPerCall: number;
}

export const DEFAULT_IMAGE_WATCH: ImageWatchOptions = { freshnessMs: 2_000, maxIdsPerCall: 100 };

export interface ImageWatchHandle {
  /** The image as EC2 last described it (undefined: not visible), asking EC2 only when needed. */
  read(): Promise<Image | undefined>;
  close(): void;
}

interface Seen {
  image: Image | undefined;
  at: number;
}

interface Group {
  ec2: () => Promise<EC2Client>;
  watching: Map<string, number>;
  seen: Map<string, Seen>;
  refreshing?: Promise<void>;
  calls: number;
}

export interface ImageWatch {
  open(target: AwsTarget, imageId: string): ImageWatchHandle;
  /** DescribeImages calls made so far (benchmarks). */
  calls(): number;
}

/**
 * Describes `ids` (at most 100) in as few DescribeImages calls as EC2 allows; an id EC2 does not
 * show maps to undefined. `onCall` counts the calls made.
 */
export async function describeImageIds(
  ec2: EC2Client,
  ids: string[],
  /** Before each call: counts it, and may wait for the caller's call budget. */
  onCall: () => void | Promise<void>,
): Promise<Map<string, Image | undefined>> {
  const found = new Map<string, Image | undefined>(ids.map((id) => [id, undefined]));
  try {
    await onCall();
    const out = await ec2.send(new DescribeImagesCommand({ ImageIds: ids }));
    for (const image of out.Images ?? [])
      if (image.ImageId && found.has(image.ImageId)) found.set(image.ImageId, image);
    return found;
  } catch (err) {
    if (!isAwsCode(err, 'InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable'))
      rethrowAws(err, `reading images ${ids.join(', ')}`);
    // One unknown id (typically one just made, not visible yet) fails the whole call: split the
    // batch in halves and ask again, so k unknown ids among n cost about 2k·log2(n/k) calls
    // instead of n, and the visible ones still get their answer.
    if (ids.length === 1) return found;
    const half = Math.ceil(ids.length / 2);
    for (const part of [ids.slice(0, half), ids.slice(half)])
      for (const [id, image] of await describeImageIds(ec2, part, onCall)) found.set(id, image);
    return found;
  }
}

export function createImageWatch(
  deps: { aws: AwsClients; clock: Clock },
  opts: ImageWatchOptions = DEFAULT_IMAGE_WATCH,
): ImageWatch {
  const groups = new Map<string, Group>();

  function describe(group: Group, ids: string[]): Promise<Map<string, Image | undefined>> {
    return group.ec2().then((ec2) =>
      describeImageIds(ec2, ids, () => {
        group.calls += 1;
      }),
    );
  }

  async function refresh(group: Group, asker: string): Promise<void> {
    // The asker first, so a batch never leaves it out.
    const ids = [asker, ...[...group.watching.keys()].filter((id) => id !== asker)];
    for (let i = 0; i < ids.length; i += opts.maxIdsPerCall) {
      const chunk = ids.slice(i, i + opts.maxIdsPerCall);
      const answers = await describe(group, chunk);
      const at = deps.clock.now();
      for (const [id, image] of answers) group.seen.set(id, { image, at });
    }
  }

  return {
    calls: () => [...groups.values()].reduce((n, g) => n + g.calls, 0),
    open(target, imageId) {
      const key = `${target.accountId ?? 'self'}/${target.region}`;
      let group = groups.get(key);
      if (!group) {
        group = { ec2: () => deps.aws.ec2(target), watching: new Map(), seen: new Map(), calls: 0 };
        groups.set(key, group);
      }
      const g = group;
      g.watching.set(imageId, (g.watching.get(imageId) ?? 0) + 1);
      let lastRead = -Infinity;
      let closed = false;
      const usable = (): Seen | undefined => {
        const s = g.seen.get(imageId);
        return s && s.at > lastRead && deps.clock.now() - s.at < opts.freshnessMs ? s : undefined;
      };
      return {
        async read() {
          let s = usable();
          if (!s && g.refreshing) {
            await g.refreshing.catch(() => undefined);
            s = usable();
          }
          if (!s) {
            const pending = refresh(g, imageId);
            g.refreshing = pending;
            try {
              await pending;
            } finally {
              if (g.refreshing === pending) delete g.refreshing;
            }
            s = g.seen.get(imageId);
          }
          lastRead = s?.at ?? deps.clock.now();
          return s?.image;
        },
        close() {
          if (closed) return;
          closed = true;
          const n = (g.watching.get(imageId) ?? 1) - 1;
          if (n > 0) g.watching.set(imageId, n);
          else {
            g.watching.delete(imageId);
            g.seen.delete(imageId);
          }
          if (g.watching.size === 0) groups.delete(key);
        },
      };
    },
  };
}

/**
 * The reads a scan makes many of, kept cheap for EC2's request budget (shared per account and
 * region with everything else that runs there): throttling is backed off inside the activity, so a
 * throttled page is asked for again instead of the whole listing starting over; images are described
 * by id in batches, and a batch naming an id EC2 no longer knows (InvalidAMIID.NotFound fails the
 * whole call) is split until the unknown ids are isolated.
 */
import type { EC2Client, Image } from '@aws-sdk/client-ec2';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import type { ActivityDeps } from './deps';
import { classifyAwsError, isAwsCode, rethrowAws } from './errors';

export interface ReadCounters {
  awsCalls: number;
  /** Answers that were throttling errors (each retried after a backoff, or rethrown at the bound). */
  throttled: number;
}

/** Backoff for throttled reads: 1 s doubling to 20 s, ±50 % jitter, 8 attempts (about 1.5 min in all). */
export const THROTTLE_BACKOFF = { firstMs: 1_000, maxMs: 20_000, attempts: 8 } as const;

/**
 * One AWS read; throttling answers are retried here after a jittered backoff (calling `onWait`
 * first, e.g. to heartbeat). Any other error, or throttling beyond the bound, is classified as
 * everywhere else: transient ones rethrown for Temporal to retry, permanent ones non-retryable.
 */
export async function throttledRead<T>(
  deps: Pick<ActivityDeps, 'clock' | 'random'>,
  counters: ReadCounters,
  action: string,
  call: () => Promise<T>,
  onWait?: () => void,
): Promise<T> {
  let delay: number = THROTTLE_BACKOFF.firstMs;
  for (let attempt = 1; ; attempt += 1) {
    counters.awsCalls += 1;
    try {
      return await call();
    } catch (err) {
      const c = classifyAwsError(err);
      const throttled = c.retry && c.reason === 'throttling';
      if (throttled) counters.throttled += 1;
      if (!throttled || attempt >= THROTTLE_BACKOFF.attempts) rethrowAws(err, action);
      onWait?.();
      await deps.clock.sleep(Math.round(delay * (0.5 + deps.random())));
      delay = Math.min(delay * 2, THROTTLE_BACKOFF.maxMs);
    }
  }
}

/**
 * Follows NextToken through a paged read, each page a `throttledRead`: a throttled page is asked
 * for again rather than the listing started over. `onPage` takes each page as it comes, so a large
 * listing need not be kept whole; `send` gets the token of the page to ask for (none for the first).
 */
export async function eachThrottledPage<P extends { NextToken?: string }>(
  deps: Pick<ActivityDeps, 'clock' | 'random'>,
  counters: ReadCounters,
  action: string,
  send: (token: string | undefined) => Promise<P>,
  onPage: (page: P) => void,
  onWait?: () => void,
): Promise<void> {
  let nextToken: string | undefined;
  do {
    const token = nextToken;
    const page = await throttledRead(deps, counters, action, () => send(token), onWait);
    onPage(page);
    nextToken = page.NextToken;
  } while (nextToken);
}

/** Image ids per DescribeImages call. */
export const IMAGE_BATCH = 100;

/**
 * Describes `ids` as the target account sees them, deprecated and disabled images included. Ids EC2
 * does not return (deregistered, or no longer shared with the account) are absent from the map.
 */
export async function describeImagesByIds(
  deps: Pick<ActivityDeps, 'clock' | 'random'>,
  ec2: EC2Client,
  ids: string[],
  counters: ReadCounters,
  onWait?: () => void,
): Promise<Map<string, Image>> {
  const found = new Map<string, Image>();
  const describe = async (batch: string[]): Promise<void> => {
    const out = await throttledRead(
      deps,
      counters,
      `describing ${batch.length} image(s) (${batch.slice(0, 3).join(', ')}${batch.length > 3 ? ', …' : ''})`,
      async () => {
        try {
          return await ec2.send(
            new DescribeImagesCommand({ ImageIds: batch, IncludeDeprecated: true, IncludeDisabled: true }),
          );
        } catch (err) {
          if (isAwsCode(err, 'InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable'))
            return 'not-found' as const;
          throw err;
        }
      },
      onWait,
    );
    if (out !== 'not-found') {
      for (const image of out.Images ?? []) if (image.ImageId) found.set(image.ImageId, image);
      return;
    }
    // Some id in the batch is unknown to EC2, which fails the whole call: halve until isolated.
    if (batch.length === 1) return;
    const half = Math.ceil(batch.length / 2);
    await describe(batch.slice(0, half));
    await describe(batch.slice(half));
  };
  const unique = [...new Set(ids)];
  for (let i = 0; i < unique.length; i += IMAGE_BATCH) await describe(unique.slice(i, i + IMAGE_BATCH));
  return found;
}

/**
 * Is this a region AWS has? Answered from the SDK's own endpoint data (partitions: aws, aws-cn,
 * aws-us-gov, the ISO and sovereign partitions), with no network call, so the client can refuse a
 * misspelt or invented region before anything starts, and an activity can tell "no such region"
 * (permanent) from a DNS hiccup (transient). A region newer than this SDK build is opted in
 * explicitly with AMIFLOW_EXTRA_REGIONS (comma separated).
 *
 * Shared by the client (which must not import activities) and the activities. Not in contracts/:
 * the workflow bundle cannot load the SDK, so there only the region pattern applies (contracts/fields.ts).
 */
import { partition } from '@aws-sdk/core/client';

export function extraRegions(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.AMIFLOW_EXTRA_REGIONS ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
}

/** Undefined when `region` is known (or opted in); otherwise what is wrong, and what to do. */
export function regionProblem(region: string, extra: readonly string[] = extraRegions()): string | undefined {
  if (extra.includes(region)) return undefined;
  // partition() places any name matching a partition's pattern; only a region it lists carries a description.
  const p = partition(region) as { name: string; description?: string };
  if (p.description !== undefined) return undefined;
  return (
    `'${region}' is not a region the AWS SDK in this build knows (it would be in partition ${p.name}); ` +
    `check the name, or if the region is newer than the SDK, opt in with AMIFLOW_EXTRA_REGIONS=${region}`
  );
}

/** The region of an AWS endpoint host name (`ec2.eu-west-1.amazonaws.com`), if it names one. */
export function regionOfHost(hostname: string): string | undefined {
  const m = /^[a-z0-9-]+\.([a-z]{2,4}(?:-[a-z]+)+-\d{1,2})\.amazonaws\.com(?:\.cn)?$/.exec(hostname);
  return m?.[1];
}

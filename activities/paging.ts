/**
 * The shapes every Describe call of the rollout targets repeats: following NextToken to the last
 * page, the filter for a target named by tag (by key and value, or by key alone), and resolving a
 * list of references to the targets they name.
 */
import { FailureType } from '../contracts';
import { failure } from './errors';

/**
 * Every item of a paged Describe call. `send` sends one page's request: `request` as given for the
 * first page (no `NextToken`, as AWS expects), with the previous page's `NextToken` after it.
 */
export async function allPages<Q extends object, P extends { NextToken?: string }, T>(
  request: Q,
  send: (page: Q & { NextToken?: string }) => Promise<P>,
  items: (page: P) => T[] | undefined,
): Promise<T[]> {
  const out: T[] = [];
  let token: string | undefined;
  do {
    const page = await send(token ? { ...request, NextToken: token } : request);
    out.push(...(items(page) ?? []));
    token = page.NextToken;
  } while (token);
  return out;
}

/** The Describe `Filters` for a target named by tag (`tag:<key>` = value, or `tag-key`), or nothing. */
export function tagFilters(tag: { key: string; value?: string } | undefined): {
  Filters?: { Name: string; Values: string[] }[];
} {
  if (!tag) return {};
  return {
    Filters: [
      tag.value !== undefined
        ? { Name: `tag:${tag.key}`, Values: [tag.value] }
        : { Name: 'tag-key', Values: [tag.key] },
    ],
  };
}

/** One kind of rollout target, as `findEachRef` names and counts it. */
export interface RefKind<R, I> {
  /** The reference in words, as in "launch template 'web'". */
  describeRef: (ref: R) => string;
  /** What a reference can name a target by, for the not-found message ("the name or tag"). */
  namedBy: string;
  /** The target's id: a target that several references name is listed once. */
  key: (target: I) => string;
}

/**
 * Every target `refs` name (`describe` answers for one reference), once each, in the order first
 * named. A reference that finds nothing fails non-retryably, naming it: a rollout that silently
 * skipped a mistyped target would report success for a fleet it never touched.
 */
export async function findEachRef<R, I>(
  refs: readonly R[],
  where: string,
  kind: RefKind<R, I>,
  describe: (ref: R) => Promise<I[]>,
): Promise<I[]> {
  const found = new Map<string, I>();
  for (const ref of refs) {
    const targets = await describe(ref);
    if (targets.length === 0)
      throw failure(
        FailureType.RolloutTargetNotFound,
        `${kind.describeRef(ref)} not found in ${where}; check ${kind.namedBy} (and the account and region)`,
      );
    for (const t of targets) found.set(kind.key(t), t);
  }
  return [...found.values()];
}

/**
 * The two shapes every paged Describe call of the rollout targets repeats: following NextToken to
 * the last page, and the filter for a target named by tag (by key and value, or by key alone).
 */

/**
 * Every item of a paged Describe call. `send` sends one page's request; `token` is the spread that
 * adds `NextToken` after the first page (the first request carries none, as AWS expects).
 */
export async function allPages<P extends { NextToken?: string }, T>(
  send: (token: { NextToken?: string }) => Promise<P>,
  items: (page: P) => T[] | undefined,
): Promise<T[]> {
  const out: T[] = [];
  let token: string | undefined;
  do {
    const page = await send(token ? { NextToken: token } : {});
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

/** allPages (following NextToken to the last page) and tagFilters (a target named by tag). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allPages, tagFilters } from '../../activities/paging';

void describe('allPages', () => {
  void it('GIVEN three pages WHEN read THEN every item comes back in order, the first request is the one given (no NextToken) and each later one adds the previous page token', async () => {
    const pages: Record<string, { Items?: number[]; NextToken?: string }> = {
      first: { Items: [1, 2], NextToken: 'b' },
      b: { NextToken: 'c' }, // AWS may answer a page with no items and a token
      c: { Items: [3] },
    };
    const requests: { Kind: string; NextToken?: string }[] = [];

    const items = await allPages(
      { Kind: 'widgets' },
      (request) => {
        requests.push(request);
        return Promise.resolve(pages[request.NextToken ?? 'first'] ?? {});
      },
      (page) => page.Items,
    );

    assert.deepEqual(items, [1, 2, 3]);
    assert.deepEqual(requests, [
      { Kind: 'widgets' },
      { Kind: 'widgets', NextToken: 'b' },
      { Kind: 'widgets', NextToken: 'c' },
    ]);
  });
});

void describe('tagFilters', () => {
  void it('GIVEN a tag with a value, a tag key alone, or no tag WHEN filtered THEN tag:<key>=value, tag-key=<key>, or no Filters at all', () => {
    assert.deepEqual(tagFilters({ key: 'app', value: 'web' }), {
      Filters: [{ Name: 'tag:app', Values: ['web'] }],
    });
    assert.deepEqual(tagFilters({ key: 'app' }), { Filters: [{ Name: 'tag-key', Values: ['app'] }] });
    assert.deepEqual(tagFilters(undefined), {});
  });
});

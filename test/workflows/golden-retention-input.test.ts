/**
 * The golden pipeline's retention input: `retireShared` (issue 16, point 7) is a boolean; anything
 * else is refused by name before any AWS call.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goldenImageIssues } from '../../workflows/golden-validation';
import { goldenInput } from './golden-stubs';

void describe('goldenImage retention.retireShared', () => {
  void it('GIVEN retireShared true WHEN validated THEN no issue', () => {
    assert.deepEqual(goldenImageIssues(goldenInput({ retention: { keep: 2, retireShared: true } })), []);
  });

  void it('GIVEN retireShared "yes" WHEN validated THEN one issue naming retention.retireShared', () => {
    const input = { ...goldenInput(), retention: { keep: 2, retireShared: 'yes' } };
    assert.deepEqual(
      goldenImageIssues(input).map((i) => i.field),
      ['retention.retireShared'],
    );
  });
});

/**
 * The golden pipeline's retention input: `retireShared` (issue 16, point 7) is a boolean; anything
 * else is refused by name before any AWS call.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ManagedImage } from '../../activities/retention';
import { goldenImageIssues } from '../../workflows/golden-validation';
import { planRetention } from '../../workflows/retention';
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

void describe('planRetention: public images', () => {
  const image = (imageId: string, creationDate: string, extra: Partial<ManagedImage> = {}): ManagedImage => ({
    imageId,
    state: 'available',
    creationDate,
    protected: false,
    tags: {},
    snapshotIds: [],
    ...extra,
  });

  void it('GIVEN an old public image and a deprecation stage WHEN planned THEN its deprecate action says public (EC2 clamps it to 2 years)', () => {
    const plan = planRetention(
      [
        image('ami-new', '2026-01-02T00:00:00.000Z'),
        image('ami-old', '2026-01-01T00:00:00.000Z', { public: true }),
      ],
      { keep: 1, deprecateAfterSeconds: 0 },
      Date.parse('2026-01-03T00:00:00.000Z'),
    );
    assert.deepEqual(
      plan.actions.map((a) => [a.imageId, a.action, a.public ?? false]),
      [
        ['ami-new', 'keep', false],
        ['ami-old', 'deprecate', true],
      ],
    );
  });
});

/**
 * planRetention, the pure decision behind every retirement (golden versions, backups): for each
 * image of a scope, what happens and why, at a given time and with given references. Pure, so it
 * is checked without a workflow or EC2: the same images, policy, time and references give the same plan.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ManagedImage } from '../../activities/retention';
import { TAG } from '../../contracts';
import { planRetention } from '../../workflows/retention';

const DAY = 24 * 3600 * 1000;
const NOW = Date.parse('2026-06-01T00:00:00Z');

/** An available image approved `daysAgo` days before NOW (newest = smallest). */
function image(id: string, daysAgo: number, extra: Partial<ManagedImage> = {}): ManagedImage {
  return {
    imageId: id,
    name: `app-${id}`,
    state: 'available',
    protected: false,
    tags: { [TAG.approvedAt]: new Date(NOW - daysAgo * DAY).toISOString(), [TAG.version]: `v-${id}` },
    snapshotIds: [],
    ...extra,
  };
}

function decisions(plan: ReturnType<typeof planRetention>): string[] {
  return plan.actions.map((a) => `${a.imageId} ${a.action}`);
}

describe('planRetention', () => {
  it('GIVEN five versions, keep 2 and a 30-day deprecation stage WHEN planned THEN the newest is protected, the 2nd kept and the rest deprecated, none due', () => {
    const images = [image('a', 1), image('b', 2), image('c', 3), image('d', 4), image('e', 5)];
    const plan = planRetention(
      images,
      { keep: 2, deprecateAfterSeconds: 0, deregisterAfterSeconds: 30 * 24 * 3600, protectNewest: true },
      NOW,
    );
    assert.deepEqual(decisions(plan), ['a protect', 'b keep', 'c deprecate', 'd deprecate', 'e deprecate']);
    assert.deepEqual(plan.due, []);
    const c = plan.actions[2];
    assert.equal(c?.deprecateAt, NOW);
    assert.equal(
      c?.reason,
      'beyond the 2 newest: deprecated at 2026-06-01T00:00:00.000Z, deregistered from 2026-07-01T00:00:00.000Z',
    );
  });

  it('GIVEN images deprecated long enough ago WHEN planned THEN they are due and deregistered unless referenced, which keeps them', () => {
    const deprecated = { deprecationTime: new Date(NOW - 40 * DAY).toISOString() };
    const images = [
      image('a', 1, { protected: true }),
      image('b', 50, deprecated),
      image('c', 60, deprecated),
    ];
    const policy = {
      keep: 1,
      deprecateAfterSeconds: 0,
      deregisterAfterSeconds: 30 * 24 * 3600,
      protectNewest: true,
    };
    const first = planRetention(images, policy, NOW);
    assert.deepEqual(first.due, ['b', 'c']);
    assert.deepEqual(decisions(first), ['a keep', 'b deregister', 'c deregister']);

    const second = planRetention(images, policy, NOW, { c: ['i-0123456789abcdef0'] });
    assert.deepEqual(decisions(second), ['a keep', 'b deregister', 'c keep']);
    assert.equal(second.actions[0]?.reason, 'newest (protected)');
    assert.equal(second.actions[2]?.reason, 'beyond the 1 newest, but still referenced: kept');
    assert.deepEqual(second.actions[2]?.references, ['i-0123456789abcdef0']);
  });

  it('GIVEN a deprecated image not due yet, and one never to be deregistered WHEN planned THEN both are kept, saying until when', () => {
    const images = [image('a', 1), image('b', 5, { deprecationTime: new Date(NOW - 5 * DAY).toISOString() })];
    const due = planRetention(
      images,
      { keep: 1, deprecateAfterSeconds: 0, deregisterAfterSeconds: 30 * 24 * 3600 },
      NOW,
    );
    assert.deepEqual(decisions(due), ['a keep', 'b keep']);
    assert.match(
      due.actions[1]?.reason ?? '',
      /^beyond the 1 newest: deprecated since 2026-05-27T00:00:00.000Z; deregistered from 2026-06-26/,
    );
    const never = planRetention(images, { keep: 1, deprecateAfterSeconds: 0 }, NOW);
    assert.equal(
      never.actions[1]?.reason,
      'beyond the 1 newest: deprecated; never deregistered (no deregisterAfterSeconds)',
    );
  });

  it('GIVEN no deprecation stage (backups) WHEN an image is beyond keep or too old THEN it is due at once; a pending image is not counted', () => {
    const images = [image('a', 1), image('p', 0, { state: 'pending' }), image('b', 2), image('old', 20)];
    const plan = planRetention(
      images,
      { keep: 3, deregisterAfterSeconds: 0, maxAgeSeconds: 10 * 24 * 3600 },
      NOW,
    );
    assert.deepEqual(decisions(plan), ['a keep', 'b keep', 'old deregister']);
    assert.deepEqual(plan.due, ['old']);
    assert.equal(plan.actions[2]?.reason, 'older than 864000 s: deregistered with its snapshots');
  });

  it('GIVEN a staged policy and a referenced image not yet deprecated WHEN planned THEN it is deprecated and kept while referenced', () => {
    const images = [image('a', 1), image('b', 2)];
    const plan = planRetention(
      images,
      { keep: 1, deprecateAfterSeconds: 0, deregisterAfterSeconds: 0 },
      NOW,
      {
        b: ['lt-0abc'],
      },
    );
    assert.deepEqual(decisions(plan), ['a keep', 'b deprecate']);
    assert.equal(plan.actions[1]?.reason, 'beyond the 1 newest: deprecated, and kept while referenced');
    assert.deepEqual(plan.due, ['b']);
  });
});

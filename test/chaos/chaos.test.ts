/**
 * Tier 5, bounded for `npm test`: a short chaos session (devkit/chaos) with the fault layer on
 * (throttling, 5xx before and after apply, stopping/pending durations, images pending, latency),
 * the worker SIGKILLed and restarted and the dev server SIGKILLed once. `npm run chaos` is the full
 * size. The session with the consistency window and random cancellations (AMIFLOW_CHAOS_WINDOW=1)
 * waits for the fix of branch ec2-semantics (issue 9 items 1-3): on main it finds images and
 * instances left behind by cancelled runs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChaosOptions } from '../../devkit/chaos';
import { LOST_TASK_RECOVERY_MS, formatChaosReport, runChaos, violations } from '../../devkit/chaos';
import { REALISTIC_FAULTS } from '../../devkit/faults';
import { installQuietRuntime } from '../../devkit/runtime';

// AMIFLOW_CHAOS_SEED=<n> replays the bounded session with another seed (its figures name the seed).
const SEED = Number(process.env.AMIFLOW_CHAOS_SEED ?? 20261130);

function bounded(overrides: Partial<ChaosOptions['plan']>, consistencyMs: number): ChaosOptions {
  return {
    faults: { ...REALISTIC_FAULTS, seed: SEED, consistencyMs },
    plan: { imageRuns: 3, cancelledPerKind: 0, rollbacks: false, maxCancelMs: 6_000, ...overrides },
    // Kills are timed from the worker being ready, so they meet work in flight on any machine. A kill
    // (or the server's) that meets an activity costs at most LOST_TASK_RECOVERY_MS before Temporal
    // retries it: 2 minutes for the longest heartbeat timeout met here, seconds for an image wait
    // (the chaos stack's workers renew their wait lease every few seconds). The deadline allows one
    // such recovery on top of the session's usual minute and a half on a loaded 2-core machine; a run
    // still open past that is a finding (its pending activities and the wait leases are printed).
    drive: {
      workerKills: 2,
      killEveryMs: 1_200,
      serverRestartAtMs: 3_000,
      deadlineMs: 90_000 + LOST_TASK_RECOVERY_MS,
    },
  };
}

describe('chaos tier (bounded)', () => {
  it('GIVEN faults, worker SIGKILLs and a server SIGKILL WHEN image runs of every mode go on THEN all complete, instances end as they began, nothing is duplicated or orphaned', async () => {
    installQuietRuntime();
    const report = await runChaos(bounded({}, 0));
    console.log(formatChaosReport(report));
    assert.equal(report.runs.completed, report.runs.total, 'every run completed');
    assert.ok(report.workerKills >= 1, 'the worker was killed');
    assert.equal(report.serverRestarts, 1, 'the server was killed');
    assert.ok((report.aws.faults.throttled ?? 0) > 0, 'throttling was in play');
    assert.equal(violations(report), 0);
  });

  it(
    'GIVEN a 10 s consistency window WHEN runs of every kind are cancelled at random moments, some while the worker is dead, and a copy and a migrate roll back THEN every run ends as expected and nothing is left',
    // About 3 minutes: opt in with AMIFLOW_CHAOS_WINDOW=1 (the bounded tier above stays within a minute).
    process.env.AMIFLOW_CHAOS_WINDOW === '1'
      ? {}
      : { skip: 'set AMIFLOW_CHAOS_WINDOW=1 to run it (about 3 minutes)' },
    async () => {
      installQuietRuntime();
      const report = await runChaos(bounded({ imageRuns: 1, cancelledPerKind: 1, rollbacks: true }, 10_000));
      console.log(formatChaosReport(report));
      assert.equal(violations(report), 0);
    },
  );
});

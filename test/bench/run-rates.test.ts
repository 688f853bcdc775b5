/**
 * The arithmetic of the 10,000-wait bench (bench/run-rates.ts): latency summaries and per-run
 * pairing, /proc/<pid>/stat parsing, the open-loop schedule, one run's cost before its wait, the
 * CPU budget against cores × seconds, and the worker settings it passes on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  benchWorkerOptions,
  costBeforeActivity,
  cpuBudget,
  cpuSecondsFromStat,
  latenciesBetween,
  pacedOffsetMs,
  parentAndNameFromStat,
  percentile,
  prefixedOverrides,
  summariseLatencies,
} from '../../bench/run-rates';

// A real line's shape: the command name holds a space and a parenthesis, as `(node (worker))` may.
const STAT =
  '4242 (temporal (x) y) S 4000 4242 4000 0 -1 4194560 12345 0 0 0 1234 567 0 0 20 0 14 0 999 1000000 5000 ' +
  '18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0';

describe('bench run-rates', () => {
  it('GIVEN sorted values THEN the nearest-rank percentile picks the value at ceil(p × n)', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(values, 50), 50);
    assert.equal(percentile(values, 99), 99);
    assert.equal(percentile(values, 100), 100);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  it('GIVEN unsorted latencies in ms THEN the summary is in seconds from the sorted values', () => {
    const s = summariseLatencies([3000, 1000, 2000, 120_500]);
    assert.deepEqual(s, { count: 4, medianS: 2, p99S: 120.5, maxS: 120.5 });
  });

  it('GIVEN starts and events by run THEN each latency is its own run’s, and a run with no event is counted missing', () => {
    const started = new Map([
      ['a', 1000],
      ['b', 2000],
      ['c', 3000],
    ]);
    const waiting = new Map([
      ['a', 1500],
      ['c', 9000],
      ['z', 1],
    ]);
    assert.deepEqual(latenciesBetween(started, waiting), { ms: [500, 6000], missing: 1 });
  });

  it('GIVEN a /proc/<pid>/stat line THEN CPU seconds are utime + stime in ticks of 1/100 s', () => {
    assert.equal(cpuSecondsFromStat(STAT), (1234 + 567) / 100);
    assert.deepEqual(parentAndNameFromStat(STAT), { ppid: 4000, name: 'temporal (x) y' });
    assert.throws(() => cpuSecondsFromStat('garbage'), /not a \/proc/);
  });

  it('GIVEN a rate THEN run i is due i / rate seconds after the first', () => {
    assert.equal(pacedOffsetMs(0, 80), 0);
    assert.equal(pacedOffsetMs(80, 80), 1000);
    assert.equal(pacedOffsetMs(10_000, 50), 200_000);
    assert.throws(() => pacedOffsetMs(1, 0), /must be > 0/);
  });

  it('GIVEN a history THEN the workflow tasks and activities before the wait was scheduled are counted', () => {
    const wt = ['WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED'].map(
      (eventType) => ({
        eventType,
      }),
    );
    const act = (activityType: string) => [
      { eventType: 'ACTIVITY_TASK_SCHEDULED', activityType },
      { eventType: 'ACTIVITY_TASK_STARTED' },
      { eventType: 'ACTIVITY_TASK_COMPLETED' },
    ];
    const events = [
      { eventType: 'WORKFLOW_EXECUTION_STARTED' },
      ...wt,
      ...act('describeInstance'),
      ...wt,
      ...act('createImage'),
      ...wt,
      { eventType: 'ACTIVITY_TASK_SCHEDULED', activityType: 'waitForImageAvailable' },
      ...wt,
    ];
    assert.deepEqual(costBeforeActivity(events, 'waitForImageAvailable'), {
      workflowTasks: 3,
      activitiesBefore: 2,
      events: 17,
    });
    assert.equal(costBeforeActivity(events, 'neverScheduled'), undefined);
  });

  it('GIVEN CPU per run THEN the budget says whether the runs fit cores × seconds, and the shortest wall time', () => {
    const over = cpuBudget(52, 10_000, 2, 120);
    assert.equal(over.cpuSecondsNeeded, 520);
    assert.equal(over.cpuSecondsAvailable, 240);
    assert.equal(over.minSeconds, 260);
    assert.equal(over.fits, false);
    assert.equal(cpuBudget(24, 10_000, 2, 120).fits, true);
  });

  it('GIVEN prefixed variables THEN only those reach the worker, without the prefix', () => {
    assert.deepEqual(prefixedOverrides({ P_A: '1', P_: 'x', Q_B: '2', P_C: undefined, P_D: 'y' }, 'P_'), {
      A: '1',
      D: 'y',
    });
  });

  it('GIVEN BENCH_ worker settings THEN they become worker options, unset ones stay default, bad ones throw', () => {
    assert.deepEqual(benchWorkerOptions({}), {});
    assert.deepEqual(
      benchWorkerOptions({
        BENCH_WORKFLOW_TASK_POLLS: '4',
        BENCH_ACTIVITY_TASK_POLLS: '3',
        BENCH_WORKFLOW_TASK_EXECUTIONS: '20',
        BENCH_WORKFLOW_THREADS: '1',
      }),
      {
        maxConcurrentWorkflowTaskPolls: 4,
        maxConcurrentActivityTaskPolls: 3,
        maxConcurrentWorkflowTaskExecutions: 20,
        workflowThreadPoolSize: 1,
      },
    );
    assert.throws(() => benchWorkerOptions({ BENCH_WORKFLOW_THREADS: '0' }), /positive integer/);
  });
});

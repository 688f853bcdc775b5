/**
 * Workflow-side metrics through the workflow's metric meter. The SDK drops them while a history
 * replays, so each run's end is counted once however often it is replayed; they add no command.
 */
import { metricMeter } from '@temporalio/workflow';
import type { RunOutcome } from './metric-names';
import { METRIC } from './metric-names';

export function countRun(outcome: RunOutcome): void {
  metricMeter.createCounter(METRIC.runs, undefined, 'amiflow runs ended, by outcome').add(1, { outcome });
}

export function countImage(mode: string, outcome: RunOutcome): void {
  metricMeter
    .createCounter(METRIC.imagesMade, undefined, 'images made from instances, by mode and outcome')
    .add(1, { mode, outcome });
}

export function recordDowntime(seconds: number): void {
  metricMeter
    .createHistogram(METRIC.instanceDowntime, 'float', undefined, 'instance downtime of stop-mode images')
    .record(seconds);
}

export function recordFreeze(seconds: number, measuredBy: 'instance' | 'worker'): void {
  metricMeter
    .createHistogram(
      METRIC.freezeDuration,
      'float',
      undefined,
      'freeze of app-consistent images, pre step to thaw',
    )
    .record(seconds, { measured_by: measuredBy });
}

export function recordImageWait(seconds: number): void {
  metricMeter
    .createHistogram(METRIC.imageWait, 'float', undefined, 'CreateImage to available')
    .record(seconds);
}

export function countCopy(outcome: RunOutcome): void {
  metricMeter.createCounter(METRIC.copies, undefined, 'copyImage runs, by outcome').add(1, { outcome });
}

export function countShare(outcome: RunOutcome): void {
  metricMeter.createCounter(METRIC.shares, undefined, 'shareImage runs, by outcome').add(1, { outcome });
}

export function countCompensation(outcome: 'done' | 'failed'): void {
  metricMeter
    .createCounter(METRIC.compensations, undefined, 'compensations run, by outcome')
    .add(1, { outcome });
}

export function countScheduleSkip(reason: 'already-done' | 'outside-window'): void {
  metricMeter
    .createCounter(METRIC.scheduleRunsSkipped, undefined, 'scheduled runs that did nothing')
    .add(1, { reason });
}

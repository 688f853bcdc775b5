/**
 * Saga compensation: undo steps register before they run; on failure or cancellation the
 * registered undos run in reverse, in a non-cancellable scope. Each undo must be idempotent.
 * Their own failures are collected and reported, never swallowed.
 */
import { ApplicationFailure, CancellationScope, isCancellation, log } from '@temporalio/workflow';
import { FailureType } from './contracts';
import { countCompensation } from './metrics';
import type { Progress } from './progress';
import { errorMessage } from './progress';

interface Undo {
  name: string;
  /** The forward step this undoes, marked `compensated` in progress when the undo succeeds. */
  step?: string;
  fn: () => Promise<unknown>;
  active: boolean;
}

export interface UndoHandle {
  /** The forward effect no longer needs undoing (e.g. the instance was started again). */
  discard(): void;
}

export class Compensations {
  private readonly undos: Undo[] = [];

  constructor(private readonly progress: Progress) {}

  add(name: string, fn: () => Promise<unknown>, step?: string): UndoHandle {
    const undo: Undo = { name, fn, active: true, ...(step !== undefined ? { step } : {}) };
    this.undos.push(undo);
    return { discard: () => (undo.active = false) };
  }

  /** Runs every active undo, newest first, even when one fails; returns the failures. */
  async runAll(): Promise<{ name: string; error: string }[]> {
    const failures: { name: string; error: string }[] = [];
    await CancellationScope.nonCancellable(async () => {
      for (const undo of [...this.undos].reverse()) {
        if (!undo.active) continue;
        try {
          log.info(`compensation started: ${undo.name}`, { compensation: undo.name });
          await undo.fn();
          undo.active = false;
          countCompensation('done');
          log.info(`compensation done: ${undo.name}`, { compensation: undo.name });
          this.progress.record.compensations.push({ name: undo.name, state: 'done' });
          if (undo.step) this.progress.markCompensated(undo.step);
        } catch (err) {
          const error = errorMessage(err);
          failures.push({ name: undo.name, error });
          countCompensation('failed');
          this.progress.record.compensations.push({ name: undo.name, state: 'failed', error });
          log.error('compensation failed', { compensation: undo.name, error });
        }
      }
    });
    return failures;
  }

  /**
   * Runs `body`; on any failure or cancellation runs the compensations and rethrows. A cancellation
   * stays a cancellation; a failure whose compensation also failed becomes `CompensationFailed`
   * naming what could not be undone, with the original failure as its cause.
   */
  async guard<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (err) {
      const cancelled = isCancellation(err);
      this.progress.setPhase('compensating', err);
      const failures = await this.runAll();
      this.progress.setPhase(cancelled ? 'cancelled' : 'failed', err);
      if (failures.length > 0 && !cancelled) {
        throw ApplicationFailure.create({
          type: FailureType.CompensationFailed,
          nonRetryable: true,
          message:
            `${errorMessage(err)}; and undoing failed for: ` +
            failures.map((f) => `${f.name} (${f.error})`).join('; ') +
            '. Resources may be left behind: find them by the amiflow:workflow-id tag.',
          details: [failures],
          cause: err instanceof Error ? err : undefined,
        });
      }
      throw err;
    }
  }
}

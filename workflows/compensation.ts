/**
 * Saga compensation: undo steps register before they run; on failure or cancellation the
 * registered undos run in reverse, in a non-cancellable scope. Each undo must be idempotent.
 * Their own failures are collected and reported, never swallowed.
 */
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  isCancellation,
  log,
} from '@temporalio/workflow';
import { FailureType } from '../contracts';
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
          const note = noteOf(await undo.fn());
          undo.active = false;
          countCompensation('done');
          log.info(`compensation done: ${undo.name}`, {
            compensation: undo.name,
            ...(note !== undefined ? { note } : {}),
          });
          this.progress.record.compensations.push({
            name: undo.name,
            state: 'done',
            ...(note !== undefined ? { note } : {}),
          });
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
   * stays a cancellation, and so does a run whose cancellation was requested while a step was in
   * flight, even when that step then ended otherwise (an activity timeout because its worker died,
   * a failure): the caller asked to cancel, so the run ends CANCELLED once it is undone. A failure
   * whose compensation also failed becomes `CompensationFailed` naming what could not be undone,
   * with the original failure as its cause.
   */
  async guard<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (err) {
      // Read before compensating: the root scope is cancelled once the run's cancellation was requested.
      const cancelRequested =
        !isCancellation(err) &&
        CancellationScope.current().consideredCancelled &&
        this.progress.since('cancel-requested-ends-cancelled');
      const cancelled = isCancellation(err) || cancelRequested;
      // Before the first undo, in the same workflow task: the watcher stops this run's waits at once.
      if (cancelled) this.progress.cancelling();
      this.progress.setPhase('compensating', err);
      const failures = await this.runAll();
      // A cancelled run whose undo failed left something behind: it must not read as a clean
      // CANCELLED (operators alert on FAILED, and a cancellation looks like nothing to chase).
      const leftBehind =
        failures.length > 0 && cancelled && this.progress.since('cancelled-undo-failed-fails');
      this.progress.setPhase(cancelled && !leftBehind ? 'cancelled' : 'failed', err);
      if (leftBehind) throw this.cancelledButLeftBehind(err, failures, cancelRequested);
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
      if (cancelRequested)
        throw new CancelledFailure(
          `cancelled as requested; the step in flight ended with: ${errorMessage(err)}; undone: ` +
            this.summary() +
            (failures.length > 0
              ? '. Resources may be left behind: find them by the amiflow:workflow-id tag.'
              : ''),
          [failures],
          err instanceof Error ? err : undefined,
        );
      throw err;
    }
  }

  /**
   * The failure of a cancelled run whose undo did not finish: `CompensationFailed`, saying it was
   * cancelled, naming each undo that failed and why, and what the others did; the cancellation (or
   * the step's failure that met it) is its cause.
   */
  private cancelledButLeftBehind(
    err: unknown,
    failures: { name: string; error: string }[],
    stepEndedOtherwise: boolean,
  ): ApplicationFailure {
    return ApplicationFailure.create({
      type: FailureType.CompensationFailed,
      nonRetryable: true,
      message:
        'cancelled as requested' +
        (stepEndedOtherwise ? ` (the step in flight ended with: ${errorMessage(err)})` : '') +
        '; but undoing failed for: ' +
        failures.map((f) => `${f.name} (${f.error})`).join('; ') +
        `; undone: ${this.summary()}. Resources may be left behind: find them by the amiflow:workflow-id tag.`,
      details: [failures],
      cause: err instanceof Error ? err : undefined,
    });
  }

  /** What the compensations did, per undo, in words. */
  summary(): string {
    const done = this.progress.record.compensations;
    if (done.length === 0) return 'nothing needed undoing';
    return done
      .map((c) =>
        c.state === 'done'
          ? `${c.name}: done${c.note ? ` (${c.note})` : ''}`
          : `${c.name}: FAILED (${c.error ?? '?'})`,
      )
      .join('; ');
  }
}

/** An undo's own account of what it found (`note` in DeletedImage, TerminatedInstance, ...). */
function noteOf(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null || !('note' in result)) return undefined;
  return typeof result.note === 'string' ? result.note : undefined;
}

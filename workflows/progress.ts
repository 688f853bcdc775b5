/**
 * The progress record a workflow keeps for the `progress` query and the Web UI's "current details".
 * Deterministic: timestamps come from the workflow clock.
 */
import { log, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { StepProgress, WorkflowProgress } from '../contracts';
import { SearchAttr } from '../contracts';
import { CANCELLING_STEP } from '../contracts/wait-lease';
import type { RunOutcome } from './metric-names';
import { countRun } from './metrics';
import type { Since } from './patches';
import { patchesAtStart } from './patches';

/**
 * Runs started before this change set no outcome attribute when they end; the marker keeps their
 * histories replaying (the upsert is a new command).
 */
export const OUTCOME_SEARCH_ATTRIBUTES_PATCH = 'amiflow-outcome-search-attributes';
/** Runs from this marker on mark their cancellation in `AmiflowStep` before their undo (`cancelling`). */
export const CANCELLING_STEP_PATCH = 'amiflow-cancelling-step';

/**
 * Whether this run may upsert amiflow's search attributes: the client (or the parent, or the
 * schedule) started it with at least one, which it does only where they are registered. Upserting
 * an unregistered attribute would fail every workflow task of the run.
 */
export function amiflowAttributesRegistered(): boolean {
  const attrs = workflowInfo().typedSearchAttributes;
  return Object.values(SearchAttr).some((key) => attrs.get(key) !== undefined);
}

export class Progress {
  readonly record: WorkflowProgress;
  private readonly endHooks: ((outcome: RunOutcome) => void)[] = [];
  /**
   * The run's patch decisions (`patchesAtStart`): every workflow constructs its Progress first, in
   * its first activation, so this is where the run's one marker is set and its decision kept.
   */
  readonly since: Since;

  constructor(workflowType: string, stepNames: readonly string[]) {
    this.since = patchesAtStart();
    this.record = {
      workflowType,
      phase: 'running',
      steps: stepNames.map((name) => ({ name, state: 'pending' })),
      resources: {},
      compensations: [],
    };
  }

  private step(name: string): StepProgress {
    let step = this.record.steps.find((s) => s.name === name);
    if (!step) {
      step = { name, state: 'pending' };
      this.record.steps.push(step);
    }
    return step;
  }

  /** Runs `fn` as the named step: running → done, or failed with the error's message. */
  async run<T>(name: string, fn: () => Promise<T>, detail?: string): Promise<T> {
    const step = this.step(name);
    step.state = 'running';
    step.startedAt = new Date().toISOString();
    if (detail !== undefined) step.detail = detail;
    this.publish();
    log.info(`step started: ${name}`, { step: name });
    try {
      const result = await fn();
      step.state = 'done';
      log.info(`step done: ${name}`, { step: name });
      return result;
    } catch (err) {
      step.state = 'failed';
      step.detail = errorMessage(err);
      log.info(`step failed: ${name}`, { step: name, error: step.detail });
      throw err;
    } finally {
      step.finishedAt = new Date().toISOString();
      this.publish();
    }
  }

  skip(name: string, why: string): void {
    const step = this.step(name);
    step.state = 'skipped';
    step.detail = why;
    this.publish();
  }

  /** Updates a step's detail while it runs (e.g. a copy queued, copying, waiting). */
  note(name: string, detail: string): void {
    this.step(name).detail = detail;
    this.publish();
  }

  markCompensated(name: string): void {
    const step = this.record.steps.find((s) => s.name === name);
    if (step && step.state === 'done') step.state = 'compensated';
  }

  resource(key: string, value: string): void {
    this.record.resources[key] = value;
    this.publish();
  }

  /** Calls `fn` once with the run's outcome when it ends (per-workflow metrics). */
  onEnd(fn: (outcome: RunOutcome) => void): void {
    this.endHooks.push(fn);
  }

  /** Something went wrong that did not fail the run (a retirement that failed): it ends with problems. */
  problem(text: string): void {
    (this.record.problems ??= []).push(text);
    log.warn(`problem: ${text}`);
  }

  setPhase(phase: WorkflowProgress['phase'], error?: unknown): void {
    this.record.phase = phase;
    if (error !== undefined) this.record.error = errorMessage(error);
    if (phase === 'succeeded' || phase === 'failed' || phase === 'cancelled') this.end(phase);
    this.publish();
  }

  /** The run's outcome: counted, logged, and shown in the Web UI's list through search attributes. */
  private end(phase: 'succeeded' | 'failed' | 'cancelled'): void {
    if (this.record.outcome !== undefined) return; // parsedOrFail and a guard may both end it
    const outcome: RunOutcome =
      phase === 'succeeded' && this.record.problems?.length ? 'succeeded-with-problems' : phase;
    this.record.outcome = outcome;
    countRun(outcome);
    for (const hook of this.endHooks) hook(outcome);
    const at = this.record.steps.find((s) => s.state === 'running' || s.state === 'failed')?.name;
    log.info(`run ${outcome}`, {
      outcome,
      ...(this.record.error !== undefined ? { error: this.record.error } : {}),
      ...(this.record.problems?.length ? { problems: this.record.problems } : {}),
    });
    if (!amiflowAttributesRegistered() || !this.since(OUTCOME_SEARCH_ATTRIBUTES_PATCH)) return;
    // The step attribute follows the end too: a cancelled run never stays "awaiting approval".
    const step = outcome === 'succeeded' ? 'done' : at ? `${outcome} at ${at}` : outcome;
    upsertSearchAttributes([
      { key: SearchAttr.outcome, value: outcome },
      { key: SearchAttr.step, value: step },
    ]);
  }

  /**
   * A cancelled run, before its undo: `AmiflowStep = cancelling` (one Action per cancelled run), so
   * the image-wait watcher sees the cancellation in its one Visibility list per poll interval instead
   * of reading each held wait's run in turn (up to ~1,000 s at 10,000 held waits). Runs from before
   * the marker, or started without amiflow's attributes, are found by those per-wait reads.
   */
  cancelling(): void {
    if (!amiflowAttributesRegistered() || !this.since(CANCELLING_STEP_PATCH)) return;
    upsertSearchAttributes([{ key: SearchAttr.step, value: CANCELLING_STEP }]);
  }

  /** One line for the Web UI's "current details" panel (Markdown). */
  private publish(): void {
    const running = this.record.steps.filter((s) => s.state === 'running').map((s) => s.name);
    const done = this.record.steps.filter((s) => s.state === 'done').length;
    const resources = Object.entries(this.record.resources)
      .map(([k, v]) => `${k}: \`${v}\``)
      .join(', ');
    const problems = this.record.problems?.length
      ? `\n\n⚠ ${this.record.problems.length} problem(s): ${this.record.problems.join('; ')}`
      : '';
    setCurrentDetails(
      `**${this.record.outcome ?? this.record.phase}** · ${done}/${this.record.steps.length} steps done` +
        (running.length ? ` · now: ${running.join(', ')}` : '') +
        (resources ? `\n\n${resources}` : '') +
        problems +
        (this.record.error !== undefined && this.record.phase !== 'running'
          ? `\n\nerror: ${this.record.error}`
          : ''),
    );
  }
}

/**
 * The error's message and, below it, each cause's that adds something: a timeout or an activity
 * failure then still says what AWS answered last ("… timed out: … AWS refused with RequestLimitExceeded: …").
 */
export function errorMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current instanceof Error && depth < 4; depth += 1) {
    const message = current.message;
    if (message && !parts.some((p) => p.includes(message))) parts.push(message);
    current = (current as Error & { cause?: unknown }).cause;
  }
  return parts.join(': ');
}

/**
 * The progress record a workflow keeps for the `progress` query and the Web UI's "current details".
 * Deterministic: timestamps come from the workflow clock.
 */
import { setCurrentDetails } from '@temporalio/workflow';
import type { StepProgress, WorkflowProgress } from '../contracts';

export class Progress {
  readonly record: WorkflowProgress;

  constructor(workflowType: string, stepNames: readonly string[]) {
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
    try {
      const result = await fn();
      step.state = 'done';
      return result;
    } catch (err) {
      step.state = 'failed';
      step.detail = errorMessage(err);
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

  setPhase(phase: WorkflowProgress['phase'], error?: unknown): void {
    this.record.phase = phase;
    if (error !== undefined) this.record.error = errorMessage(error);
    this.publish();
  }

  /** One line for the Web UI's "current details" panel (Markdown). */
  private publish(): void {
    const running = this.record.steps.filter((s) => s.state === 'running').map((s) => s.name);
    const done = this.record.steps.filter((s) => s.state === 'done').length;
    const resources = Object.entries(this.record.resources)
      .map(([k, v]) => `${k}: \`${v}\``)
      .join(', ');
    setCurrentDetails(
      `**${this.record.phase}** · ${done}/${this.record.steps.length} steps done` +
        (running.length ? ` · now: ${running.join(', ')}` : '') +
        (resources ? `\n\n${resources}` : ''),
    );
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    return cause instanceof Error && cause.message && cause.message !== err.message
      ? `${err.message}: ${cause.message}`
      : err.message;
  }
  return String(err);
}

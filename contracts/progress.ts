/**
 * The progress record every workflow keeps, answerable by query while it runs and after it closes.
 */
import { defineQuery } from '@temporalio/workflow';

export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'compensated';

export interface StepProgress {
  name: string;
  state: StepState;
  startedAt?: string;
  finishedAt?: string;
  detail?: string;
}

export interface WorkflowProgress {
  workflowType: string;
  phase: 'running' | 'compensating' | 'succeeded' | 'failed' | 'cancelled';
  steps: StepProgress[];
  resources: Record<string, string>;
  /** `note`: what the undo found when it did less than undo (e.g. 'image ... was already gone'). */
  compensations: { name: string; state: 'done' | 'failed'; error?: string; note?: string }[];
  error?: string;
  /** What went wrong in a run that still completed (a failed retirement): never a plain success. */
  problems?: string[];
  /** Set when the run ends; what the `AmiflowOutcome` search attribute says. */
  outcome?: 'succeeded' | 'succeeded-with-problems' | 'failed' | 'cancelled';
}

export const progressQuery = defineQuery<WorkflowProgress>('progress');

/** Input checks at workflow start: a bad input fails the run at once, non-retryable, naming every field. */
import { ApplicationFailure } from '@temporalio/workflow';
import { FailureType } from '../contracts';
import type { Progress } from './progress';
import type { InputIssue } from './validation';
import { InvalidInputError, formatIssues } from './validation';

export function invalidInput(issues: InputIssue[]): ApplicationFailure {
  return ApplicationFailure.create({
    type: FailureType.InvalidInput,
    nonRetryable: true,
    message: formatIssues(issues),
    details: [issues],
  });
}

/** Parses `raw` with `parse`; on bad input the progress record says failed and the run fails with `InvalidInput`. */
export function parsedOrFail<T>(parse: (raw: unknown) => T, raw: unknown, progress: Progress): T {
  try {
    return parse(raw);
  } catch (err) {
    if (!(err instanceof InvalidInputError)) throw err;
    progress.setPhase('failed', err);
    throw invalidInput(err.issues);
  }
}

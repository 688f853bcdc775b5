/**
 * The wait lease's one fact shared by its activity (activities/wait-lease.ts) and its workflow
 * (workflows/wait-lease.ts): the failure type of a hold whose worker stopped before every wait's
 * hand-off landed. Its details carry the waits still to release ({ refs }).
 */
export const WAIT_HAND_OFF_INCOMPLETE = 'WaitHandOffIncomplete';

/**
 * The `AmiflowStep` search attribute of a run that was cancelled, from its cancellation until it ends
 * (workflows/progress.ts): the image-wait watcher lists such runs once per poll interval (a
 * Visibility read, not an Action) to stop their waits' polls at once, however many waits it holds.
 */
export const CANCELLING_STEP = 'cancelling';

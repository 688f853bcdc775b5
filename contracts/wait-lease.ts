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

/**
 * The wait lease's task priority (1, the highest; runs start with the default, 3): its workflow tasks
 * and its `releaseWaits` go ahead of the runs' backlog in the shared task queue. Without it the
 * lease's first workflow task waited ~400 s behind 10,000 runs' tasks, and until it scheduled its
 * hold a crashed worker went unnoticed. Temporal Server 1.32's matching honours it with default
 * config (bench/lease-priority.ts); a server without task priority ignores the field.
 */
export const WAIT_LEASE_PRIORITY_KEY = 1;

/** Names one attempt of one activity without its (large) task token: what a lease carries. */
export interface WaitRef {
  workflowId: string;
  runId: string;
  activityId: string;
}

/**
 * What a `waitLeaseRefs` signal says since the worker's last signal that landed: the waits added
 * and those gone. A signal used to carry the whole list each time, and at 10,000 waits each one put
 * ~1 MB into the lease's history; a change of a few waits is now a few hundred bytes.
 */
export interface WaitRefsChange<R extends WaitRef = WaitRef> {
  added: R[];
  gone: R[];
}

export const leaseRefKey = (r: WaitRef): string => `${r.workflowId}/${r.runId}/${r.activityId}`;

/**
 * The waits a lease knows after a `waitLeaseRefs` signal: a whole list (the signal's first form,
 * still sent by workers of earlier releases and after a refused signal) replaces them; a change
 * adds and removes. Anything else leaves them as they were.
 */
export function applyTold<R extends WaitRef>(known: R[], told: R[] | WaitRefsChange<R> | undefined): R[] {
  if (Array.isArray(told)) return told;
  if (!told || !Array.isArray(told.added) || !Array.isArray(told.gone)) return known;
  const gone = new Set(told.gone.map(leaseRefKey));
  const kept = gone.size ? known.filter((r) => !gone.has(leaseRefKey(r))) : known;
  const have = new Set(kept.map(leaseRefKey));
  const added = told.added.filter((r) => !have.has(leaseRefKey(r)));
  return added.length || kept !== known ? [...kept, ...added] : known;
}

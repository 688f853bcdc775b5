/**
 * The wait lease's one fact shared by its activity (activities/wait-lease.ts) and its workflow
 * (workflows/wait-lease.ts): the failure type of a hold whose worker stopped before every wait's
 * hand-off landed. Its details carry the waits still to release ({ refs }).
 */
export const WAIT_HAND_OFF_INCOMPLETE = 'WaitHandOffIncomplete';

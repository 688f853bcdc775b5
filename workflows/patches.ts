/**
 * Patch decisions made once, in the run's first activation. A `patched(id)` call made later, right
 * after a local activity, can come out differently on replay: when a query is answered while the
 * local activity's result waits for the workflow, Core completes the workflow task with the
 * activity's marker but before the workflow has seen its result (sdk-core `prepare_complete_resp`:
 * query responses with a pending LA resolution force a new task), so the workflow's next commands and
 * patch markers land in the following task. Replay resolves the local activity from the first task's
 * lookahead, reaches the `patched()` call there, does not see the marker yet (patch markers are
 * announced one task at a time) and takes the old branch: "Non-deprecated patch marker encountered
 * for change X, but there is no corresponding change command", on a query of an uncached run, after
 * an eviction or a worker restart. A marker made in the first activation is in the first task
 * whatever happens after it, so it is always seen.
 */
import { patched } from '@temporalio/workflow';

/** The one marker that stands, in runs started since it, for every patch of every workflow before it. */
export const PATCHES_AT_START = 'amiflow-patches-at-start';

/** Whether the run takes the patched branch of a patch id: see `patchesAtStart`. */
export type Since = (patchId: string) => boolean;

/**
 * Whether the run takes the patched branch of `patchId`: always in a run started since
 * PATCHES_AT_START, decided when the run started;
 * else as `patched(patchId)` decides it where the run calls it, as those runs did. Call in the run's
 * first activation, before anything awaits, and keep the result in the run's own objects (Progress
 * does): workflow modules are shared by every run of a worker (worker/bundle-options.ts).
 */
export function patchesAtStart(): Since {
  const current = patched(PATCHES_AT_START);
  return (patchId) => current || patched(patchId);
}

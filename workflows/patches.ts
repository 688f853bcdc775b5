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
 *
 * Generations. One marker cannot stand for "every patch" for ever: a run started today (marker set)
 * replaying on code that adds a patch tomorrow would take tomorrow's branch, which it never ran. So
 * each marker stands for a frozen list of patch ids, its generation; a patch added later goes into
 * a new generation whose own marker every run sets in its first activation too:
 *
 *   - an id of generation 1 (PATCHES_AT_START): the patched branch in runs that set the marker, else
 *     `patched(id)` where the run calls it, as runs from before the marker did (kept exactly);
 *   - an id of a later generation: the patched branch exactly in runs that set that generation's
 *     marker. A run started before the generation never ran the branch and never calls `patched(id)`.
 *
 * To add a patch: append `{ marker: 'amiflow-patches-at-start-<n>', ids: ['<id>'] }` to
 * PATCH_GENERATIONS (n one more than the last; several ids of one release may share it) and call
 * `progress.since('<id>')`. Never add an id to a generation that has shipped, and never call a bare
 * `patched()` in a workflow: test/workflows/patch-generations.test.ts fails on both, and on any
 * `since(id)` whose id is in no generation. As with any patch, a run that set a generation's marker
 * replays only on code that lists that generation: roll back past a release only once its runs closed.
 */
import { patched } from '@temporalio/workflow';

/** Generation 1's marker: in runs started since it, every patch of every workflow before it. */
export const PATCHES_AT_START = 'amiflow-patches-at-start';

/** One marker set in the run's first activation, and the patch ids it stands for (frozen once shipped). */
export interface PatchGeneration<Id extends string = string> {
  readonly marker: string;
  readonly ids: readonly Id[];
}

/**
 * Every generation, oldest first. Generation 1 lists every patch id the workflows had when the
 * generations were introduced (session 9); PATCHES_AT_START stood for all of them since it shipped.
 */
export const PATCH_GENERATIONS = [
  {
    marker: PATCHES_AT_START,
    ids: [
      'amiflow-async-image-wait',
      'amiflow-backup-child-search-attributes',
      'amiflow-cancelling-step',
      'amiflow-golden-child-search-attributes',
      'amiflow-golden-rollout-search-attributes',
      'amiflow-outcome-search-attributes',
      'cancel-requested-ends-cancelled',
      'cancelled-undo-failed-fails',
      'child-shares-through-ledger',
      'copy-image-as-activity',
      'create-image-as-activity',
      'golden-image-recipe-source',
      'golden-image-rollout-stage',
      'golden-launch-test-instance-as-activity',
      'image-from-instance-app-consistent',
      'launch-instance-as-activity',
      'share-grants-as-activities',
      'share-ledger',
      'share-ledger-dedupe-in-flight',
      'share-permissions-as-activities',
      'share-reencrypt-copy-as-activity',
      'unshare-reads-share-run',
      'verified-approvers',
    ],
  },
] as const satisfies readonly PatchGeneration[];

/** A patch id some generation lists: `since` takes no other, so a new id must be given a generation. */
export type PatchId = (typeof PATCH_GENERATIONS)[number]['ids'][number];

/** Whether the run takes the patched branch of a patch id: see `decidePatches`. */
export type PatchDecisions<Id extends string> = (patchId: Id) => boolean;
export type Since = PatchDecisions<PatchId>;

/**
 * The run's patch decisions under PATCH_GENERATIONS. Call in the run's first activation, before
 * anything awaits, and keep the result in the run's own objects (Progress does): workflow modules are
 * shared by every run of a worker (worker/bundle-options.ts).
 */
export function patchesAtStart(): Since {
  return decidePatches<PatchId>(PATCH_GENERATIONS);
}

/**
 * Sets (or, on replay, reads) every generation's marker now and answers each patch id by its
 * generation (see the header). Taking the generations as an argument lets the tests replay today's
 * histories against a variant with a generation added.
 */
export function decidePatches<Id extends string>(
  generations: readonly PatchGeneration<Id>[],
): PatchDecisions<Id> {
  const started = generations.map((g) => patched(g.marker));
  return (patchId) => {
    const g = generations.findIndex((gen) => gen.ids.includes(patchId));
    // Only reachable past the type (a cast): a plain Error fails the workflow task, which retries
    // once the id is given a generation, instead of deciding the run's branch on a guess.
    if (g < 0) throw new Error(`patch id '${patchId}' is in no generation of workflows/patches.ts`);
    return g === 0 ? started[0] === true || patched(patchId) : started[g] === true;
  };
}

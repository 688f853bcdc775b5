/**
 * What the patch-decision tests share (share-patch-replay.test.ts, patch-generations.test.ts): a
 * history's patch markers, a run's history replayed with a task ended after each of its local
 * activities, and workflow bundles of the test variants in test/replay/fixtures/.
 */
import assert from 'node:assert/strict';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { withTaskEndAfterEachLocalActivity } from '../../devkit/histories';
import { workflowBundleOptions } from '../../worker/bundle-options';
import { workflowBundle } from '../support/temporal';
import type { History } from './harness';

/** The ids of the history's patch markers, in order. */
export function patchMarkers(history: History): string[] {
  return (history.events ?? []).flatMap((e) => {
    const a = e.markerRecordedEventAttributes;
    if (a?.markerName !== 'core_patch') return [];
    const data = a.details?.['patch-data']?.payloads?.[0]?.data;
    return data ? [(JSON.parse(Buffer.from(data).toString()) as { id: string }).id] : [];
  });
}

/**
 * Replays `history` once per local activity, a task ended right after it (`withTaskEndAfterEachLocalActivity`),
 * against `bundle` (the workflows as they ship by default): the changes whose patch markers replay
 * did not see where the run had set them, by marker event id. Any other failure fails the test.
 */
export async function nondeterministicSplits(
  history: History,
  workflowId: string,
  bundle?: WorkflowBundleWithSourceMap,
): Promise<Map<string, string>> {
  const workflows = bundle ?? (await workflowBundle());
  const splits = withTaskEndAfterEachLocalActivity(history);
  assert.ok(splits.length > 0, 'no local activity followed by a command of its task');
  const failed = new Map<string, string>();
  for (const split of splits) {
    try {
      await Worker.runReplayHistory({ workflowBundle: workflows }, split.history, workflowId);
    } catch (err) {
      const change = /Non-deprecated patch marker encountered for change ([\w-]+)/.exec(String(err))?.[1];
      if (change === undefined) throw err; // any other failure is the test's own
      failed.set(split.markerEventId, change);
    }
  }
  return failed;
}

const noop = (): void => undefined;
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };

/** A bundle of a variant module under test/replay/fixtures/, built as the shipped bundle is but for its path. */
export function variantBundle(file: string): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    ...workflowBundleOptions,
    workflowsPath: require.resolve(`../replay/fixtures/${file}`),
    logger: quietLogger,
  });
}

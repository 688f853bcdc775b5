/**
 * Patch generations (workflows/patches.ts): each first-activation marker stands for a frozen list of
 * patch ids, so a patch added after a run started is decided for that run as it ran: the old branch.
 * The rule before generations (`amiflow-patches-at-start || patched(id)` for any id) took the new
 * branch on replay of every run started with the marker. Shown here on today's recorded histories,
 * against variants of imageFromInstance with one more patch (test/replay/fixtures/later-patch*.ts),
 * and on new runs split after each local activity. The source scan keeps every id the workflows
 * decide in a generation.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { ReplayResult, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import ts from 'typescript';
import { ROOT } from '../../devkit/tools';
import type { ImageFromInstanceResult } from '../../workflows/contracts';
import type { PatchGeneration } from '../../workflows/patches';
import { PATCHES_AT_START, PATCH_GENERATIONS } from '../../workflows/patches';
import { LATER_PATCH } from '../replay/fixtures/later-patch';
import type { RecordedHistory } from '../support/histories';
import { eventTypes, loadHistories, withTaskEndAfterEachLocalActivity } from '../support/histories';
import { timeSkippingEnv, uniqueTaskQueue } from '../support/temporal';
import type { WorkflowOutcome } from './harness';
import {
  startWorker,
  succeeded,
  uniqueWorkflowId,
  withinBound,
  workflowEnv,
  workflowOutcome,
} from './harness';
import { nondeterministicSplits, patchMarkers, variantBundle } from './patch-replay';
import { happyActivities, imageInput } from './stub-activities';

// ---------------------------------------------------------------------------------------------
// The source scan
// ---------------------------------------------------------------------------------------------

/** A `since(…)` or `patched(…)` call in workflow code. */
interface PatchCall {
  where: string;
  callee: 'since' | 'patched';
  /** The id: a string literal, or a constant's value; undefined when the argument is neither. */
  id?: string;
  argument: string;
}

/** The calls of `since`/`patched` in `files` (path → text), each argument resolved through the files' string constants. */
function patchCalls(files: ReadonlyMap<string, string>): PatchCall[] {
  const constants = new Map<string, string>();
  const found: { where: string; callee: 'since' | 'patched'; arg: ts.Expression | undefined }[] = [];
  for (const [file, text] of files) {
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer) {
        if (ts.isStringLiteral(node.initializer)) constants.set(node.name.text, node.initializer.text);
      }
      if (ts.isCallExpression(node)) {
        const callee = node.expression;
        const name = ts.isIdentifier(callee)
          ? callee.text
          : ts.isPropertyAccessExpression(callee)
            ? callee.name.text
            : undefined;
        if (name === 'since' || name === 'patched') {
          const line = source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
          found.push({ where: `${file}:${line}`, callee: name, arg: node.arguments[0] });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found.map(({ where, callee, arg }) => {
    const id =
      arg && ts.isStringLiteralLike(arg)
        ? arg.text
        : arg && ts.isIdentifier(arg)
          ? constants.get(arg.text)
          : undefined;
    return { where, callee, argument: arg?.getText() ?? '', ...(id !== undefined ? { id } : {}) };
  });
}

/** Every constant named `…_PATCH` with a string value: patch ids passed around by name. */
function patchConstants(files: ReadonlyMap<string, string>): string[] {
  return [...files.values()].flatMap((text) =>
    [...text.matchAll(/\bconst [A-Z0-9_]+_PATCH(?::[^=]+)? = '([^']+)'/g)].map((m) => m[1] ?? ''),
  );
}

/** The workflows' sources but patches.ts, the mechanism itself (it calls `patched` on purpose). */
function workflowSources(): Map<string, string> {
  const dir = path.join(ROOT, 'workflows');
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((e) => {
      const p = path.join(d, e);
      return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
    });
  return new Map(
    walk(dir)
      .map((p) => path.relative(dir, p))
      .filter((rel) => rel !== 'patches.ts')
      .map((rel) => [rel, readFileSync(path.join(dir, rel), 'utf8')]),
  );
}

/** What the scan finds wrong: bare `patched()` calls, ids in no generation, arguments it cannot read. */
function patchProblems(files: ReadonlyMap<string, string>): string[] {
  const listed = new Set<string>(PATCH_GENERATIONS.flatMap((g) => [...g.ids]));
  const calls = patchCalls(files);
  return [
    ...calls
      .filter((c) => c.callee === 'patched')
      .map((c) => `${c.where}: a bare patched(${c.argument}); decide it with since() (workflows/patches.ts)`),
    ...calls
      .filter((c) => c.callee === 'since' && c.id !== undefined && !listed.has(c.id))
      .map((c) => `${c.where}: since('${c.id}') is in no generation of PATCH_GENERATIONS`),
    // A parameter passed through: its type is PatchId and its callers pass `…_PATCH` constants (below).
    ...calls
      .filter((c) => c.callee === 'since' && c.id === undefined && !passedThrough(c))
      .map((c) => `${c.where}: since(${c.argument}): not a string or a constant the scan can read`),
    ...patchConstants(files)
      .filter((id) => !listed.has(id))
      .map((id) => `patch constant '${id}' is in no generation of PATCH_GENERATIONS`),
  ];
}

/** childAttributes' `since(patchId)`, whose callers pass GOLDEN_*_PATCH constants. */
const PASS_THROUGH = { file: path.join('golden', 'distribute.ts'), argument: 'patchId' };
const passedThrough = (c: PatchCall) =>
  c.where.startsWith(`${PASS_THROUGH.file}:`) && c.argument === PASS_THROUGH.argument;

/**
 * Generation 1 as it shipped (23 ids, one a line, in order), pinned by its digest: a change to it
 * (an id added, taken away or renamed) fails here, whatever the list says.
 */
const GENERATION_1_SHA256 = '6b7f89696db144e5cf424623e1af2a07274a05a9f425656345c2353d68f59309';
const digest = (ids: readonly string[]) => createHash('sha256').update(ids.join('\n')).digest('hex');

void describe('patch generations: every patch id the workflows decide has one', () => {
  void it('GIVEN the workflow sources THEN every since() id is in a generation, no bare patched() is called, and the scan reads every form of id (literal, constant, pass-through)', () => {
    const files = workflowSources();
    assert.deepEqual(patchProblems(files), []);
    const ids = new Set(patchCalls(files).flatMap((c) => (c.id !== undefined ? [c.id] : [])));
    assert.ok(ids.has('share-ledger'), 'a literal');
    assert.ok(ids.has('amiflow-outcome-search-attributes'), 'a constant');
    assert.ok(patchCalls(files).some(passedThrough));
    assert.ok(patchConstants(files).includes('amiflow-golden-rollout-search-attributes'), 'passed through');
  });

  void it('GIVEN a workflow that decides a new id outside any generation, or calls patched() WHEN scanned THEN each is named', () => {
    const files = new Map([
      ...workflowSources(),
      [
        'new-step.ts',
        [
          "export const NEW_STEP_PATCH = 'new-step-as-activity';",
          "const a = progress.since('new-step-retried');",
          'const b = progress.since(NEW_STEP_PATCH);',
          "const c = patched('amiflow-cancelling-step');",
        ].join('\n'),
      ],
    ]);
    assert.deepEqual(patchProblems(files), [
      "new-step.ts:4: a bare patched('amiflow-cancelling-step'); decide it with since() (workflows/patches.ts)",
      "new-step.ts:2: since('new-step-retried') is in no generation of PATCH_GENERATIONS",
      "new-step.ts:3: since('new-step-as-activity') is in no generation of PATCH_GENERATIONS",
      "patch constant 'new-step-as-activity' is in no generation of PATCH_GENERATIONS",
    ]);
  });

  void it('GIVEN PATCH_GENERATIONS THEN generation 1 is as it shipped, each later marker is amiflow-patches-at-start-<n>, and no id is in two generations', () => {
    const generations: readonly PatchGeneration[] = PATCH_GENERATIONS;
    const [first, ...later] = generations;
    assert.equal(first?.marker, PATCHES_AT_START);
    assert.equal(
      digest(first?.ids ?? []),
      GENERATION_1_SHA256,
      'generation 1 changed: a shipped generation is frozen; give a new id a new generation',
    );
    later.forEach((g, i) => assert.equal(g.marker, `${PATCHES_AT_START}-${i + 2}`));
    const all = PATCH_GENERATIONS.flatMap((g) => [...g.ids]);
    assert.equal(new Set(all).size, all.length);
  });
});

// ---------------------------------------------------------------------------------------------
// A patch added later, on today's histories and on new runs
// ---------------------------------------------------------------------------------------------

const bundles = new Map<string, Promise<WorkflowBundleWithSourceMap>>();
/** A later-patch variant's bundle, built once per file (webpack takes seconds). */
function later(variant: 'generation' | 'old-rule' | 'bare'): Promise<WorkflowBundleWithSourceMap> {
  let bundle = bundles.get(variant);
  if (!bundle) bundles.set(variant, (bundle = variantBundle(`later-patch-${variant}`)));
  return bundle;
}

async function replayAll(
  bundle: WorkflowBundleWithSourceMap,
  runs: RecordedHistory[],
): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  const histories = runs.map((r) => ({ workflowId: r.workflowId, history: r.history }));
  for await (const r of Worker.runReplayHistories({ workflowBundle: bundle }, histories)) results.push(r);
  return results;
}

async function recordedImageRuns(): Promise<RecordedHistory[]> {
  const type = (r: RecordedHistory) =>
    r.history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
  return (await loadHistories()).filter((r) => type(r) === 'imageFromInstance');
}

void describe('a patch added after runs started, decided by a generation of its own', () => {
  void it("GIVEN today's recorded imageFromInstance histories WHEN replayed against a variant adding since('later-patch-example') under generation 2 THEN all replay; against the rule before generations THEN every completed run started with amiflow-patches-at-start fails with non-determinism", async () => {
    const runs = await recordedImageRuns();
    // The later branch follows the run's steps: completed runs reach it, failed and cancelled ones do not.
    const completed = (r: RecordedHistory) => eventTypes(r.history).at(-1) === 'WORKFLOW_EXECUTION_COMPLETED';
    const withMarker = runs.filter((r) => patchMarkers(r.history).includes(PATCHES_AT_START) && completed(r));
    assert.ok(
      withMarker.length >= 2 && withMarker.length < runs.filter(completed).length,
      `${withMarker.length} of ${runs.length}`,
    );

    const generation = await replayAll(await later('generation'), runs);
    assert.equal(generation.length, runs.length);
    assert.deepEqual(
      generation.filter((r) => r.error !== undefined).map((r) => `${r.workflowId}: ${String(r.error)}`),
      [],
    );

    // The old rule: the marker answers for the later id too, so the run schedules the new timer where
    // its history completed.
    const oldRule = await replayAll(await later('old-rule'), runs);
    const broken = oldRule.filter((r) => r.error !== undefined);
    assert.deepEqual(broken.map((r) => r.workflowId).sort(), withMarker.map((r) => r.workflowId).sort());
    for (const r of broken) assert.ok(r.error instanceof DeterminismViolationError, String(r.error));
  });
});

const env = workflowEnv(timeSkippingEnv);

/** A run of the variant's imageFromInstance on the time-skipping server, to its end. */
async function runVariant(variant: 'generation' | 'bare'): Promise<WorkflowOutcome<ImageFromInstanceResult>> {
  const tq = uniqueTaskQueue('later-patch');
  const worker = await startWorker(env, tq, happyActivities({ state: 'running' }), {
    workflowBundle: await later(variant),
  });
  const handle = await env.client.workflow.start('imageFromInstance', {
    taskQueue: tq,
    workflowId: uniqueWorkflowId('later-patch'),
    args: [imageInput({ mode: 'no-reboot' })],
  });
  return worker.runUntil(withinBound(workflowOutcome<ImageFromInstanceResult>(handle), 'the run'));
}

void describe('a patch added later, on runs started since', () => {
  void it('GIVEN a run started on the generation-2 variant WHEN replayed with a task ended after each of its local activities THEN it took the later branch, both markers are in its first task, and every split replays', async () => {
    const o = await runVariant('generation');
    succeeded(o);
    assert.deepEqual(patchMarkers(o.history), [PATCHES_AT_START, `${PATCHES_AT_START}-2`]);
    // Both are the first task's first commands (each with the SDK's TemporalChangeVersion upsert),
    // before any local activity's marker.
    const types = eventTypes(o.history);
    const firstTaskEnd = types.indexOf('WORKFLOW_TASK_COMPLETED');
    const firstCommands = o.history.events?.slice(firstTaskEnd + 1, firstTaskEnd + 5);
    assert.deepEqual(patchMarkers({ events: firstCommands ?? [] }), [
      PATCHES_AT_START,
      `${PATCHES_AT_START}-2`,
    ]);
    assert.ok(types.includes('TIMER_STARTED'), 'the later branch ran');
    assert.ok(withTaskEndAfterEachLocalActivity(o.history).length >= 3);
    assert.deepEqual(
      [...(await nondeterministicSplits(o.history, o.workflowId, await later('generation')))],
      [],
    );
  });

  void it('GIVEN the same patch as a bare patched() at the branch WHEN its run is replayed with a task ended after its last local activity THEN it fails as the CI flake did (what the generation avoids)', async () => {
    const o = await runVariant('bare');
    succeeded(o);
    assert.deepEqual(patchMarkers(o.history), [PATCHES_AT_START, LATER_PATCH]);
    const failed = await nondeterministicSplits(o.history, o.workflowId, await later('bare'));
    assert.deepEqual([...new Set(failed.values())], [LATER_PATCH]);
  });
});

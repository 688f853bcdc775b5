/**
 * The harness every workflow test shares, whatever the workflow: the worker for one test's task
 * queue (on the file's time-skipping or dev server), recording and failing activity stubs, a run
 * to its end with its progress and history, waits on a run's steps, and assertions on failure
 * chains and histories. The fakes of each feature (image, golden, migrate, rollout, share) live in
 * their own stub files and build on this one.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import type { WorkflowHandle, WorkflowStartOptions } from '@temporalio/client';
import { Client, WorkflowFailedError } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import type { Workflow, WorkflowResultType } from '@temporalio/common';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkerOptions } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import type { ActivityDeps, Activities } from '../../activities';
import { shareRunActivities } from '../../activities/share-runs';
import { saveHistory } from '../../devkit/histories';
import { installQuietRuntime } from '../../devkit/runtime';
import type { FailureType, WorkflowProgress } from '../../workflows/contracts';
import { progressQuery } from '../../workflows/contracts';
import { uniqueTaskQueue, workflowBundle } from '../support/temporal';

export type ActivityName = keyof Activities;
export type ActivityInput<K extends ActivityName> = Parameters<Activities[K]>[0];
export type ActivityCall = { [K in ActivityName]: { name: K; input: ActivityInput<K> } }[ActivityName];
export type History = temporal.api.history.v1.IHistory;

// ---------------------------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------------------------

/** Every activity call a worker made, in the order the worker started them. */
export class ActivityLog {
  readonly calls: ActivityCall[] = [];

  names(): ActivityName[] {
    return this.calls.map((c) => c.name);
  }

  count(name: ActivityName): number {
    return this.calls.filter((c) => c.name === name).length;
  }

  inputs<K extends ActivityName>(name: K): ActivityInput<K>[] {
    return this.calls
      .filter((c): c is Extract<ActivityCall, { name: K }> => c.name === name)
      .map((c) => c.input);
  }
}

/** `run` on `activities` with every call recorded: what it returned, and the calls in `log`. */
export async function withLog<T>(
  activities: Activities,
  run: (recordedActivities: Activities) => Promise<T>,
): Promise<{ outcome: T; log: ActivityLog }> {
  const log = new ActivityLog();
  return { outcome: await run(recorded(log, activities)), log };
}

/** Wraps each activity so that its calls land in `log` before the activity body runs. */
export function recorded(log: ActivityLog, impl: Activities): Activities {
  function wrap<K extends ActivityName>(name: K): Activities[K] {
    const fn = impl[name] as unknown as (input: ActivityInput<K>) => ReturnType<Activities[K]>;
    const wrapped = (input: ActivityInput<K>): ReturnType<Activities[K]> => {
      log.calls.push({ name, input } as ActivityCall);
      return fn(input);
    };
    return wrapped as unknown as Activities[K];
  }
  const out = {} as Record<ActivityName, unknown>;
  for (const name of Object.keys(impl) as ActivityName[]) out[name] = wrap(name);
  return out as Activities;
}

// ---------------------------------------------------------------------------------------------
// Behaviour
// ---------------------------------------------------------------------------------------------

export function injectedFailure(name: ActivityName, type: FailureType): ApplicationFailure {
  return ApplicationFailure.create({ type, nonRetryable: true, message: `injected ${type} in ${name}` });
}

/**
 * `impl` with `name` failing non-retryably with `type`: on its first call only (`once`, so the same
 * activity can still succeed as a compensation) or on every call.
 */
export function failing<K extends ActivityName>(
  impl: Activities,
  name: K,
  type: FailureType,
  times: 'once' | 'always' = 'once',
): Activities {
  const original = impl[name] as unknown as (input: ActivityInput<K>) => ReturnType<Activities[K]>;
  let calls = 0;
  const replaced = (input: ActivityInput<K>): ReturnType<Activities[K]> => {
    calls += 1;
    if (times === 'always' || calls === 1) throw injectedFailure(name, type);
    return original(input);
  };
  return { ...impl, [name]: replaced };
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Heartbeats until the running activity is cancelled, then rethrows the cancellation: cancellation
 * reaches an activity only through heartbeats, which the worker in `startWorker` lets through.
 */
export async function heartbeatUntilCancelled(): Promise<never> {
  const ctx = Context.current();
  for (;;) {
    ctx.heartbeat();
    await ctx.sleep(20); // the heartbeat pace of this stub, not a wait for something in the test
  }
}

/**
 * Runs like a long AWS wait: heartbeats until the activity is cancelled (by the workflow, the
 * server, or the worker shutting down), then rethrows the cancellation. Cancellation reaches an
 * activity only through heartbeats, hence the loop; the worker in `startWorker` lets them through.
 * `entered` resolves once the activity runs; `cancelled` once it has seen its cancellation.
 */
export function blockingUntilCancelled(endsAs?: (cancellation: unknown) => never): Blocked & {
  fn: () => Promise<never>;
} {
  const entered = deferred();
  const cancelled = deferred();
  return {
    entered: entered.promise,
    cancelled: cancelled.promise,
    fn: async () => {
      entered.resolve();
      try {
        return await heartbeatUntilCancelled();
      } catch (cancellation) {
        if (endsAs) endsAs(cancellation);
        throw cancellation;
      } finally {
        cancelled.resolve();
      }
    },
  };
}

/** Activities blocked by `blockedAt`: `entered` once all of them run, `cancelled` once all saw their cancellation. */
export interface Blocked {
  entered: Promise<void>;
  cancelled: Promise<void>;
}

/**
 * Where a run blocks (see `blockedAt`): the `nth` call (default the first) of activity `name`, which
 * then ends as `endsAs` says once cancelled (default: with the cancellation itself).
 */
export type BlockAt =
  ActivityName | { name: ActivityName; nth?: number; endsAs?: (cancellation: unknown) => never };

/**
 * `impl` with the calls named in `at` blocking until cancelled (`blockingUntilCancelled`), as a long
 * AWS wait does; every other call of the same activity still runs `impl`'s (so the one a
 * compensation makes succeeds).
 */
export function blockedAt(impl: Activities, ...at: BlockAt[]): { activities: Activities; blocked: Blocked } {
  const activities = { ...impl };
  const blocks = at.map((spec) => {
    const { name, nth = 1, endsAs } = typeof spec === 'string' ? { name: spec } : spec;
    const block = blockingUntilCancelled(endsAs);
    const original = activities[name] as unknown as (input: unknown) => Promise<unknown>;
    let calls = 0;
    const replaced = (input: unknown) => {
      calls += 1;
      return calls === nth ? block.fn() : original(input);
    };
    Object.assign(activities, { [name]: replaced });
    return block;
  });
  const all = (pick: (b: Blocked) => Promise<void>) => Promise.all(blocks.map(pick)).then(() => undefined);
  return { activities, blocked: { entered: all((b) => b.entered), cancelled: all((b) => b.cancelled) } };
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/**
 * Keeps worker logs to errors: the injected failures would otherwise print a stack each. Call once
 * per test file (each file is its own process), before the environment starts.
 */
export function quietWorkerLogs(): void {
  installQuietRuntime();
}

/**
 * The file's workflow environment, with worker logs kept to errors (`quietWorkerLogs`). What it
 * returns at once forwards to the environment started for the running test, so a test file declares
 * it in one line and its tests still read `env.client`, `startWorker(env, ...)`.
 *
 * By default every test gets a server of its own (a time-skipping one starts in about 0.2 s): on a
 * server shared by the file, an activity an earlier test left open (its worker gone, as hand-off and
 * cancellation tests leave them) held time skipping back until its timeout passed in wall time, and
 * every timer of the tests after it waited that long. `per: 'file'` shares one (a dev server takes
 * seconds to start and does not skip time anyway).
 */
export function workflowEnv(
  start: () => Promise<TestWorkflowEnvironment>,
  { per = 'test' }: { per?: 'test' | 'file' } = {},
): TestWorkflowEnvironment {
  quietWorkerLogs();
  let current: TestWorkflowEnvironment | undefined;
  (per === 'test' ? beforeEach : before)(async () => {
    current = await start();
  });
  (per === 'test' ? afterEach : after)(async () => {
    await current?.teardown();
    current = undefined;
  });
  return new Proxy({} as TestWorkflowEnvironment, {
    get(_target, property) {
      if (current === undefined)
        assert.fail(`the workflow environment is not started (read ${String(property)})`);
      const value: unknown = Reflect.get(current, property, current);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(current) : value;
    },
  });
}

/**
 * A worker for one test's own task queue. Heartbeats reach the server at once, so cancels do too.
 * Workflows run in the worker's own thread (`debugMode`, still inside the workflow sandbox): a
 * worker then starts in tens of milliseconds instead of spawning a thread and loading the bundle
 * again for every test (about a second each on a busy 2-core machine).
 */
export async function startWorker(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  activities: Activities,
  options: Partial<WorkerOptions> = {},
): Promise<Worker> {
  // Shares hold their permissions through the image's share ledger, a workflow on this same worker
  // whose AWS calls are these stubs: the real activity reaches it through the test server.
  const workflow = new Client({ connection: env.connection, namespace: env.namespace }).workflow;
  const { requestShareLedger } = shareRunActivities(
    {
      ...({} as ActivityDeps),
      temporal: () => Promise.resolve({ workflow, close: () => Promise.resolve() }),
    },
    taskQueue,
  );
  return Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: { ...activities, requestShareLedger },
    maxHeartbeatThrottleInterval: '20ms',
    debugMode: true,
    ...options,
  });
}

/** Node test options for a test that runs workflows: a backstop above `RUN_BOUND_MS`. */
export const RUN_TIMEOUT = { timeout: 120_000 };
/** Wall time a test's runs may take before the test fails (a stuck workflow task retries forever). */
export const RUN_BOUND_MS = 60_000;

/**
 * A test that runs workflows: node:test's `it` with `RUN_TIMEOUT`, handed a fresh activity log (for
 * `recorded` and the run helpers below), so the test states only its activities, what it does to
 * the run, and what it asserts.
 */
export function test(name: string, body: (log: ActivityLog) => Promise<void>): void {
  void it(name, RUN_TIMEOUT, () => body(new ActivityLog()));
}

/** `work`, or a failure naming `what` once `ms` of wall time have passed without it settling. */
export async function withinBound<T>(work: Promise<T>, what: string, ms = RUN_BOUND_MS): Promise<T> {
  const timer = new AbortController();
  const expired = delay(ms, undefined, { signal: timer.signal }).then(() =>
    assert.fail(
      `${what} did not finish within ${ms} ms of wall time (a workflow task failing and retrying?)`,
    ),
  );
  try {
    return await Promise.race([work, expired]);
  } finally {
    timer.abort();
  }
}

/**
 * Runs `fn` while a fresh worker serves a fresh task queue, then shuts the worker down. Fails the
 * test, instead of hanging it, if `fn` has not settled within `RUN_BOUND_MS`.
 */
export async function withWorker<T>(
  env: TestWorkflowEnvironment,
  activities: Activities,
  fn: (taskQueue: string) => Promise<T>,
  queuePrefix = 'image-from-instance',
): Promise<T> {
  const taskQueue = uniqueTaskQueue(queuePrefix);
  const worker = await startWorker(env, taskQueue, activities);
  return worker.runUntil(withinBound(fn(taskQueue), `the runs on task queue ${taskQueue}`));
}

let workflowIds = 0;
export function uniqueWorkflowId(what: string): string {
  workflowIds += 1;
  return `${what}-${process.pid}-${workflowIds}`;
}

/**
 * Starts `workflowType` with `input` as it is: deliberately unchecked, since tests also send inputs
 * the client library would refuse.
 */
export function startUnchecked<W extends Workflow>(
  env: TestWorkflowEnvironment,
  workflowType: string,
  taskQueue: string,
  input: unknown,
  workflowId: string = uniqueWorkflowId(workflowType),
): Promise<WorkflowHandle<W>> {
  const options = { taskQueue, workflowId, args: [input] };
  return env.client.workflow.start<W>(workflowType, options as unknown as WorkflowStartOptions<W>);
}

/** `startUnchecked` for one workflow type, its workflow ids made from `idPrefix` unless given. */
export function starterOf<W extends Workflow>(workflowType: string, idPrefix: string) {
  return (
    env: TestWorkflowEnvironment,
    taskQueue: string,
    input: unknown,
    workflowId: string = uniqueWorkflowId(idPrefix),
  ): Promise<WorkflowHandle<W>> => startUnchecked<W>(env, workflowType, taskQueue, input, workflowId);
}

/** How a run ended, with its progress and history read after the end. */
export type WorkflowOutcome<R> =
  | { ok: true; result: R; progress: WorkflowProgress; history: History; workflowId: string }
  | { ok: false; error: unknown; progress: WorkflowProgress; history: History; workflowId: string };

/** Awaits the run's end (time skipping while it waits), then reads its progress and history. */
export async function workflowOutcome<R>(handle: WorkflowHandle): Promise<WorkflowOutcome<R>> {
  let settled: { ok: true; result: R } | { ok: false; error: unknown };
  try {
    settled = { ok: true, result: (await handle.result()) as R };
  } catch (error) {
    settled = { ok: false, error };
  }
  return {
    ...settled,
    progress: await handle.query(progressQuery),
    history: await handle.fetchHistory(),
    workflowId: handle.workflowId,
  };
}

export function succeeded<R>(outcome: WorkflowOutcome<R>): R {
  if (!outcome.ok) assert.fail(`expected success, the run failed: ${String(outcome.error)}`);
  return outcome.result;
}

export function failed<R>(outcome: WorkflowOutcome<R>): unknown {
  if (outcome.ok) assert.fail(`expected a failure, the run succeeded: ${JSON.stringify(outcome.result)}`);
  return outcome.error;
}

/**
 * A run cancelled while an activity blocks: started on a fresh worker by `start`, cancelled once
 * `blocked` has entered (and `beforeCancel` has resolved), its outcome read once the blocked
 * activity has seen its cancellation (so it was stopped, not left running).
 */
export function cancelledWhileBlocked<R>(
  env: TestWorkflowEnvironment,
  activities: Activities,
  blocked: { entered: Promise<void>; cancelled: Promise<void> },
  start: (taskQueue: string) => Promise<WorkflowHandle>,
  options: { queuePrefix?: string; beforeCancel?: (handle: WorkflowHandle) => Promise<unknown> } = {},
): Promise<WorkflowOutcome<R>> {
  const run = async (taskQueue: string) => {
    const handle = await start(taskQueue);
    await blocked.entered;
    await options.beforeCancel?.(handle);
    await handle.cancel();
    const outcome = await workflowOutcome<R>(handle);
    await blocked.cancelled;
    return outcome;
  };
  return withWorker(env, activities, run, options.queuePrefix);
}

/** A run cancelled while it blocks: see `cancelledRun`. */
export interface CancelledRun<W extends Workflow> {
  /** What the worker serves, but for the calls in `block`. */
  activities: Activities;
  /** The calls that block until cancelled (see `blockedAt`): the run is cancelled once all have started. */
  block: BlockAt[];
  start: (taskQueue: string) => Promise<WorkflowHandle<W>>;
  /** Anything else to wait for before the cancel, e.g. a step reaching a state. */
  beforeCancel?: (handle: WorkflowHandle<W>) => Promise<unknown>;
  /** Where the worker's calls are recorded. */
  log?: ActivityLog;
  queuePrefix?: string;
  /** The name the run's history is saved under for the replay tier (with AMIFLOW_RECORD_HISTORIES=1). */
  history?: string;
}

/**
 * `cancelledWhileBlocked` with the blocking calls made by `blockedAt`: the run started on a fresh
 * worker, cancelled while `block` runs, and its outcome once the blocked calls saw the cancellation.
 */
export async function cancelledRun<W extends Workflow>(
  env: TestWorkflowEnvironment,
  run: CancelledRun<W>,
): Promise<WorkflowOutcome<WorkflowResultType<W>>> {
  const { activities, blocked } = blockedAt(run.activities, ...run.block);
  const outcome = await cancelledWhileBlocked<WorkflowResultType<W>>(
    env,
    run.log ? recorded(run.log, activities) : activities,
    blocked,
    run.start,
    {
      ...(run.queuePrefix ? { queuePrefix: run.queuePrefix } : {}),
      ...(run.beforeCancel
        ? { beforeCancel: run.beforeCancel as (h: WorkflowHandle) => Promise<unknown> }
        : {}),
    },
  );
  if (run.history) await saveHistory(outcome, run.history);
  return outcome;
}

/** A run handed from one worker to another in the middle of an activity: see `handedOver`. */
export interface HandOver<H extends WorkflowHandle, T> {
  taskQueue: string;
  /** What the first worker serves: `blocked` among them. */
  first: Activities;
  /** The activity the first worker is running when it shuts down (see `blockingUntilCancelled`). */
  blocked: { entered: Promise<void>; cancelled: Promise<void> };
  start: (taskQueue: string) => Promise<H>;
  /** Anything else to wait for on the first worker before it shuts down. */
  ready?: (handle: H) => Promise<unknown>;
  /** What the second worker serves. */
  second: Activities;
  /** What to do with the run on the second worker, e.g. read its outcome. */
  then: (handle: H) => Promise<T>;
  /** The two workers' identities, as the history records them. */
  identities?: [string, string];
}

/**
 * Starts a run on a first worker, shuts that worker down while `blocked` runs, and lets a second
 * worker take the run over once the blocked activity has seen its cancellation. The first worker
 * keeps no workflow cache: the time-skipping test server never moves a task queued on a gone
 * worker's sticky queue back to the shared queue (a real server does on shutdown or after a
 * timeout), so with a cache the run's next workflow task would wait for the gone worker forever.
 */
export async function handedOver<H extends WorkflowHandle, T>(
  env: TestWorkflowEnvironment,
  run: HandOver<H, T>,
): Promise<T> {
  const identity = (i: 0 | 1) => (run.identities ? { identity: run.identities[i] } : {});
  const firstWorker = await startWorker(env, run.taskQueue, run.first, {
    maxCachedWorkflows: 0,
    ...identity(0),
  });
  const firstRun = firstWorker.run();
  const handle = await run.start(run.taskQueue);
  await withinBound(run.blocked.entered, 'the first worker reaching the blocked activity');
  await run.ready?.(handle);
  firstWorker.shutdown();
  await firstRun;
  await run.blocked.cancelled;
  const secondWorker = await startWorker(env, run.taskQueue, run.second, identity(1));
  return secondWorker.runUntil(withinBound(run.then(handle), 'the run on the second worker'));
}

/** A run resumed on a second worker: see `resumedRun`. */
export interface ResumedRun<W extends Workflow> {
  /** What the first worker serves, but for the calls in `block`. */
  first: Activities;
  /** The calls the first worker is running when it shuts down (see `blockedAt`). */
  block: BlockAt[];
  /** What the second worker serves. */
  second: Activities;
  start: (taskQueue: string) => Promise<WorkflowHandle<W>>;
  /** Anything else to wait for on the first worker before it shuts down. */
  ready?: (handle: WorkflowHandle<W>) => Promise<unknown>;
  queuePrefix: string;
  /** The name the run's history is saved under for the replay tier (with AMIFLOW_RECORD_HISTORIES=1). */
  history?: string;
}

/** How a resumed run ended, and the calls each worker made (`both`: all of them, in order). */
export interface Resumed<R> {
  outcome: WorkflowOutcome<R>;
  first: ActivityLog;
  second: ActivityLog;
  both: ActivityLog;
}

/**
 * `handedOver` on a fresh task queue with each worker's calls recorded: the first worker (identity
 * `first worker`) shuts down while `block` runs, the second (`second worker`) takes the run to its end.
 */
export async function resumedRun<W extends Workflow>(
  env: TestWorkflowEnvironment,
  run: ResumedRun<W>,
): Promise<Resumed<WorkflowResultType<W>>> {
  const logs = { first: new ActivityLog(), second: new ActivityLog(), both: new ActivityLog() };
  const { activities, blocked } = blockedAt(run.first, ...run.block);
  const outcome = await handedOver(env, {
    taskQueue: uniqueTaskQueue(run.queuePrefix),
    first: recorded(logs.both, recorded(logs.first, activities)),
    blocked,
    start: run.start,
    ...(run.ready ? { ready: run.ready } : {}),
    second: recorded(logs.both, recorded(logs.second, run.second)),
    then: (handle) => workflowOutcome<WorkflowResultType<W>>(handle),
    identities: ['first worker', 'second worker'],
  });
  if (run.history) await saveHistory(outcome, run.history);
  return { outcome, ...logs };
}

/** Polls `probe` until it returns something other than undefined; fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(25);
  }
}

/** Resolves once the run's own progress record shows `step` in one of `states`. */
export function stepReached(
  handle: Pick<WorkflowHandle, 'query'>,
  step: string,
  states: readonly string[],
): Promise<WorkflowProgress> {
  return eventually(`step '${step}' to be ${states.join(' or ')}`, async () => {
    const p = await handle.query(progressQuery);
    return p.steps.find((s) => s.name === step && states.includes(s.state)) ? p : undefined;
  });
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

/** `{ concurrently: [...] }`: the workflow runs these at the same time, so they may start in any order. */
export type ExpectedCall = ActivityName | { concurrently: ActivityName[] };

/**
 * Local activities that may run again, because they only read or are idempotent (tagSnapshots
 * sets the same tags again). A local activity is at least once: its result is recorded only when
 * its workflow task completes, so a workflow task that is lost and redelivered replays the run and
 * runs again every local activity of that task. The first worker of `handedOver` keeps no cache,
 * and there the SDK can evict a run in the middle of a task that runs local activities (its
 * markers are dropped and the task times out after 10 s: sdk-core's zero-cache eviction), so the
 * redelivered task repeats them. Seen in migrateInstance's resume test under load: the child's
 * first task ran describeInstance, checkImageName, then both again; its last ran tagSnapshots twice.
 */
const REPEATABLE_LOCAL: readonly ActivityName[] = [
  'describeInstance',
  'checkImageName',
  'planMigration',
  'tagSnapshots',
];

/**
 * The log without the repeats a redelivered workflow task makes: a repeatable local activity
 * called again with the same input since the last other call is dropped. So a whole sequence that
 * ran twice (d, c, d, c) collapses as a back-to-back repeat (d, d, c) does. Every other call,
 * normal activities (what changes AWS) above all, stays in the log, to be asserted exactly once.
 */
export function collapseReadOnlyRepeats(log: ActivityLog): ActivityLog {
  const collapsed = new ActivityLog();
  let sinceOther = new Set<string>();
  for (const call of log.calls) {
    if (!REPEATABLE_LOCAL.includes(call.name)) {
      sinceOther = new Set();
      collapsed.calls.push(call);
      continue;
    }
    const key = `${call.name} ${JSON.stringify(call.input)}`;
    if (sinceOther.has(key)) continue;
    sinceOther.add(key);
    collapsed.calls.push(call);
  }
  return collapsed;
}

/** The exact calls, in order, except that each `concurrently` group may appear in any order. */
export function assertCalls(log: ActivityLog, expected: ExpectedCall[]): void {
  const actual = log.names();
  const normalised: string[] = [];
  const wanted: string[] = [];
  let i = 0;
  for (const e of expected) {
    if (typeof e === 'string') {
      wanted.push(e);
      normalised.push(actual[i] ?? '(none)');
      i += 1;
    } else {
      wanted.push(...[...e.concurrently].sort());
      normalised.push(...actual.slice(i, i + e.concurrently.length).sort());
      i += e.concurrently.length;
    }
  }
  normalised.push(...actual.slice(i));
  assert.deepEqual(normalised, wanted, `activity calls were: ${actual.join(', ')}`);
}

/**
 * WorkflowFailedError → ActivityFailure(activityType) → ApplicationFailure(type), for a failure
 * that an activity raised. Local activities (describeInstance, checkImageName, createImage,
 * tagSnapshots) are the exception: Temporal hands their failure to the workflow unwrapped
 * (sdk-core #449), so the chain is WorkflowFailedError → ApplicationFailure(type).
 */
export function assertActivityFailure(
  error: unknown,
  expected: { activityType: ActivityName; local: boolean; type: FailureType },
): ApplicationFailure {
  assert.ok(error instanceof WorkflowFailedError, `not a WorkflowFailedError: ${String(error)}`);
  return assertActivityCause(error.cause, expected);
}

/** The part of the chain below the workflow failure: see `assertActivityFailure`. */
export function assertActivityCause(
  cause: unknown,
  expected: { activityType: ActivityName; local: boolean; type: FailureType },
): ApplicationFailure {
  if (!expected.local) {
    assert.ok(cause instanceof ActivityFailure, `cause is not an ActivityFailure: ${String(cause)}`);
    assert.equal(cause.activityType, expected.activityType);
    cause = cause.cause;
  }
  assert.ok(cause instanceof ApplicationFailure, `not an ApplicationFailure: ${String(cause)}`);
  assert.equal(cause.type, expected.type);
  assert.equal(cause.nonRetryable, true);
  return cause;
}

/** WorkflowFailedError → ApplicationFailure(type), for a failure the workflow itself raised. */
export function assertWorkflowFailure(error: unknown, type: FailureType): ApplicationFailure {
  assert.ok(error instanceof WorkflowFailedError, `not a WorkflowFailedError: ${String(error)}`);
  assert.ok(error.cause instanceof ApplicationFailure, `not an ApplicationFailure: ${String(error.cause)}`);
  assert.equal(error.cause.type, type);
  assert.equal(error.cause.nonRetryable, true);
  return error.cause;
}

/** WorkflowFailedError → CancelledFailure: the run ended CANCELLED. */
export function assertWorkflowCancelled(error: unknown): void {
  assert.ok(error instanceof WorkflowFailedError, `not a WorkflowFailedError: ${String(error)}`);
  assert.ok(error.cause instanceof CancelledFailure, `not cancelled: ${String(error.cause)}`);
}

export function stepStates(progress: WorkflowProgress): Record<string, string> {
  return Object.fromEntries(progress.steps.map((s) => [s.name, s.state]));
}

/** Activity types scheduled (regular activities) in history, in order. */
export function scheduledActivities(history: History): string[] {
  return (history.events ?? []).flatMap((e) =>
    e.activityTaskScheduledEventAttributes?.activityType?.name
      ? [e.activityTaskScheduledEventAttributes.activityType.name]
      : [],
  );
}

/** Local-activity markers in history (one per local activity that completed or failed). */
export function localActivityMarkers(history: History): number {
  return (history.events ?? []).filter(
    (e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity',
  ).length;
}

/**
 * The failure chain as names, outermost first, e.g. `['WorkflowFailedError', 'ChildWorkflowFailure',
 * 'ActivityFailure(createImage)', 'ApplicationFailure(AwsLimitExceeded)']`.
 */
export function failureChain(err: unknown): string[] {
  const out: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    const detail =
      'activityType' in e
        ? `(${String(e.activityType)})`
        : 'type' in e && typeof e.type === 'string' && e.name === 'ApplicationFailure'
          ? `(${e.type})`
          : '';
    out.push(`${e.name}${detail}`);
  }
  return out;
}

/** Each compensation of the run as `[name, state]`, in the order the run recorded them. */
export function compensationStates(progress: WorkflowProgress): [string, string][] {
  return progress.compensations.map((c) => [c.name, c.state]);
}

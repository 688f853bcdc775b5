/**
 * What every command's action shares: the connection (made only after the input is valid), the
 * output format (`--output json|text`, `--json`), and start → (wait | watch) → print.
 */
import type { Command } from 'commander';
import type { WorkflowProgress } from '../../contracts';
import type { AmiflowClient, RunOutcomeReport, StartedRun } from '../index';
import { progressPrinter } from '../render';
import { forTerminal } from '../trust-input';
import type { FollowOptions } from './flags';
import { followOptions } from './flags';

export type OutputFormat = 'json' | 'text';

/** Exit code of a run that completed with problems (a failed retirement): done, yet not clean. */
export const PROBLEMS_EXIT = 4;

export interface CliContext {
  /** Connects to Temporal; called only once a command's input is valid. */
  connect: () => Promise<AmiflowClient>;
  /** The exit code the last action chose. */
  exitCode: number;
  /** Set when a run printed as completed had problems: the action's 0 becomes PROBLEMS_EXIT. */
  withProblems: boolean;
  /** Live step view (stderr, so stdout keeps only the result). */
  printer: () => (p: WorkflowProgress) => void;
}

export function newContext(connect: () => Promise<AmiflowClient>): CliContext {
  return { connect, exitCode: 0, withProblems: false, printer: () => progressPrinter(process.stderr) };
}

/** `--output json|text` (or `--json`) as given to this command or before it. */
export function outputOf(cmd: Command): OutputFormat {
  const g = cmd.optsWithGlobals<{ output?: string; json?: boolean }>();
  return g.json === true || g.output === 'json' ? 'json' : 'text';
}

/**
 * Prints `value` as JSON or, for people, as `text()`; always on stdout. Text carries what AWS and
 * people wrote (tag values, names, messages), so its control characters are made visible
 * (`forTerminal`); JSON escapes them itself.
 */
export function emit(format: OutputFormat, value: unknown, text: () => string): void {
  console.log(format === 'json' ? JSON.stringify(value, null, 2) : forTerminal(text()));
}

/**
 * The action of a command about one thing (a run, a schedule) whose input needs no check: connect,
 * `fn` does it and says what to print (as JSON `value`, for people `text()`), exit 0.
 */
export function reportAction<O = unknown>(
  ctx: CliContext,
  fn: (client: AmiflowClient, id: string, opts: O) => Promise<{ value: unknown; text: () => string }>,
): (id: string, opts: O, cmd: Command) => Promise<void> {
  return async (id, opts, cmd) => {
    const output = outputOf(cmd);
    await withClient(ctx, async (client) => {
      const { value, text } = await fn(client, id, opts);
      emit(output, value, text);
      return 0;
    });
  };
}

/** Connects, runs `fn`, closes; `fn`'s number is the exit code. */
export async function withClient(
  ctx: CliContext,
  fn: (client: AmiflowClient) => Promise<number>,
): Promise<void> {
  const client = await ctx.connect();
  try {
    const code = await fn(client);
    // A run that completed with problems is never reported as a plain success, exit code included.
    ctx.exitCode = code === 0 && ctx.withProblems ? PROBLEMS_EXIT : code;
  } finally {
    await client.close();
  }
}

/**
 * Reports the started run, then (unless --no-wait) waits for its result, with a live step view
 * under --watch, and prints it as JSON or with `format`. Returns the result (undefined: not waited).
 */
export async function followRun<R>(
  ctx: CliContext,
  client: AmiflowClient,
  started: StartedRun,
  follow: FollowOptions,
  output: OutputFormat,
  format: (result: R) => string,
): Promise<R | undefined> {
  console.error(forTerminal(`started ${started.workflowId} (run ${started.runId})`));
  if (!follow.wait) {
    emit(output, started, () => started.workflowId);
    return undefined;
  }
  const result = follow.watch
    ? await client.watch<R>(started.workflowId, ctx.printer())
    : await client.result<R>(started.workflowId);
  await emitCompleted(ctx, client, started.workflowId, output, result, () => format(result));
  return result;
}

/** How a command that starts a run starts it, prints its result, and (optionally) picks its exit code. */
export interface RunStart<R> {
  /** Starts the run; `options` carries `--id` when given. */
  start: (client: AmiflowClient, options: { workflowId?: string }) => Promise<StartedRun>;
  format: (result: R) => string;
  /** The exit code for the result (undefined: not waited for); 0 when not given. */
  exitCode?: (result: R | undefined) => number;
}

/**
 * The tail every run-starting command shares, once its input is valid: connect, start (with `--id`),
 * then follow as `--watch` / `--no-wait` say and print as `--output` says (followRun).
 */
export async function startAndFollow<R>(
  ctx: CliContext,
  cmd: Command,
  opts: { id?: unknown; watch?: unknown; wait?: unknown },
  run: RunStart<R>,
): Promise<void> {
  const follow = followOptions(opts);
  const output = outputOf(cmd);
  await withClient(ctx, async (client) => {
    const started = await run.start(client, follow.id ? { workflowId: follow.id } : {});
    const result = await followRun<R>(ctx, client, started, follow, output, run.format);
    return run.exitCode?.(result) ?? 0;
  });
}

/** Text for people under a completed run's result: nothing for a clean run, its problems otherwise. */
export function problemsText(end: RunOutcomeReport): string {
  if (end.outcome !== 'succeeded-with-problems') return '';
  const problems = end.problems?.length
    ? end.problems.map((p) => `  - ${p}`)
    : ['  (the problems are in the run: amiflow status <workflow-id> once a worker runs)'];
  return ['', '⚠ succeeded with problems:', ...problems].join('\n');
}

/**
 * Prints a completed run's result with how it ended: as JSON, the result's fields plus `outcome`
 * and `problems`; as text, the result then its problems. Marks `ctx` so a run that completed with
 * problems exits PROBLEMS_EXIT, never 0.
 */
export async function emitCompleted(
  ctx: CliContext,
  client: AmiflowClient,
  workflowId: string,
  output: OutputFormat,
  result: unknown,
  text: () => string,
): Promise<void> {
  const end = await client.runOutcome(workflowId);
  if (end.outcome === 'succeeded-with-problems') ctx.withProblems = true;
  emit(output, withOutcome(result, end), () => text() + problemsText(end));
}

/** `result` with `outcome`/`problems` added (an object result; others are wrapped under `result`). */
export function withOutcome(result: unknown, end: RunOutcomeReport): unknown {
  if (end.outcome === undefined) return result;
  const fields = { outcome: end.outcome, ...(end.problems ? { problems: end.problems } : {}) };
  return typeof result === 'object' && result !== null && !Array.isArray(result)
    ? { ...result, ...fields }
    : { result, ...fields };
}

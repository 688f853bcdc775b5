/**
 * What every command's action shares: the connection (made only after the input is valid), the
 * output format (`--output json|text`, `--json`), and start → (wait | watch) → print.
 */
import type { Command } from 'commander';
import type { WorkflowProgress } from '../../contracts';
import type { AmiflowClient, StartedRun } from '../index';
import { progressPrinter } from '../render';
import type { FollowOptions } from './flags';

export type OutputFormat = 'json' | 'text';

export interface CliContext {
  /** Connects to Temporal; called only once a command's input is valid. */
  connect: () => Promise<AmiflowClient>;
  /** The exit code the last action chose. */
  exitCode: number;
  /** Live step view (stderr, so stdout keeps only the result). */
  printer: () => (p: WorkflowProgress) => void;
}

export function newContext(connect: () => Promise<AmiflowClient>): CliContext {
  return { connect, exitCode: 0, printer: () => progressPrinter(process.stderr) };
}

/** `--output json|text` (or `--json`) as given to this command or before it. */
export function outputOf(cmd: Command): OutputFormat {
  const g = cmd.optsWithGlobals<{ output?: string; json?: boolean }>();
  return g.json === true || g.output === 'json' ? 'json' : 'text';
}

/** Prints `value` as JSON or, for people, as `text()`; always on stdout. */
export function emit(format: OutputFormat, value: unknown, text: () => string): void {
  console.log(format === 'json' ? JSON.stringify(value, null, 2) : text());
}

/** Connects, runs `fn`, closes; `fn`'s number is the exit code. */
export async function withClient(
  ctx: CliContext,
  fn: (client: AmiflowClient) => Promise<number>,
): Promise<void> {
  const client = await ctx.connect();
  try {
    ctx.exitCode = await fn(client);
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
  console.error(`started ${started.workflowId} (run ${started.runId})`);
  if (!follow.wait) {
    emit(output, started, () => started.workflowId);
    return undefined;
  }
  const result = follow.watch
    ? await client.watch<R>(started.workflowId, ctx.printer())
    : await client.result<R>(started.workflowId);
  emit(output, result, () => format(result));
  return result;
}

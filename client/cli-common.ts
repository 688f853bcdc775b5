/** Pieces every CLI command shares: `--tag` parsing, and start → (wait | watch) → print. */
import type { WorkflowProgress } from '../workflows/contracts';
import type { AmiflowClient, StartedRun } from './index';

/** `--tag key=value`, repeatable; a missing `=` or a key given twice is refused through `fail`. */
export function parseTagFlags(
  raw: string[] | undefined,
  fail: (message: string) => Error,
): Record<string, string> | undefined {
  if (!raw?.length) return undefined;
  const out: Record<string, string> = {};
  for (const t of raw) {
    const at = t.indexOf('=');
    if (at <= 0) throw fail(`--tag: '${t}' must be key=value`);
    const key = t.slice(0, at);
    if (key in out) throw fail(`--tag: key '${key}' given twice`);
    out[key] = t.slice(at + 1);
  }
  return out;
}

export interface FollowFlags {
  wait: boolean;
  watch: boolean;
  json: boolean;
}

/**
 * Reports the started run, then (unless --no-wait) waits for its result, with a live step view
 * under --watch, and prints it as JSON or with `format`. Returns the result (undefined: not waited).
 */
export async function followRun<R>(
  client: AmiflowClient,
  started: StartedRun,
  flags: FollowFlags,
  printer: (p: WorkflowProgress) => void,
  format: (result: R) => string,
): Promise<R | undefined> {
  console.error(`started ${started.workflowId} (run ${started.runId})`);
  if (!flags.wait) {
    if (flags.json) console.log(JSON.stringify(started));
    return undefined;
  }
  const result = flags.watch
    ? await client.watch<R>(started.workflowId, printer)
    : await client.result<R>(started.workflowId);
  console.log(flags.json ? JSON.stringify(result, null, 2) : format(result));
  return result;
}

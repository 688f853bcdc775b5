/**
 * V8 settings the worker applies to itself before anything else loads (imported first by
 * `worker/main.ts`, for its side effect). Node 24 refuses V8 flags other than the heap sizes in
 * NODE_OPTIONS, so an environment variable is the only way a container's settings can reach them
 * without changing its command; `node --memory-saver-mode dist/worker/main.js` does the same.
 *
 * AMIFLOW_V8_MEMORY_SAVER=on: V8's memory saver mode ("keeps memory footprint low at the expense of
 * extra cpu cycles": the heaps grow less before a full collection) in every isolate of the process,
 * the workflow thread's included.
 * Measured on the whole worker with 1,000 image runs waiting: a lower settled RSS and a much lower
 * peak for more CPU per run (docs/sizing.md, "V8 memory saver"). Off by default.
 *
 * This module imports nothing of amiflow's (the contracts would load zod first): `config.ts`
 * validates the same variable and reports a bad value as every other setting.
 */
import v8 from 'node:v8';

export const V8_MEMORY_SAVER_ENV = 'AMIFLOW_V8_MEMORY_SAVER';

/** The V8 flags `env` asks for (a value other than on/off is config.ts's error to report). */
export function v8FlagsFor(env: Record<string, string | undefined>): string[] {
  return env[V8_MEMORY_SAVER_ENV] === 'on' ? ['--memory-saver-mode'] : [];
}

/**
 * Set on import, before the module graph and the workflow thread exist: the flags are process-wide
 * and the heaps grow under them from the start. The flags set, for the start-up log.
 */
export const appliedV8Flags: readonly string[] = v8FlagsFor(process.env);
for (const flag of appliedV8Flags) v8.setFlagsFromString(flag);

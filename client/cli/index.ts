#!/usr/bin/env node
/**
 * amiflow command line. The command tree is declared once (./program.ts and one file per command
 * group); bad input is refused there, naming the flag, before anything connects.
 *
 * Exit codes: 0 done; 1 the run failed (or something asked for is not there); 2 bad input or
 * usage, or a refused request (out of the operator's bounds, not amiflow's to act on, an approver
 * or a share record not verified); 3 a --strict compliance check found violations; 4 the run
 * completed with problems (e.g. a golden run whose retirement failed: printed as "succeeded with
 * problems", never a plain success); 130 the run was cancelled.
 */
import { CommanderError } from 'commander';
import { FailureType } from '../../contracts';
import { ConfigError } from '../../worker/config';
import { InvalidInputError } from '../../workflows/validation';
import type { ConnectionOverrides } from '../connection';
import {
  ConnectionConfigError,
  ConnectionFailedError,
  connectResolved,
  resolveConnection,
} from '../connection';
import type { AmiflowClient } from '../index';
import { RefusedError, RunFailedError } from '../index';
import { PlanFileError } from '../plan-file';
import { RecipeFileError } from '../recipe';
import { forTerminal } from '../trust-input';
import { newContext } from './context';
import { UsageError } from './flags';
import { NotFoundError } from './guardrails';
import { CommandLineError, buildProgram } from './program';

export { UsageError } from './flags';
export { buildProgram } from './program';

/**
 * Failures that refuse the request rather than report a failed run: an approval by someone not
 * proven to be an approver (the golden run keeps waiting), an unshare whose record differs from the
 * share run's own (nothing was withdrawn). Exit 2, as the library's own RefusedError.
 */
const REFUSALS: ReadonlySet<string> = new Set([FailureType.ApproverNotVerified, FailureType.ShareRunRefused]);

/** Help and --version end with these commander codes: printed, exit 0. */
const DONE_CODES = new Set(['commander.helpDisplayed', 'commander.version']);

/**
 * Runs one command line; returns its exit code. Usage and input errors are thrown (UsageError,
 * InvalidInputError, PlanFileError…) for `main` to report; `connect` is called only once the input
 * is valid.
 */
export async function run(argv: string[], connect?: () => Promise<AmiflowClient>): Promise<number> {
  const printed = { out: [] as string[] };
  const ctx = newContext(connect ?? (() => Promise.reject(new Error('not connected'))));
  const program = buildProgram(ctx, printed);
  // Global flags (--profile, --address, --namespace) are parsed by the time an action connects.
  if (!connect) ctx.connect = () => connectResolved(resolveConnection(program.opts<ConnectionOverrides>()));
  if (argv.length === 0) {
    process.stderr.write(program.helpInformation());
    return 2;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    // Help and --version arrive as commander's own exit (exitOverride), not as errors.
    if (err instanceof CommanderError && (DONE_CODES.has(err.code) || err.exitCode === 0)) {
      process.stdout.write(printed.out.join(''));
      return 0;
    }
    if (err instanceof CommanderError && err.code === 'commander.help') {
      // A group named without its command (`amiflow image`): its help, as a usage error.
      process.stderr.write(printed.out.join(''));
      return 2;
    }
    throw err;
  }
  return ctx.exitCode;
}

/** The output format asked for anywhere on the line (errors are reported in it too). */
function wantsJson(argv: readonly string[]): boolean {
  return argv.some(
    (a, i) => a === '--json' || a === '--output=json' || (a === '--output' && argv[i + 1] === 'json'),
  );
}

interface Reported {
  code: number;
  error: Record<string, unknown>;
}

/** What `err` means for the person (or program) running amiflow: exit code and a JSON-able error. */
export function describeError(err: unknown): Reported {
  if (err instanceof InvalidInputError)
    return { code: 2, error: { kind: 'invalid-input', message: err.message, issues: err.issues } };
  if (err instanceof PlanFileError)
    return {
      code: 2,
      error: { kind: 'invalid-plan', message: err.message, file: err.source, issues: err.issues },
    };
  if (err instanceof RecipeFileError)
    return {
      code: 2,
      error: { kind: 'invalid-recipe', message: err.message, file: err.source, issues: err.issues },
    };
  if (err instanceof CommandLineError)
    return {
      code: 2,
      error: {
        kind: 'usage',
        message: err.message,
        command: err.commandPath,
        help: `${err.commandPath} --help`,
      },
    };
  if (err instanceof UsageError) return { code: 2, error: { kind: 'usage', message: err.message } };
  // The request itself was refused (bounds, not amiflow's, a closed run): asking again will not help.
  if (err instanceof RefusedError) return { code: 2, error: { kind: 'refused', message: err.message } };
  if (err instanceof ConfigError || err instanceof ConnectionConfigError)
    return { code: 2, error: { kind: 'config', message: err.message } };
  if (err instanceof ConnectionFailedError)
    return {
      code: 1,
      error: { kind: 'connection', message: err.message, address: err.address, source: err.source },
    };
  if (err instanceof RunFailedError && err.failureType !== undefined && REFUSALS.has(err.failureType))
    return {
      code: 2,
      error: {
        kind: 'refused',
        message: err.message,
        workflowId: err.workflowId,
        failureType: err.failureType,
      },
    };
  if (err instanceof RunFailedError)
    return {
      code: err.cancelled ? 130 : 1,
      error: {
        kind: err.cancelled ? 'cancelled' : 'run-failed',
        message: err.message,
        workflowId: err.workflowId,
        ...(err.failureType ? { failureType: err.failureType } : {}),
      },
    };
  if (err instanceof NotFoundError) return { code: 1, error: { kind: 'not-found', message: err.message } };
  return { code: 1, error: { kind: 'error', message: err instanceof Error ? err.message : String(err) } };
}

function textOf(err: unknown, r: Reported): string {
  if (r.error.kind === 'refused')
    return `refused${err instanceof RunFailedError ? ` (${err.failureType ?? ''})` : ''}: ${String(r.error.message)}`;
  if (err instanceof RunFailedError)
    return err.cancelled
      ? `cancelled: ${err.message}`
      : `failed${err.failureType ? ` (${err.failureType})` : ''}: ${err.message}`;
  if (err instanceof CommandLineError) return `${err.message}\n(see: ${err.commandPath} --help)`;
  return String(r.error.message);
}

export async function main(
  argv = process.argv.slice(2),
  connect?: () => Promise<AmiflowClient>,
): Promise<number> {
  try {
    return await run(argv, connect);
  } catch (err) {
    const reported = describeError(err);
    // No stack trace: every error here says what was wrong; the JSON form is for programs.
    // Messages quote what was given and what AWS said: control characters made visible.
    console.error(forTerminal(`amiflow: ${textOf(err, reported)}`));
    if (wantsJson(argv))
      console.log(JSON.stringify({ error: reported.error, exitCode: reported.code }, null, 2));
    return reported.code;
  }
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}

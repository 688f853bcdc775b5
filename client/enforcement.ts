/**
 * Client side of `enforceAllowedAmis`: one run per enforcement name holds the settings to restore;
 * a mode is an update to it. The first `audit` starts it; `off` restores and ends it.
 */
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { AllowedAmisMode, AllowedAmisState, EnforceAllowedAmisInput } from '../contracts';
import { allowedAmisStateQuery, setAllowedAmisModeUpdate } from '../contracts';
import { enforceAllowedAmis } from '../workflows';
import { parseEnforceAllowedAmisInput, parseSetAllowedAmisMode } from '../workflows/guardrails-validation';

export function enforcementWorkflowId(name: string): string {
  return `enforce-allowed-amis/${name}`;
}

/** The running enforcement's state, or undefined when none runs under that name. */
export async function enforcementState(
  temporal: Client,
  name: string,
): Promise<AllowedAmisState | undefined> {
  const handle = temporal.workflow.getHandle(enforcementWorkflowId(name));
  try {
    const d = await handle.describe();
    if (d.status.name !== 'RUNNING') return undefined;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
  return handle.query(allowedAmisStateQuery);
}

function sameScope(a: EnforceAllowedAmisInput, b: AllowedAmisState): boolean {
  const want = (a.accounts ?? ['self']).flatMap((acc) => a.regions.map((r) => `${acc}/${r}`)).sort();
  const have = b.targets.map((t) => `${t.account}/${t.region}`).sort();
  return JSON.stringify(want) === JSON.stringify(have);
}

/**
 * Sets the mode of enforcement `input.name` and returns its state once every account and region
 * was dealt with (per-target failures are in the state). `audit` starts the enforcement when none
 * runs; `enabled` needs it audited first; `off` restores what was there before and ends it (only
 * `input.name` counts then: it covers what the enforcement covers).
 */
export async function setAllowedAmisMode(
  temporal: Client,
  taskQueue: string,
  input: EnforceAllowedAmisInput,
  mode: AllowedAmisMode,
): Promise<AllowedAmisState> {
  parseSetAllowedAmisMode({ mode });
  if (mode === 'off') return turnOffAllowedAmis(temporal, input.name);
  const valid = parseEnforceAllowedAmisInput(input);
  const workflowId = enforcementWorkflowId(valid.name);
  const running = await enforcementState(temporal, valid.name);
  if (running && !sameScope(valid, running))
    throw new Error(
      `enforcement '${valid.name}' covers ${running.targets.map((t) => `${t.account}/${t.region}`).join(', ')}; ` +
        'turn it off first (--mode off) to change its accounts or regions, or use another --name',
    );
  if (!running) {
    if (mode === 'enabled')
      throw new Error(`enforcement '${valid.name}' has not been in audit mode: run --mode audit first`);
    try {
      await temporal.workflow.start(enforceAllowedAmis, {
        args: [valid],
        taskQueue,
        workflowId,
        staticSummary: `Allowed AMIs '${valid.name}': ${(valid.accounts ?? ['self']).length} account(s) × ${valid.regions.length} region(s)`,
      });
    } catch (err) {
      // Started by someone else meanwhile: the update below goes to that run.
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }
  const selection = {
    ...(valid.catalogueAccounts ? { catalogueAccounts: valid.catalogueAccounts } : {}),
    ...(valid.pipelines ? { pipelines: valid.pipelines } : {}),
    ...(valid.allowList ? { allowList: valid.allowList } : {}),
  };
  // The latest catalogue selection holds for this change: a new allow-list entry is taken up.
  return temporal.workflow
    .getHandle(workflowId)
    .executeUpdate(setAllowedAmisModeUpdate, { args: [{ mode, selection }] });
}

/** Restores what the enforcement `name` changed, wherever it applies, and ends it. */
export async function turnOffAllowedAmis(temporal: Client, name: string): Promise<AllowedAmisState> {
  if (!(await enforcementState(temporal, name)))
    throw new Error(`no enforcement named '${name}' is in place: nothing to turn off`);
  return temporal.workflow
    .getHandle(enforcementWorkflowId(name))
    .executeUpdate(setAllowedAmisModeUpdate, { args: [{ mode: 'off' }] });
}

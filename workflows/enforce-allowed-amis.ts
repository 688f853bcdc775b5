/**
 * enforceAllowedAmis: EC2 Allowed AMIs per account and region, set from the catalogue's owners,
 * opt-in and reversible. One run per enforcement name holds its scope and, per (account, region),
 * the settings found before amiflow's first change. Modes arrive as updates (`setAllowedAmisMode`):
 *
 * - `audit`: criteria set, state `audit-mode` (nothing is blocked; EC2 marks `ImageAllowed` on images);
 * - `enabled`: refused until audit mode was set first; then only images matching the criteria (and
 *   the account's own) can be discovered and launched;
 * - `off`: each account and region gets back the settings it had before, unless someone changed them
 *   since amiflow set them (then they are left alone and reported). The run ends once nothing of
 *   amiflow's remains in place.
 *
 * The run lives as long as the enforcement does (an entity), so the settings to restore are never
 * lost with the workflow history's retention; it continues as new when its history grows. A mode
 * change may bring a new catalogue selection (catalogue accounts, pipelines, allow list): it holds
 * for that change and the later ones. Its accounts and regions are fixed for its life.
 */
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  AllowedAmisState,
  AllowedAmisTarget,
  AllowedImagesCriterion,
  AllowedImagesSettings,
  ApprovedImage,
  Catalogue,
  EnforceAllowedAmisInput,
  SetAllowedAmisMode,
} from '../contracts';
import {
  FailureType,
  SELF_ACCOUNT,
  WORKFLOW_TYPES,
  allowedAmisStateQuery,
  setAllowedAmisModeUpdate,
} from '../contracts';
import { catalogueSpec, failureOf, readCatalogue, targetName, targetOf } from './approved-images';
import { la, local, startRun } from './bootstrap';
import {
  DEFAULT_GUARDRAIL_CONCURRENCY,
  parseEnforceAllowedAmisInput,
  setAllowedAmisModeIssues,
} from './guardrails-validation';
import { settledAwsCall } from './presets';
import { Semaphore } from './semaphore';
import { formatIssues } from './validation';

/** EC2's limits on Allowed AMIs criteria. */
export const MAX_CRITERIA = 10;
export const MAX_PROVIDERS_PER_CRITERION = 200;
export const MAX_NAMES_PER_CRITERION = 50;
/** Mode changes kept in the state. */
const MAX_CHANGES = 20;

export type CriteriaPlan = { criteria: AllowedImagesCriterion[]; warnings: string[] } | { error: string };

/**
 * The Allowed AMIs criteria for one region: every owner of an approved image and every owner the
 * allow list approves as a whole (one criterion), and for allow-listed single images of other owners,
 * that owner narrowed to those image names (one criterion per owner). Allowed AMIs cannot name an
 * image id: an owner or a name is the finest it goes (the IAM policy can name ids).
 */
export function allowedImagesCriteria(
  region: string,
  images: readonly ApprovedImage[],
  allowedOwners: readonly string[],
): CriteriaPlan {
  const inRegion = images.filter((i) => i.region === region);
  const owners = [
    ...new Set([
      ...inRegion.filter((i) => i.basis === 'approval-tags' && i.ownerId).map((i) => i.ownerId),
      ...allowedOwners,
    ]),
  ].sort();
  const warnings: string[] = [];
  const namesByOwner = new Map<string, Set<string>>();
  for (const i of inRegion.filter((x) => x.basis === 'allow-list')) {
    if (!i.ownerId || !i.name) {
      warnings.push(`allow-listed ${i.imageId} is not visible in ${region}: it is not in the criteria`);
      continue;
    }
    if (owners.includes(i.ownerId)) continue;
    const names = namesByOwner.get(i.ownerId) ?? new Set<string>();
    names.add(i.name);
    namesByOwner.set(i.ownerId, names);
  }
  if (owners.length > MAX_PROVIDERS_PER_CRITERION)
    return {
      error: `${owners.length} image owners in ${region}; Allowed AMIs takes at most ${MAX_PROVIDERS_PER_CRITERION} per criterion`,
    };
  const criteria: AllowedImagesCriterion[] = owners.length ? [{ ImageProviders: owners }] : [];
  for (const [owner, names] of [...namesByOwner].sort(([a], [b]) => a.localeCompare(b))) {
    const sorted = [...names].sort();
    for (let i = 0; i < sorted.length; i += MAX_NAMES_PER_CRITERION)
      criteria.push({ ImageProviders: [owner], ImageNames: sorted.slice(i, i + MAX_NAMES_PER_CRITERION) });
  }
  if (criteria.length === 0)
    return {
      error:
        `no approved image in ${region} has an owner to allow, and the allow list names none: enabling Allowed AMIs ` +
        'would leave only the account’s own images; approve images there first (golden-image runs) or allow an owner',
    };
  if (criteria.length > MAX_CRITERIA)
    return {
      error: `${criteria.length} criteria needed in ${region}; Allowed AMIs takes at most ${MAX_CRITERIA}: allow fewer single images of other owners`,
    };
  return { criteria, warnings };
}

/** Settings as the activities take them (without when they were set). */
function plain(s: AllowedImagesSettings): AllowedImagesSettings {
  return { state: s.state, criteria: s.criteria };
}

export async function enforceAllowedAmis(rawInput: EnforceAllowedAmisInput): Promise<AllowedAmisState> {
  // No guarded(): a change that fails is recorded in its target, and the undo is mode off, by update.
  const { input, progress } = startRun({
    workflowType: WORKFLOW_TYPES.enforceAllowedAmis,
    steps: ['read catalogue', 'apply settings'],
    parse: parseEnforceAllowedAmisInput,
    raw: rawInput,
  });
  const accounts = input.accounts ?? [SELF_ACCOUNT];
  const state: AllowedAmisState = input.carried ?? {
    name: input.name,
    mode: 'none',
    targets: accounts.flatMap((account) => input.regions.map((region) => ({ account, region }))),
    selection: {
      ...(input.catalogueAccounts ? { catalogueAccounts: input.catalogueAccounts } : {}),
      ...(input.pipelines ? { pipelines: input.pipelines } : {}),
      ...(input.allowList ? { allowList: input.allowList } : {}),
    },
    changes: [],
  };
  setHandler(allowedAmisStateQuery, () => state);
  const slots = new Semaphore(input.concurrency ?? DEFAULT_GUARDRAIL_CONCURRENCY);
  const oneChangeAtATime = new Semaphore(1);
  const now = () => new Date().toISOString();

  const eachTarget = (fn: (t: AllowedAmisTarget) => Promise<void>) =>
    Promise.all(state.targets.map((t) => slots.withPermit(() => fn(t))));

  const enforce = async (mode: 'audit' | 'enabled'): Promise<void> => {
    const catalogue: Catalogue = await progress.run('read catalogue', () =>
      readCatalogue(catalogueSpec(state.selection.catalogueAccounts, input.regions, state.selection), slots),
    );
    const allowedOwners = catalogue.allowedOwners.map((o) => o.owner);
    const plans = new Map(
      input.regions.map((r) => [r, allowedImagesCriteria(r, catalogue.images, allowedOwners)]),
    );
    const unread = (region: string) => catalogue.errors.filter((e) => e.region === region);
    await progress.run(
      'apply settings',
      () =>
        eachTarget(async (t) => {
          const plan = plans.get(t.region) as CriteriaPlan;
          const where = targetName(t.account, t.region);
          delete t.warning;
          try {
            if ('error' in plan)
              throw ApplicationFailure.nonRetryable(plan.error, FailureType.AllowedAmisNoProviders);
            if (unread(t.region).length)
              throw ApplicationFailure.nonRetryable(
                `the catalogue could not be read in ${unread(t.region)
                  .map((e) => `${e.account}: ${e.message}`)
                  .join('; ')}; ` +
                  'criteria from a partial catalogue could block approved images: not changed',
              );
            if (mode === 'enabled' && t.applied?.state !== 'audit-mode' && t.applied?.state !== 'enabled')
              throw ApplicationFailure.nonRetryable(
                `${where} is not in audit mode yet${t.error ? ` (its last change failed: ${t.error})` : ''}: set --mode audit first`,
                FailureType.AllowedAmisAuditFirst,
              );
            const target = targetOf(t.account, t.region);
            // The settings before amiflow's first change are recorded (in history) before anything changes.
            t.original ??= await la.readAllowedImagesSettings.executeWithOptions(
              local(`read Allowed AMIs settings in ${where}`),
              [{ target }],
            );
            const change = await la.setAllowedImagesSettings.executeWithOptions(
              { ...settledAwsCall, summary: `Allowed AMIs ${mode} in ${where}` },
              [
                {
                  target,
                  settings: { state: mode === 'audit' ? 'audit-mode' : 'enabled', criteria: plan.criteria },
                },
              ],
            );
            t.applied = { ...plain(change.after), at: now() };
            delete t.error;
            if (plan.warnings.length) t.warning = plan.warnings.join('; ');
          } catch (err) {
            t.error = failureOf(err).message;
          }
        }),
      `${mode} in ${state.targets.length} account·region(s)`,
    );
  };

  const restore = async (): Promise<void> => {
    await progress.run('apply settings', () =>
      eachTarget(async (t) => {
        const { original, applied } = t;
        if (!original || !applied) return;
        const where = targetName(t.account, t.region);
        try {
          await la.setAllowedImagesSettings.executeWithOptions(
            { ...settledAwsCall, summary: `restore Allowed AMIs in ${where}` },
            [{ target: targetOf(t.account, t.region), settings: plain(original), expect: plain(applied) }],
          );
          delete t.applied;
          delete t.error;
        } catch (err) {
          const f = failureOf(err);
          if (f.type === FailureType.AllowedAmisChangedOutside) {
            // Someone else owns these settings now: amiflow lets go of them, and says so.
            delete t.applied;
            delete t.error;
            t.warning = f.message;
          } else t.error = f.message;
        }
      }),
    );
  };

  const change = async ({ mode, selection }: SetAllowedAmisMode): Promise<AllowedAmisState> =>
    oneChangeAtATime.withPermit(async () => {
      if (selection && mode !== 'off') state.selection = selection;
      if (mode === 'off') await restore();
      else await enforce(mode);
      const failedTargets = state.targets.filter((t) => t.error !== undefined).length;
      state.mode = mode;
      if (mode === 'audit' && state.auditSince === undefined && failedTargets < state.targets.length)
        state.auditSince = now();
      state.changes = [...state.changes, { mode, at: now(), failedTargets }].slice(-MAX_CHANGES);
      return JSON.parse(JSON.stringify(state)) as AllowedAmisState;
    });

  setHandler(setAllowedAmisModeUpdate, change, {
    validator: (req: SetAllowedAmisMode) => {
      const issues = setAllowedAmisModeIssues(req);
      if (issues.length)
        throw ApplicationFailure.nonRetryable(formatIssues(issues), FailureType.InvalidInput);
      if (req.mode === 'enabled' && state.auditSince === undefined)
        throw ApplicationFailure.nonRetryable(
          `enforcement '${state.name}' has not been in audit mode yet: set --mode audit first, review what ` +
            'it would block (amiflow compliance scan shows allowedByEc2), then enable it',
          FailureType.AllowedAmisAuditFirst,
        );
    },
  });

  const released = () => state.mode === 'off' && state.targets.every((t) => t.applied === undefined);
  await condition(() => allHandlersFinished() && (released() || workflowInfo().continueAsNewSuggested));
  if (released()) {
    progress.setPhase('succeeded');
    return state;
  }
  return continueAsNew<typeof enforceAllowedAmis>({ ...input, carried: state });
}

/**
 * The rollout's plan, pure and deterministic: input validation (the schema, plus the approver
 * patterns the golden pipeline uses) and the waves: the canary (one named group, or a percentage of
 * the groups, at least one), then the other groups in waves of `size`. A launch template goes with
 * the first wave that has a group launched from it; templates no selected group uses go with the
 * last wave, once the canary has proven the image (or alone, when no groups are selected).
 */
import type { LaunchTemplateInfo } from '../activities/launch-templates';
import type { GroupInfo } from '../activities/autoscaling';
import type { AwsTarget, InputIssue, RolloutImageInput } from '../contracts';
import { DEFAULT_ROLLOUT, InvalidInputError, issuesFor, rolloutImageInputSchema } from '../contracts';
import { approverPatternIssues } from './approvers';

export function rolloutImageIssues(input: unknown): InputIssue[] {
  const issues = issuesFor(rolloutImageInputSchema, input);
  const approvers = (input as Partial<RolloutImageInput> | undefined)?.approval?.approvers;
  return [...issues, ...approverPatternIssues('approval.approvers', approvers)];
}

/** A golden pipeline's `rollout` stage: a rollout input without the image (the pipeline's own), fields under `rollout.`. */
export function rolloutStageIssues(stage: unknown): InputIssue[] {
  if (stage === undefined) return [];
  if (typeof stage !== 'object' || stage === null || Array.isArray(stage))
    return [{ field: 'rollout', message: 'must be an object: targets, waves, bake, approval, …' }];
  const keys = Object.keys(stage);
  const image = keys.filter((k) => k === 'imageId' || k === 'imageIds');
  // The pipeline's image is the one rolled out: a stage that names one would roll out another.
  const own = image.map((k) => ({
    field: `rollout.${k}`,
    message: "is the pipeline's new image: leave it out",
  }));
  return [
    ...own,
    ...rolloutImageIssues({ ...stage, imageId: PLACEHOLDER_IMAGE, imageIds: undefined }).map((i) => ({
      ...i,
      field: `rollout.${i.field}`,
    })),
  ];
}

const PLACEHOLDER_IMAGE = 'ami-00000000';

/** Returns the input typed when valid; throws `InvalidInputError` naming every bad field otherwise. */
export function parseRolloutImageInput(input: unknown): RolloutImageInput {
  const issues = rolloutImageIssues(input);
  if (issues.length > 0) throw new InvalidInputError(issues);
  return input as RolloutImageInput;
}

export interface ResolvedScope {
  target: AwsTarget;
  imageId: string;
  launchTemplates: (LaunchTemplateInfo & { named: boolean })[];
  groups: GroupInfo[];
}

export interface PlannedTemplate {
  target: AwsTarget;
  imageId: string;
  template: LaunchTemplateInfo;
  /** Named by the input and `setDefaultVersion`: the new version becomes the default. */
  makeDefault: boolean;
}

export interface PlannedGroup {
  target: AwsTarget;
  group: GroupInfo;
  /** The version the group ran before, as a number (what `$Default`/`$Latest` meant then). */
  previousVersion: number;
}

export interface PlannedWave {
  index: number;
  templates: PlannedTemplate[];
  groups: PlannedGroup[];
}

export function scopeKey(t: AwsTarget): string {
  return t.accountId ? `${t.accountId}/${t.region}` : t.region;
}

/** Wave plan; `problem` when the canary names a group the targets do not select. */
export function planWaves(
  scopes: readonly ResolvedScope[],
  input: Pick<RolloutImageInput, 'waves' | 'setDefaultVersion'>,
): { waves: PlannedWave[]; problem?: InputIssue } {
  const groups: PlannedGroup[] = scopes.flatMap((s) =>
    s.groups.map((group) => {
      const lt = s.launchTemplates.find((t) => t.launchTemplateId === group.launchTemplateId);
      const v = group.launchTemplateVersion;
      const previousVersion =
        v === '$Latest' ? (lt?.latestVersion ?? 1) : v === '$Default' ? (lt?.defaultVersion ?? 1) : Number(v);
      return { target: s.target, group, previousVersion };
    }),
  );
  const canary = input.waves?.canary;
  let first: PlannedGroup[] = [];
  if (canary?.group !== undefined) {
    const named = groups.filter((g) => g.group.autoScalingGroupName === canary.group);
    if (named.length === 0)
      return {
        waves: [],
        problem: {
          field: 'waves.canary.group',
          message: `'${canary.group}' is not one of the selected groups (${groups.map((g) => g.group.autoScalingGroupName).join(', ') || 'none'})`,
        },
      };
    first = named.slice(0, 1);
  } else if (groups.length > 0) {
    const pct = canary?.percentage ?? DEFAULT_ROLLOUT.canaryPercentage;
    first = groups.slice(0, Math.max(1, Math.ceil((groups.length * pct) / 100)));
  }
  const rest = groups.filter((g) => !first.includes(g));
  const size = input.waves?.size ?? Math.max(1, rest.length);
  const groupWaves: PlannedGroup[][] = first.length > 0 ? [first] : [];
  for (let i = 0; i < rest.length; i += size) groupWaves.push(rest.slice(i, i + size));
  if (groupWaves.length === 0) groupWaves.push([]);

  const setDefault = input.setDefaultVersion ?? true;
  const assigned = new Set<string>();
  const waves: PlannedWave[] = groupWaves.map((gs, index) => ({ index, groups: gs, templates: [] }));
  const templateOf = (s: ResolvedScope, t: LaunchTemplateInfo & { named: boolean }): PlannedTemplate => ({
    target: s.target,
    imageId: s.imageId,
    template: t,
    makeDefault: t.named && setDefault,
  });
  for (const wave of waves)
    for (const g of wave.groups) {
      const key = `${scopeKey(g.target)}/${g.group.launchTemplateId}`;
      const scope = scopes.find((s) => scopeKey(s.target) === scopeKey(g.target));
      const lt = scope?.launchTemplates.find((t) => t.launchTemplateId === g.group.launchTemplateId);
      if (!scope || !lt || assigned.has(key)) continue;
      assigned.add(key);
      wave.templates.push(templateOf(scope, lt));
    }
  const last = waves[waves.length - 1];
  for (const s of scopes)
    for (const t of s.launchTemplates) {
      const key = `${scopeKey(s.target)}/${t.launchTemplateId}`;
      if (assigned.has(key) || !last) continue;
      assigned.add(key);
      last.templates.push(templateOf(s, t));
    }
  return { waves };
}

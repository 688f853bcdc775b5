/**
 * EC2 Allowed AMIs, per account and region: read the settings (state, criteria, who manages them)
 * and set them. Setting is idempotent and ordered so that no moment has the new state with the old
 * criteria: criteria first, then the state; when disabling, the state first. Restoring checks the
 * settings are still what amiflow set, and leaves them alone (reporting both) when someone changed them.
 */
import type { ImageCriterion } from '@aws-sdk/client-ec2';
import {
  DisableAllowedImagesSettingsCommand,
  EnableAllowedImagesSettingsCommand,
  GetAllowedImagesSettingsCommand,
  ReplaceImageCriteriaInAllowedImagesSettingsCommand,
} from '@aws-sdk/client-ec2';
import type {
  AllowedImagesCriterion,
  AllowedImagesSettings,
  AllowedImagesState,
  AwsTarget,
} from '../contracts';
import { FailureType } from '../contracts';
import type { ActivityDeps } from './deps';
import { aws, failure } from './errors';

export interface AllowedImagesRef {
  target: AwsTarget;
}

export interface SetAllowedImagesInput {
  target: AwsTarget;
  settings: AllowedImagesSettings;
  /**
   * Only change the settings while they are these (or already part-way to `settings`, as a retry
   * finds them): what amiflow set last. Otherwise fail with AllowedAmisChangedOutside, touching nothing.
   */
  expect?: AllowedImagesSettings;
}

export interface AllowedImagesChange {
  before: AllowedImagesSettings;
  after: AllowedImagesSettings;
  awsCalls: number;
}

export const DECLARATIVE_POLICY = 'declarative-policy';

function stateOf(raw: string | undefined): AllowedImagesState {
  return raw === 'audit-mode' || raw === 'enabled' ? raw : 'disabled';
}

/** Drops empty fields and sorts lists, so settings compare equal whatever order EC2 returns them in. */
export function normalizedCriteria(criteria: readonly AllowedImagesCriterion[]): string[] {
  const norm = (v: unknown): unknown => {
    if (Array.isArray(v))
      return v.map(norm).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    if (typeof v === 'object' && v !== null)
      return Object.fromEntries(
        Object.entries(v)
          .filter(([, x]) => x !== undefined && x !== null && !(Array.isArray(x) && x.length === 0))
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, x]) => [k, norm(x)]),
      );
    return v;
  };
  return criteria.map((c) => JSON.stringify(norm(c))).sort();
}

export function sameCriteria(
  a: readonly AllowedImagesCriterion[],
  b: readonly AllowedImagesCriterion[],
): boolean {
  return JSON.stringify(normalizedCriteria(a)) === JSON.stringify(normalizedCriteria(b));
}

export function sameSettings(a: AllowedImagesSettings, b: AllowedImagesSettings): boolean {
  return a.state === b.state && sameCriteria(a.criteria, b.criteria);
}

export function describeSettings(s: AllowedImagesSettings): string {
  const providers = s.criteria.flatMap((c) => c.ImageProviders ?? []);
  return `${s.state}, ${s.criteria.length} criteria${providers.length ? ` (providers ${providers.join(', ')})` : ''}`;
}

function where(t: AwsTarget): string {
  return `region ${t.region}${t.accountId ? `, account ${t.accountId}` : ''}`;
}

export function allowedAmisActivities(deps: ActivityDeps) {
  async function read(target: AwsTarget): Promise<AllowedImagesSettings> {
    const ec2 = await deps.aws.ec2(target);
    const out = await aws(`reading the Allowed AMIs settings in ${where(target)}`, () =>
      ec2.send(new GetAllowedImagesSettingsCommand({})),
    );
    return {
      state: stateOf(out.State),
      criteria: (out.ImageCriteria ?? []).map((c: ImageCriterion) => ({ ...c })),
      ...(out.ManagedBy ? { managedBy: out.ManagedBy } : {}),
    };
  }

  return {
    async readAllowedImagesSettings(ref: AllowedImagesRef): Promise<AllowedImagesSettings> {
      return read(ref.target);
    },

    /** Sets state and criteria (see the file comment for the order); returns the settings before and after. */
    async setAllowedImagesSettings(input: SetAllowedImagesInput): Promise<AllowedImagesChange> {
      const ec2 = await deps.aws.ec2(input.target);
      const at = where(input.target);
      let awsCalls = 1;
      const before = await read(input.target);
      if (before.managedBy === DECLARATIVE_POLICY)
        throw failure(
          FailureType.AllowedAmisManagedByPolicy,
          `the Allowed AMIs settings in ${at} are managed by an organization declarative policy; ` +
            'the account cannot change them: change the declarative policy instead',
        );
      const want = input.settings;
      if (input.expect) {
        const expect = input.expect;
        const stateOk = before.state === expect.state || before.state === want.state;
        const criteriaOk =
          sameCriteria(before.criteria, expect.criteria) || sameCriteria(before.criteria, want.criteria);
        if (!stateOk || !criteriaOk)
          throw failure(
            FailureType.AllowedAmisChangedOutside,
            `the Allowed AMIs settings in ${at} were changed outside amiflow since it set them ` +
              `(now ${describeSettings(before)}; amiflow set ${describeSettings(expect)}); left as they are, ` +
              `not replaced by ${describeSettings(want)}: decide by hand which should stand`,
            { now: before, set: expect, wanted: want },
          );
      }
      const criteria = want.criteria.map((c) => ({ ...c }));
      const replace = async () => {
        if (sameCriteria(before.criteria, want.criteria)) return;
        awsCalls += 1;
        await aws(`replacing the Allowed AMIs criteria in ${at}`, () =>
          ec2.send(
            new ReplaceImageCriteriaInAllowedImagesSettingsCommand(
              criteria.length ? { ImageCriteria: criteria } : {},
            ),
          ),
        );
      };
      const setState = async () => {
        if (before.state === want.state) return;
        awsCalls += 1;
        if (want.state === 'disabled')
          await aws(`disabling Allowed AMIs in ${at}`, () =>
            ec2.send(new DisableAllowedImagesSettingsCommand({})),
          );
        else {
          const state = want.state;
          await aws(`setting Allowed AMIs to ${state} in ${at}`, () =>
            ec2.send(new EnableAllowedImagesSettingsCommand({ AllowedImagesSettingsState: state })),
          );
        }
      };
      if (want.state === 'disabled') {
        await setState();
        await replace();
      } else {
        await replace();
        await setState();
      }
      awsCalls += 1;
      const after = await read(input.target);
      return { before, after, awsCalls };
    },
  };
}

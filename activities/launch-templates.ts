/**
 * Launch templates for a rollout: find them (by id, name or tag), add a version carrying the new
 * image (idempotent: the run's marker in the version description is looked for before creating, and
 * the ClientToken covers a lost answer), make it the default, and put the previous default back,
 * only while the default is still the one this run set.
 */
import type { EC2Client, LaunchTemplate, LaunchTemplateVersion } from '@aws-sdk/client-ec2';
import {
  CreateLaunchTemplateVersionCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeLaunchTemplatesCommand,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import type { AwsTarget, LaunchTemplateRef, RolloutRestore } from '../contracts';
import { FailureType } from '../contracts';
import type { ActivityDeps } from './deps';
import { aws, failure, isAwsCode, rethrowAws } from './errors';
import { allPages, tagFilters } from './paging';

export interface LaunchTemplateInfo {
  launchTemplateId: string;
  launchTemplateName: string;
  defaultVersion: number;
  latestVersion: number;
}

export interface NewVersionInput {
  target: AwsTarget;
  launchTemplateId: string;
  /** The version the new one copies (the default when the run planned it). */
  sourceVersion: number;
  imageId: string;
  /** Unique to the run and template: written in the version description, and the ClientToken. */
  marker: string;
}

export interface NewVersion {
  version: number;
  /** False when a retry found the version an earlier attempt made. */
  created: boolean;
}

export interface SetDefaultInput {
  target: AwsTarget;
  launchTemplateId: string;
  version: number;
}

export interface RestoreDefaultInput {
  target: AwsTarget;
  launchTemplateId: string;
  /** The default before this run. */
  previousDefaultVersion: number;
  /** The version this run made (default or not). */
  newVersion: number;
}

/** Version descriptions take 255 characters; the marker leads so a cut never loses it. */
export function versionDescription(marker: string, imageId: string): string {
  return `${marker} image ${imageId}`.slice(0, 255);
}

function infoOf(t: LaunchTemplate): LaunchTemplateInfo {
  return {
    launchTemplateId: t.LaunchTemplateId ?? '',
    launchTemplateName: t.LaunchTemplateName ?? '',
    defaultVersion: t.DefaultVersionNumber ?? 1,
    latestVersion: t.LatestVersionNumber ?? 1,
  };
}

export function describeTemplateRef(ref: LaunchTemplateRef): string {
  if (ref.id) return `launch template ${ref.id}`;
  if (ref.name) return `launch template '${ref.name}'`;
  return `launch templates tagged ${ref.tag?.key}${ref.tag?.value !== undefined ? `=${ref.tag.value}` : ''}`;
}

/** The launch templates one reference names (none when EC2 knows no such id or name). */
export async function templatesNamed(
  ec2: EC2Client,
  ref: LaunchTemplateRef,
  where: string,
): Promise<LaunchTemplateInfo[]> {
  try {
    return (await describeAll(ec2, ref)).map(infoOf);
  } catch (err) {
    // EC2 answers an unknown id or name with an error rather than an empty list.
    if (!isAwsCode(err, 'InvalidLaunchTemplateId.NotFound', 'InvalidLaunchTemplateName.NotFoundException'))
      rethrowAws(err, `describing ${describeTemplateRef(ref)} in ${where}`);
    return [];
  }
}

function describeAll(ec2: EC2Client, ref: LaunchTemplateRef): Promise<LaunchTemplate[]> {
  return allPages(
    {
      ...(ref.id ? { LaunchTemplateIds: [ref.id] } : {}),
      ...(ref.name ? { LaunchTemplateNames: [ref.name] } : {}),
      ...tagFilters(ref.tag),
    },
    (request) => ec2.send(new DescribeLaunchTemplatesCommand(request)),
    (page) => page.LaunchTemplates,
  );
}

function versionsAfter(
  ec2: EC2Client,
  launchTemplateId: string,
  min: number,
): Promise<LaunchTemplateVersion[]> {
  return allPages(
    { LaunchTemplateId: launchTemplateId, MinVersion: String(min) },
    (request) => ec2.send(new DescribeLaunchTemplateVersionsCommand(request)),
    (page) => page.LaunchTemplateVersions,
  );
}

async function currentDefault(ec2: EC2Client, launchTemplateId: string, action: string): Promise<number> {
  const out = await aws(action, () =>
    ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateIds: [launchTemplateId] })),
  );
  const t = out.LaunchTemplates?.[0];
  if (!t) throw failure(FailureType.RolloutTargetNotFound, `launch template ${launchTemplateId} is gone`);
  return t.DefaultVersionNumber ?? 1;
}

export function launchTemplateActivities(deps: ActivityDeps) {
  return {
    /** A new version from `sourceVersion` with the new image; an earlier attempt's version is reused. */
    async createLaunchTemplateVersion(input: NewVersionInput): Promise<NewVersion> {
      const ec2 = await deps.aws.ec2(input.target);
      const action = `adding a version with ${input.imageId} to launch template ${input.launchTemplateId}`;
      // The marker is unique to this run and template: a version carrying it is this run's, made
      // by an attempt whose answer was lost. Versions newer than the source are the only candidates.
      const mine = (
        await aws(action, () => versionsAfter(ec2, input.launchTemplateId, input.sourceVersion + 1))
      ).find((v) => v.VersionDescription?.startsWith(input.marker) === true);
      if (mine?.VersionNumber !== undefined) return { version: mine.VersionNumber, created: false };
      const out = await aws(action, () =>
        ec2.send(
          new CreateLaunchTemplateVersionCommand({
            LaunchTemplateId: input.launchTemplateId,
            SourceVersion: String(input.sourceVersion),
            VersionDescription: versionDescription(input.marker, input.imageId),
            LaunchTemplateData: { ImageId: input.imageId },
            ClientToken: input.marker,
          }),
        ),
      );
      const version = out.LaunchTemplateVersion?.VersionNumber;
      if (version === undefined)
        throw failure(FailureType.AwsMalformedRequest, `${action}: EC2 answered without a version number`);
      return { version, created: true };
    },

    /** Makes `version` the template's default (ModifyLaunchTemplate); the same call again changes nothing. */
    async setDefaultLaunchTemplateVersion(input: SetDefaultInput): Promise<{ previousDefault: number }> {
      const ec2 = await deps.aws.ec2(input.target);
      const action = `making version ${input.version} the default of launch template ${input.launchTemplateId}`;
      const previousDefault = await currentDefault(ec2, input.launchTemplateId, action);
      if (previousDefault !== input.version)
        await aws(action, () =>
          ec2.send(
            new ModifyLaunchTemplateCommand({
              LaunchTemplateId: input.launchTemplateId,
              DefaultVersion: String(input.version),
            }),
          ),
        );
      return { previousDefault };
    },

    /**
     * Undo: the previous default again, only while the default is this run's version (or already the
     * previous one): a default someone changed since is theirs, and is left as it is, saying so.
     */
    async restoreLaunchTemplateDefault(
      input: RestoreDefaultInput,
    ): Promise<RolloutRestore & { note: string }> {
      const ec2 = await deps.aws.ec2(input.target);
      const base = {
        kind: 'restore-default-version' as const,
        region: input.target.region,
        ...(input.target.accountId ? { accountId: input.target.accountId } : {}),
        resource: input.launchTemplateId,
        outcome: 'done' as const,
      };
      const action = `restoring version ${input.previousDefaultVersion} as the default of ${input.launchTemplateId}`;
      const now = await currentDefault(ec2, input.launchTemplateId, action);
      if (now === input.previousDefaultVersion) {
        const detail = `default version ${now} (unchanged: this run's version ${input.newVersion} was not the default)`;
        return { ...base, detail, note: detail };
      }
      if (now !== input.newVersion) {
        const detail = `default is version ${now}, set by someone else since: left as it is (was ${input.previousDefaultVersion}, this run made ${input.newVersion})`;
        return { ...base, detail, note: detail };
      }
      await aws(action, () =>
        ec2.send(
          new ModifyLaunchTemplateCommand({
            LaunchTemplateId: input.launchTemplateId,
            DefaultVersion: String(input.previousDefaultVersion),
          }),
        ),
      );
      const detail = `default version ${input.previousDefaultVersion} again (was ${input.newVersion})`;
      return { ...base, detail, note: detail };
    },
  };
}

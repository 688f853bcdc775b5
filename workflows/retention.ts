/**
 * Retirement of old images, per region and account (golden versions) or per instance (backups).
 *
 * `planRetention` decides, purely: the newest image is never retired (and gets deregistration
 * protection when asked); the newest `keep` are kept; older ones (and those past `maxAgeSeconds`)
 * are retired: deprecated at a date first (when the policy has a deprecation stage), deregistered
 * with their snapshots once `deregisterAfterSeconds` have passed since, but never while something
 * references them (instances, launch templates, parameters: DescribeImageReferences).
 *
 * `applyRetention` runs it inside a workflow: list, plan, ask for references of the images due,
 * plan again with them, act. Every decision is in the report, with its outcome; a failing action is
 * reported, never thrown: retirement runs after the new image is committed.
 */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ManagedImage, RetiredImage } from '../activities/retention';
import type { AwsTarget, RetentionAction, RetentionPolicy, RetentionReport, Tags } from '../contracts';
import { TAG } from '../contracts';
import { fastAwsCall, retireCall } from './presets';
import { errorMessage } from './progress';

export interface PlannedAction {
  imageId: string;
  imageName?: string;
  version?: string;
  action: RetentionAction['action'];
  reason: string;
  /** `deprecate`: epoch ms. */
  deprecateAt?: number;
  /** A public image (EC2 clamps its deprecation time to 2 years). */
  public?: boolean;
  references?: string[];
}

export interface RetentionPlan {
  actions: PlannedAction[];
  /** Retired images whose deregistration is due: what to ask DescribeImageReferences about. */
  due: string[];
}

/** Newest first: approval time (golden), else creation time, then id (deterministic). */
function sortKey(image: ManagedImage): string {
  return image.tags[TAG.approvedAt] ?? image.creationDate ?? '';
}

function ordinal(n: number): string {
  const suffixes: Record<number, string> = { 1: 'st', 2: 'nd', 3: 'rd' };
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? 'th' : (suffixes[n % 10] ?? 'th');
  return `${n}${suffix}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** What to do with each image of one scope. Pure: the same images, policy, time and references give the same plan. */
export function planRetention(
  images: readonly ManagedImage[],
  policy: RetentionPolicy,
  now: number,
  references: Readonly<Record<string, readonly string[]>> = {},
): RetentionPlan {
  const keep = Math.max(1, policy.keep ?? 1);
  // Only usable images count: a pending or failed image is nobody's current version.
  const ranked = images
    .filter((i) => i.state === 'available')
    .sort((a, b) => sortKey(b).localeCompare(sortKey(a)) || b.imageId.localeCompare(a.imageId));
  const actions: PlannedAction[] = [];
  const due: string[] = [];
  ranked.forEach((image, index) => {
    const base = {
      imageId: image.imageId,
      ...(image.name ? { imageName: image.name } : {}),
      ...(image.tags[TAG.version] ? { version: image.tags[TAG.version] } : {}),
      ...(image.public ? { public: true } : {}),
    };
    const created = Date.parse(image.creationDate ?? image.tags[TAG.approvedAt] ?? '');
    const tooOld =
      policy.maxAgeSeconds !== undefined &&
      !Number.isNaN(created) &&
      now - created > policy.maxAgeSeconds * 1000;
    if (index === 0) {
      if (policy.protectNewest && !image.protected)
        actions.push({ ...base, action: 'protect', reason: 'newest: deregistration protection turned on' });
      else
        actions.push({ ...base, action: 'keep', reason: image.protected ? 'newest (protected)' : 'newest' });
      return;
    }
    if (index < keep && !tooOld) {
      actions.push({ ...base, action: 'keep', reason: `${ordinal(index + 1)} newest of ${keep} kept` });
      return;
    }
    const why = index >= keep ? `beyond the ${keep} newest` : `older than ${policy.maxAgeSeconds ?? 0} s`;
    const retired = retiredAction(image, policy, now, references[image.imageId] ?? [], why);
    if (retired.due) due.push(image.imageId);
    actions.push({ ...base, ...retired.action });
  });
  return { actions, due };
}

/**
 * What becomes of an image past the kept ones: deprecated first (a staged policy), deregistered
 * once due and unreferenced, else kept with the reason. `due`: its deregistration is due (ask
 * DescribeImageReferences about it).
 */
function retiredAction(
  image: ManagedImage,
  policy: RetentionPolicy,
  now: number,
  refs: readonly string[],
  why: string,
): { due: boolean; action: Pick<PlannedAction, 'action' | 'reason' | 'deprecateAt' | 'references'> } {
  const staged = policy.deprecateAfterSeconds !== undefined;
  const existing = image.deprecationTime !== undefined ? Date.parse(image.deprecationTime) : NaN;
  const deprecatedAt = !Number.isNaN(existing) ? existing : now + (policy.deprecateAfterSeconds ?? 0) * 1000;
  const needsDeprecation = staged && Number.isNaN(existing);
  const due =
    policy.deregisterAfterSeconds !== undefined &&
    (!staged || deprecatedAt + policy.deregisterAfterSeconds * 1000 <= now);
  if (due && refs.length === 0)
    return { due, action: { action: 'deregister', reason: `${why}: deregistered with its snapshots` } };
  if (needsDeprecation)
    return {
      due,
      action: {
        action: 'deprecate',
        reason:
          refs.length > 0
            ? `${why}: deprecated, and kept while referenced`
            : `${why}: deprecated at ${iso(deprecatedAt)}` +
              (policy.deregisterAfterSeconds !== undefined
                ? `, deregistered from ${iso(deprecatedAt + policy.deregisterAfterSeconds * 1000)}`
                : ''),
        deprecateAt: deprecatedAt,
        ...(refs.length > 0 ? { references: [...refs] } : {}),
      },
    };
  if (refs.length > 0)
    return {
      due,
      action: { action: 'keep', reason: `${why}, but still referenced: kept`, references: [...refs] },
    };
  return {
    due,
    action: {
      action: 'keep',
      reason:
        policy.deregisterAfterSeconds === undefined
          ? `${why}: deprecated; never deregistered (no deregisterAfterSeconds)`
          : `${why}: deprecated since ${iso(deprecatedAt)}; deregistered from ${iso(deprecatedAt + policy.deregisterAfterSeconds * 1000)}`,
    },
  };
}

export interface RetentionScope {
  target: AwsTarget;
  /** Tags selecting the scope's images (e.g. pipeline + approved, or backup plan + instance). */
  selector: Tags;
  /** Tags an image must carry to be retired (the retire activity checks them again). */
  owned: Tags;
}

const la = proxyLocalActivities<Activities>(fastAwsCall);
const act = proxyActivities<Activities>(retireCall);

function local(summary: string, options: LocalActivityOptions = fastAwsCall) {
  return { ...options, summary };
}
function remote(summary: string, options: ActivityOptions = retireCall) {
  return { ...options, summary };
}

function where(t: AwsTarget): string {
  return `${t.region}${t.accountId ? ` · ${t.accountId}` : ''}`;
}

/** The report's line for a planned action, `done` until its call says otherwise. */
function recordOf(target: AwsTarget, a: PlannedAction): RetentionAction {
  return {
    region: target.region,
    ...(target.accountId ? { accountId: target.accountId } : {}),
    imageId: a.imageId,
    ...(a.imageName ? { imageName: a.imageName } : {}),
    ...(a.version ? { version: a.version } : {}),
    action: a.action,
    reason: a.reason,
    ...(a.references ? { references: a.references } : {}),
    outcome: 'done',
  };
}

/** What `retireImage` really did: kept (shared, referenced by now), waiting out a cooldown, or deregistered. */
function recordRetired(record: RetentionAction, a: PlannedAction, retired: RetiredImage): void {
  const why = a.reason.split(':')[0] ?? a.reason;
  if (retired.sharedWith) {
    record.action = 'keep';
    record.reason = `${why}, but shared with ${retired.sharedWith.join(', ')}, who may still launch it: kept (unshare it, or set retention.retireShared)`;
    record.sharedWith = retired.sharedWith;
    record.outcome = 'skipped';
  } else if (retired.retireAfter) {
    record.reason = `${why}: deregistration protection turned off; its 24-hour cooldown ends ${retired.retireAfter}: retire after that (a later run deregisters it)`;
    record.retireAfter = retired.retireAfter;
    record.outcome = 'skipped';
  } else if (retired.references) {
    record.action = 'keep';
    record.reason = `${why}, but referenced by the time it was retired: kept`;
    record.references = retired.references;
    record.outcome = 'skipped';
  } else {
    record.deletedSnapshotIds = retired.deletedSnapshotIds;
    if (!retired.deregistered) record.reason += ' (it was gone already)';
  }
}

async function retireScope(scope: RetentionScope, policy: RetentionPolicy): Promise<RetentionAction[]> {
  const { target } = scope;
  const images = await la.listManagedImages.executeWithOptions(
    local(`list images to retire in ${where(target)}`),
    [{ target, tags: scope.selector }],
  );
  const now = Date.now();
  const first = planRetention(images, policy, now);
  const references =
    first.due.length > 0
      ? await la.findImageReferences.executeWithOptions(
          local(`what still uses ${first.due.length} image(s) due for deregistration in ${where(target)}`),
          [{ target, imageIds: first.due }],
        )
      : {};
  const plan = planRetention(images, policy, now, references);
  const out: RetentionAction[] = [];
  for (const a of plan.actions) {
    const record = recordOf(target, a);
    out.push(record);
    try {
      if (a.action === 'protect') {
        await la.protectImage.executeWithOptions(local(`protect ${a.imageId} from deregistration`), [
          { target, imageId: a.imageId },
        ]);
      } else if (a.action === 'deprecate') {
        const done = await la.deprecateImage.executeWithOptions(local(`deprecate ${a.imageId}`), [
          {
            target,
            imageId: a.imageId,
            deprecateAt: a.deprecateAt ?? now,
            ...(a.public ? { public: true } : {}),
          },
        ]);
        record.deprecateAt = done.deprecateAt;
        if (done.clampedFrom)
          record.reason += ` (asked ${done.clampedFrom}; EC2 deprecates at most ${a.public ? 2 : 10} years ahead)`;
      } else if (a.action === 'deregister') {
        const retired = await act.retireImage.executeWithOptions(
          remote(`deregister ${a.imageId} and delete its snapshots`),
          [
            {
              target,
              imageId: a.imageId,
              requiredTags: scope.owned,
              ...(policy.retireShared ? { retireShared: true } : {}),
            },
          ],
        );
        recordRetired(record, a, retired);
      } else {
        record.outcome = 'skipped';
      }
    } catch (err) {
      record.outcome = 'failed';
      record.error = errorMessage(err);
    }
  }
  return out;
}

/** Runs retirement in every scope (in parallel); never throws: what failed is in the report. */
export async function applyRetention(
  scopes: RetentionScope[],
  policy: RetentionPolicy,
): Promise<RetentionReport> {
  const report: RetentionReport = { actions: [], failures: 0, errors: [] };
  const outcomes = await Promise.allSettled(scopes.map((s) => retireScope(s, policy)));
  outcomes.forEach((o, i) => {
    const target = scopes[i]?.target;
    if (o.status === 'fulfilled') report.actions.push(...o.value);
    else if (target)
      report.errors.push({
        region: target.region,
        ...(target.accountId ? { accountId: target.accountId } : {}),
        error: errorMessage(o.reason),
      });
  });
  report.failures = report.actions.filter((a) => a.outcome === 'failed').length;
  return report;
}

/**
 * rolloutImage: put a new image into production through launch templates and Auto Scaling groups,
 * wave by wave. Each wave adds a launch-template version with the image (made the default where
 * asked) and refreshes its groups (at most `concurrency` at once), then bakes: a durable timer while
 * the named CloudWatch alarms are read periodically. After the canary, a person may have to approve
 * (the golden pipeline's verified `approve` / `reject` updates). An alarm, a failed refresh, any
 * failure or a cancellation undoes every wave, newest first: refreshes rolled back (or refreshed
 * back), then previous default versions restored; the failure says what was restored.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RefreshStatus } from '../activities/autoscaling';
import type {
  ApprovalAck,
  ApprovalDecision,
  AwsTarget,
  GroupRefresh,
  LaunchTemplateChange,
  RolloutImageInput,
  RolloutImageResult,
  RolloutProgress,
  RolloutRestore,
  VerifiedApprover,
} from '../contracts';
import {
  DEFAULT_ROLLOUT,
  FailureType,
  WORKFLOW_TYPES,
  approvalBinding,
  approveUpdate,
  formatIssues,
  rejectUpdate,
  rolloutProgressQuery,
} from '../contracts';
import { approverMatches } from './approvers';
import { awaitDecision } from './golden/approval';
import { guarded, la, local, remote, startRun, targetOf } from './bootstrap';
import { approvalDecisionIssues } from './golden-validation';
import { bakeWatch, refreshUndo, refreshWait, settledAwsCall } from './presets';
import { errorMessage } from './progress';
import type { PlannedGroup, PlannedTemplate, PlannedWave, ResolvedScope } from './rollout-plan';
import { parseRolloutImageInput, planWaves, scopeKey } from './rollout-plan';
import { Semaphore } from './semaphore';

export const ROLLOUT_STEPS = ['resolve targets', 'check alarms'] as const;

const act = proxyActivities<Activities>(refreshWait(DEFAULT_ROLLOUT.refreshTimeoutSeconds));

type Decision = {
  kind: 'approved' | 'rejected';
  by: string;
  verifiedArn: string;
  comment?: string;
  at: number;
};

/** The approval gate after the canary: the golden pipeline's updates, with the approver verified by STS. */
function approvalGate(rawInput: unknown, live: () => { waiting: boolean; imageId: string }) {
  const approvers = (rawInput as Partial<RolloutImageInput> | undefined)?.approval?.approvers;
  let decision: Decision | undefined;
  const refuse = (message: string, type: string = FailureType.InvalidInput) =>
    ApplicationFailure.create({ type, nonRetryable: true, message });
  const validator = (d: ApprovalDecision): void => {
    if (!live().waiting || decision) throw refuse('this rollout is not waiting for approval');
    const issues = approvalDecisionIssues(d, approvers);
    if (issues.length > 0) throw refuse(formatIssues(issues));
    if (d.proof === undefined)
      throw refuse(
        'a decision needs proof of who takes it: an STS GetCallerIdentity request signed with your AWS credentials (amiflow golden approve <workflow id> does it: the same gate)',
        FailureType.ApproverNotVerified,
      );
  };
  const decide =
    (kind: 'approved' | 'rejected') =>
    async (d: ApprovalDecision): Promise<ApprovalAck> => {
      const { workflowId, runId } = workflowInfo();
      let who: VerifiedApprover;
      try {
        who = await la.verifyApprover.executeWithOptions(
          local(`verify who ${kind === 'approved' ? 'approves' : 'rejects'} (STS)`),
          [
            {
              proof: d.proof ?? { url: '', headers: {} },
              binding: approvalBinding(kind === 'approved' ? 'approve' : 'reject', workflowId, runId),
            },
          ],
        );
      } catch (err) {
        if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) throw err.cause;
        throw err;
      }
      if (approvers && approvers.length > 0 && !approverMatches(who.principalArn, approvers))
        throw refuse(
          `${who.arn} (${who.principalArn}) is not one of this rollout's approvers (${approvers.join(', ')})`,
          FailureType.ApproverNotVerified,
        );
      if (!live().waiting || decision) throw refuse('this rollout is not waiting for approval');
      const at = Date.now();
      decision = {
        kind,
        by: who.principalArn,
        verifiedArn: who.arn,
        ...(d.comment ? { comment: d.comment } : {}),
        at,
      };
      return {
        workflowId,
        imageId: live().imageId,
        version: '',
        decision: kind,
        at: new Date(at).toISOString(),
      };
    };
  setHandler(approveUpdate, decide('approved'), { validator });
  setHandler(rejectUpdate, decide('rejected'), { validator });
  return { decided: () => decision };
}

export async function rolloutImage(rawInput: RolloutImageInput): Promise<RolloutImageResult> {
  const live: RolloutProgress = {
    wave: 0,
    waves: 0,
    phase: 'planning',
    refreshes: [],
    launchTemplates: [],
    restored: [],
  };
  setHandler(rolloutProgressQuery, () => live);
  let waitingForApproval = false;
  const imageLabel = (rawInput as Partial<RolloutImageInput> | undefined)?.imageId ?? 'per region';
  const gate = approvalGate(rawInput, () => ({ waiting: waitingForApproval, imageId: imageLabel }));
  const run = startRun({
    workflowType: WORKFLOW_TYPES.rolloutImage,
    steps: ROLLOUT_STEPS,
    parse: parseRolloutImageInput,
    raw: rawInput,
  });
  const { input, progress, comp, runId, startedAt } = run;
  const bakeSeconds = input.bake?.seconds ?? DEFAULT_ROLLOUT.bakeSeconds;
  const alarms = input.bake?.alarms ?? [];
  const refreshSeconds = input.refresh?.timeoutSeconds ?? DEFAULT_ROLLOUT.refreshTimeoutSeconds;
  const imageFor = (region: string) => input.imageId ?? input.imageIds?.[region] ?? '';
  const targets = input.targets.map(targetOf);
  /** The version this run made of each launch template (`<scope>/<id>`), for its groups in any wave. */
  const versions = new Map<string, number>();
  const result: RolloutImageResult = {
    imageIds: {},
    waves: [],
    launchTemplates: [],
    refreshes: [],
    startedAt,
    finishedAt: '',
  };
  for (const t of targets) result.imageIds[t.region] = imageFor(t.region);

  try {
    await guarded(run, async () => {
      const scopes: ResolvedScope[] = await progress.run('resolve targets', () =>
        Promise.all(
          input.targets.map(async (t) => ({
            target: targetOf(t),
            imageId: imageFor(t.region),
            ...(await la.resolveRolloutTarget.executeWithOptions(
              local(`resolve targets in ${scopeKey(targetOf(t))}`),
              [
                {
                  target: targetOf(t),
                  launchTemplates: t.launchTemplates ?? [],
                  autoScalingGroups: t.autoScalingGroups ?? [],
                },
              ],
            )),
          })),
        ),
      );
      const plan = planWaves(scopes, input);
      if (plan.problem)
        throw ApplicationFailure.create({
          type: FailureType.InvalidInput,
          nonRetryable: true,
          message: formatIssues([plan.problem]),
        });
      live.waves = plan.waves.length;
      if (alarms.length > 0) await progress.run('check alarms', () => checkAlarms(targets, alarms));
      else progress.skip('check alarms', 'no alarms named: each bake is a wait');

      for (const wave of plan.waves) {
        live.wave = wave.index + 1;
        await runWave(wave, plan.waves.length);
        if (wave.index === 0 && input.approval && plan.waves.length > 1) await awaitApproval();
      }
    });
  } catch (err) {
    throw withRestored(err, live.restored);
  }
  live.phase = 'done';
  return { ...result, finishedAt: new Date().toISOString() };

  async function runWave(wave: PlannedWave, waves: number): Promise<void> {
    const name = `wave ${wave.index + 1}/${waves}`;
    live.phase = 'rolling';
    await progress.run(`${name}: launch templates`, () => versionTemplates(wave.templates, wave.index));
    await progress.run(`${name}: instance refreshes`, () => refreshGroups(wave.groups, wave.index));
    let baked = 0;
    if (bakeSeconds > 0) {
      live.phase = 'baking';
      await progress.run(
        `${name}: bake`,
        () => bake(name),
        `${bakeSeconds} s${alarms.length ? ` watching ${alarms.join(', ')}` : ''}`,
      );
      baked = bakeSeconds;
    } else progress.skip(`${name}: bake`, 'bake time 0');
    result.waves.push({
      wave: wave.index + 1,
      groups: wave.groups.map((g) => `${scopeKey(g.target)}/${g.group.autoScalingGroupName}`),
      launchTemplates: wave.templates.map((t) => `${scopeKey(t.target)}/${t.template.launchTemplateId}`),
      bakedSeconds: baked,
    });
  }

  /** New versions (one at a time: quick calls); each undo is registered before the default changes. */
  async function versionTemplates(planned: PlannedTemplate[], wave: number): Promise<void> {
    for (const p of planned) {
      const id = p.template.launchTemplateId;
      const made = await la.createLaunchTemplateVersion.executeWithOptions(
        local(`new version of ${id} with ${p.imageId}`, settledAwsCall),
        [
          {
            target: p.target,
            launchTemplateId: id,
            sourceVersion: p.template.defaultVersion,
            imageId: p.imageId,
            marker: `amiflow-rollout-${runId}-${id}`,
          },
        ],
      );
      versions.set(`${scopeKey(p.target)}/${id}`, made.version);
      const change: LaunchTemplateChange = {
        ...p.target,
        launchTemplateId: id,
        launchTemplateName: p.template.launchTemplateName,
        previousDefaultVersion: p.template.defaultVersion,
        newVersion: made.version,
        madeDefault: false,
        wave: wave + 1,
      };
      result.launchTemplates.push(change);
      live.launchTemplates.push(change);
      if (!p.makeDefault) continue;
      comp.add(`restore default version of ${id}`, async () => {
        const r = await act.restoreLaunchTemplateDefault.executeWithOptions(
          remote(`undo: default version ${p.template.defaultVersion} of ${id} again`, refreshUndo(60)),
          [
            {
              target: p.target,
              launchTemplateId: id,
              previousDefaultVersion: p.template.defaultVersion,
              newVersion: made.version,
            },
          ],
        );
        live.restored.push(r);
        return r;
      });
      await la.setDefaultLaunchTemplateVersion.executeWithOptions(
        local(`make version ${made.version} of ${id} the default`, settledAwsCall),
        [{ target: p.target, launchTemplateId: id, version: made.version }],
      );
      change.madeDefault = true;
    }
  }

  /** The wave's refreshes, `concurrency` at a time; the first failure cancels the rest, then throws. */
  async function refreshGroups(groups: PlannedGroup[], wave: number): Promise<void> {
    const limit = new Semaphore(input.waves?.concurrency ?? DEFAULT_ROLLOUT.concurrency);
    const scope = new CancellationScope();
    const outcomes = await scope.run(() =>
      Promise.allSettled(
        groups.map(async (g) => {
          await limit.acquire();
          try {
            await refreshGroup(
              g,
              wave,
              versions.get(`${scopeKey(g.target)}/${g.group.launchTemplateId}`) ?? 0,
            );
          } catch (err) {
            scope.cancel();
            throw err;
          } finally {
            limit.release();
          }
        }),
      ),
    );
    const failed = outcomes.find(
      (o): o is PromiseRejectedResult => o.status === 'rejected' && !isCancellation(o.reason),
    );
    const any = failed ?? outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (any) throw any.reason;
  }

  async function refreshGroup(g: PlannedGroup, wave: number, newVersion: number): Promise<void> {
    const name = g.group.autoScalingGroupName;
    const entry: GroupRefresh = {
      ...g.target,
      autoScalingGroupName: name,
      launchTemplateId: g.group.launchTemplateId,
      previousVersion: g.group.launchTemplateVersion,
      newVersion,
      wave: wave + 1,
    };
    result.refreshes.push(entry);
    live.refreshes.push(entry);
    const deadline = Date.now() + refreshSeconds * 1000;
    comp.add(`undo instance refresh of ${name}`, async () => {
      const r = await act.undoInstanceRefresh.executeWithOptions(
        remote(`undo: roll back ${name}`, refreshUndo(refreshSeconds)),
        [
          {
            target: g.target,
            autoScalingGroupName: name,
            ...(entry.instanceRefreshId ? { instanceRefreshId: entry.instanceRefreshId } : {}),
            launchTemplateId: g.group.launchTemplateId,
            newVersion: String(newVersion),
            previousVersion: String(g.previousVersion),
            deadline: Date.now() + refreshSeconds * 1000,
          },
        ],
      );
      live.restored.push(r);
      return r;
    });
    const p = input.refresh;
    const started = await la.startInstanceRefresh.executeWithOptions(
      local(`start instance refresh of ${name}`, settledAwsCall),
      [
        {
          target: g.target,
          autoScalingGroupName: name,
          launchTemplateId: g.group.launchTemplateId,
          version: String(newVersion),
          preferences: {
            minHealthyPercentage: p?.minHealthyPercentage ?? DEFAULT_ROLLOUT.minHealthyPercentage,
            skipMatching: p?.skipMatching ?? DEFAULT_ROLLOUT.skipMatching,
            ...(p?.instanceWarmupSeconds !== undefined
              ? { instanceWarmupSeconds: p.instanceWarmupSeconds }
              : {}),
            ...(p?.checkpointPercentages ? { checkpointPercentages: p.checkpointPercentages } : {}),
            ...(p?.checkpointDelaySeconds !== undefined
              ? { checkpointDelaySeconds: p.checkpointDelaySeconds }
              : {}),
          },
        },
      ],
    );
    entry.instanceRefreshId = started.instanceRefreshId;
    let status: RefreshStatus = started;
    update(entry, status);
    while (
      !['Successful', 'Failed', 'Cancelled', 'RollbackSuccessful', 'RollbackFailed'].includes(status.status)
    ) {
      status = await act.waitForInstanceRefresh.executeWithOptions(
        remote(`wait for refresh of ${name} (${status.percentageComplete}%)`, refreshWait(refreshSeconds)),
        [
          {
            target: g.target,
            autoScalingGroupName: name,
            instanceRefreshId: started.instanceRefreshId,
            seen: { status: status.status, percentageComplete: status.percentageComplete },
            deadline,
          },
        ],
      );
      update(entry, status);
    }
    if (status.status !== 'Successful')
      throw ApplicationFailure.create({
        type: FailureType.RefreshFailed,
        nonRetryable: true,
        message: `instance refresh ${started.instanceRefreshId} of '${name}' (${scopeKey(g.target)}) ended ${status.status}${status.statusReason ? `: ${status.statusReason}` : ''}`,
      });
  }

  function update(entry: GroupRefresh, s: RefreshStatus): void {
    entry.status = s.status;
    entry.percentageComplete = s.percentageComplete;
    entry.instancesToUpdate = s.instancesToUpdate;
    progress.note(
      `wave ${entry.wave}/${live.waves}: instance refreshes`,
      live.refreshes
        .filter((r) => r.wave === entry.wave)
        .map(
          (r) =>
            `${r.autoScalingGroupName}: ${r.status ?? 'starting'} ${r.percentageComplete ?? 0}% (${r.instancesToUpdate ?? '?'} to update)`,
        )
        .join('; '),
    );
  }

  /** Durable timer for the bake, with the alarms read periodically by one heartbeating activity. */
  async function bake(name: string): Promise<void> {
    if (alarms.length === 0) return sleep(bakeSeconds * 1000);
    const watching = new CancellationScope();
    let firing: string[] = [];
    await watching.run(() =>
      Promise.race([
        sleep(bakeSeconds * 1000),
        act.watchRolloutAlarms
          .executeWithOptions(remote(`${name}: watch ${alarms.join(', ')}`, bakeWatch(bakeSeconds)), [
            {
              targets,
              alarms,
              until: Date.now() + bakeSeconds * 1000,
              intervalSeconds: input.bake?.checkIntervalSeconds ?? DEFAULT_ROLLOUT.checkIntervalSeconds,
              failOnInsufficientData: input.bake?.failOnInsufficientData ?? false,
            },
          ])
          .then(async (w) => {
            firing = w.firing.map(
              (f) => `${f.alarm} (${scopeKey(f.target)}): ${f.state}${f.reason ? `: ${f.reason}` : ''}`,
            );
            // A clean watch ends at the bake's end; the timer still decides when the bake is over.
            if (firing.length === 0) await condition(() => false);
          }),
      ]),
    );
    watching.cancel();
    if (firing.length === 0) {
      // The timer ended the bake: one last read, so nothing since the watch's last read slips through.
      const last = await la.readRolloutAlarms.executeWithOptions(
        local(`${name}: read alarms at the end of the bake`),
        [{ targets, alarms }],
      );
      firing = last.readings
        .filter(
          (r) =>
            r.state === 'ALARM' ||
            (input.bake?.failOnInsufficientData === true && r.state === 'INSUFFICIENT_DATA'),
        )
        .map((r) => `${r.alarm} (${scopeKey(r.target)}): ${r.state}${r.reason ? `: ${r.reason}` : ''}`);
    }
    if (firing.length > 0)
      throw ApplicationFailure.create({
        type: FailureType.RolloutAlarm,
        nonRetryable: true,
        message: `${name}: alarm during the bake: ${firing.join('; ')}`,
      });
  }

  async function checkAlarms(where: AwsTarget[], names: string[]): Promise<void> {
    const read = await la.readRolloutAlarms.executeWithOptions(local(`read alarms ${names.join(', ')}`), [
      { targets: where, alarms: names },
    ]);
    if (read.missing.length > 0)
      throw ApplicationFailure.create({
        type: FailureType.RolloutAlarmNotFound,
        nonRetryable: true,
        message: `alarm(s) ${read.missing.join(', ')} not found in ${where.map(scopeKey).join(', ')}; name alarms that exist (or their ARNs)`,
      });
    const firing = read.readings.filter((r) => r.state === 'ALARM');
    if (firing.length > 0)
      throw ApplicationFailure.create({
        type: FailureType.RolloutAlarm,
        nonRetryable: true,
        message: `alarm(s) already firing before the rollout: ${firing.map((f) => `${f.alarm} (${scopeKey(f.target)})`).join(', ')}; nothing was changed`,
      });
  }

  async function awaitApproval(): Promise<void> {
    const timeoutSeconds = input.approval?.timeoutSeconds ?? DEFAULT_ROLLOUT.approvalTimeoutSeconds;
    live.phase = 'awaiting approval';
    waitingForApproval = true;
    const d = await progress
      .run(
        'await approval',
        () =>
          awaitDecision(gate.decided, timeoutSeconds, {
            subject: 'the rollout after the canary',
            then: 'it rolls back',
          }),
        `send the approve or reject update, signed with your AWS credentials (amiflow golden approve ${workflowInfo().workflowId})`,
      )
      .finally(() => (waitingForApproval = false));
    result.approval = { by: d.by, at: new Date(d.at).toISOString(), verifiedArn: d.verifiedArn };
  }
}

/** The failure (or cancellation) as it was, its message followed by exactly what was restored. */
function withRestored(err: unknown, restored: readonly RolloutRestore[]): unknown {
  if (!(err instanceof ApplicationFailure) || restored.length === 0) return err;
  const what = restored.map(
    (r) => `${r.resource} (${r.region}${r.accountId ? `, ${r.accountId}` : ''}): ${r.detail}`,
  );
  return ApplicationFailure.create({
    type: err.type ?? FailureType.RefreshFailed,
    nonRetryable: true,
    message: `${errorMessage(err)}; restored: ${what.join('; ')}`,
    details: [{ restored }],
    cause: err,
  });
}

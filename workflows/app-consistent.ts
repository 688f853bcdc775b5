/**
 * Mode `app-consistent` of imageFromInstance: the pre step (quiesce over SSM, arming the on-instance
 * watchdog), and the post step (thaw), which the workflow runs the moment CreateImage returns and
 * again, as a compensation, on every other path (failure, cancellation, a worker lost in between:
 * the run resumes on another worker and still reaches it). The watchdog bounds the freeze even when
 * none of that can run.
 */
import { ApplicationFailure, isCancellation, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CommandOutcome } from '../activities/run-command';
import type {
  AppConsistencyReport,
  AppConsistencyStep,
  AppConsistentOptions,
  AwsTarget,
  PreFailurePolicy,
  QuiesceSpec,
} from '../contracts';
import { APP_CONSISTENT_LIMITS, FailureType } from '../contracts';
import { recordFreeze } from './metrics';
import { compensationCall, settledAwsActivity, settleWait } from './presets';
import type { Progress } from './progress';
import { errorMessage } from './progress';

export const QUIESCE_STEP = 'quiesce instance';
export const THAW_STEP = 'thaw instance';

export interface ResolvedAppConsistent {
  quiesce: QuiesceSpec;
  maxFreezeSeconds: number;
  onPreFailure: PreFailurePolicy;
  preTimeoutSeconds: number;
  postTimeoutSeconds: number;
}

export function resolveAppConsistent(o: AppConsistentOptions | undefined): ResolvedAppConsistent {
  return {
    quiesce: o?.quiesce ?? { kind: 'fsfreeze' },
    maxFreezeSeconds: o?.maxFreezeSeconds ?? APP_CONSISTENT_LIMITS.maxFreezeSeconds.default,
    onPreFailure: o?.onPreFailure ?? 'fail',
    preTimeoutSeconds: o?.preTimeoutSeconds ?? APP_CONSISTENT_LIMITS.preTimeoutSeconds.default,
    postTimeoutSeconds: o?.postTimeoutSeconds ?? APP_CONSISTENT_LIMITS.postTimeoutSeconds.default,
  };
}

/** What the scripts print about themselves (activities/freeze-scripts.ts), read from stdout. */
export interface ScriptStamps {
  frozenAt?: number;
  thawedAt?: number;
  watchdogFiredAt?: number;
  frozen?: string[];
}

export function parseStamps(stdout: string): ScriptStamps {
  const out: ScriptStamps = {};
  for (const line of stdout.split('\n')) {
    const m = /^amiflow-(frozen-at|thawed-at|watchdog-fired-at|frozen)=(.*)$/.exec(line.trim());
    if (!m?.[1] || m[2] === undefined) continue;
    const value = m[2];
    if (m[1] === 'frozen') out.frozen = value === '' ? [] : value.split(',');
    else if (/^\d{10,16}$/.test(value)) {
      const n = Number(value);
      if (m[1] === 'frozen-at') out.frozenAt = n;
      else if (m[1] === 'thawed-at') out.thawedAt = n;
      else out.watchdogFiredAt = n;
    }
  }
  return out;
}

// The send may land after a cancellation: the thaw waits for it, so it never precedes the freeze.
const send = proxyActivities<Activities>(settledAwsActivity);
const undo = proxyActivities<Activities>(compensationCall);

function stepOf(outcome: CommandOutcome): AppConsistencyStep {
  return {
    status: outcome.status,
    commandId: outcome.commandId,
    ...(outcome.exitCode !== undefined ? { exitCode: outcome.exitCode } : {}),
    ...(outcome.status !== 'Success'
      ? {
          error:
            outcome.stderrTail.split('\n').slice(-5).join(' | ') || `the command ended ${outcome.status}`,
        }
      : {}),
  };
}

export class AppConsistentSteps {
  private pre: AppConsistencyStep = { status: 'not sent' };
  private post: AppConsistencyReport['post'] = { status: 'not sent' };
  private stamps: ScriptStamps = {};
  private preSentAt?: number;
  private preEndedAt?: number;
  private postEndedAt?: number;
  private thaws = 0;
  private fellBackToCrash = false;

  constructor(
    private readonly ctx: { target: AwsTarget; instanceId: string; runKey: string; progress: Progress },
    readonly options: ResolvedAppConsistent,
  ) {}

  private command(timeoutSeconds: number) {
    return {
      target: this.ctx.target,
      instanceId: this.ctx.instanceId,
      quiesce: this.options.quiesce,
      maxFreezeSeconds: this.options.maxFreezeSeconds,
      runKey: this.ctx.runKey,
      timeoutSeconds,
    };
  }

  /** True when the pre step failed and the run images crash-consistent, as onPreFailure allows. */
  get fellBack(): boolean {
    return this.fellBackToCrash;
  }

  /**
   * The pre step. True: the instance is quiesced (CreateImage next, at once). False: it failed and
   * the policy is to image crash-consistent (already thawed). Throws QuiesceFailed under `fail`.
   */
  async quiesce(): Promise<boolean> {
    const o = this.options;
    const ok = await this.ctx.progress.run(
      QUIESCE_STEP,
      async () => {
        this.preSentAt = Date.now();
        try {
          const sent = await send.sendQuiesceCommand.executeWithOptions(
            { ...settledAwsActivity, summary: `quiesce ${this.ctx.instanceId} (${o.quiesce.kind})` },
            [this.command(o.preTimeoutSeconds)],
          );
          this.pre = { status: 'error', commandId: sent.commandId, error: 'no outcome yet' };
          const outcome = await send.waitForCommand.executeWithOptions(
            {
              ...settleWait(o.preTimeoutSeconds),
              summary: `wait for the pre step on ${this.ctx.instanceId}`,
            },
            [
              {
                target: this.ctx.target,
                instanceId: this.ctx.instanceId,
                commandId: sent.commandId,
                deadline: this.preSentAt + o.preTimeoutSeconds * 1000,
              },
            ],
          );
          this.preEndedAt = Date.now();
          this.pre = stepOf(outcome);
          this.stamps = parseStamps(outcome.stdoutTail);
        } catch (err) {
          if (isCancellation(err)) throw err;
          this.pre = { ...this.pre, status: 'error', error: errorMessage(err) };
        }
        if (this.pre.status === 'Success') return true;
        // Under `fail` the step fails here; the caller's `finally` thaws whatever the pre step got done.
        if (o.onPreFailure === 'fail')
          throw ApplicationFailure.create({
            type: FailureType.QuiesceFailed,
            nonRetryable: true,
            message:
              `${this.why()}; nothing was imaged. Set appConsistent.onPreFailure: crash-consistent ` +
              'to image anyway, or use mode stop or reboot',
            details: [this.pre],
          });
        return false;
      },
      `${o.quiesce.kind}, watchdog ${o.maxFreezeSeconds}s`,
    );
    if (ok) return true;
    // Whatever the pre step got done (a watchdog armed, some file systems frozen) is undone first.
    await this.thaw();
    const why = this.why();
    this.fellBackToCrash = true;
    this.ctx.progress.note(QUIESCE_STEP, `failed; imaging crash-consistent (onPreFailure): ${why}`);
    this.ctx.progress.problem(
      `${why}; the image is crash-consistent only, as onPreFailure: crash-consistent allows`,
    );
    return false;
  }

  private why(): string {
    return `the pre step on ${this.ctx.instanceId} did not succeed (${this.pre.status}: ${this.pre.error ?? ''})`;
  }

  /**
   * The post step: cancels a pre step still on its way, then thaws. Runs at most once successfully;
   * never throws (a failed thaw is a problem of the run, and the watchdog still ends the freeze).
   */
  async thaw(): Promise<void> {
    // Nothing to thaw before the pre step was tried; after, always (thawing a thawed instance is harmless).
    if (this.post.status === 'Success' || this.preSentAt === undefined) return;
    this.thaws += 1;
    const o = this.options;
    await this.ctx.progress
      .run(THAW_STEP, async () => {
        const preCommand = this.pre.commandId;
        if (preCommand && this.pre.status === 'error')
          await undo.cancelCommand.executeWithOptions(
            { ...compensationCall, summary: `cancel the pre step on ${this.ctx.instanceId}` },
            [{ target: this.ctx.target, instanceId: this.ctx.instanceId, commandId: preCommand }],
          );
        const startedAt = Date.now();
        const sent = await undo.sendThawCommand.executeWithOptions(
          { ...compensationCall, summary: `thaw ${this.ctx.instanceId}` },
          [{ ...this.command(o.postTimeoutSeconds), ...(this.thaws > 1 ? { attempt: this.thaws } : {}) }],
        );
        const outcome = await undo.waitForCommand.executeWithOptions(
          { ...settleWait(o.postTimeoutSeconds), summary: `wait for the thaw on ${this.ctx.instanceId}` },
          [
            {
              target: this.ctx.target,
              instanceId: this.ctx.instanceId,
              commandId: sent.commandId,
              deadline: startedAt + o.postTimeoutSeconds * 1000,
            },
          ],
        );
        this.postEndedAt = Date.now();
        const stamps = parseStamps(outcome.stdoutTail);
        this.stamps = { ...this.stamps, ...stamps };
        this.post = {
          ...stepOf(outcome),
          ...(outcome.status === 'Success' || stamps.watchdogFiredAt !== undefined
            ? { thawedBy: stamps.watchdogFiredAt !== undefined ? 'watchdog' : 'post step' }
            : {}),
        };
        if (outcome.status !== 'Success') throw new Error(this.post.error ?? outcome.status);
      })
      .catch((err: unknown) => {
        if (this.post.status === 'not sent' || this.post.status === 'Success')
          this.post = { status: 'error', error: errorMessage(err) };
        this.ctx.progress.problem(
          `the post step (thaw) on ${this.ctx.instanceId} failed: ${errorMessage(err)}; the on-instance watchdog ` +
            `thaws by itself ${o.maxFreezeSeconds}s after the freeze`,
        );
      });
  }

  /**
   * Whether the image is application-consistent: the pre step succeeded, and the freeze surely
   * lasted through CreateImage (the watchdog did not fire, or CreateImage returned sooner after the
   * pre step was sent than the watchdog's limit, so before it can have fired).
   */
  consistentThrough(createdAt: number): boolean {
    if (this.fellBackToCrash || this.pre.status !== 'Success') return false;
    if (this.stamps.watchdogFiredAt === undefined) return true;
    return this.preSentAt !== undefined && createdAt - this.preSentAt < this.options.maxFreezeSeconds * 1000;
  }

  /** The result's account, and the freeze as a metric (once, when the run reports it). */
  report(): AppConsistencyReport {
    const s = this.stamps;
    const end =
      s.watchdogFiredAt !== undefined && (s.thawedAt === undefined || s.watchdogFiredAt < s.thawedAt)
        ? s.watchdogFiredAt
        : s.thawedAt;
    let freeze: Pick<AppConsistencyReport, 'freezeSeconds' | 'freezeMeasuredBy'> = {};
    if (s.frozenAt !== undefined && end !== undefined && end >= s.frozenAt)
      freeze = { freezeSeconds: (end - s.frozenAt) / 1000, freezeMeasuredBy: 'instance' };
    else if (this.pre.status === 'Success' && this.preEndedAt !== undefined && this.postEndedAt !== undefined)
      freeze = { freezeSeconds: (this.postEndedAt - this.preEndedAt) / 1000, freezeMeasuredBy: 'worker' };
    if (freeze.freezeSeconds !== undefined && freeze.freezeMeasuredBy)
      recordFreeze(freeze.freezeSeconds, freeze.freezeMeasuredBy);
    return {
      quiesce: this.options.quiesce.kind,
      maxFreezeSeconds: this.options.maxFreezeSeconds,
      onPreFailure: this.options.onPreFailure,
      pre: this.pre,
      post: this.post,
      ...(s.frozen ? { frozen: s.frozen } : {}),
      ...freeze,
      fellBack: this.fellBackToCrash,
    };
  }
}

/**
 * `amiflow plan …`, `schedule …`, `golden …`, `backup …`: plan files, the Temporal Schedules they
 * declare, and golden-image and backup runs. Plan files are read and validated (every problem with
 * its line and field) before anything connects; `plan validate` never connects.
 */
import type { Command } from 'commander';
import { formatBackupResult, formatGoldenResult, isBackupResult } from '../golden';
import type { OverlapPolicy, Plan, PlanEntry } from '../plan-file';
import { readScheduleBounds } from '../bounds';
import { entryKey, loadPlanFile } from '../plan-file';
import { planScheduleSchema } from '../../contracts/plan';
import { approvalDecisionSchema } from '../../contracts/golden';
import type { ApplyReport, ScheduleDetails } from '../schedules';
import { scheduleIdOf } from '../schedules';
import type { GoldenImageResult } from '../../contracts';
import { PLAN_NAME_RE } from '../../workflows/golden-validation';
import { InvalidInputError } from '../../contracts/issues';
import type { CliContext } from './context';
import { emit, outputOf, reportAction, startAndFollow, withClient } from './context';
import {
  FOLLOW_FLAGS,
  UsageError,
  addFlags,
  flagIssues,
  followIssues,
  parseIsoTime,
  refuse,
  schemaFlag,
} from './flags';

function findEntry(plan: Plan, key: string, kind?: PlanEntry['kind']): PlanEntry {
  const wanted = kind ? `${kind}/${key}` : key;
  const entry = plan.entries.find((e) => entryKey(e) === wanted);
  if (!entry)
    throw new UsageError(
      `${plan.source} declares no ${wanted} (it has: ${plan.entries.map(entryKey).join(', ') || 'nothing'})`,
    );
  return entry;
}

export function formatApplyReport(r: ApplyReport): string {
  const line = (what: string, ids: string[]) => (ids.length ? [`  ${what}: ${ids.join(', ')}`] : []);
  return [
    `plan ${r.plan}${r.dryRun ? ' (dry run: nothing changed)' : ''}:`,
    ...line(r.dryRun ? 'would create' : 'created', r.created),
    ...line(r.dryRun ? 'would update' : 'updated', r.updated),
    ...line('unchanged', r.unchanged),
    ...line(r.dryRun ? 'would delete' : 'deleted', r.deleted),
  ].join('\n');
}

export function formatScheduleDetails(d: ScheduleDetails): string {
  return [
    `${d.scheduleId}${d.paused ? '  PAUSED' : ''}${d.note ? `  (${d.note})` : ''}`,
    `  runs ${d.workflowType} as ${d.workflowId}-<scheduled time> on task queue ${d.taskQueue}`,
    `  when: ${d.when ?? '?'}; overlap ${d.overlap}; catch-up window ${d.catchupWindowSeconds} s${d.pauseOnFailure ? '; pauses on failure' : ''}`,
    `  next: ${d.nextRuns.slice(0, 3).join(', ') || '(none)'}`,
    `  taken ${d.actionsTaken}, skipped for overlap ${d.skippedOverlap}, missed catch-up ${d.missedCatchupWindow}`,
    ...d.recentRuns
      .slice(-5)
      .map(
        (r) =>
          `  ${r.scheduledAt}  ${r.status.padEnd(10)} ${r.workflowId}${r.outcome ? `\n      ${r.outcome}` : ''}`,
      ),
  ].join('\n');
}

/** A schedule's flags, from the plan schema's schedule fields: help, choices and checks in one place. */
const OVERLAP = schemaFlag('--overlap <policy>', planScheduleSchema, 'overlap', {
  help: 'what to do when a run is still going',
});
const NOTE = schemaFlag('--note <text>', planScheduleSchema, 'note', { help: 'why (shown by describe)' });
/** An approval's flags, from the decision the golden run takes. */
const DECISION = [
  schemaFlag('--by <who>', approvalDecisionSchema, 'by', {
    help: 'a name for the record only (who decides is the principal STS verifies)',
  }),
  schemaFlag('--comment <text>', approvalDecisionSchema, 'comment', { help: 'why' }),
];

/** The overlap policy of `--overlap`, refused (naming the flag) when the schema refuses it. */
function overlapOf(opts: { overlap?: string }): OverlapPolicy | undefined {
  refuse([OVERLAP], flagIssues([OVERLAP], opts));
  return opts.overlap as OverlapPolicy | undefined;
}

function registerPlan(program: Command, ctx: CliContext): void {
  const plan = program
    .command('plan')
    .description('plan files: golden pipelines, backups and their schedules');
  plan
    .command('validate')
    .description('check a plan file (never connects)')
    .argument('<plan-file>', 'plan file (YAML or JSON)')
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      // The operator's shortest intervals too: a plan apply would refuse is refused here already.
      const p = await loadPlanFile(file, readScheduleBounds());
      emit(
        outputOf(cmd),
        { plan: p.name, schedules: p.entries.map((e) => scheduleIdOf(p.name, e)) },
        () =>
          `${p.source}: plan ${p.name} is valid: ` +
          p.entries.map((e) => `${scheduleIdOf(p.name, e)} (line ${e.line})`).join(', '),
      );
    });
  plan
    .command('apply')
    .description("make the plan's schedules exist as declared")
    .argument('<plan-file>', 'plan file (YAML or JSON)')
    .option('--dry-run', 'say what would change, change nothing')
    .option('--no-prune', 'keep schedules of this plan that it no longer declares')
    .option('--no-search-attributes', 'start runs without the Amiflow* search attributes')
    .action(
      async (
        file: string,
        opts: { dryRun?: boolean; prune: boolean; searchAttributes: boolean },
        cmd: Command,
      ) => {
        const p = await loadPlanFile(file);
        const output = outputOf(cmd);
        await withClient(ctx, async (client) => {
          const report = await client.schedules.apply(p, {
            dryRun: opts.dryRun === true,
            prune: opts.prune,
            searchAttributes: opts.searchAttributes,
          });
          emit(output, report, () => formatApplyReport(report));
          return 0;
        });
      },
    );
}

function registerScheduleReads(schedule: Command, ctx: CliContext): void {
  schedule
    .command('list')
    .description('amiflow schedules')
    .option('--plan <name>', 'only those of this plan')
    .action(async (opts: { plan?: string }, cmd: Command) => {
      if (opts.plan !== undefined && !PLAN_NAME_RE.test(opts.plan))
        throw new InvalidInputError([
          {
            field: '--plan',
            message: `'${opts.plan}' is not a plan name (lower-case letters, digits and '-')`,
          },
        ]);
      const output = outputOf(cmd);
      await withClient(ctx, async (client) => {
        const items = await client.schedules.list(opts.plan ? { plan: opts.plan } : {});
        emit(
          output,
          items,
          () =>
            items
              .map(
                (i) =>
                  `${i.scheduleId}${i.paused ? '  PAUSED' : ''}  next ${i.nextRuns[0] ?? '-'}  last ${i.lastRun?.scheduledAt ?? '-'}`,
              )
              .join('\n') || '(no amiflow schedules)',
        );
        return 0;
      });
    });
  schedule
    .command('describe')
    .description('one schedule: when, overlap, next and recent runs')
    .argument('<schedule-id>')
    .action(
      reportAction(ctx, async (client, id) => {
        const d = await client.schedules.describe(id);
        return { value: d, text: () => formatScheduleDetails(d) };
      }),
    );
}

function registerScheduleChanges(schedule: Command, ctx: CliContext): void {
  for (const verb of ['create', 'update'] as const)
    schedule
      .command(verb)
      .description(`${verb} one schedule from a plan file`)
      .argument('<plan-file>')
      .argument('<entry>', 'golden/<name> or backup/<name>')
      .action(async (file: string, key: string, _opts: unknown, cmd: Command) => {
        const p = await loadPlanFile(file);
        const entry = findEntry(p, key);
        const output = outputOf(cmd);
        await withClient(ctx, async (client) => {
          const id =
            verb === 'create'
              ? await client.schedules.create(p, entry)
              : await client.schedules.update(p, entry);
          emit(
            output,
            { scheduleId: id, [verb === 'create' ? 'created' : 'updated']: true },
            () => `${verb}d ${id}`,
          );
          return 0;
        });
      });
  for (const verb of ['pause', 'unpause'] as const)
    addFlags(schedule.command(verb).description(`${verb} a schedule`).argument('<schedule-id>'), [
      NOTE,
    ]).action(async (id: string, opts: { note?: string }, cmd: Command) => {
      refuse([NOTE], flagIssues([NOTE], opts));
      const output = outputOf(cmd);
      await withClient(ctx, async (client) => {
        await (verb === 'pause'
          ? client.schedules.pause(id, opts.note)
          : client.schedules.unpause(id, opts.note));
        emit(
          output,
          { scheduleId: id, paused: verb === 'pause', ...(opts.note ? { note: opts.note } : {}) },
          () => `${verb}d ${id}${opts.note ? `: ${opts.note}` : ''}`,
        );
        return 0;
      });
    });
  addFlags(schedule.command('trigger').description('start a run now').argument('<schedule-id>'), [
    OVERLAP,
  ]).action(async (id: string, opts: { overlap?: string }, cmd: Command) => {
    const overlap = overlapOf(opts);
    const output = outputOf(cmd);
    await withClient(ctx, async (client) => {
      const run = await client.schedules.trigger(id, {
        ...(overlap ? { overlap } : {}),
        waitForStart: true,
      });
      emit(output, { scheduleId: id, started: run ?? null }, () =>
        run
          ? `started ${run.workflowId} (run ${run.runId})`
          : `triggered ${id}; no run started (skipped by the overlap policy?)`,
      );
      return 0;
    });
  });
  registerBackfill(schedule, ctx);
  schedule
    .command('delete')
    .description('delete a schedule (runs it started are not affected)')
    .argument('<schedule-id>')
    .action(
      reportAction(ctx, async (client, id) => {
        await client.schedules.delete(id);
        return {
          value: { scheduleId: id, deleted: true },
          text: () => `deleted ${id} (runs it started are not affected)`,
        };
      }),
    );
}

interface BackfillOptions {
  from?: string;
  to?: string;
  overlap?: string;
  confirmAllowAll?: boolean;
}

function registerBackfill(schedule: Command, ctx: CliContext): void {
  addFlags(
    schedule
      .command('backfill')
      .description(
        'run the times a schedule would have run between two times (at most AMIFLOW_MAX_BACKFILL_RUNS runs, default 50)',
      )
      .argument('<schedule-id>')
      .option('--from <ISO time>', 'from', parseIsoTime)
      .option('--to <ISO time>', 'to', parseIsoTime),
    [OVERLAP],
  )
    .option(
      '--confirm-allow-all',
      'confirms --overlap allow-all, which starts every run of the window at once (buffer-all runs them one after another)',
    )
    .action(async (id: string, opts: BackfillOptions, cmd: Command) => {
      if (opts.from === undefined || opts.to === undefined)
        throw new UsageError('--from and --to are required');
      const from = new Date(opts.from);
      const to = new Date(opts.to);
      if (!(from < to)) throw new UsageError('--from must be before --to');
      const overlap = overlapOf(opts);
      // Refused here, before connecting, naming the flag; the library refuses it too (RefusedError).
      if (overlap === 'allow-all' && opts.confirmAllowAll !== true)
        throw new UsageError(
          '--overlap allow-all starts every run of the window at once: add --confirm-allow-all, or use --overlap buffer-all (one after another)',
        );
      const output = outputOf(cmd);
      await withClient(ctx, async (client) => {
        const { runs } = await client.schedules.backfill(id, from, to, overlap, {
          confirmAllowAll: opts.confirmAllowAll === true,
        });
        emit(
          output,
          { scheduleId: id, from: from.toISOString(), to: to.toISOString(), runs },
          () => `backfilled ${id} from ${from.toISOString()} to ${to.toISOString()}: ${runs} run(s)`,
        );
        return 0;
      });
    });
}

function registerStart(parent: Command, kind: 'golden' | 'backup', ctx: CliContext): void {
  addFlags(
    parent
      .command('start')
      .description(`start a ${kind === 'golden' ? 'golden-image pipeline' : 'backup'} run from a plan file`)
      .argument('<plan-file>')
      .argument(kind === 'golden' ? '<pipeline>' : '<backup-plan>'),
    FOLLOW_FLAGS.filter((f) => !f.flags.startsWith('--id')),
  ).action(async (file: string, name: string, opts: Record<string, unknown>, cmd: Command) => {
    refuse([], followIssues(opts));
    const p = await loadPlanFile(file);
    const entry = findEntry(p, name, kind);
    // No --id here: a plan run's id comes from its pipeline (or backup plan) and scheduled time.
    await startAndFollow<unknown>(ctx, cmd, opts, {
      start: (client) =>
        entry.kind === 'golden' ? client.startGoldenImage(entry.input) : client.startBackup(entry.input),
      format: (r) => (isBackupResult(r) ? formatBackupResult(r) : formatGoldenResult(r as GoldenImageResult)),
    });
  });
}

function registerGolden(program: Command, ctx: CliContext): void {
  const golden = program.command('golden').description('golden-image pipelines: start, approve, reject');
  registerStart(golden, 'golden', ctx);
  for (const verb of ['approve', 'reject'] as const)
    addFlags(
      golden
        .command(verb)
        .description(
          `${verb} the image a golden run waits with, as the IAM principal of your AWS credentials (the AWS SDK's default chain, e.g. AWS_PROFILE): the worker verifies it with STS and the run records it`,
        )
        .argument('<workflow-id>'),
      DECISION,
    ).action(async (id: string, opts: { by?: string; comment?: string }, cmd: Command) => {
      // Checked before connecting, naming the flag; the run checks the decision again.
      refuse(DECISION, flagIssues(DECISION, opts));
      // --by is only a claim; the proof is signed by the client library once connected.
      const decision = {
        ...(opts.by?.trim() ? { by: opts.by } : {}),
        ...(opts.comment !== undefined ? { comment: opts.comment } : {}),
      };
      const output = outputOf(cmd);
      await withClient(ctx, async (client) => {
        const ack =
          verb === 'approve'
            ? await client.approveGoldenImage(id, decision)
            : await client.rejectGoldenImage(id, decision);
        emit(
          output,
          ack,
          () => `${ack.decision} ${ack.imageId} (version ${ack.version}) in ${ack.workflowId} at ${ack.at}`,
        );
        return 0;
      });
    });
  golden
    .command('pending')
    .description('golden runs waiting for approval')
    .action(async (_opts: unknown, cmd: Command) => {
      const output = outputOf(cmd);
      await withClient(ctx, async (client) => {
        const runs = await client.awaitingApproval();
        emit(
          output,
          runs,
          () =>
            runs.map((r) => `${r.workflowId}  (since ${r.startedAt})`).join('\n') ||
            '(no golden run waits for approval)',
        );
        return 0;
      });
    });
}

export function registerPlanCommands(program: Command, ctx: CliContext): void {
  registerPlan(program, ctx);
  const schedule = program.command('schedule').description('Temporal Schedules of plan files');
  registerScheduleReads(schedule, ctx);
  registerScheduleChanges(schedule, ctx);
  registerGolden(program, ctx);
  const backup = program.command('backup').description('consistent backups of instances');
  registerStart(backup, 'backup', ctx);
}

/**
 * The CLI's plan, schedule, golden and backup commands. Flags and plan files are read and validated
 * (every problem with its line and field) before anything connects; `plan validate` never connects.
 */
import type { ParseArgsConfig } from 'node:util';
import { parseArgs } from 'node:util';
import type { WorkflowProgress } from '../workflows/contracts';
import type { AmiflowClient } from './index';
import { formatBackupResult, formatGoldenResult, isBackupResult } from './golden';
import type { OverlapPolicy, Plan, PlanEntry } from './plan-file';
import { OVERLAP_POLICIES, entryKey, loadPlanFile } from './plan-file';
import type { ApplyReport, ScheduleDetails } from './schedules';
import { scheduleIdOf } from './schedules';

export const SCHEDULE_USAGE = `  amiflow plan validate <plan.yaml> [--json]
  amiflow plan apply <plan.yaml> [--dry-run] [--no-prune] [--no-search-attributes] [--json]
  amiflow schedule list [--plan <name>] [--json]
  amiflow schedule describe <schedule-id> [--json]
  amiflow schedule create|update <plan.yaml> <golden/<name>|backup/<name>>
  amiflow schedule pause|unpause <schedule-id> [--note <text>]
  amiflow schedule trigger <schedule-id> [--overlap skip|buffer-one|buffer-all|cancel-other|terminate-other|allow-all]
  amiflow schedule backfill <schedule-id> --from <ISO time> --to <ISO time> [--overlap <policy>] [--confirm-allow-all]   (at most AMIFLOW_MAX_BACKFILL_RUNS runs, default 50)
  amiflow schedule delete <schedule-id>
  amiflow golden start <plan.yaml> <pipeline> [--watch | --no-wait] [--json]
  amiflow golden approve|reject <workflow-id> [--comment <text>]   (signed with your AWS credentials; the run records your verified IAM principal)
  amiflow golden pending
  amiflow backup start <plan.yaml> <backup plan> [--watch | --no-wait] [--json]`;

export class ScheduleUsageError extends Error {
  override name = 'ScheduleUsageError';
}

type Action = (client: AmiflowClient) => Promise<number>;

type Values = Record<string, string | boolean | undefined>;
type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags and exactly `n` positional arguments. */
function parse(
  argv: string[],
  n: number,
  what: string,
  options: Options = {},
): { args: string[]; values: Values } {
  const parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options });
  if (parsed.positionals.length !== n)
    throw new ScheduleUsageError(`${what}: expected ${n} argument(s), got ${parsed.positionals.length}`);
  return { args: parsed.positionals, values: parsed.values as Values };
}

function overlapOf(raw: string | boolean | undefined): OverlapPolicy | undefined {
  if (raw === undefined) return undefined;
  if (!OVERLAP_POLICIES.includes(raw as OverlapPolicy))
    throw new ScheduleUsageError(`--overlap: '${String(raw)}' is not one of ${OVERLAP_POLICIES.join(', ')}`);
  return raw as OverlapPolicy;
}

function timeOf(flag: string, raw: string | boolean | undefined): Date {
  const t = typeof raw === 'string' ? Date.parse(raw) : NaN;
  if (Number.isNaN(t))
    throw new ScheduleUsageError(
      `--${flag}: '${String(raw)}' is not an ISO 8601 time (e.g. 2026-01-15T03:00:00Z)`,
    );
  return new Date(t);
}

function findEntry(plan: Plan, key: string, kind?: PlanEntry['kind']): PlanEntry {
  const wanted = kind ? `${kind}/${key}` : key;
  const entry = plan.entries.find((e) => entryKey(e) === wanted);
  if (!entry)
    throw new ScheduleUsageError(
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

/**
 * Reads and validates a plan, schedule, golden or backup command (plan files included) and returns
 * what to do once connected; `undefined` for commands done without a connection (plan validate).
 */
export async function prepareScheduleCommand(
  cmd: string,
  sub: string,
  argv: string[],
  onProgress: (p: WorkflowProgress) => void,
): Promise<Action | undefined> {
  if (cmd === 'plan' && sub === 'validate') {
    const {
      args: [file],
      values,
    } = parse(argv, 1, 'plan validate', { json: { type: 'boolean', default: false } });
    const plan = await loadPlanFile(file ?? '');
    console.log(
      values.json
        ? JSON.stringify(
            { plan: plan.name, schedules: plan.entries.map((e) => scheduleIdOf(plan.name, e)) },
            null,
            2,
          )
        : `${plan.source}: plan ${plan.name} is valid: ` +
            plan.entries.map((e) => `${scheduleIdOf(plan.name, e)} (line ${e.line})`).join(', '),
    );
    return undefined;
  }
  if (cmd === 'plan' && sub === 'apply') {
    const {
      args: [file],
      values,
    } = parse(argv, 1, 'plan apply', {
      'dry-run': { type: 'boolean', default: false },
      'no-prune': { type: 'boolean', default: false },
      'no-search-attributes': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    const plan = await loadPlanFile(file ?? '');
    return async (client) => {
      const report = await client.schedules.apply(plan, {
        dryRun: values['dry-run'] === true,
        prune: values['no-prune'] !== true,
        searchAttributes: values['no-search-attributes'] !== true,
      });
      console.log(values.json ? JSON.stringify(report, null, 2) : formatApplyReport(report));
      return 0;
    };
  }
  if (cmd === 'schedule') {
    switch (sub) {
      case 'list': {
        const { values } = parse(argv, 0, 'schedule list', {
          plan: { type: 'string' },
          json: { type: 'boolean', default: false },
        });
        return async (client) => {
          const items = await client.schedules.list(
            typeof values.plan === 'string' ? { plan: values.plan } : {},
          );
          console.log(
            values.json
              ? JSON.stringify(items, null, 2)
              : items
                  .map(
                    (i) =>
                      `${i.scheduleId}${i.paused ? '  PAUSED' : ''}  next ${i.nextRuns[0] ?? '-'}  last ${i.lastRun?.scheduledAt ?? '-'}`,
                  )
                  .join('\n') || '(no amiflow schedules)',
          );
          return 0;
        };
      }
      case 'describe': {
        const {
          args: [id],
          values,
        } = parse(argv, 1, 'schedule describe', { json: { type: 'boolean', default: false } });
        return async (client) => {
          const d = await client.schedules.describe(id ?? '');
          console.log(values.json ? JSON.stringify(d, null, 2) : formatScheduleDetails(d));
          return 0;
        };
      }
      case 'create':
      case 'update': {
        const {
          args: [file, key],
        } = parse(argv, 2, `schedule ${sub}`);
        const plan = await loadPlanFile(file ?? '');
        const entry = findEntry(plan, key ?? '');
        return async (client) => {
          const id =
            sub === 'create'
              ? await client.schedules.create(plan, entry)
              : await client.schedules.update(plan, entry);
          console.log(`${sub === 'create' ? 'created' : 'updated'} ${id}`);
          return 0;
        };
      }
      case 'pause':
      case 'unpause': {
        const {
          args: [id],
          values,
        } = parse(argv, 1, `schedule ${sub}`, { note: { type: 'string' } });
        const note = typeof values.note === 'string' ? values.note : undefined;
        return async (client) => {
          await (sub === 'pause'
            ? client.schedules.pause(id ?? '', note)
            : client.schedules.unpause(id ?? '', note));
          console.log(`${sub === 'pause' ? 'paused' : 'unpaused'} ${id ?? ''}${note ? `: ${note}` : ''}`);
          return 0;
        };
      }
      case 'trigger': {
        const {
          args: [id],
          values,
        } = parse(argv, 1, 'schedule trigger', { overlap: { type: 'string' } });
        const overlap = overlapOf(values.overlap);
        return async (client) => {
          const run = await client.schedules.trigger(id ?? '', {
            ...(overlap ? { overlap } : {}),
            waitForStart: true,
          });
          console.log(
            run
              ? `started ${run.workflowId} (run ${run.runId})`
              : `triggered ${id ?? ''}; no run started (skipped by the overlap policy?)`,
          );
          return 0;
        };
      }
      case 'backfill': {
        const {
          args: [id],
          values,
        } = parse(argv, 1, 'schedule backfill', {
          from: { type: 'string' },
          to: { type: 'string' },
          overlap: { type: 'string' },
          'confirm-allow-all': { type: 'boolean' },
        });
        const from = timeOf('from', values.from);
        const to = timeOf('to', values.to);
        if (!(from < to)) throw new ScheduleUsageError('--from must be before --to');
        const overlap = overlapOf(values.overlap);
        return async (client) => {
          const { runs } = await client.schedules.backfill(id ?? '', from, to, overlap, {
            confirmAllowAll: values['confirm-allow-all'] === true,
          });
          console.log(
            `backfilled ${id ?? ''} from ${from.toISOString()} to ${to.toISOString()}: ${runs} run(s)`,
          );
          return 0;
        };
      }
      case 'delete': {
        const {
          args: [id],
        } = parse(argv, 1, 'schedule delete');
        return async (client) => {
          await client.schedules.delete(id ?? '');
          console.log(`deleted ${id ?? ''} (runs it started are not affected)`);
          return 0;
        };
      }
      default:
        throw new ScheduleUsageError(`unknown command 'schedule ${sub}'`);
    }
  }
  if ((cmd === 'golden' || cmd === 'backup') && sub === 'start') {
    const {
      args: [file, name],
      values,
    } = parse(argv, 2, `${cmd} start`, {
      watch: { type: 'boolean', default: false },
      'no-wait': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    if (values.watch && values['no-wait'])
      throw new ScheduleUsageError('--watch and --no-wait exclude each other');
    const plan = await loadPlanFile(file ?? '');
    const entry = findEntry(plan, name ?? '', cmd === 'golden' ? 'golden' : 'backup');
    return async (client) => {
      const started =
        entry.kind === 'golden'
          ? await client.startGoldenImage(entry.input)
          : await client.startBackup(entry.input);
      console.error(`started ${started.workflowId} (run ${started.runId})`);
      if (values['no-wait']) {
        if (values.json) console.log(JSON.stringify(started));
        return 0;
      }
      const result = values.watch
        ? await client.watch<unknown>(started.workflowId, onProgress)
        : await client.result<unknown>(started.workflowId);
      console.log(
        values.json
          ? JSON.stringify(result, null, 2)
          : isBackupResult(result)
            ? formatBackupResult(result)
            : formatGoldenResult(result as Parameters<typeof formatGoldenResult>[0]),
      );
      return 0;
    };
  }
  if (cmd === 'golden' && (sub === 'approve' || sub === 'reject')) {
    const {
      args: [id],
      values,
    } = parse(argv, 1, `golden ${sub}`, {
      by: { type: 'string' },
      comment: { type: 'string' },
    });
    // --by is only a claim (kept for the record); who decides is what STS verifies for the proof.
    const decision = {
      ...(typeof values.by === 'string' ? { by: values.by } : {}),
      ...(typeof values.comment === 'string' ? { comment: values.comment } : {}),
    };
    return async (client) => {
      const ack =
        sub === 'approve'
          ? await client.approveGoldenImage(id ?? '', decision)
          : await client.rejectGoldenImage(id ?? '', decision);
      console.log(
        `${ack.decision} ${ack.imageId} (version ${ack.version}) in ${ack.workflowId} at ${ack.at}`,
      );
      return 0;
    };
  }
  if (cmd === 'golden' && sub === 'pending') {
    parse(argv, 0, 'golden pending');
    return async (client) => {
      const runs = await client.awaitingApproval();
      console.log(
        runs.map((r) => `${r.workflowId}  (since ${r.startedAt})`).join('\n') ||
          '(no golden run waits for approval)',
      );
      return 0;
    };
  }
  throw new ScheduleUsageError(`unknown command '${cmd} ${sub}'`);
}

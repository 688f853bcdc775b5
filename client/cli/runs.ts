/**
 * Commands about runs of any kind: `list` (visibility), `status`, `watch`, `result`, `cancel`.
 */
import type { Command } from 'commander';
import { formatBackupResult, formatGoldenResult, isBackupResult } from '../golden';
import type { RunFilter } from '../list-runs';
import { RUN_STATUSES, WORKFLOW_TYPE_NAMES, formatRuns, listRuns, runFilterIssues } from '../list-runs';
import { formatMigrateResult } from '../migration';
import type { RunOutcomeReport } from '../index';
import { renderProgress } from '../render';
import type { GoldenImageResult, ImageFromInstanceResult, MigrateInstanceResult } from '../../contracts';
import type { CliContext } from './context';
import {
  emit,
  emitCompleted,
  outputOf,
  problemsText,
  reportAction,
  withClient,
  withOutcome,
} from './context';
import type { FlagSpec } from './flags';
import { addFlags, inputFrom, parseWhole, refuse } from './flags';
import { formatDistributionResult, formatImageResult } from './image-format';

const LIST_FLAGS: readonly FlagSpec[] = [
  {
    flags: '--type <workflow type>',
    help: 'only runs of this workflow type',
    field: 'type',
    choices: WORKFLOW_TYPE_NAMES,
  },
  { flags: '--instance <i-…>', help: 'only runs about this instance', field: 'instanceId' },
  { flags: '--image <ami-…>', help: 'only runs about this image', field: 'imageId' },
  { flags: '--region <region>', help: 'only runs in this region', field: 'region' },
  {
    flags: '--status <status>',
    help: 'only runs in this state',
    field: 'status',
    choices: Object.keys(RUN_STATUSES),
  },
  { flags: '--limit <n>', help: 'at most this many runs', parse: parseWhole, default: '50' },
];

function isMigrateResult(value: unknown): value is MigrateInstanceResult {
  return (
    typeof value === 'object' && value !== null && 'newInstanceId' in value && 'sourceFinalState' in value
  );
}

/** Any run's result for people: the format of its kind. */
export function formatAnyResult(result: unknown): string {
  if (isMigrateResult(result)) return formatMigrateResult(result);
  const distribution = formatDistributionResult(result);
  if (distribution !== undefined) return distribution;
  if (isBackupResult(result)) return formatBackupResult(result);
  if (
    typeof result === 'object' &&
    result !== null &&
    'snapshotIds' in result &&
    'instanceFinalState' in result
  )
    return formatImageResult(result as ImageFromInstanceResult);
  if (typeof result === 'object' && result !== null && 'pipeline' in result)
    return formatGoldenResult(result as GoldenImageResult);
  return JSON.stringify(result, null, 2);
}

export function registerRunCommands(program: Command, ctx: CliContext): void {
  addFlags(
    program
      .command('list')
      .description('find runs by type, instance, image, region and status (Temporal visibility)'),
    LIST_FLAGS,
  ).action(async (opts: Record<string, unknown>, cmd: Command) => {
    const filter = inputFrom(LIST_FLAGS, opts) as RunFilter;
    const limit = typeof opts.limit === 'number' ? opts.limit : Number(opts.limit);
    refuse(LIST_FLAGS, [
      ...runFilterIssues(filter),
      ...(Number.isInteger(limit) && limit >= 1 && limit <= 10000
        ? []
        : [{ field: '--limit', message: `'${String(opts.limit)}' must be from 1 to 10000` }]),
    ]);
    const output = outputOf(cmd);
    await withClient(ctx, async (client) => {
      const runs = await listRuns(client, filter, limit);
      emit(output, runs, () => formatRuns(runs));
      return 0;
    });
  });
  program
    .command('status')
    .description("a run's state and steps")
    .argument('<workflow-id>')
    .action(
      reportAction(ctx, async (client, id) => {
        const s = await client.status(id);
        // Status reports, it does not judge: exit 0 whatever the outcome, which is shown plainly.
        const end: RunOutcomeReport = s.progress?.outcome
          ? { outcome: s.progress.outcome, ...(s.progress.problems ? { problems: s.progress.problems } : {}) }
          : {};
        const state =
          end.outcome === 'succeeded-with-problems' ? `${s.status} (succeeded with problems)` : s.status;
        return {
          value: withOutcome(s, end),
          text: () =>
            `${id}: ${state}\n${s.progress ? renderProgress(s.progress) : '(progress unavailable: no worker answered)'}` +
            problemsText(end),
        };
      }),
    );
  program
    .command('watch')
    .description('show the steps of a run live until it ends, then its result')
    .argument('<workflow-id>')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const output = outputOf(cmd);
      await withClient(ctx, async (client) => {
        const result = await client.watch<unknown>(id, ctx.printer());
        await emitCompleted(ctx, client, id, output, result, () => formatAnyResult(result));
        return 0;
      });
    });
  program
    .command('result')
    .description("wait for a run's result and print it (JSON)")
    .argument('<workflow-id>')
    .action(async (id: string) => {
      await withClient(ctx, async (client) => {
        const result = await client.result(id);
        await emitCompleted(ctx, client, id, 'json', result, () => '');
        return 0;
      });
    });
  program
    .command('cancel')
    .description('cancel a run: it undoes what it did, then ends cancelled')
    .argument('<workflow-id>')
    .action(
      reportAction(ctx, async (client, id) => {
        await client.cancel(id);
        return {
          value: { workflowId: id, cancellationRequested: true },
          text: () =>
            `cancellation requested for ${id}: it undoes what it did, then ends cancelled (amiflow watch ${id})`,
        };
      }),
    );
}

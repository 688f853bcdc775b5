#!/usr/bin/env node
/**
 * amiflow command line. Bad input is refused here, with the field named, before anything starts.
 *
 *   amiflow image create --region eu-west-1 --instance i-0abc… --name web-2026-11-28 --mode stop [--watch]
 *   amiflow instance migrate --region eu-west-1 --instance i-0abc… --to-az eu-west-1b --source terminate [--watch]
 *   amiflow status <workflow-id> [--json]
 *   amiflow watch <workflow-id>
 *   amiflow result <workflow-id>
 *   amiflow cancel <workflow-id>
 */
import { parseArgs } from 'node:util';
import type { ImageFromInstanceInput } from '../workflows/contracts';
import { ConfigError } from '../worker/config';
import { InvalidInputError, imageFromInstanceIssues } from '../workflows/validation';
import { followRun, parseTagFlags } from './cli-common';
import { AmiflowClient, RunFailedError } from './index';
import { progressPrinter, renderProgress } from './render';
import { MIGRATE_USAGE, isMigrateResult, parseInstanceMigrate, runMigrate } from './cli-migrate';
import { formatMigrateResult } from './migration';
import {
  DISTRIBUTION_USAGE,
  DistributionUsageError,
  formatDistributionResult,
  parseImageCopy,
  parseImageShare,
  parseImageUnshare,
  parseShareExpiry,
  runCopy,
  runShare,
  runShareExpiry,
  runUnshare,
} from './cli-distribution';
import { GUARDRAILS_USAGE, isGuardrailsCommand, parseGuardrails, runGuardrails } from './cli-guardrails';
import { SCHEDULE_USAGE, ScheduleUsageError, prepareScheduleCommand } from './cli-schedules';
import { PlanFileError } from './plan-file';

export const USAGE = `usage:
  amiflow image create --region <region> --instance <i-…> --name <image name> [--mode stop|reboot|no-reboot]
                       [--account <12 digits>] [--description <text>] [--tag key=value]…
                       [--instance-timeout <seconds>] [--available-timeout <seconds>]
                       [--id <workflow id>] [--watch | --no-wait] [--json]
${DISTRIBUTION_USAGE}
${MIGRATE_USAGE}
${GUARDRAILS_USAGE}
${SCHEDULE_USAGE}
  amiflow status <workflow-id> [--json]
  amiflow watch <workflow-id>
  amiflow result <workflow-id>
  amiflow cancel <workflow-id>

modes: stop (stop, image, start again: consistent, short downtime), reboot (EC2 default: EC2 reboots
the instance), no-reboot (no downtime, crash-consistent only: OS buffers are not flushed).
Connection: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, AMIFLOW_TASK_QUEUE (see README).`;

export class UsageError extends Error {
  override name = 'UsageError';
}

function seconds(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  // Left to the shared validator to bound; here only "is it a number at all".
  if (raw.trim() === '' || Number.isNaN(n))
    throw new UsageError(`--${flag}: '${raw}' is not a number of seconds`);
  return n;
}

/** Parses `image create` flags into a validated input; throws UsageError / InvalidInputError. */
export function parseImageCreate(argv: string[]): {
  input: ImageFromInstanceInput;
  id?: string;
  watch: boolean;
  wait: boolean;
  json: boolean;
} {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      region: { type: 'string' },
      account: { type: 'string' },
      instance: { type: 'string' },
      name: { type: 'string' },
      description: { type: 'string' },
      mode: { type: 'string', default: 'reboot' },
      tag: { type: 'string', multiple: true },
      'instance-timeout': { type: 'string' },
      'available-timeout': { type: 'string' },
      id: { type: 'string' },
      watch: { type: 'boolean', default: false },
      'no-wait': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const instanceTimeout = seconds('instance-timeout', values['instance-timeout']);
  const availableTimeout = seconds('available-timeout', values['available-timeout']);
  const input: ImageFromInstanceInput = {
    region: values.region ?? process.env.AWS_REGION ?? '',
    instanceId: values.instance ?? '',
    imageName: values.name ?? '',
    mode: values.mode as ImageFromInstanceInput['mode'],
    ...(values.account !== undefined ? { accountId: values.account } : {}),
    ...(values.description !== undefined ? { description: values.description } : {}),
    ...(values.tag ? { tags: parseTagFlags(values.tag, (m) => new UsageError(m)) } : {}),
    ...(instanceTimeout !== undefined || availableTimeout !== undefined
      ? {
          timeouts: {
            ...(instanceTimeout !== undefined ? { instanceStateSeconds: instanceTimeout } : {}),
            ...(availableTimeout !== undefined ? { imageAvailableSeconds: availableTimeout } : {}),
          },
        }
      : {}),
  };
  const issues = imageFromInstanceIssues(input);
  if (issues.length) throw new InvalidInputError(issues.map((i) => ({ ...i, field: flagFor(i.field) })));
  if (values.watch && values['no-wait']) throw new UsageError('--watch and --no-wait exclude each other');
  return {
    input,
    ...(values.id ? { id: values.id } : {}),
    watch: values.watch,
    wait: !values['no-wait'],
    json: values.json,
  };
}

/** Names a field by the flag the user typed. */
function flagFor(field: string): string {
  const map: Record<string, string> = {
    region: '--region',
    accountId: '--account',
    instanceId: '--instance',
    imageName: '--name',
    description: '--description',
    mode: '--mode',
    'timeouts.instanceStateSeconds': '--instance-timeout',
    'timeouts.imageAvailableSeconds': '--available-timeout',
  };
  if (field.startsWith('tags.')) return `--tag ${field.slice(5)}`;
  return map[field] ?? field;
}

function oneId(argv: string[], cmd: string): { id: string; json: boolean } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw new UsageError(`${cmd} takes one workflow id`);
  return { id: positionals[0] as string, json: values.json };
}

export async function run(
  argv: string[],
  connect: () => Promise<AmiflowClient> = () => AmiflowClient.connect(),
): Promise<number> {
  const [cmd, sub, ...rest] = argv;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  // Parse and validate everything before connecting to anything.
  let action: (client: AmiflowClient) => Promise<number>;
  if (cmd === 'image' && sub === 'create') {
    const parsed = parseImageCreate(rest);
    action = async (client) => {
      const started = await client.startImageFromInstance(
        parsed.input,
        parsed.id ? { workflowId: parsed.id } : {},
      );
      await followRun(client, started, parsed, progressPrinter(process.stderr), formatResult);
      return 0;
    };
  } else if (cmd === 'image' && sub === 'share') {
    const parsed = parseImageShare(rest);
    action = (client) => runShare(client, parsed, progressPrinter(process.stderr));
  } else if (cmd === 'image' && sub === 'share-expiry') {
    const parsed = parseShareExpiry(rest);
    action = (client) => runShareExpiry(client, parsed);
  } else if (cmd === 'image' && sub === 'unshare') {
    const parsed = parseImageUnshare(rest);
    action = (client) => runUnshare(client, parsed);
  } else if (cmd === 'image' && sub === 'copy') {
    const parsed = parseImageCopy(rest);
    action = (client) => runCopy(client, parsed, progressPrinter(process.stderr));
  } else if (isGuardrailsCommand(cmd, sub)) {
    const parsed = parseGuardrails(cmd, sub as string, rest);
    action = (client) => runGuardrails(client, parsed);
  } else if (['plan', 'schedule', 'golden', 'backup'].includes(cmd) && sub !== undefined) {
    const prepared = await prepareScheduleCommand(cmd, sub, rest, progressPrinter(process.stderr));
    if (!prepared) return 0; // done without a connection (plan validate)
    action = prepared;
  } else if (cmd === 'instance' && sub === 'migrate') {
    const parsed = parseInstanceMigrate(rest);
    action = (client) => runMigrate(client, parsed, progressPrinter(process.stderr));
  } else if (cmd === 'status' && sub !== undefined) {
    const { id, json } = oneId([sub, ...rest], 'status');
    action = async (client) => {
      const s = await client.status(id);
      console.log(
        json
          ? JSON.stringify(s, null, 2)
          : `${id}: ${s.status}\n${s.progress ? renderProgress(s.progress) : '(progress unavailable: no worker answered)'}`,
      );
      return 0;
    };
  } else if (cmd === 'watch' && sub !== undefined) {
    const { id } = oneId([sub, ...rest], 'watch');
    action = async (client) => {
      const result = await client.watch<unknown>(id, progressPrinter(process.stderr));
      console.log(
        isMigrateResult(result)
          ? formatMigrateResult(result)
          : (formatDistributionResult(result) ?? formatResult(result as Parameters<typeof formatResult>[0])),
      );
      return 0;
    };
  } else if (cmd === 'result' && sub !== undefined) {
    const { id } = oneId([sub, ...rest], 'result');
    action = async (client) => {
      console.log(JSON.stringify(await client.result(id), null, 2));
      return 0;
    };
  } else if (cmd === 'cancel' && sub !== undefined) {
    const { id } = oneId([sub, ...rest], 'cancel');
    action = async (client) => {
      await client.cancel(id);
      console.log(
        `cancellation requested for ${id}: it undoes what it did, then ends cancelled (amiflow watch ${id})`,
      );
      return 0;
    };
  } else {
    throw new UsageError(`unknown command '${[cmd, sub].filter(Boolean).join(' ')}'`);
  }
  const client = await connect();
  try {
    return await action(client);
  } finally {
    await client.close();
  }
}

function formatResult(r: {
  imageId: string;
  imageName: string;
  region: string;
  snapshotIds: string[];
  consistencyNote: string;
  instanceId: string;
  instanceFinalState: string;
  downtimeSeconds: number;
}): string {
  return [
    `image ${r.imageId} '${r.imageName}' is available in ${r.region}`,
    `  snapshots: ${r.snapshotIds.join(', ') || '(none)'}`,
    `  ${r.consistencyNote}`,
    `  instance ${r.instanceId} is ${r.instanceFinalState}${r.downtimeSeconds > 0 ? ` (downtime ${r.downtimeSeconds.toFixed(1)} s)` : ''}`,
  ].join('\n');
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  try {
    return await run(argv);
  } catch (err) {
    if (
      err instanceof InvalidInputError ||
      err instanceof UsageError ||
      err instanceof DistributionUsageError ||
      err instanceof ScheduleUsageError ||
      err instanceof PlanFileError ||
      err instanceof ConfigError ||
      isArgError(err)
    ) {
      console.error(`amiflow: ${err.message}`);
      if (
        err instanceof UsageError ||
        err instanceof DistributionUsageError ||
        err instanceof ScheduleUsageError ||
        isArgError(err)
      )
        console.error(USAGE);
      return 2;
    }
    if (err instanceof RunFailedError) {
      console.error(
        `amiflow: ${err.cancelled ? 'cancelled' : `failed${err.failureType ? ` (${err.failureType})` : ''}`}: ${err.message}`,
      );
      return err.cancelled ? 130 : 1;
    }
    console.error(`amiflow: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

function isArgError(err: unknown): err is Error {
  return (
    err instanceof Error &&
    typeof (err as Error & { code?: unknown }).code === 'string' &&
    (err as Error & { code: string }).code.startsWith('ERR_PARSE_ARGS')
  );
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}

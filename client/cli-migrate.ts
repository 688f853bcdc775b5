/**
 * The CLI's `instance migrate`: flags parsed and validated (naming the flag) before anything
 * connects, then the run started through the library.
 */
import { parseArgs } from 'node:util';
import type { MigrateInstanceInput, MigrateInstanceResult, WorkflowProgress } from '../workflows/contracts';
import { migrateInstanceIssues } from '../workflows/migrate-validation';
import type { InputIssue } from '../workflows/validation';
import { InvalidInputError } from '../workflows/validation';
import { followRun } from './cli-common';
import type { AmiflowClient } from './index';
import { formatMigrateResult } from './migration';

export const MIGRATE_USAGE = `  amiflow instance migrate --region <region> --instance <i-…> (--to-az <AZ> | --subnet <subnet-…>)
                           --source keep|stop|terminate [--elastic-ip move|leave] [--leave-extra-enis]
                           [--instance-type <type>] [--security-group <sg-…>]… [--keep-image] [--image-name <name>]
                           [--account <12 digits>] [--instance-timeout <s>] [--available-timeout <s>]
                           [--ready-timeout <s>] [--id <workflow id>] [--watch | --no-wait] [--json]`;

export interface ParsedMigrate {
  input: MigrateInstanceInput;
  id?: string;
  watch: boolean;
  wait: boolean;
  json: boolean;
}

/** The flag the user typed for each input field. */
const FLAGS: Record<string, string> = {
  region: '--region',
  accountId: '--account',
  instanceId: '--instance',
  targetAvailabilityZone: '--to-az',
  sourceAction: '--source',
  keepImage: '--keep-image',
  imageName: '--image-name',
  elasticIp: '--elastic-ip',
  extraNetworkInterfaces: '--leave-extra-enis',
  'overrides.instanceType': '--instance-type',
  'overrides.subnetId': '--subnet',
  'overrides.securityGroupIds': '--security-group',
  'timeouts.instanceStateSeconds': '--instance-timeout',
  'timeouts.imageAvailableSeconds': '--available-timeout',
  'timeouts.instanceReadySeconds': '--ready-timeout',
};

function flagFor(field: string): string {
  const group = /^overrides\.securityGroupIds\.(\d+)$/.exec(field);
  if (group) return `--security-group #${Number(group[1]) + 1}`;
  return FLAGS[field] ?? field;
}

/** Parses `instance migrate` flags into a validated input; throws InvalidInputError naming the flags. */
export function parseInstanceMigrate(argv: string[]): ParsedMigrate {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      region: { type: 'string' },
      account: { type: 'string' },
      instance: { type: 'string' },
      'to-az': { type: 'string' },
      subnet: { type: 'string' },
      source: { type: 'string' },
      'keep-image': { type: 'boolean', default: false },
      'image-name': { type: 'string' },
      'elastic-ip': { type: 'string' },
      'leave-extra-enis': { type: 'boolean', default: false },
      'instance-type': { type: 'string' },
      'security-group': { type: 'string', multiple: true },
      'instance-timeout': { type: 'string' },
      'available-timeout': { type: 'string' },
      'ready-timeout': { type: 'string' },
      id: { type: 'string' },
      watch: { type: 'boolean', default: false },
      'no-wait': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const issues: InputIssue[] = [];
  if (positionals.length)
    issues.push({ field: '(arguments)', message: `unexpected argument '${positionals[0]}'` });
  const seconds = (flag: string): number | undefined => {
    const raw = values[flag as 'ready-timeout'];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (raw.trim() === '' || Number.isNaN(n)) {
      issues.push({ field: `--${flag}`, message: `'${raw}' is not a number of seconds` });
      return undefined;
    }
    return n;
  };
  const instanceStateSeconds = seconds('instance-timeout');
  const imageAvailableSeconds = seconds('available-timeout');
  const instanceReadySeconds = seconds('ready-timeout');
  const timeouts = {
    ...(instanceStateSeconds !== undefined ? { instanceStateSeconds } : {}),
    ...(imageAvailableSeconds !== undefined ? { imageAvailableSeconds } : {}),
    ...(instanceReadySeconds !== undefined ? { instanceReadySeconds } : {}),
  };
  const overrides = {
    ...(values['instance-type'] !== undefined ? { instanceType: values['instance-type'] } : {}),
    ...(values.subnet !== undefined ? { subnetId: values.subnet } : {}),
    ...(values['security-group'] ? { securityGroupIds: values['security-group'] } : {}),
  };
  const input = {
    region: values.region ?? process.env.AWS_REGION ?? '',
    instanceId: values.instance ?? '',
    sourceAction: values.source as MigrateInstanceInput['sourceAction'],
    ...(values.account !== undefined ? { accountId: values.account } : {}),
    ...(values['to-az'] !== undefined ? { targetAvailabilityZone: values['to-az'] } : {}),
    ...(values['keep-image'] ? { keepImage: true } : {}),
    ...(values['image-name'] !== undefined ? { imageName: values['image-name'] } : {}),
    ...(values['elastic-ip'] !== undefined
      ? { elasticIp: values['elastic-ip'] as MigrateInstanceInput['elasticIp'] }
      : {}),
    ...(values['leave-extra-enis'] ? { extraNetworkInterfaces: 'leave' as const } : {}),
    ...(Object.keys(overrides).length ? { overrides } : {}),
    ...(Object.keys(timeouts).length ? { timeouts } : {}),
  } satisfies MigrateInstanceInput;
  issues.push(...migrateInstanceIssues(input).map((i) => ({ ...i, field: flagFor(i.field) })));
  if (values.watch && values['no-wait'])
    issues.push({ field: '--watch', message: 'excludes --no-wait: choose one' });
  if (issues.length) throw new InvalidInputError(issues);
  return {
    input,
    ...(values.id ? { id: values.id } : {}),
    watch: values.watch,
    wait: !values['no-wait'],
    json: values.json,
  };
}

export function isMigrateResult(value: unknown): value is MigrateInstanceResult {
  return (
    typeof value === 'object' && value !== null && 'newInstanceId' in value && 'sourceFinalState' in value
  );
}

export async function runMigrate(
  client: AmiflowClient,
  parsed: ParsedMigrate,
  onProgress: (p: WorkflowProgress) => void,
): Promise<number> {
  const started = await client.startMigrateInstance(parsed.input, parsed.id ? { workflowId: parsed.id } : {});
  await followRun<MigrateInstanceResult>(client, started, parsed, onProgress, formatMigrateResult);
  return 0;
}

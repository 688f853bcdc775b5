/**
 * `amiflow instance migrate`: move an instance to another Availability Zone or subnet. Flags are
 * declared once below; the input is built from them and validated (naming the flag) before
 * anything connects.
 */
import type { Command } from 'commander';
import type { MigrateInstanceInput, MigrateInstanceResult } from '../../contracts';
import { ELASTIC_IP_ACTIONS } from '../../contracts';
import { migrateInstanceIssues } from '../../workflows/migrate-validation';
import { formatMigrateResult } from '../migration';
import type { CliContext } from './context';
import { startAndFollow } from './context';
import type { FlagSpec } from './flags';
import {
  ACCOUNT,
  FOLLOW_FLAGS,
  REGION,
  addFlags,
  followIssues,
  inputFrom,
  parseDuration,
  refuse,
} from './flags';

export const MIGRATE_FLAGS: readonly FlagSpec[] = [
  { ...REGION, help: 'AWS region of the instance' },
  { flags: '--instance <i-…>', help: 'the instance to move', field: 'instanceId' },
  {
    flags: '--to-az <AZ>',
    help: 'target Availability Zone (or give --subnet)',
    field: 'targetAvailabilityZone',
  },
  { flags: '--subnet <subnet-…>', help: 'target subnet (its AZ is the target)', field: 'overrides.subnetId' },
  {
    flags: '--source <action>',
    help: 'what happens to the source once the new instance passed its checks',
    field: 'sourceAction',
    choices: ['keep', 'stop', 'terminate'],
  },
  {
    flags: '--elastic-ip <action>',
    help: 'move the Elastic IP to the new instance, or leave it',
    field: 'elasticIp',
    choices: ELASTIC_IP_ACTIONS,
  },
  {
    flags: '--leave-extra-enis',
    help: 'leave extra network interfaces on the source (refused otherwise)',
    field: 'extraNetworkInterfaces',
    value: 'leave',
  },
  {
    flags: '--instance-type <type>',
    help: 'instance type of the new instance',
    field: 'overrides.instanceType',
  },
  {
    flags: '--security-group <sg-…>',
    help: 'security group of the new instance (repeatable)',
    field: 'overrides.securityGroupIds',
    repeat: true,
  },
  { flags: '--keep-image', help: 'keep the image the move was made from', field: 'keepImage' },
  { flags: '--image-name <name>', help: 'name of that image', field: 'imageName' },
  ACCOUNT,
  {
    flags: '--instance-timeout <duration>',
    help: 'longest wait for an instance state change',
    field: 'timeouts.instanceStateSeconds',
    parse: parseDuration,
  },
  {
    flags: '--available-timeout <duration>',
    help: 'longest wait for the image',
    field: 'timeouts.imageAvailableSeconds',
    parse: parseDuration,
  },
  {
    flags: '--ready-timeout <duration>',
    help: 'longest wait for the new instance to run and pass its status checks',
    field: 'timeouts.instanceReadySeconds',
    parse: parseDuration,
  },
  ...FOLLOW_FLAGS,
];

export function registerInstance(program: Command, ctx: CliContext): void {
  const instance = program.command('instance').description('move instances');
  addFlags(
    instance.command('migrate').description('move an instance to another Availability Zone or subnet'),
    MIGRATE_FLAGS,
  ).action(async (opts: Record<string, unknown>, cmd: Command) => {
    const input = inputFrom(MIGRATE_FLAGS, opts) as unknown as MigrateInstanceInput;
    refuse(MIGRATE_FLAGS, [...migrateInstanceIssues(input), ...followIssues(opts)]);
    await startAndFollow<MigrateInstanceResult>(ctx, cmd, opts, {
      start: (client, options) => client.startMigrateInstance(input, options),
      format: formatMigrateResult,
    });
  });
}

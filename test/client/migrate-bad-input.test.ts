/**
 * Bad migration input is refused by the client library and by `amiflow instance migrate` with a
 * message naming the field (or the flag), before anything starts: no Temporal call, so no workflow,
 * so no AWS call. (The workflow refuses the same inputs again at its start: test/workflows.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MigrateInstanceInput } from '../../client';
import { InvalidInputError } from '../../client';
import { run } from '../../client/cli';
import { migrateInstance } from '../../workflows';
import type { BadFlags, BadInput } from './fixtures';
import {
  INSTANCE,
  MIGRATE_ARGV,
  mustNotConnect,
  recordingClient,
  refusesBadFlags,
  refusesBadInput,
} from './fixtures';

const GOOD: MigrateInstanceInput = {
  ...INSTANCE,
  targetAvailabilityZone: 'eu-west-1b',
  sourceAction: 'stop',
};

const BAD: BadInput[] = [
  ['malformed instance id', { instanceId: 'i-12' }, 'instanceId'],
  ['missing instance id', { instanceId: undefined }, 'instanceId'],
  ['bad region', { region: 'eu-westish-1' }, 'region'],
  ['account id of 13 digits', { accountId: '1234567890123' }, 'accountId'],
  ['AZ of another region', { targetAvailabilityZone: 'us-east-1b' }, 'targetAvailabilityZone'],
  ['AZ that is a region', { targetAvailabilityZone: 'eu-west-1' }, 'targetAvailabilityZone'],
  ['AZ with capitals', { targetAvailabilityZone: 'eu-west-1B' }, 'targetAvailabilityZone'],
  ['neither AZ nor subnet', { targetAvailabilityZone: undefined }, 'targetAvailabilityZone'],
  ['missing source action', { sourceAction: undefined }, 'sourceAction'],
  ['unknown source action', { sourceAction: 'delete' }, 'sourceAction'],
  ['unknown Elastic IP action', { elasticIp: 'release' }, 'elasticIp'],
  ['extra ENIs other than leave', { extraNetworkInterfaces: 'move' }, 'extraNetworkInterfaces'],
  ['keepImage not a boolean', { keepImage: 'yes' }, 'keepImage'],
  ['image name with forbidden characters', { imageName: 'web#1!' }, 'imageName'],
  ['image name of 2 characters', { imageName: 'ab' }, 'imageName'],
  ['malformed instance type', { overrides: { instanceType: 'large' } }, 'overrides.instanceType'],
  ['malformed subnet id', { overrides: { subnetId: 'subnet-xyz' } }, 'overrides.subnetId'],
  ['empty security group list', { overrides: { securityGroupIds: [] } }, 'overrides.securityGroupIds'],
  [
    'malformed security group id',
    { overrides: { securityGroupIds: ['sg-0123456789abcdef0', 'web'] } },
    'overrides.securityGroupIds[1]',
  ],
  [
    'duplicate security group',
    { overrides: { securityGroupIds: ['sg-0123456789abcdef0', 'sg-0123456789abcdef0'] } },
    'overrides.securityGroupIds',
  ],
  ['unknown override', { overrides: { keyName: 'ops' } }, 'overrides.keyName'],
  [
    'ready timeout under a minute',
    { timeouts: { instanceReadySeconds: 10 } },
    'timeouts.instanceReadySeconds',
  ],
  ['negative image timeout', { timeouts: { imageAvailableSeconds: -1 } }, 'timeouts.imageAvailableSeconds'],
  ['unknown timeout', { timeouts: { launchSeconds: 60 } }, 'timeouts.launchSeconds'],
  ['unknown field', { deleteSource: true }, 'deleteSource'],
];

describe('client library refuses bad migration input before starting anything', () => {
  refusesBadInput(GOOD, BAD, (client, input) => client.startMigrateInstance(input));

  test('a subnet alone names the target: no AZ needed', async () => {
    const { client, calls } = recordingClient();
    await client.startMigrateInstance({
      ...GOOD,
      targetAvailabilityZone: undefined,
      overrides: { subnetId: 'subnet-0123456789abcdef0' },
    });
    assert.deepEqual(calls, ['start']);
  });

  test('a good input is started once, as migrateInstance, with a deterministic id per instance', async () => {
    const { client, recorded } = recordingClient();
    const started = await client.startMigrateInstance({ ...GOOD, accountId: '111122223333' });
    assert.equal(started.workflowId, 'migrate-instance/eu-west-1/111122223333/i-0123456789abcdef0');
    assert.equal(recorded.length, 1);
    const [workflow, options] = recorded[0]?.args as [unknown, { staticSummary: string; workflowId: string }];
    assert.equal(workflow, migrateInstance);
    assert.equal(options.workflowId, started.workflowId);
    assert.equal(options.staticSummary, 'Migrate i-0123456789abcdef0 → eu-west-1b (source: stop, eu-west-1)');
  });
});

describe('amiflow instance migrate refuses bad input before connecting', () => {
  const base = [...MIGRATE_ARGV, '--source', 'terminate'];
  const cases: BadFlags[] = [
    ['bad instance', ['--instance', 'i-1'], /--instance: 'i-1' is not an EC2 instance id/],
    [
      'AZ of another region',
      ['--to-az', 'us-east-1a'],
      /--to-az: 'us-east-1a' is not an Availability Zone of region 'eu-west-1'/,
    ],
    ['bad source action', ['--source', 'archive'], /--source: 'archive' is not an action/],
    [
      'bad Elastic IP action',
      ['--elastic-ip', 'keep'],
      /--elastic-ip: 'keep' is not an Elastic IP action; use move or leave/,
    ],
    ['bad subnet', ['--subnet', 'sub-1'], /--subnet: 'sub-1' is not a subnet id/],
    [
      'bad second security group',
      ['--security-group', 'sg-0123456789abcdef0', '--security-group', 'db'],
      /--security-group #2: 'db' is not a security group id/,
    ],
    ['bad instance type', ['--instance-type', 'huge'], /--instance-type: 'huge' is not an EC2 instance type/],
    ['timeout not a number', ['--ready-timeout', 'soon'], /--ready-timeout: 'soon' is not a duration/],
    [
      'timeout too short',
      ['--ready-timeout', '5'],
      /--ready-timeout: must be a whole number of seconds from 60/,
    ],
    ['bad image name', ['--image-name', 'a|b'], /--image-name: contains characters EC2 refuses/],
    ['watch and no-wait', ['--watch', '--no-wait'], /--watch: excludes --no-wait/],
    ['unknown flag', ['--delete-source'], /unknown option '--delete-source'/],
  ];
  refusesBadFlags(base, cases);

  test('a missing --source is refused, naming the choices', async () => {
    await assert.rejects(
      run([...MIGRATE_ARGV], mustNotConnect),
      /--source: is required: say what happens to the source once the new instance passed its checks: keep, stop, terminate/,
    );
  });

  test('every problem is named at once, by its flag', async () => {
    await assert.rejects(
      run(['instance', 'migrate', '--region', 'eu-west-1', '--instance', 'i-zz'], mustNotConnect),
      (e: unknown) =>
        e instanceof InvalidInputError &&
        ['--instance', '--to-az', '--source'].every((f) => e.issues.some((i) => i.field === f)),
    );
  });
});

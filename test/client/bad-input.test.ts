/**
 * Bad input is refused by the client library and the CLI with a message naming the field, before
 * anything is started: no Temporal call, so no workflow, so no AWS call. (The workflow refuses the
 * same inputs again at its start: test/workflows.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError, run } from '../../client/cli';
import type { ImageFromInstanceInput } from '../../workflows/contracts';
import type { BadFlags, BadInput } from './fixtures';
import {
  IMAGE_CREATE_ARGV,
  INSTANCE,
  mustNotConnect,
  recordingClient,
  refusesBadFlags,
  refusesBadInput,
} from './fixtures';

const GOOD: ImageFromInstanceInput = {
  ...INSTANCE,
  imageName: 'web-2026-11-28',
  mode: 'stop',
};

const BAD: BadInput[] = [
  ['malformed instance id', { instanceId: 'i-xyz' }, 'instanceId'],
  ['instance id with capitals', { instanceId: 'i-0123456789ABCDEF0' }, 'instanceId'],
  ['missing instance id', { instanceId: undefined }, 'instanceId'],
  ['unknown mode', { mode: 'snapshot' }, 'mode'],
  ['empty name', { imageName: '' }, 'imageName'],
  ['name of 2 characters', { imageName: 'ab' }, 'imageName'],
  ['name over 128 characters', { imageName: 'a'.repeat(129) }, 'imageName'],
  ['name with forbidden characters', { imageName: 'web#1!' }, 'imageName'],
  ['name with leading space', { imageName: ' web-1' }, 'imageName'],
  ['bad region', { region: 'europe-west' }, 'region'],
  ['missing region', { region: '' }, 'region'],
  ['account id of 11 digits', { accountId: '12345678901' }, 'accountId'],
  ['account id as a number', { accountId: 123456789012 }, 'accountId'],
  ['negative timeout', { timeouts: { imageAvailableSeconds: -5 } }, 'timeouts.imageAvailableSeconds'],
  ['fractional timeout', { timeouts: { instanceStateSeconds: 90.5 } }, 'timeouts.instanceStateSeconds'],
  [
    'timeout over a week',
    { timeouts: { imageAvailableSeconds: 8 * 24 * 3600 } },
    'timeouts.imageAvailableSeconds',
  ],
  ['unknown timeout', { timeouts: { stopSeconds: 60 } }, 'timeouts.stopSeconds'],
  [
    'reserved tag prefix aws:',
    { tags: { 'aws:cloudformation:stack': 'x' } },
    'tags.aws:cloudformation:stack',
  ],
  ['reserved tag prefix amiflow:', { tags: { 'amiflow:workflow-id': 'x' } }, 'tags.amiflow:workflow-id'],
  ['tag value not a string', { tags: { owner: 7 } }, 'tags.owner'],
  ['tag value over 256 characters', { tags: { owner: 'x'.repeat(257) } }, 'tags.owner'],
  ['description over 255 characters', { description: 'd'.repeat(256) }, 'description'],
  ['unknown field', { Mode: 'stop' }, 'Mode'],
  ...appConsistentBadInputs(),
];

/** Mode app-consistent (issue 15): each one refused before anything starts, naming the field. */
function appConsistentBadInputs(): BadInput[] {
  const app = (appConsistent: unknown): Record<string, unknown> => ({
    mode: 'app-consistent',
    appConsistent,
  });
  const fsfreeze = (extra: Record<string, unknown>) => app({ quiesce: { kind: 'fsfreeze', ...extra } });
  const doc = {
    kind: 'document',
    preDocument: 'Acme-FlushAndLock',
    postDocument: 'Acme-Unlock',
    maxFreezeParameter: 'maxSeconds',
  };
  const A = 'appConsistent';
  return [
    ['app-consistent options with another mode', { mode: 'no-reboot', appConsistent: {} }, A],
    ['freeze limit below 5 s', app({ maxFreezeSeconds: 2 }), `${A}.maxFreezeSeconds`],
    ['freeze limit over 300 s', app({ maxFreezeSeconds: 301 }), `${A}.maxFreezeSeconds`],
    ['fractional freeze limit', app({ maxFreezeSeconds: 12.5 }), `${A}.maxFreezeSeconds`],
    ['freeze limit as a string', app({ maxFreezeSeconds: '30' }), `${A}.maxFreezeSeconds`],
    ['pre timeout below 10 s', app({ preTimeoutSeconds: 5 }), `${A}.preTimeoutSeconds`],
    ['post timeout over 900 s', app({ postTimeoutSeconds: 901 }), `${A}.postTimeoutSeconds`],
    ['unknown pre-failure policy', app({ onPreFailure: 'ignore' }), `${A}.onPreFailure`],
    ['unknown app-consistent option', app({ freezeSeconds: 30 }), `${A}.freezeSeconds`],
    ['unknown quiesce kind', app({ quiesce: { kind: 'vss' } }), `${A}.quiesce.kind`],
    ['quiesce without a kind', app({ quiesce: {} }), `${A}.quiesce.kind`],
    [
      'root freeze without the explicit flag',
      fsfreeze({ mountPoints: ['/data', '/'] }),
      `${A}.quiesce.mountPoints`,
    ],
    ['relative mount point', fsfreeze({ mountPoints: ['data'] }), `${A}.quiesce.mountPoints[0]`],
    [
      'mount point with shell characters',
      fsfreeze({ mountPoints: ['/data;reboot'] }),
      `${A}.quiesce.mountPoints[0]`,
    ],
    ['mount point with ..', fsfreeze({ mountPoints: ['/data/../etc'] }), `${A}.quiesce.mountPoints[0]`],
    ['empty mount point list', fsfreeze({ mountPoints: [] }), `${A}.quiesce.mountPoints`],
    ['mount point listed twice', fsfreeze({ mountPoints: ['/data', '/data'] }), `${A}.quiesce.mountPoints`],
    ['freezeRoot not a boolean', fsfreeze({ freezeRoot: 'yes' }), `${A}.quiesce.freezeRoot`],
    ['unknown fsfreeze option', fsfreeze({ devices: ['/dev/nvme1n1'] }), `${A}.quiesce.devices`],
    [
      'script without its post (thaw) script',
      app({ quiesce: { kind: 'script', pre: 'mysql -e "FLUSH TABLES WITH READ LOCK"' } }),
      `${A}.quiesce.post`,
    ],
    ['empty pre script', app({ quiesce: { kind: 'script', pre: '', post: 'true' } }), `${A}.quiesce.pre`],
    [
      'script over 16000 characters',
      app({ quiesce: { kind: 'script', pre: 'x'.repeat(16_001), post: 'true' } }),
      `${A}.quiesce.pre`,
    ],
    [
      'document without maxFreezeParameter (no watchdog)',
      app({ quiesce: { ...doc, maxFreezeParameter: undefined } }),
      `${A}.quiesce.maxFreezeParameter`,
    ],
    ['malformed document name', app({ quiesce: { ...doc, preDocument: 'a b' } }), `${A}.quiesce.preDocument`],
    [
      'document parameter not a list',
      app({ quiesce: { ...doc, preParameters: { db: 'main' } } }),
      `${A}.quiesce.preParameters.db`,
    ],
  ];
}

describe('client library refuses bad input before starting anything', () => {
  refusesBadInput(GOOD, BAD, (client, input) => client.startImageFromInstance(input));

  test('a good input is started once, with a deterministic workflow id', async () => {
    const { client, calls } = recordingClient();
    const started = await client.startImageFromInstance(GOOD);
    assert.deepEqual(calls, ['start']);
    assert.equal(started.workflowId, 'image-from-instance/eu-west-1/self/i-0123456789abcdef0/web-2026-11-28');
  });
});

describe('CLI refuses bad input before connecting', () => {
  const cases: BadFlags[] = [
    ['bad instance flag', ['--instance', 'i-1'], /--instance: 'i-1' is not an EC2 instance id/],
    ['bad mode', ['--mode', 'fast'], /--mode: 'fast' is not a consistency mode/],
    ['bad account', ['--account', 'abc'], /--account: 'abc' is not an AWS account id/],
    ['tag without =', ['--tag', 'owner'], /--tag: 'owner' must be key=value/],
    ['duplicate tag', ['--tag', 'a=1', '--tag', 'a=2'], /key 'a' given twice/],
    ['reserved tag', ['--tag', 'aws:x=1'], /--tag aws:x: tag keys starting with 'aws:' are reserved/],
    [
      'timeout not a number',
      ['--available-timeout', 'soon'],
      /--available-timeout: 'soon' is not a duration/,
    ],
    ['negative timeout', ['--instance-timeout=-1'], /--instance-timeout: must be a whole number/],
    ['unknown flag', ['--force'], /unknown option '--force'/],
    ['watch and no-wait', ['--watch', '--no-wait'], /exclude each other/],
  ];
  refusesBadFlags([...IMAGE_CREATE_ARGV, '--mode', 'stop'], cases);

  test('unknown command is a usage error', async () => {
    await assert.rejects(
      run(['image', 'delete'], mustNotConnect),
      (e: unknown) => e instanceof UsageError && /unknown command 'image delete'/.test(e.message),
    );
  });
});

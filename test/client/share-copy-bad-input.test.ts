/**
 * Bad share, unshare, share-expiry and copy input is refused by the client library and the CLI with a
 * message naming the field (or flag), before anything is started: no Temporal call, so no workflow,
 * so no AWS call. (The workflows refuse the same inputs again at their start.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { AmiflowClient, InvalidInputError } from '../../client';
import { run } from '../../client/cli';
import type { CopyImageInput, ShareImageInput, ShareRecord } from '../../workflows/contracts';

const OWNER = '111122223333';
const ORG = 'arn:aws:organizations::111122223333:organization/o-a1b2c3d4e5';
const OU = 'arn:aws:organizations::111122223333:ou/o-a1b2c3d4e5/ou-ab12-cdef3456';
const KEY_US = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

const SHARE: ShareImageInput = {
  region: 'eu-west-1',
  accountId: OWNER,
  imageId: 'ami-0123456789abcdef0',
  targets: { accountIds: ['444455556666'] },
};
const COPY: CopyImageInput = {
  region: 'eu-west-1',
  accountId: OWNER,
  imageId: 'ami-0123456789abcdef0',
  destinations: [{ region: 'us-east-1' }, { region: 'eu-central-1', accountId: '444455556666' }],
};
const RECORD: ShareRecord = {
  image: { region: 'eu-west-1', accountId: OWNER, imageId: 'ami-0123456789abcdef0' },
  sharedImageId: 'ami-0123456789abcdef0',
  added: { launchPermissions: [{ userId: '444455556666' }], snapshotPermissions: [], grants: [] },
};

/** A Temporal client that records every call made through it. */
function recordingClient(): { client: AmiflowClient; calls: string[] } {
  const calls: string[] = [];
  const record = (prop: string | symbol) => () => {
    calls.push(String(prop));
    return Promise.resolve({ firstExecutionRunId: 'run-1' });
  };
  const workflow = new Proxy(
    {},
    {
      get: (_t, prop) =>
        prop === 'getHandle'
          ? () => new Proxy({}, { get: (_h, p) => record(`handle.${String(p)}`) })
          : record(prop),
    },
  );
  return { client: AmiflowClient.fromClient({ workflow } as unknown as Client, 'amiflow'), calls };
}

async function assertRefused(
  p: Promise<unknown>,
  field: string,
  calls: string[],
  message?: RegExp,
): Promise<void> {
  const err = await p.then(
    () => assert.fail('the input was accepted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof InvalidInputError, `expected InvalidInputError, got ${String(err)}`);
  assert.ok(
    err.issues.some((i) => i.field === field),
    `issues ${JSON.stringify(err.issues)} should name ${field}`,
  );
  if (message) assert.match(err.message, message);
  assert.deepEqual(calls, [], 'nothing reached Temporal');
}

const SHARE_BAD: [string, Partial<ShareImageInput> & Record<string, unknown>, string, RegExp?][] = [
  [
    'target account id of 11 digits',
    { targets: { accountIds: ['44445555666'] } },
    'targets.accountIds[0]',
    /exactly 12 digits/,
  ],
  [
    'target account id as a number',
    { targets: { accountIds: [444455556666 as unknown as string] } },
    'targets.accountIds[0]',
  ],
  [
    'own account as target',
    { targets: { accountIds: [OWNER] } },
    'targets.accountIds[0]',
    /image's own account/,
  ],
  [
    'the same target twice',
    { targets: { accountIds: ['444455556666', '444455556666'] } },
    'targets.accountIds[1]',
    /listed twice/,
  ],
  [
    'malformed organization ARN',
    { targets: { organizationArns: ['arn:aws:organizations::1:org/o-x'] } },
    'targets.organizationArns[0]',
  ],
  ['malformed OU ARN', { targets: { organizationalUnitArns: [ORG] } }, 'targets.organizationalUnitArns[0]'],
  [
    'organization in another partition',
    { targets: { organizationArns: [ORG.replace('arn:aws:', 'arn:aws-cn:')] } },
    'targets.organizationArns[0]',
    /partition aws-cn/,
  ],
  ['no target at all', { targets: {} }, 'targets', /names no one/],
  [
    'public without allowPublic',
    { targets: { public: true } },
    'targets.public',
    /refused unless allowPublic/,
  ],
  [
    'allowCopy for an OU only',
    { targets: { organizationalUnitArns: [OU] }, allowCopy: true },
    'allowCopy',
    /only to accounts/,
  ],
  [
    'allowCopy with a public share',
    { targets: { public: true }, allowPublic: true, allowCopy: true },
    'allowCopy',
    /snapshots public/,
  ],
  ['unknown KMS access mode', { kmsAccess: 'share-key' as never }, 'kmsAccess'],
  [
    're-encryption key ARN in another region',
    { reencryptWith: KEY_US },
    'reencryptWith',
    /key in us-east-1, but the copy is made in eu-west-1/,
  ],
  ['re-encryption with aws/ebs', { reencryptWith: 'alias/aws/ebs' }, 'reencryptWith', /AWS managed key/],
  ['malformed KMS key', { reencryptWith: 'my-key' }, 'reencryptWith', /not a KMS key id/],
  ['re-encrypted name without a key', { reencryptedName: 'web-copy' }, 'reencryptedName'],
  ['duration under a minute', { durationSeconds: 30 }, 'durationSeconds'],
  ['duration over a year', { durationSeconds: 400 * 86400 }, 'durationSeconds'],
  ['malformed image id', { imageId: 'ami-123' }, 'imageId'],
  ['unknown region', { region: 'mars-north-1' }, 'region', /not an AWS region name/],
  ['unknown field', { target: {} }, 'target'],
];

const COPY_BAD: [string, Partial<CopyImageInput> & Record<string, unknown>, string, RegExp?][] = [
  ['no destination', { destinations: [] }, 'destinations'],
  ['unknown destination region', { destinations: [{ region: 'mars-north-1' }] }, 'destinations[0].region'],
  [
    'destination account id of 13 digits',
    { destinations: [{ region: 'us-east-1', accountId: '1111222233334' }] },
    'destinations[0].accountId',
  ],
  [
    'duplicate destinations',
    { destinations: [{ region: 'us-east-1' }, { region: 'us-east-1', accountId: OWNER }] },
    'destinations[1]',
    /again \(as destinations\[0\]\)/,
  ],
  [
    'KMS key ARN in the wrong region',
    { destinations: [{ region: 'eu-central-1', kmsKeyId: KEY_US }] },
    'destinations[0].kmsKeyId',
    /KMS keys are regional/,
  ],
  [
    'malformed KMS key ARN',
    { destinations: [{ region: 'us-east-1', kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/nope' }] },
    'destinations[0].kmsKeyId',
  ],
  [
    'copy in place without a name',
    { destinations: [{ region: 'eu-west-1' }] },
    'destinations[0].name',
    /unique per account and region/,
  ],
  ['bad copy name', { destinations: [{ region: 'us-east-1', name: 'web#1' }] }, 'destinations[0].name'],
  [
    'too many destinations',
    {
      destinations: Array.from({ length: 51 }, (_, i) => ({
        region: 'us-east-1',
        accountId: String(100000000000 + i),
      })),
    },
    'destinations',
  ],
  ['unknown partial-failure policy', { partialFailure: 'sometimes' as never }, 'partialFailure'],
  ['zero copies per region', { concurrencyPerRegion: 0 }, 'concurrencyPerRegion'],
  [
    'unknown destination field',
    { destinations: [{ region: 'us-east-1', kms: 'alias/x' } as never] },
    'destinations[0].kms',
  ],
  ['reserved tag', { tags: { 'amiflow:run-id': 'x' } }, 'tags.amiflow:run-id'],
  ['copy timeout of a second', { timeouts: { copyAvailableSeconds: 1 } }, 'timeouts.copyAvailableSeconds'],
];

void describe('client library refuses bad share input before starting anything', () => {
  for (const [kind, change, field, message] of SHARE_BAD)
    void test(`${kind} → names ${field}`, async () => {
      const { client, calls } = recordingClient();
      await assertRefused(client.startShareImage({ ...SHARE, ...change }), field, calls, message);
    });

  void test('a good share is started once, with a deterministic id naming the image', async () => {
    const { client, calls } = recordingClient();
    const a = await client.startShareImage(SHARE);
    const b = await client.startShareImage({ ...SHARE, targets: { accountIds: ['444455556666'] } });
    assert.deepEqual(calls, ['start', 'start']);
    assert.equal(a.workflowId, b.workflowId);
    assert.match(a.workflowId, /^share-image\/eu-west-1\/111122223333\/ami-0123456789abcdef0\/[0-9a-f]{12}$/);
  });
});

void describe('client library refuses bad copy input before starting anything', () => {
  for (const [kind, change, field, message] of COPY_BAD)
    void test(`${kind} → names ${field}`, async () => {
      const { client, calls } = recordingClient();
      await assertRefused(client.startCopyImage({ ...COPY, ...change }), field, calls, message);
    });
});

void describe('client library refuses a bad unshare record or expiry before any call', () => {
  void test('a record without what the share added → names share.added', async () => {
    const { client, calls } = recordingClient();
    const { added: _added, ...noAdded } = RECORD;
    await assertRefused(
      client.startUnshareImage('share-image/x', { expected: noAdded as ShareRecord }),
      'share.added',
      calls,
    );
  });

  void test('a launch permission naming two kinds of target → names it', async () => {
    const { client, calls } = recordingClient();
    const added = { ...RECORD.added, launchPermissions: [{ userId: '444455556666', organizationArn: ORG }] };
    await assertRefused(
      client.startUnshareImage('share-image/x', { expected: { ...RECORD, added } }),
      'share.added.launchPermissions[0]',
      calls,
    );
  });

  void test('an expiry given both as a time and as seconds → refused', async () => {
    const { client, calls } = recordingClient();
    await assertRefused(
      client.setShareExpiry('share-image/x', { expiresAt: '2030-01-01T00:00:00Z', expiresInSeconds: 60 }),
      '(update)',
      calls,
    );
  });

  void test('a negative expiry → names expiresInSeconds', async () => {
    const { client, calls } = recordingClient();
    await assertRefused(
      client.setShareExpiry('share-image/x', { expiresInSeconds: -1 }),
      'expiresInSeconds',
      calls,
    );
  });
});

void describe('CLI refuses bad share and copy input before connecting', () => {
  const share = [
    'image',
    'share',
    '--region',
    'eu-west-1',
    '--account',
    OWNER,
    '--image',
    'ami-0123456789abcdef0',
  ];
  const copy = ['image', 'copy', '--region', 'eu-west-1', '--image', 'ami-0123456789abcdef0'];
  const dir = mkdtempSync(path.join(tmpdir(), 'amiflow-cli-'));
  const badRecord = path.join(dir, 'bad-record.json');
  writeFileSync(badRecord, JSON.stringify({ ...RECORD, sharedImageId: 'ami-nope' }));
  const cases: [string, string[], RegExp][] = [
    [
      'target account of 5 digits',
      [...share, '--target-account', '12345'],
      /--target-account #1: '12345' is not an AWS account id/,
    ],
    [
      'own account as target',
      [...share, '--target-account', OWNER],
      /--target-account #1: 111122223333 is the image's own account/,
    ],
    [
      'malformed OU ARN',
      [...share, '--target-ou', 'ou-ab12-cdef3456'],
      /--target-ou #1: 'ou-ab12-cdef3456' is not an organizational unit ARN/,
    ],
    [
      'public without --allow-public',
      [...share, '--public'],
      /--public: sharing with everyone .*--allow-public/,
    ],
    [
      'duration in words',
      [...share, '--target-account', '444455556666', '--duration', '3 weeks'],
      /--duration: '3 weeks' is not a duration/,
    ],
    [
      're-encryption key in another region',
      [...share, '--target-account', '444455556666', '--reencrypt-with', KEY_US],
      /--reencrypt-with: .* is a key in us-east-1/,
    ],
    [
      'unknown kms access',
      [...share, '--target-account', '444455556666', '--kms-access', 'always'],
      /--kms-access: 'always' is not a KMS access mode/,
    ],
    ['no --to', copy, /--to: is required/],
    [
      'unknown region in --to',
      [...copy, '--to', 'mars-north-1'],
      /--to #1 region: 'mars-north-1' is not an AWS region name/,
    ],
    [
      'duplicate --to',
      [...copy, '--to', 'us-east-1', '--to', 'region=us-east-1'],
      /--to #2: copies to us-east-1 .* again/,
    ],
    [
      'KMS key in the wrong region',
      [...copy, '--to', `region=eu-central-1,kms=${KEY_US}`],
      /--to #1 kms: .* is a key in us-east-1/,
    ],
    [
      'unknown key in --to',
      [...copy, '--to', 'region=us-east-1,zone=a'],
      /--to #1: 'zone=a' is not one of region=/,
    ],
    [
      'bad account in --to',
      [...copy, '--to', 'region=us-east-1,account=12'],
      /--to #1 account: '12' is not an AWS account id/,
    ],
    [
      'unknown policy',
      [...copy, '--to', 'us-east-1', '--policy', 'sometimes'],
      /--policy: 'sometimes' is not a partial-failure policy/,
    ],
    [
      'per-region not a number',
      [...copy, '--to', 'us-east-1', '--per-region', 'many'],
      /--per-region: 'many' is not a whole number/,
    ],
    [
      'share-expiry with two choices',
      ['image', 'share-expiry', 'share-image/x', '--in', '1d', '--now'],
      /exactly one of --in, --at and --now/,
    ],
    [
      'share-expiry at a non-time',
      ['image', 'share-expiry', 'share-image/x', '--at', 'tomorrow'],
      /--at: 'tomorrow' is not an ISO 8601 time/,
    ],
    [
      'unshare record that cannot be read',
      ['image', 'unshare', 'share-image/x', '--record', path.join(dir, 'missing.json')],
      /--record: cannot read/,
    ],
    [
      'unshare record with a bad image id',
      ['image', 'unshare', 'share-image/x', '--record', badRecord],
      /--record sharedImageId: 'ami-nope' is not an AMI id/,
    ],
    ['unshare without the share run', ['image', 'unshare'], /missing required argument 'share-workflow-id'/],
    [
      'unshare with only a record (the run is what is withdrawn)',
      ['image', 'unshare', '--record', badRecord],
      /missing required argument 'share-workflow-id'/,
    ],
    [
      'unshare of a workflow id with control characters',
      ['image', 'unshare', 'share\u001b[2Jx'],
      /<share-workflow-id>: contains the control or invisible character U\+001B/,
    ],
  ];
  for (const [kind, argv, message] of cases)
    void test(kind, async () => {
      let connected = false;
      const connect = () => {
        connected = true;
        return Promise.reject(new Error('must not connect'));
      };
      await assert.rejects(run(argv, connect), message);
      assert.equal(connected, false);
    });
});

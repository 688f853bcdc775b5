/**
 * Bad guardrail input is refused by the client library and by the CLI (`catalogue`, `compliance`,
 * `guardrails`) with a message naming the field or the flag, before anything connects; allow-list
 * files (JSON and YAML) are checked entry by entry. Also: the launch helper's choice of the current
 * approved version, and version order as people read it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { AmiflowClient } from '../../client';
import { InvalidInputError } from '../../client';
import { compareVersions, currentApprovedImage } from '../../client/catalogue';
import { run } from '../../client/cli';
import { readAllowList } from '../../client/cli/guardrails';
import type { ApprovedImage, ComplianceScanInput } from '../../workflows/contracts';
import type { BadInput } from './fixtures';
import { captured, recordingClient, refusesBadInput } from './fixtures';

const GOOD: ComplianceScanInput = { name: 'prod-daily', regions: ['eu-west-1'] };

const BAD: BadInput[] = [
  ['a name with a slash', { name: 'prod/daily' }, 'name'],
  ['no name', { name: undefined }, 'name'],
  ['no regions', { regions: [] }, 'regions'],
  ['a bad region', { regions: ['eu-west-1', 'moon-1'] }, 'regions[1]'],
  ['a region twice', { regions: ['eu-west-1', 'eu-west-1'] }, 'regions[1]'],
  ['an account of 11 digits', { accounts: ['12345678901'] }, 'accounts[0]'],
  ['a catalogue account that is no account', { catalogueAccounts: ['tooling'] }, 'catalogueAccounts[0]'],
  ['an empty pipeline list', { pipelines: [] }, 'pipelines'],
  ['a pipeline with spaces', { pipelines: ['web app'] }, 'pipelines[0]'],
  ['concurrency 0', { concurrency: 0 }, 'concurrency'],
  ['concurrency 100', { concurrency: 100 }, 'concurrency'],
  ['negative max findings', { maxFindingsPerTarget: -1 }, 'maxFindingsPerTarget'],
  ['an allow-list entry without reason', { allowList: [{ owner: 'amazon' }] }, 'allowList[0].reason'],
  [
    'an allow-list image without region',
    { allowList: [{ imageId: 'ami-0123456789abcdef0', reason: 'x' }] },
    'allowList[0].region',
  ],
  [
    'an allow-list owner that is no owner',
    { allowList: [{ owner: 'canonical', reason: 'x' }] },
    'allowList[0].owner',
  ],
  [
    'an allow-list entry naming both',
    { allowList: [{ owner: 'amazon', imageId: 'ami-0123456789abcdef0', reason: 'x' }] },
    'allowList[0]',
  ],
  ['an unknown field', { regionz: ['eu-west-1'] }, 'regionz'],
];

describe('client library refuses bad scan input before starting anything', () => {
  refusesBadInput(GOOD, BAD, (client, input) => client.startComplianceScan(input));

  test('a report name that would change the visibility query is refused before any call', async () => {
    const { client, calls } = recordingClient();
    await assert.rejects(
      client.lastComplianceReport("x' OR WorkflowType != '"),
      /name: .* is not a valid name/,
    );
    await assert.rejects(client.runningComplianceReport('a b'), InvalidInputError);
    assert.deepEqual(calls, []);
  });

  test('an unknown Allowed AMIs mode is refused before anything starts', async () => {
    const { client, calls } = recordingClient();
    await assert.rejects(
      client.setAllowedAmisMode({ name: 'prod', regions: ['eu-west-1'] }, 'disabled' as never),
      InvalidInputError,
    );
    assert.deepEqual(calls, []);
  });
});

describe('amiflow guardrail commands refuse bad input before connecting', () => {
  const cases: [string, string[], RegExp][] = [
    ['scan without name', ['compliance', 'scan', '--region', 'eu-west-1'], /--name: is required/],
    [
      'scan with a bad region',
      ['compliance', 'scan', '--name', 'a', '--region', 'eu-west-1', '--region', 'xx-1'],
      /--region #2: 'xx-1' is not an AWS region/,
    ],
    [
      'scan with a bad account',
      ['compliance', 'scan', '--name', 'a', '--region', 'eu-west-1', '--account', '12'],
      /--account #1: '12' is not an AWS account id/,
    ],
    [
      'scan with concurrency not a number',
      ['compliance', 'scan', '--name', 'a', '--region', 'eu-west-1', '--concurrency', 'many'],
      /--concurrency: 'many' is not a whole number/,
    ],
    [
      'schedule with neither every nor cron',
      ['compliance', 'schedule', '--name', 'a', '--region', 'eu-west-1'],
      /--every: or --cron: give exactly one/,
    ],
    [
      'schedule every fortnight',
      ['compliance', 'schedule', '--name', 'a', '--region', 'eu-west-1', '--every', 'fortnight'],
      /--every: 'fortnight' is not a duration/,
    ],
    ['report of a bad name', ['compliance', 'report', '--name', 'a/b'], /--name: 'a\/b' is not a valid name/],
    [
      'enforce without mode',
      ['guardrails', 'enforce', '--name', 'a', '--region', 'eu-west-1'],
      /--mode: is required: audit, enabled, off/,
    ],
    [
      'enforce in an unknown mode',
      ['guardrails', 'enforce', '--name', 'a', '--region', 'eu-west-1', '--mode', 'strict'],
      /--mode: 'strict' is not a mode/,
    ],
    [
      'policy with both',
      ['guardrails', 'policy', '--iam', '--kms', '--region', 'eu-west-1', '--account', '111122223333'],
      /--iam: or --kms: give exactly one/,
    ],
    [
      'policy for self',
      ['guardrails', 'policy', '--kms', '--region', 'eu-west-1', '--account', 'self'],
      /--account #1: 'self' is not an AWS account id/,
    ],
    [
      'resolve without pipeline',
      ['catalogue', 'resolve', '--region', 'eu-west-1'],
      /--pipeline: is required/,
    ],
    [
      'a missing allow-list file',
      ['catalogue', 'list', '--region', 'eu-west-1', '--allow-list', '/nonexistent/allow.json'],
      /--allow-list \/nonexistent\/allow.json: cannot be read/,
    ],
  ];
  for (const [kind, argv, message] of cases) {
    test(`${kind} → exit 2 naming the flag`, async () => {
      const { code, err } = await captured(argv);
      assert.equal(code, 2);
      assert.match(err, message);
    });
  }

  test('enforce off needs only the name: it restores what the enforcement covers', async () => {
    // GIVEN a client that records what it is asked to enforce
    const asked: unknown[] = [];
    const client = {
      setAllowedAmisMode: (input: unknown, mode: unknown) => {
        asked.push({ input, mode });
        return Promise.resolve({ name: 'prod', mode, targets: [] });
      },
      close: () => Promise.resolve(),
    } as unknown as AmiflowClient;
    // WHEN enforcement is turned off by name alone
    const code = await run(['guardrails', 'enforce', '--name', 'prod', '--mode', 'off', '--json'], () =>
      Promise.resolve(client),
    );
    // THEN only the name goes through, and nothing else is required
    assert.equal(code, 0);
    assert.deepEqual(asked, [{ input: { name: 'prod', regions: [] }, mode: 'off' }]);
  });
});

describe('allow-list files', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'amiflow-allow-'));
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  test('a YAML list with an image and an owner is read as entries', () => {
    const p = file(
      'allow.yaml',
      [
        'allowList:',
        '  - imageId: ami-0123456789abcdef0',
        '    region: eu-west-1',
        '    reason: vendor appliance, reviewed 2026-01',
        '  - owner: amazon',
        '    reason: EKS-optimized images',
      ].join('\n'),
    );
    assert.deepEqual(readAllowList(p), [
      { imageId: 'ami-0123456789abcdef0', region: 'eu-west-1', reason: 'vendor appliance, reviewed 2026-01' },
      { owner: 'amazon', reason: 'EKS-optimized images' },
    ]);
  });

  test('a JSON list with a bad second entry names the file, the entry and the field', () => {
    const p = file(
      'allow.json',
      JSON.stringify([
        { owner: 'amazon', reason: 'ok' },
        { imageId: 'ami-1', region: 'eu-west-1', reason: 'x' },
      ]),
    );
    assert.throws(
      () => readAllowList(p),
      new RegExp(
        `--allow-list ${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: entry 2: imageId: 'ami-1' is not an AMI id`,
      ),
    );
  });

  test('a file that is not YAML is refused as such', () => {
    const p = file('broken.yml', 'allowList: [\n');
    assert.throws(() => readAllowList(p), /is not valid YAML/);
  });
});

describe('the launch helper’s choice', () => {
  const img = (imageId: string, version: string, extra: Partial<ApprovedImage> = {}): ApprovedImage => ({
    imageId,
    region: 'eu-west-1',
    ownerId: '111100001111',
    pipeline: 'web',
    version,
    state: 'available',
    deprecated: false,
    kmsKeyIds: [],
    basis: 'approval-tags',
    ...extra,
  });

  test('versions compare as people read them', () => {
    const sorted = ['1.10.0', '1.9.2', '2026-01-31', '2026-02-01', 'v2', 'v10', '1.9.10'].sort(
      compareVersions,
    );
    assert.deepEqual(sorted, ['1.9.2', '1.9.10', '1.10.0', '2026-01-31', '2026-02-01', 'v2', 'v10']);
  });

  test('the newest approved, available, non-deprecated version of the pipeline in the region wins', () => {
    const images = [
      img('ami-0000000000000000a', '1.9.0'),
      img('ami-0000000000000000b', '1.10.0'),
      img('ami-0000000000000000c', '1.11.0', { deprecated: true }),
      img('ami-0000000000000000d', '1.12.0', { state: 'pending' }),
      img('ami-0000000000000000e', '9.0.0', { pipeline: 'batch' }),
      img('ami-0000000000000000f', '9.0.0', { region: 'us-east-1' }),
      img('ami-00000000000000010', '9.9.9', { basis: 'allow-list' }),
    ];
    assert.equal(currentApprovedImage(images, 'web', 'eu-west-1')?.imageId, 'ami-0000000000000000b');
    assert.equal(currentApprovedImage(images, 'api', 'eu-west-1'), undefined);
  });
});

/**
 * The client's own holes of issue 10, item 5, each closed: `--tag constructor=x` is a tag (not
 * "given twice"), `__proto__` is refused by name, what AWS or people wrote is printed without its
 * control characters, own-account shares and non-plain inputs are refused before anything starts,
 * ids are checked before Temporal sees them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AmiflowClient } from '../../client';
import { InvalidInputError } from '../../client';
import { parseTag } from '../../client/cli/flags';
import { forTerminal, idIssues, plainInputIssues } from '../../client/trust-input';
import type { Catalogue, ShareImageInput } from '../../contracts';
import { IMAGE_CREATE_ARGV, captured, recordingClient } from './fixtures';

describe('tag keys are own properties', () => {
  test('GIVEN --tag constructor=x and --tag toString=y WHEN parsed THEN both are tags', () => {
    const tags = parseTag('toString=y', parseTag('constructor=x', undefined));
    assert.deepEqual(Object.entries(tags), [
      ['constructor', 'x'],
      ['toString', 'y'],
    ]);
  });

  test('GIVEN --tag constructor=x on image create WHEN run THEN it is started with that tag', async () => {
    const { client, calls } = recordingClient();
    let started: unknown;
    const spy = Object.assign(Object.create(client) as AmiflowClient, {
      startImageFromInstance: (input: unknown) => {
        started = input;
        calls.push('start');
        return Promise.resolve({ workflowId: 'image-from-instance/x', runId: 'r' });
      },
      close: () => Promise.resolve(),
    });
    const r = await captured([...IMAGE_CREATE_ARGV, '--tag', 'constructor=x', '--no-wait'], () =>
      Promise.resolve(spy),
    );
    assert.equal(r.code, 0, r.err);
    assert.deepEqual((started as { tags: Record<string, string> }).tags, { constructor: 'x' });
  });

  test('GIVEN --tag __proto__=x WHEN parsed THEN it is refused by name', () => {
    assert.throws(() => parseTag('__proto__=x', undefined), /'__proto__' is not accepted/);
  });
});

describe('terminal output carries no control characters of AWS or callers', () => {
  test('GIVEN an approved image whose tags hold escape sequences WHEN catalogue list prints it THEN they are shown escaped', async () => {
    const catalogue: Catalogue = {
      images: [
        {
          imageId: 'ami-0123456789abcdef0',
          region: 'eu-west-1',
          ownerId: '111122223333',
          pipeline: 'web\u001b]0;pwned\u0007',
          approvedBy: 'mallory\u001b[2J\r',
          state: 'available',
          deprecated: false,
          kmsKeyIds: [],
          basis: 'approval-tags',
        },
      ],
      allowedOwners: [],
      errors: [],
      readAt: '2026-11-30T00:00:00Z',
    };
    const fake = {
      listApprovedImages: () => Promise.resolve(catalogue),
      close: () => Promise.resolve(),
    } as unknown as AmiflowClient;
    const r = await captured(['catalogue', 'list', '--region', 'eu-west-1'], () => Promise.resolve(fake));
    assert.equal(r.code, 0, r.err);

    assert.doesNotMatch(r.out, /[\u0000-\u0008\u000b-\u001f\u007f]/);
    assert.match(r.out, /web\\u001b\]0;pwned\\u0007/);
    assert.match(r.out, /mallory\\u001b\[2J\\u000d/);
  });

  test('forTerminal keeps newlines and tabs, escapes the rest', () => {
    assert.equal(forTerminal('a\tb\nc\u001b[0m\u202e'), 'a\tb\nc\\u001b[0m\\u202e');
  });
});

describe('library inputs and ids', () => {
  const SHARE: ShareImageInput = {
    region: 'eu-west-1',
    accountId: '444455556666',
    imageId: 'ami-0123456789abcdef0',
    targets: { accountIds: ['111122223333', '444455556666'] },
  };

  test("GIVEN a share naming the image's own account WHEN started THEN refused before Temporal, naming the target", async () => {
    const { client, calls } = recordingClient();
    const err = await client.startShareImage(SHARE).catch((e: unknown) => e);
    assert.ok(err instanceof InvalidInputError);
    assert.deepEqual(
      err.issues.map((i) => i.field),
      ['targets.accountIds[1]'],
    );
    assert.deepEqual(calls, []);
  });

  test('GIVEN null WHEN startUnshareImage / startBackup / startGoldenImage THEN InvalidInputError, never TypeError', async () => {
    const { client, calls } = recordingClient();
    for (const call of [
      () => client.startUnshareImage(null as unknown as string),
      () => client.startBackup(null as never),
      () => client.startGoldenImage(null as never),
      () => client.startComplianceScan(null as never),
    ]) {
      const err = await call().catch((e: unknown) => e);
      assert.ok(err instanceof InvalidInputError, `got ${String(err)}`);
    }
    assert.deepEqual(calls, []);
  });

  test('GIVEN an input inheriting its fields (Object.create(valid)) THEN it is refused as not plain', () => {
    assert.deepEqual(
      plainInputIssues(Object.create(SHARE)).map((i) => i.field),
      ['input'],
    );
    assert.deepEqual(
      plainInputIssues({ ...SHARE, targets: Object.create(SHARE.targets) as object }).map((i) => i.field),
      ['targets'],
    );
  });

  test('ids: length in bytes, control and invisible characters, blanks', () => {
    assert.deepEqual(idIssues('id', 'share-image/eu-west-1/ami-1/x y'), []);
    assert.match(idIssues('id', 'é'.repeat(501))[0]?.message ?? '', /1002 bytes long/);
    assert.match(idIssues('id', 'a\u200bb')[0]?.message ?? '', /U\+200B/);
    assert.match(idIssues('id', 'a ')[0]?.message ?? '', /white space/);
    assert.match(idIssues('id', 7)[0]?.message ?? '', /a string/);
  });
});

/**
 * `amiflow list` against a real Temporal dev server: runs found by instance, image, type, region and
 * status through visibility queries on the Amiflow* search attributes. No worker polls the task
 * queue, so the runs stay RUNNING with the search attributes their start gave them (no AWS here).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { AmiflowClient } from '../../client';
import { main } from '../../client/cli';
import type { RunSummary } from '../../client/list-runs';
import { installQuietRuntime } from '../support/runtime';
import { devServerEnv, uniqueTaskQueue } from '../support/temporal';
import { eventually } from '../workflows/stub-activities';

/** `amiflow … --output json` against `client`; its stdout parsed. */
async function listed(client: AmiflowClient, argv: string[]): Promise<RunSummary[]> {
  const out: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  try {
    assert.equal(await main(['list', ...argv, '--output', 'json'], () => Promise.resolve(client)), 0);
  } finally {
    console.log = log;
  }
  return JSON.parse(out.join('\n')) as RunSummary[];
}

describe('amiflow list (dev server visibility)', () => {
  let env: TestWorkflowEnvironment;
  let client: AmiflowClient;
  // Ids unique to this test run: the dev server is fresh, but the filters must prove they filter.
  const suffix = Date.now().toString(16).padStart(17, '0').slice(-17);
  const instanceA = `i-${suffix.replace(/./, 'a')}`;
  const instanceB = `i-${suffix.replace(/./, 'b')}`;
  const image = `ami-${suffix.replace(/./, 'c')}`;

  before(async () => {
    installQuietRuntime();
    env = await devServerEnv();
    client = AmiflowClient.fromClient(env.client, uniqueTaskQueue('list'));
    await client.startImageFromInstance({
      region: 'eu-west-1',
      instanceId: instanceA,
      imageName: 'web-a',
      mode: 'stop',
    });
    await client.startImageFromInstance({
      region: 'us-east-1',
      instanceId: instanceB,
      imageName: 'web-b',
      mode: 'stop',
    });
    await client.startShareImage({
      region: 'eu-west-1',
      imageId: image,
      targets: { accountIds: ['444455556666'] },
    });
  });

  after(async () => {
    await env?.teardown();
  });

  it('GIVEN three runs WHEN listed by instance THEN only that instance’s run, with its attributes', async () => {
    const runs = await eventually('the run of instance A in visibility', async () => {
      const r = await listed(client, ['--instance', instanceA]);
      return r.length ? r : undefined;
    });
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.type, 'imageFromInstance');
    assert.equal(runs[0]?.instanceId, instanceA);
    assert.equal(runs[0]?.region, 'eu-west-1');
    assert.equal(runs[0]?.status, 'RUNNING');
  });

  it('WHEN listed by image, type, region and status THEN each filter narrows as asked', async () => {
    const byImage = await eventually('the share in visibility', async () => {
      const r = await listed(client, ['--image', image]);
      return r.length ? r : undefined;
    });
    assert.deepEqual(
      byImage.map((r) => r.type),
      ['shareImage'],
    );
    const all = await eventually('all three runs in visibility', async () => {
      const r = await listed(client, ['--status', 'running']);
      return r.length >= 3 ? r : undefined;
    });
    assert.ok(all.some((r) => r.imageId === image));
    const images = await listed(client, ['--type', 'imageFromInstance', '--region', 'us-east-1']);
    assert.deepEqual(
      images.map((r) => r.instanceId),
      [instanceB],
    );
    assert.deepEqual(await listed(client, ['--instance', instanceA, '--status', 'completed']), []);
    assert.equal((await listed(client, ['--limit', '1'])).length, 1);
  });
});

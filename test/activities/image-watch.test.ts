/** Concurrent image waits share DescribeImages calls per account and region (activities/image-watch.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Image } from '@aws-sdk/client-ec2';
import { DescribeImagesCommand, EC2Client, EC2ServiceException } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import type { AwsClients } from '../../activities/aws';
import { createImageWatch } from '../../activities/image-watch';
import type { AwsTarget } from '../../workflows/contracts';
import { VirtualClock } from './harness';

const EU: AwsTarget = { region: 'eu-west-1', accountId: '111122223333' };
const US: AwsTarget = { region: 'us-east-1', accountId: '111122223333' };
const ami = (n: number) => `ami-${n.toString(16).padStart(17, '0')}`;

function setup() {
  const ec2 = new EC2Client({ region: 'eu-west-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  const mock = mockClient(ec2);
  const gone = new Set<string>();
  const asked: { region: string; ids: string[] }[] = [];
  let region = '?';
  mock.on(DescribeImagesCommand).callsFake((input: { ImageIds?: string[] }) => {
    const ids = input.ImageIds ?? [];
    asked.push({ region, ids });
    if (ids.some((id) => gone.has(id))) {
      throw new EC2ServiceException({
        name: 'InvalidAMIID.NotFound',
        $fault: 'client',
        $metadata: { httpStatusCode: 400 },
        message: 'not found',
      });
    }
    return { Images: ids.map((ImageId): Image => ({ ImageId, State: 'pending' })) };
  });
  const aws: AwsClients = {
    ec2(target) {
      region = target.region;
      return Promise.resolve(ec2);
    },
    kms: () => Promise.reject(new Error('no KMS here')),
    destroy: () => ec2.destroy(),
  };
  const clock = new VirtualClock();
  const watch = createImageWatch({ aws, clock });
  return { watch, clock, asked, gone, mock };
}

void describe('image watch', () => {
  void it('GIVEN three waits in one account and region WHEN the first polls THEN one call asks about all three and the others use it', async () => {
    const { watch, clock, asked } = setup();
    const [a, b, c] = [ami(1), ami(2), ami(3)].map((id) => watch.open(EU, id));
    assert.equal((await a!.read())?.ImageId, ami(1));
    clock.advance(500);
    assert.equal((await b!.read())?.ImageId, ami(2));
    assert.equal((await c!.read())?.ImageId, ami(3));
    assert.deepEqual(
      asked.map((x) => x.ids),
      [[ami(1), ami(2), ami(3)]],
    );
    assert.equal(watch.calls(), 1);
  });

  void it('GIVEN a single wait WHEN it polls again THEN it asks again: it never reuses the answer it already saw', async () => {
    const { watch, clock, asked } = setup();
    const a = watch.open(EU, ami(1));
    await a.read();
    clock.advance(100);
    await a.read();
    assert.equal(asked.length, 2);
  });

  void it('GIVEN an answer older than the freshness window WHEN another wait polls THEN it asks again', async () => {
    const { watch, clock, asked } = setup();
    const a = watch.open(EU, ami(1));
    const b = watch.open(EU, ami(2));
    await a.read();
    clock.advance(2_000);
    await b.read();
    assert.equal(asked.length, 2);
  });

  void it('GIVEN waits in two regions WHEN both poll THEN each region gets its own call', async () => {
    const { watch, asked } = setup();
    await watch.open(EU, ami(1)).read();
    await watch.open(US, ami(2)).read();
    assert.deepEqual(asked, [
      { region: 'eu-west-1', ids: [ami(1)] },
      { region: 'us-east-1', ids: [ami(2)] },
    ]);
  });

  void it('GIVEN 250 waits in one region WHEN one polls THEN 3 calls of at most 100 ids, the asker first', async () => {
    const { watch, asked } = setup();
    const handles = Array.from({ length: 250 }, (_, i) => watch.open(EU, ami(i + 1)));
    await handles[249]!.read();
    assert.deepEqual(
      asked.map((x) => x.ids.length),
      [100, 100, 50],
    );
    assert.equal(asked[0]!.ids[0], ami(250));
  });

  void it('GIVEN one image of the batch was deregistered WHEN polling THEN the others are still answered and it reads as not visible', async () => {
    const { watch, gone } = setup();
    gone.add(ami(2));
    const a = watch.open(EU, ami(1));
    const b = watch.open(EU, ami(2));
    assert.equal((await a.read())?.ImageId, ami(1));
    assert.equal(await b.read(), undefined);
  });

  void it('GIVEN one of 64 images in a batch is not visible yet WHEN polling THEN the batch is bisected (13 calls, not 65) and all others are answered', async () => {
    const { watch, gone, asked } = setup();
    gone.add(ami(40));
    const handles = Array.from({ length: 64 }, (_, i) => watch.open(EU, ami(i + 1)));

    assert.equal((await handles[0]!.read())?.ImageId, ami(1));

    // 1 failing batch of 64, then halves down to the one unknown id: 1 + 2·log2(64) = 13 calls.
    assert.equal(asked.length, 13);
    assert.deepEqual(
      asked.filter((x) => x.ids.length === 1).map((x) => x.ids),
      [[ami(39)], [ami(40)]],
      'only the unknown id and its neighbour in the last pair are asked about alone',
    );
    for (const [i, h] of handles.entries())
      if (i > 0) assert.equal((await h.read())?.ImageId, i + 1 === 40 ? undefined : ami(i + 1));
    assert.equal(asked.length, 13, 'every other wait used the shared answer');
  });

  void it('GIVEN EC2 throttles WHEN polling THEN the throttling error reaches the reader as is (Temporal retries it)', async () => {
    const { watch, mock } = setup();
    const throttled = new EC2ServiceException({
      name: 'RequestLimitExceeded',
      $fault: 'client',
      $metadata: { httpStatusCode: 503 },
      message: 'slow down',
    });
    mock.on(DescribeImagesCommand).rejects(throttled);
    await assert.rejects(watch.open(EU, ami(1)).read(), (e: unknown) => e === throttled);
  });

  void it('GIVEN a wait that ended WHEN others poll THEN its image is no longer asked about', async () => {
    const { watch, clock, asked } = setup();
    const a = watch.open(EU, ami(1));
    const b = watch.open(EU, ami(2));
    a.close();
    clock.advance(10);
    await b.read();
    assert.deepEqual(asked.at(-1)?.ids, [ami(2)]);
  });
});

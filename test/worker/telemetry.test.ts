/** worker/logging.ts and worker/health.ts: what log shippers and probes see. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cachedCheck, startHealthServer } from '../../worker/health';
import { LEADING_FIELDS, createLogger } from '../../worker/logging';

function capture(
  format: 'json' | 'pretty',
  colour = false,
): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger({ format, level: 'INFO', write: (l) => lines.push(l), colour }) };
}

void describe('JSON logs', () => {
  void it('GIVEN activity metadata and an AWS error WHEN logged THEN one JSON object with the ids first', () => {
    const { lines, log } = capture('json');
    const cause = new Error('The instance ID does not exist');
    // The join fields, deliberately out of order: the line puts them first, in LEADING_FIELDS order.
    const ids = {
      attempt: 2,
      activityType: 'describeInstance',
      runId: 'r-1',
      workflowId: 'wf-1',
      workflowType: 'imageFromInstance',
      service: 'ec2',
      operation: 'DescribeInstances',
      code: 'InvalidInstanceID.NotFound',
      requestId: 'req-1',
    };
    log.warn('AWS ec2:DescribeInstances failed', {
      sdkComponent: 'activity',
      ...ids,
      error: new Error('multi\nline', { cause }),
      big: 10n,
    });
    assert.equal(lines.length, 1);
    const line = lines[0] ?? '';
    assert.doesNotMatch(line, /\n/);
    const record = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual(Object.keys(record).slice(0, 3 + LEADING_FIELDS.length), [
      'level',
      'time',
      'message',
      ...LEADING_FIELDS,
    ]);
    assert.deepEqual([...LEADING_FIELDS].sort(), Object.keys(ids).sort(), 'every join field leads the line');
    assert.equal(record.level, 'warn');
    assert.ok(!Number.isNaN(Date.parse(String(record.time))));
    assert.equal(record.big, '10');
    const error = record.error as { message: string; cause: { message: string } };
    assert.equal(error.message, 'multi\nline');
    assert.equal(error.cause.message, 'The instance ID does not exist');
  });

  void it('GIVEN level INFO WHEN debug is logged THEN nothing is written', () => {
    const { lines, log } = capture('json');
    log.debug('noise');
    assert.deepEqual(lines, []);
  });

  void it('GIVEN pretty format WHEN logged THEN one readable line, coloured only when asked', () => {
    const plain = capture('pretty');
    plain.log.info('step started: stop instance', { workflowId: 'wf-1', sdkComponent: 'workflow' });
    assert.match(
      plain.lines[0] ?? '',
      /^\d\d:\d\d:\d\d\.\d{3} INFO  step started: stop instance {2}workflowId=wf-1$/,
    );
    const coloured = capture('pretty', true);
    coloured.log.error('boom');
    assert.match(coloured.lines[0] ?? '', /\x1b\[31mERROR/);
  });
});

void describe('health endpoints', () => {
  void it('GIVEN a check not yet met WHEN probed THEN /healthz 200, /readyz 503 naming it; once met, 200', async () => {
    let polling = false;
    const server = await startHealthServer('127.0.0.1:0', [
      { name: 'task queue', check: () => Promise.resolve(polling ? undefined : 'not polling yet') },
    ]);
    try {
      const base = `http://${server.address}`;
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      const before = await fetch(`${base}/readyz`);
      assert.equal(before.status, 503);
      assert.match(await before.text(), /task queue: not polling yet/);
      polling = true;
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      assert.equal((await fetch(`${base}/other`)).status, 404);
    } finally {
      await server.close();
    }
  });

  void it('GIVEN a check that throws WHEN probed THEN 503 with its message, not a crash', async () => {
    const server = await startHealthServer('127.0.0.1:0', [
      { name: 'aws credentials', check: () => Promise.reject(new Error('no credentials in the chain')) },
    ]);
    try {
      const res = await fetch(`http://${server.address}/readyz`);
      assert.equal(res.status, 503);
      assert.match(await res.text(), /aws credentials: no credentials in the chain/);
    } finally {
      await server.close();
    }
  });

  void it('GIVEN a cached check WHEN probed often THEN the probe runs once per interval', async () => {
    let now = 0;
    let calls = 0;
    let fail = true;
    const check = cachedCheck(
      'aws credentials',
      () => {
        calls += 1;
        return fail ? Promise.reject(new Error('expired')) : Promise.resolve();
      },
      60_000,
      () => now,
    );
    assert.equal(await check.check(), 'expired');
    fail = false;
    assert.equal(await check.check(), 'expired', 'cached within the interval');
    assert.equal(calls, 1);
    now = 60_000;
    assert.equal(await check.check(), undefined);
    assert.equal(calls, 2);
  });
});

/**
 * The CLI never shows a run that completed with problems as a plain success: `watch`, `result`,
 * `status` and the start-and-wait path print "succeeded with problems" with each problem (text),
 * `outcome`/`problems` (JSON), and exit 4. The canonical case, a golden run whose retirement
 * fails, runs on the dev server with stub activities; the start-and-wait path on a stubbed client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { AmiflowClient, RunOutcomeReport } from '../../client';
import { AmiflowClient as Client } from '../../client';
import { devServerEnv, uniqueTaskQueue } from '../support/temporal';
import { RUN_TIMEOUT, quietWorkerLogs, startWorker, withinBound } from '../workflows/stub-activities';
import { IMAGE_CREATE_ARGV, captured } from './fixtures';
import { goldenActivitiesWhoseRetirementFails, startGoldenRun } from './golden-run';

quietWorkerLogs();

/** What a command line printed (stdout, stderr) with `client` as its connection, and its exit code. */
const shown = (argv: string[], client: AmiflowClient) => captured(argv, () => Promise.resolve(client));

/** A client whose run completes with `result` and ends as `end` says (the start-and-wait path). */
function completingClient(result: unknown, end: RunOutcomeReport): AmiflowClient {
  return {
    startImageFromInstance: () => Promise.resolve({ workflowId: 'wf-1', runId: 'run-1' }),
    result: () => Promise.resolve(result),
    runOutcome: () => Promise.resolve(end),
    close: () => Promise.resolve(),
  } as unknown as AmiflowClient;
}

void describe('start and wait: a run that completed with problems', () => {
  const result = { imageId: 'ami-0123456789abcdef0' };
  const problem = 'retire old versions: 1 retirement action(s) failed';

  void it('GIVEN a run that ends with problems WHEN --json THEN outcome and problems are fields, exit 4', async () => {
    const client = completingClient(result, { outcome: 'succeeded-with-problems', problems: [problem] });
    const { code, out } = await shown([...IMAGE_CREATE_ARGV, '--json'], client);
    assert.equal(code, 4);
    assert.deepEqual(JSON.parse(out), { ...result, outcome: 'succeeded-with-problems', problems: [problem] });
  });

  void it('GIVEN a clean run WHEN --json THEN outcome succeeded, exit 0', async () => {
    const { code, out } = await shown(
      [...IMAGE_CREATE_ARGV, '--json'],
      completingClient(result, { outcome: 'succeeded' }),
    );
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(out), { ...result, outcome: 'succeeded' });
  });

  void it('GIVEN no outcome known (no worker, no attribute) WHEN --json THEN exactly the result, exit 0', async () => {
    const { code, out } = await shown([...IMAGE_CREATE_ARGV, '--json'], completingClient(result, {}));
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(out), result);
  });
});

void describe('watch, result and status of a golden run whose retirement failed', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await devServerEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  void it(
    'GIVEN a golden run whose retirement fails WHEN the CLI shows it THEN succeeded with problems, each problem listed, exit 4',
    RUN_TIMEOUT,
    async () => {
      // GIVEN: a golden run whose protection of the new image (retirement) is refused by AWS
      const activities = goldenActivitiesWhoseRetirementFails();
      const taskQueue = uniqueTaskQueue('cli-outcome');
      const worker = await startWorker(env, taskQueue, activities);
      const client = Client.fromClient(env.client, taskQueue);
      await worker.runUntil(
        withinBound(
          (async () => {
            const handle = await startGoldenRun(env.client, taskQueue, 'cli-outcome');
            const id = handle.workflowId;
            // WHEN: watched as text
            const watched = await shown(['watch', id], client);
            // THEN: never a plain success: the problem is named, exit 4
            assert.equal(watched.code, 4);
            assert.match(
              watched.out,
              /⚠ succeeded with problems:\n {2}- retire old versions: \d+ retirement action\(s\) failed/,
            );
            // WHEN: its result is asked for (JSON)
            const result = await shown(['result', id], client);
            const parsed = JSON.parse(result.out) as {
              outcome: string;
              problems: string[];
              pipeline?: unknown;
            };
            assert.equal(result.code, 4);
            assert.equal(parsed.outcome, 'succeeded-with-problems');
            assert.match(parsed.problems[0] ?? '', /^retire old versions: /);
            assert.ok(parsed.pipeline !== undefined, 'the golden result itself is still there');
            // WHEN: its status is asked for: shown plainly, a report rather than a verdict (exit 0)
            const status = await shown(['status', id], client);
            assert.equal(status.code, 0);
            assert.match(status.out, new RegExp(`^${id}: COMPLETED \\(succeeded with problems\\)`));
            assert.match(status.out, /- retire old versions: /);
            const statusJson = JSON.parse(
              (await shown(['status', id, '--json'], client)).out,
            ) as RunOutcomeReport;
            assert.equal(statusJson.outcome, 'succeeded-with-problems');
          })(),
          'the golden run',
        ),
      );
    },
  );
});

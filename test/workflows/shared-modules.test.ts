/**
 * The workflow bundle's shared modules (worker/bundle-options.ts `preloadModules`,
 * workflows/shared-modules.ts): zod, the contracts and the workflow code are evaluated once per
 * worker V8 context and deep-frozen by the SDK, then used by every run in that context. These
 * tests prove that the freeze does not break a schema, that the freeze modelled here is as strict
 * as the SDK's (a schema the module did not prepare breaks), and that runs sharing one context on
 * one worker keep their own answers and replay.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { z } from 'zod';
import * as contracts from '../../contracts';
import * as workflows from '../../workflows';
import { materializeLazyMembers } from '../../workflows/shared-modules';
import * as validation from '../../workflows/validation';
import { timeSkippingEnv, workflowBundle } from '../support/temporal';
import { RUN_TIMEOUT, assertWorkflowFailure, failed, succeeded, withWorker } from './harness';
import { happyActivities, imageInput, outcomeOf, startImageFromInstance } from './stub-activities';

/**
 * The SDK's freeze of shared modules (`deepFreeze` in @temporalio/worker's reusable-vm.js, which
 * it keeps private): own properties of objects, recursively; functions frozen but not walked;
 * whatever refuses to freeze is skipped.
 */
function freezeLikeTheSdk(object: unknown, visited = new WeakSet<object>()): void {
  if (object === null || (typeof object !== 'object' && typeof object !== 'function')) return;
  if (visited.has(object) || Object.isFrozen(object)) return;
  visited.add(object);
  if (typeof object === 'object') {
    for (const key of Reflect.ownKeys(object)) {
      const value: unknown = Reflect.get(object, key);
      try {
        freezeLikeTheSdk(value, visited);
      } catch {
        // As the SDK: some objects cannot be frozen.
      }
    }
  }
  Object.freeze(object);
}

type Schema = z.ZodType;
const isSchema = (v: unknown): v is Schema => v instanceof z.ZodType;

/** Every schema contracts/ exports, by name. */
const exported: [string, Schema][] = (Object.entries(contracts) as [string, unknown][]).filter(
  (e): e is [string, Schema] => isSchema(e[1]),
);

/** Values every schema is asked about: wrong types, empty shapes and real inputs. */
const PROBES: unknown[] = [
  undefined,
  null,
  'x',
  12,
  [],
  {},
  imageInput(),
  { ...imageInput(), instanceId: 'i-12345', region: 'europe-west1', tags: { 'aws:x': 'y' } },
  { region: 'us-east-1', imageId: 'ami-0123456789abcdef0', accountIds: ['123456789012'] },
  '2026-01-01T00:00:00Z',
  'ami-0123456789abcdef0',
];

/** What a schema answers for every probe: success and the issues' paths and messages. */
function answers(schema: Schema): unknown[] {
  return PROBES.map((p) => {
    const r = schema.safeParse(p);
    return r.success ? { ok: true } : r.error.issues.map((i) => [i.path.join('.'), i.message]);
  });
}

function readEveryMember(schema: Schema): void {
  for (let proto: object | null = Object.getPrototypeOf(schema) as object | null; proto;) {
    for (const key of Reflect.ownKeys(proto)) Reflect.get(schema, key);
    proto = Object.getPrototypeOf(proto) as object | null;
  }
}

describe('the workflow bundle’s shared modules', () => {
  it('GIVEN every contract schema prepared by the shared module WHEN frozen as the SDK freezes shared modules THEN each answers every probe as before and every member reads', () => {
    assert.ok(exported.length >= 40, `only ${exported.length} schemas exported`);
    const before = new Map(exported.map(([name, s]) => [name, answers(s)]));
    const bad = { ...imageInput(), instanceId: 'i-XYZ' };
    const parsedBefore = validation.imageFromInstanceIssues(bad);

    freezeLikeTheSdk({ exports: contracts });
    freezeLikeTheSdk({ exports: workflows });
    freezeLikeTheSdk({ exports: validation });

    for (const [name, schema] of exported) {
      assert.ok(Object.isFrozen(schema), `${name} is not frozen`);
      assert.deepEqual(answers(schema), before.get(name), `${name} answers differently once frozen`);
      assert.doesNotThrow(() => readEveryMember(schema), `${name}: a member cannot be read once frozen`);
    }
    assert.deepEqual(validation.imageFromInstanceIssues(bad), parsedBefore);
    assert.deepEqual(validation.parseImageFromInstanceInput(imageInput()), imageInput());
  });

  it('GIVEN every contract schema prepared by the shared module WHEN its own properties are read THEN it holds no copy of its class’s methods, but for the few its definition called before the module ran', () => {
    for (const [name, schema] of exported) {
      const own = Object.getOwnPropertyNames(schema).filter(
        (key) => typeof Object.getOwnPropertyDescriptor(schema, key)?.value === 'function',
      );
      // Without the shared module's plain methods, each schema held ~55 (every member it read).
      assert.ok(own.length <= 5, `${name} holds its own ${own.join(', ')}`);
      assert.ok(!own.includes('safeParse') && !own.includes('parse'), `${name} holds its own parse`);
      assert.equal(schema.safeParse, (Object.getPrototypeOf(schema) as { safeParse: unknown }).safeParse);
    }
  });

  it('GIVEN a schema the shared module did not prepare WHEN frozen the same way THEN parsing it throws (the freeze modelled here is the real hazard)', () => {
    const unprepared = z.strictObject({ id: z.string().regex(/^i-[0-9a-f]{8}$/), n: z.number().optional() });
    freezeLikeTheSdk({ exports: { unprepared } });
    assert.throws(() => unprepared.safeParse({ id: 'i-0123abcd' }), /not extensible|read only/);
  });

  it('GIVEN a schema with a regex check prepared by the shared module WHEN frozen THEN it still matches, again and again', () => {
    const prepared = z.strictObject({ id: z.string().regex(/^i-[0-9a-f]{8}$/) });
    assert.ok(materializeLazyMembers([{ prepared }]) >= 2);
    freezeLikeTheSdk({ exports: { prepared } });
    for (let i = 0; i < 3; i += 1) {
      assert.equal(prepared.safeParse({ id: 'i-0123abcd' }).success, true);
      assert.equal(prepared.safeParse({ id: 'i-XYZ' }).success, false);
    }
  });

  describe('on one worker (one shared V8 context)', () => {
    const env = new Proxy({} as Awaited<ReturnType<typeof timeSkippingEnv>>, {
      get: (_t, p) => Reflect.get(current ?? assert.fail('no environment'), p, current) as unknown,
    });
    let current: Awaited<ReturnType<typeof timeSkippingEnv>> | undefined;

    it(
      'GIVEN good and bad inputs interleaved on one worker WHEN the runs end THEN each gets its own answer and every history replays with the shared bundle',
      RUN_TIMEOUT,
      async () => {
        current = await timeSkippingEnv();
        try {
          const handles: WorkflowHandle<typeof workflows.imageFromInstance>[] = [];
          const outcomes = await withWorker(env, happyActivities(), async (taskQueue) => {
            const inputs = [imageInput(), { ...imageInput(), instanceId: 'i-XYZ' }, imageInput(), null];
            // One after another: the stub instance has one state, as a real one would.
            const ends = [];
            for (const input of inputs) {
              const handle = await startImageFromInstance(env, taskQueue, input);
              handles.push(handle);
              ends.push(await outcomeOf(handle));
            }
            return ends;
          });

          const [good1, bad1, good2, bad2] = outcomes;
          assert.ok(good1 && bad1 && good2 && bad2);
          assert.ok(succeeded(good1).imageId);
          assert.ok(succeeded(good2).imageId);
          assert.match(assertWorkflowFailure(failed(bad1), 'InvalidInput').message, /instanceId: 'i-XYZ'/);
          assert.match(assertWorkflowFailure(failed(bad2), 'InvalidInput').message, /must be an object/);

          const histories = await Promise.all(
            handles.map(async (h) => ({ workflowId: h.workflowId, history: await h.fetchHistory() })),
          );
          const results = [];
          for await (const r of Worker.runReplayHistories(
            { workflowBundle: await workflowBundle() },
            histories,
          ))
            results.push(r);
          assert.equal(results.length, 4);
          assert.deepEqual(
            results.filter((r) => r.error).map((r) => `${r.workflowId}: ${String(r.error)}`),
            [],
          );
        } finally {
          await current.teardown();
          current = undefined;
        }
      },
    );
  });
});

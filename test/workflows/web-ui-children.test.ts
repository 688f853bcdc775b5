/**
 * Issue 11.6, child runs: a golden pipeline's copy and share children carry the search attributes
 * that apply (image, region), so they set their own outcome and step when they end, and a search
 * by the golden image's id finds them. On the dev server (visibility queries) with stub activities.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { GoldenImageResult } from '../../workflows/contracts';
import { SearchAttr, WORKFLOW_TYPES } from '../../workflows/contracts';
import { devServerEnv } from '../support/temporal';
import { ACCOUNT, BUILDER, Fleet, REGION, goldenActivities, goldenInput } from './golden-stubs';
import { LT_ID, RolloutFleet, goldenWithRolloutActivities } from './rollout-stubs';
import { eventually, test, uniqueWorkflowId, withWorker, workflowEnv } from './harness';

const env = workflowEnv(devServerEnv, { per: 'file' });

void describe("Web UI: a golden run's children", () => {
  test('GIVEN a golden run started with its attributes WHEN it copies and shares THEN the copy and share runs are found by the image id, each with its outcome and step', () =>
    withWorker(
      env,
      goldenActivities(new Fleet()),
      async (taskQueue) => {
        // GIVEN: a golden run as the client and its schedule start it (region, builder instance)
        const handle = await env.client.workflow.start(WORKFLOW_TYPES.goldenImage, {
          taskQueue,
          workflowId: uniqueWorkflowId('golden'),
          args: [goldenInput({ approval: undefined })],
          typedSearchAttributes: [
            { key: SearchAttr.region, value: REGION },
            { key: SearchAttr.instanceId, value: BUILDER },
          ],
        });
        const result = (await handle.result()) as GoldenImageResult;
        const original = result.images.find((i) => i.role === 'original')?.imageId;
        assert.ok(original, 'the golden image');
        // WHEN: an operator searches by that image
        const query = `${SearchAttr.imageId.name} = '${original}'`;
        const found = await eventually('the children in a search by image', async () => {
          const types = new Map<string, string>();
          for await (const w of env.client.workflow.list({ query })) types.set(w.type, w.workflowId);
          return types.has(WORKFLOW_TYPES.copyImage) && types.has(WORKFLOW_TYPES.shareImage)
            ? types
            : undefined;
        });
        // THEN: each child ended with its own outcome and step attributes
        for (const type of [WORKFLOW_TYPES.copyImage, WORKFLOW_TYPES.shareImage]) {
          const d = await env.client.workflow.getHandle(found.get(type) ?? '').describe();
          assert.equal(d.typedSearchAttributes.get(SearchAttr.outcome), 'succeeded', `${type} outcome`);
          assert.equal(d.typedSearchAttributes.get(SearchAttr.step), 'done', `${type} step`);
          assert.equal(d.typedSearchAttributes.get(SearchAttr.region), REGION, `${type} region`);
        }
      },
      'web-ui-children',
    ));

  test('GIVEN a golden run with a rollout stage (a 0 s bake) WHEN it rolls out THEN the rollout run is found by the image id, with its outcome, step and region', () =>
    withWorker(
      env,
      goldenWithRolloutActivities(new Fleet(), new RolloutFleet(['web-a', 'web-b'])),
      async (taskQueue) => {
        // GIVEN: a golden run ending in a rollout to one launch template and two groups
        const stage = {
          targets: [
            {
              region: REGION,
              accountId: ACCOUNT,
              launchTemplates: [{ id: LT_ID }],
              autoScalingGroups: [{ tag: { key: 'app' } }],
            },
          ],
          waves: { canary: { group: 'web-a' } },
          bake: { seconds: 0 }, // a dev-server run keeps wall time: no bake timer
        };
        const handle = await env.client.workflow.start(WORKFLOW_TYPES.goldenImage, {
          taskQueue,
          workflowId: uniqueWorkflowId('golden-rollout'),
          args: [
            goldenInput({
              approval: undefined,
              validation: undefined,
              distribution: undefined,
              publish: undefined,
              rollout: stage,
            }),
          ],
          typedSearchAttributes: [
            { key: SearchAttr.region, value: REGION },
            { key: SearchAttr.instanceId, value: BUILDER },
          ],
        });
        const result = (await handle.result()) as GoldenImageResult;
        const original = result.images.find((i) => i.role === 'original')?.imageId;
        assert.ok(result.rollout, 'the run rolled out');
        // WHEN: an operator searches by the golden image
        const query = `${SearchAttr.imageId.name} = '${original}' AND WorkflowType = '${WORKFLOW_TYPES.rolloutImage}'`;
        const id = await eventually('the rollout child in a search by image', async () => {
          for await (const w of env.client.workflow.list({ query })) return w.workflowId;
          return undefined;
        });
        // THEN: the rollout run ended with its own outcome and step attributes
        const d = await env.client.workflow.getHandle(id).describe();
        assert.equal(d.typedSearchAttributes.get(SearchAttr.outcome), 'succeeded', 'rollout outcome');
        assert.equal(d.typedSearchAttributes.get(SearchAttr.step), 'done', 'rollout step');
        assert.equal(d.typedSearchAttributes.get(SearchAttr.region), REGION, 'rollout region');
      },
      'web-ui-rollout-child',
    ));
});

/**
 * Tier 3: an image built from a recipe end to end. The Temporal dev server and moto_server are
 * started here; the recipe file (with a script file next to it and a component) is loaded by the
 * client library, and the real worker resolves the parent from AWS's public Amazon Linux SSM
 * parameter, launches a builder, runs the build steps (shell, file, component, reboot) and the
 * validate step over SSM Run Command, stops and images the builder, terminates it, launches a
 * test instance from the image, runs the test step, and terminates it. A second run of the same
 * recipe returns the same image without building (skip-unchanged).
 *
 * What the sandbox cannot show about SSM (covered with the SDK mocked in
 * test/activities/run-command.test.ts and test/activities/build.test.ts, and with stubs in
 * test/workflows/build-image.test.ts): moto runs no command: every invocation is Success at once,
 * with empty output and no exit code beyond 0, so a failing step, a timed-out one, output tails,
 * a reboot (exit 194) and a cancellation of a running command cannot happen here; every instance's
 * agent would be "online" at once, but moto 5 does not implement DescribeInstanceInformation (nor
 * CancelCommand): a middleware on the worker's SSM client answers DescribeInstanceInformation here
 * with every asked-for instance Online; nothing is written to S3 or CloudWatch Logs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import type {
  SSMClient,
  ServiceInputTypes as SsmInput,
  ServiceOutputTypes as SsmOutput,
} from '@aws-sdk/client-ssm';
import type { InitializeMiddleware } from '@smithy/types';
import { loadRecipeFile } from '../../client/recipe';
import type { BuildImageResult } from '../../contracts/recipe';
import { RECIPE_TAG } from '../../contracts/recipe';
import { TAG } from '../../workflows/contracts';
import { recordHistory } from '../support/histories';
import { SANDBOX_REGION, findImage, tagMap } from '../support/sandbox-ec2';
import { withSandboxWorker } from '../support/sandbox-worker';
import { useE2eStack } from './stack';

const stack = useE2eStack();

const RECIPE = `apiVersion: amiflow/v1
recipe: e2e-web
region: ${SANDBOX_REGION}
parent:
  ssmParameter: /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64
builder:
  instanceTypes: [t3.small]
  tags: { team: e2e }
components:
  motd:
    parameters:
      text: {}
    steps:
      - name: motd
        kind: file
        path: /etc/motd
        content: "{{ text }}"
        mode: '0644'
build:
  - name: install
    kind: shell
    script: scripts/install.sh
  - kind: component
    component: motd
    with: { text: built by amiflow }
  - name: reboot
    kind: reboot
validate:
  - name: installed
    kind: shell
    commands: test -f /etc/motd
test:
  - name: boots
    kind: shell
    commands: systemctl is-system-running --wait || true
output:
  imageName: 'e2e-web-{{date}}-{{time}}-{{hash}}'
  tags: { team: e2e }
`;

/** moto lacks DescribeInstanceInformation: every instance asked for is answered as Online. */
function agentsOnline(ssm: SSMClient): void {
  const middleware: InitializeMiddleware<SsmInput, SsmOutput> = (next, context) => async (args) => {
    if (context.commandName !== 'DescribeInstanceInformationCommand') return next(args);
    const filters = (args.input as { Filters?: { Key?: string; Values?: string[] }[] }).Filters ?? [];
    const ids = filters.find((f) => f.Key === 'InstanceIds')?.Values ?? [];
    const output = {
      $metadata: {},
      InstanceInformationList: ids.map((InstanceId) => ({
        InstanceId,
        PingStatus: 'Online',
        PlatformType: 'Linux',
      })),
    };
    return { output: output as SsmOutput, response: {} };
  };
  ssm.middlewareStack.add(middleware, { step: 'initialize', name: 'amiflowAgentsOnline' });
}

async function instancesOfRun(workflowId: string) {
  const out = await stack.ec2.send(
    new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG.workflowId}`, Values: [workflowId] }] }),
  );
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

void describe('buildImage end to end (dev server + moto + real worker + client)', () => {
  void it('GIVEN a recipe with build, reboot, validate and test steps WHEN it is built THEN the image is available and tagged with its hash, no instance is left running, and the result lists the steps; a second build returns it unchanged', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'amiflow-recipe-'));
    await mkdir(path.join(dir, 'scripts'));
    await writeFile(path.join(dir, 'scripts', 'install.sh'), '#!/bin/bash\nset -e\ndnf install -y nginx\n');
    await writeFile(path.join(dir, 'web.recipe.yaml'), RECIPE);
    const { input } = loadRecipeFile(path.join(dir, 'web.recipe.yaml'));

    const started = Date.now();
    const { first, second, firstId } = await withSandboxWorker(
      stack.env,
      stack.moto.endpoint,
      'e2e-build',
      async (client, hooks) => {
        // The worker's SSM client for the region (cached, so the activities use this very client).
        const ssm = await hooks.clients.ssm?.({ region: SANDBOX_REGION });
        assert.ok(ssm, 'the sandbox worker has an SSM client');
        agentsOnline(ssm);
        const run = await client.startBuildImage(input);
        const result = await client.result<BuildImageResult>(run.workflowId);
        await recordHistory(client.handle(run.workflowId), 'build-image-e2e');
        // The same recipe again, after the first ended: the same id is free, and nothing is built.
        const again = await client.startBuildImage(input);
        return {
          first: result,
          second: await client.result<BuildImageResult>(again.workflowId),
          firstId: run.workflowId,
        };
      },
    );
    const wallSeconds = (Date.now() - started) / 1000;
    console.log(`e2e recipe build wall time: ${wallSeconds.toFixed(1)}s`);

    assert.equal(first.skipped, false);
    assert.deepEqual(
      first.steps.map((s) => `${s.phase}:${s.name}:${s.status}`),
      [
        'build:install:Success',
        'build:motd/motd:Success',
        'build:reboot:Rebooted',
        'validate:installed:Success',
        'test:boots:Success',
      ],
    );
    assert.match(first.parentSource, /^ssm:\/aws\/service\/ami-amazon-linux-latest\//);
    const image = await findImage(stack.ec2, first.imageId);
    assert.equal(image?.State, 'available');
    const tags = tagMap(image?.Tags);
    assert.equal(tags[RECIPE_TAG.contentHash], first.contentHash);
    assert.equal(tags[RECIPE_TAG.recipe], 'e2e-web');
    assert.equal(tags[RECIPE_TAG.parentImage], first.parentImageId);
    assert.equal(tags.team, 'e2e');

    const instances = await instancesOfRun(firstId);
    assert.deepEqual(instances.map((i) => [tagMap(i.Tags)[RECIPE_TAG.role], i.State?.Name]).sort(), [
      ['builder', 'terminated'],
      ['test', 'terminated'],
    ]);
    const builder = instances.find((i) => i.InstanceId === first.builderInstanceId);
    assert.equal(builder?.MetadataOptions?.HttpTokens, 'required');
    assert.equal(builder?.PublicIpAddress, undefined, 'no public address unless the recipe asks');

    assert.equal(second.skipped, true);
    assert.equal(second.imageId, first.imageId);
    assert.equal(second.contentHash, first.contentHash);
  });
});

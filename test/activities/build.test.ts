/**
 * Recipe build activities at the SDK level: the parent image resolved by id, by SSM parameter and
 * by filter (newest wins), and refused when none is found; the builder's RunInstances request
 * (ClientToken, run tags, IMDSv2, no public IP) and the next instance type when EC2 has no
 * capacity; termination only of this run's instances; the content hash; step rendering.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as EC2 from '@aws-sdk/client-ec2';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { ApplicationFailure } from '@temporalio/common';
import type { LaunchBuildInstanceInput } from '../../activities/build';
import { buildClientToken } from '../../activities/build';
import { recipeContentHash, stepCommand } from '../../activities/build-steps';
import type { BuildImageInput } from '../../contracts/recipe';
import { RECIPE_TAG } from '../../contracts/recipe';
import { TAG } from '../../workflows/contracts';
import { awsError, errorOf, ssmError } from './failures';
import { RUN_ID, TARGET, WORKFLOW_ID } from './fixtures';
import type { Harness } from './harness';
import { activityEnv, harness } from './harness';

const PARENT = 'ami-0aaaaaaaaaaaaaaa1';
const owner = { workflowId: WORKFLOW_ID, runId: RUN_ID };
/** A one-step recipe on PARENT: what the content hash is taken of. */
const RECIPE: BuildImageInput = {
  region: 'eu-west-1',
  recipe: 'web',
  parent: { imageId: PARENT },
  builder: { instanceTypes: ['t3.small'] },
  build: [{ kind: 'shell', name: 'x', commands: 'true' }],
  output: { imageName: 'web-{{hash}}' },
};
const available = (ImageId: string, CreationDate: string) => ({
  ImageId,
  CreationDate,
  State: 'available' as const,
  Name: `al2023-${CreationDate}`,
  RootDeviceName: '/dev/xvda',
});

async function parentNotFound(p: Promise<unknown>, fragment: string) {
  const err = await errorOf(p);
  assert.ok(err instanceof ApplicationFailure, String(err));
  assert.equal(err.type, 'ParentImageNotFound');
  assert.equal(err.nonRetryable, true);
  assert.match(err.message, new RegExp(fragment));
}

describe('resolveParentImage', () => {
  /** EC2 describes PARENT as an available image. */
  const parentAvailable = (h: Harness) =>
    h.ec2Mock
      .on(EC2.DescribeImagesCommand, { ImageIds: [PARENT] })
      .resolves({ Images: [available(PARENT, '2026-01-01')] });
  const resolveParent = (h: Harness, parent: BuildImageInput['parent']) =>
    activityEnv().run(h.activities.resolveParentImage, { target: TARGET, parent });

  it('GIVEN an AMI id WHEN resolved THEN it is described and returned with its root device', async () => {
    const h = harness();
    parentAvailable(h);
    const out = await resolveParent(h, { imageId: PARENT });
    assert.deepEqual(
      { id: out.imageId, source: out.source, root: out.rootDeviceName, platform: out.platform },
      { id: PARENT, source: 'imageId', root: '/dev/xvda', platform: 'linux' },
    );
  });

  it('GIVEN an SSM parameter WHEN resolved THEN its value is the parent; a missing parameter is ParentImageNotFound', async () => {
    const h = harness();
    const name = '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64';
    h.ssmMock.on(GetParameterCommand, { Name: name }).resolves({ Parameter: { Name: name, Value: PARENT } });
    parentAvailable(h);
    const out = await resolveParent(h, { ssmParameter: name });
    assert.equal(out.imageId, PARENT);
    assert.equal(out.source, `ssm:${name}`);
    h.ssmMock
      .on(GetParameterCommand, { Name: '/nope' })
      .rejects(ssmError('ParameterNotFound', 400, 'not found'));
    await parentNotFound(resolveParent(h, { ssmParameter: '/nope' }), 'SSM parameter /nope does not exist');
  });

  it('GIVEN a filter WHEN several images match THEN the newest wins; WHEN none match THEN ParentImageNotFound names the filter', async () => {
    const h = harness();
    const filter = { owners: ['amazon'], name: 'al2023-ami-*', architecture: 'x86_64' as const };
    h.ec2Mock
      .on(EC2.DescribeImagesCommand)
      .resolvesOnce({
        Images: [
          available('ami-0aaaaaaaaaaaaaaa2', '2026-01-02'),
          available('ami-0aaaaaaaaaaaaaaa3', '2026-03-01'),
          available(PARENT, '2025-12-01'),
        ],
      })
      .resolves({ Images: [] });
    const out = await resolveParent(h, { filter });
    assert.equal(out.imageId, 'ami-0aaaaaaaaaaaaaaa3');
    const sent = h.ec2Mock.commandCalls(EC2.DescribeImagesCommand)[0]?.args[0].input;
    assert.deepEqual(sent?.Owners, ['amazon']);
    assert.deepEqual(sent?.Filters, [
      { Name: 'name', Values: ['al2023-ami-*'] },
      { Name: 'state', Values: ['available'] },
      { Name: 'architecture', Values: ['x86_64'] },
    ]);
    await parentNotFound(
      resolveParent(h, { filter }),
      'no available image matches the parent filter: owners amazon name al2023-ami-\\*',
    );
  });

  it('GIVEN an AMI id that does not exist WHEN resolved THEN ParentImageNotFound', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', 400));
    await parentNotFound(resolveParent(h, { imageId: PARENT }), `parent image ${PARENT}`);
  });
});

const launchInput = (types: string[]): LaunchBuildInstanceInput => ({
  target: TARGET,
  imageId: PARENT,
  role: 'builder',
  owner,
  builder: {
    instanceTypes: types,
    subnetId: 'subnet-0123456789abcdef0',
    instanceProfile: 'amiflow-builder',
    rootVolume: { sizeGiB: 20, type: 'gp3', encrypted: true },
  },
  rootDeviceName: '/dev/xvda',
  tags: { [TAG.workflowId]: WORKFLOW_ID, [TAG.runId]: RUN_ID, [RECIPE_TAG.role]: 'builder' },
});

describe('launchBuildInstance', () => {
  it('GIVEN no capacity for the first instance type WHEN launching THEN the next one is tried, each with its own ClientToken, IMDSv2 and no public IP', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeInstancesCommand).resolves({ Reservations: [] });
    h.ec2Mock
      .on(EC2.RunInstancesCommand)
      .rejectsOnce(awsError('InsufficientInstanceCapacity', 500))
      .resolves({ Instances: [{ InstanceId: 'i-0bbbbbbbbbbbbbbb1' }] });
    const out = await activityEnv().run(
      h.activities.launchBuildInstance,
      launchInput(['c7i.large', 'm7i.large']),
    );
    assert.deepEqual(out, {
      instanceId: 'i-0bbbbbbbbbbbbbbb1',
      instanceType: 'm7i.large',
      created: true,
      skippedTypes: ['c7i.large (InsufficientInstanceCapacity)'],
    });
    const [first, second] = h.ec2Mock.commandCalls(EC2.RunInstancesCommand).map((c) => c.args[0].input);
    assert.equal(first?.ClientToken, buildClientToken(owner, 'builder', 'c7i.large'));
    assert.equal(second?.ClientToken, buildClientToken(owner, 'builder', 'm7i.large'));
    assert.notEqual(first?.ClientToken, second?.ClientToken);
    assert.deepEqual(second?.MetadataOptions, {
      HttpTokens: 'required',
      HttpEndpoint: 'enabled',
      HttpPutResponseHopLimit: 2,
    });
    assert.equal(second?.NetworkInterfaces?.[0]?.AssociatePublicIpAddress, false);
    assert.equal(second?.IamInstanceProfile?.Name, 'amiflow-builder');
    assert.deepEqual(second?.BlockDeviceMappings?.[0], {
      DeviceName: '/dev/xvda',
      Ebs: { DeleteOnTermination: true, VolumeSize: 20, VolumeType: 'gp3', Encrypted: true },
    });
    assert.deepEqual(
      second?.TagSpecifications?.map((t) => t.ResourceType),
      ['instance', 'volume'],
    );
  });

  it('GIVEN an earlier attempt launched the builder WHEN retried THEN it is found by its tags and nothing is launched', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            { InstanceId: 'i-0bbbbbbbbbbbbbbb1', InstanceType: 't3.small', State: { Name: 'pending' } },
          ],
        },
      ],
    });
    const out = await activityEnv().run(h.activities.launchBuildInstance, launchInput(['t3.small']));
    assert.equal(out.created, false);
    assert.equal(h.ec2Mock.commandCalls(EC2.RunInstancesCommand).length, 0);
    const filters = h.ec2Mock.commandCalls(EC2.DescribeInstancesCommand)[0]?.args[0].input.Filters;
    assert.deepEqual(
      filters?.map((f) => f.Name),
      [`tag:${TAG.workflowId}`, `tag:${TAG.runId}`, `tag:${RECIPE_TAG.role}`],
    );
  });

  it('GIVEN no capacity for any instance type WHEN launching THEN a retryable NoInstanceCapacity names each', async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeInstancesCommand).resolves({ Reservations: [] });
    h.ec2Mock.on(EC2.RunInstancesCommand).rejects(awsError('InsufficientInstanceCapacity', 500));
    const err = await errorOf(
      activityEnv().run(h.activities.launchBuildInstance, launchInput(['t3.small', 't3a.small'])),
    );
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.type, 'NoInstanceCapacity');
    assert.equal(err.nonRetryable, false);
    assert.match(err.message, /t3\.small \(InsufficientInstanceCapacity\), t3a\.small/);
  });
});

describe('terminateBuildInstance', () => {
  /** The compensation of a builder launch: terminate it if this run launched it. */
  const terminateBuilder = {
    target: TARGET,
    owner,
    role: 'builder',
    instanceId: 'i-0bbbbbbbbbbbbbbb1',
  } as const;

  it("GIVEN an instance without this run's build tags WHEN asked to terminate it THEN it is left alone", async () => {
    const h = harness();
    h.ec2Mock.on(EC2.DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            {
              InstanceId: 'i-0bbbbbbbbbbbbbbb1',
              State: { Name: 'running' },
              Tags: [{ Key: TAG.workflowId, Value: 'someone-else' }],
            },
          ],
        },
      ],
    });
    const out = await activityEnv().run(h.activities.terminateBuildInstance, terminateBuilder);
    assert.equal(out.terminated, false);
    assert.equal(h.ec2Mock.commandCalls(EC2.TerminateInstancesCommand).length, 0);
  });

  it("GIVEN this run's builder WHEN terminated THEN TerminateInstances is sent", async () => {
    const h = harness();
    const tags = [
      { Key: TAG.workflowId, Value: WORKFLOW_ID },
      { Key: TAG.runId, Value: RUN_ID },
      { Key: RECIPE_TAG.role, Value: 'builder' },
    ];
    h.ec2Mock.on(EC2.DescribeInstancesCommand).resolves({
      Reservations: [
        { Instances: [{ InstanceId: 'i-0bbbbbbbbbbbbbbb1', State: { Name: 'stopped' }, Tags: tags }] },
      ],
    });
    h.ec2Mock.on(EC2.TerminateInstancesCommand).resolves({});
    const out = await activityEnv().run(h.activities.terminateBuildInstance, terminateBuilder);
    assert.equal(out.terminated, true);
    assert.deepEqual(h.ec2Mock.commandCalls(EC2.TerminateInstancesCommand)[0]?.args[0].input.InstanceIds, [
      'i-0bbbbbbbbbbbbbbb1',
    ]);
  });
});

describe('tagBuildResource and findUnchangedImage', () => {
  it('GIVEN an accepted image WHEN tagged THEN its snapshots carry the hash too; a later lookup by that hash finds it', async () => {
    const h = harness();
    const hash = recipeContentHash(PARENT, RECIPE);
    const img = {
      ...available('ami-0ddddddddddddddd1', '2026-02-01'),
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-0eeeeeeeeeeeeeee1' } }],
    };
    h.ec2Mock.on(EC2.DescribeImagesCommand).resolves({ Images: [img] });
    h.ec2Mock.on(EC2.CreateTagsCommand).resolves({});
    const tagged = await activityEnv().run(h.activities.tagBuildResource, {
      target: TARGET,
      resourceId: 'ami-0ddddddddddddddd1',
      tags: { [RECIPE_TAG.contentHash]: hash },
    });
    assert.deepEqual(tagged.resourceIds, ['ami-0ddddddddddddddd1', 'snap-0eeeeeeeeeeeeeee1']);
    const found = await activityEnv().run(h.activities.findUnchangedImage, {
      target: TARGET,
      parentImageId: PARENT,
      recipe: RECIPE,
    });
    assert.equal(found.contentHash, hash);
    assert.equal(found.existing?.imageId, 'ami-0ddddddddddddddd1');
    const lookup = h.ec2Mock.commandCalls(EC2.DescribeImagesCommand).at(-1)?.args[0].input;
    assert.deepEqual(lookup?.Owners, ['self']);
    assert.deepEqual(lookup?.Filters?.[0], { Name: `tag:${RECIPE_TAG.contentHash}`, Values: [hash] });
  });

  it('GIVEN the same recipe WHEN hashed THEN the hash ignores instance types and timeouts but not steps or the parent', () => {
    const h = recipeContentHash(PARENT, RECIPE);
    assert.equal(
      recipeContentHash(PARENT, {
        ...RECIPE,
        builder: { instanceTypes: ['m7i.large'] },
        timeouts: { instanceReadySeconds: 600 },
      }),
      h,
    );
    assert.notEqual(recipeContentHash('ami-0aaaaaaaaaaaaaaa9', RECIPE), h);
    assert.notEqual(
      recipeContentHash(PARENT, { ...RECIPE, build: [{ kind: 'shell', name: 'x', commands: 'false' }] }),
      h,
    );
  });
});

describe('stepCommand', () => {
  it('GIVEN each step kind WHEN rendered THEN the SSM document, parameters and timeout fit it', () => {
    const shell = stepCommand(
      {
        kind: 'shell',
        name: 's',
        commands: 'echo hi',
        env: { A: "it's" },
        workingDirectory: '/opt',
        timeoutSeconds: 120,
      },
      'linux',
    );
    assert.equal(shell.documentName, 'AWS-RunShellScript');
    assert.deepEqual(shell.parameters.executionTimeout, ['120']);
    assert.deepEqual(shell.parameters.workingDirectory, ['/opt']);
    assert.ok(shell.parameters.commands?.includes(`export A='it'\\''s'`));
    assert.ok(shell.parameters.commands?.some((c) => c.includes(Buffer.from('echo hi').toString('base64'))));
    const file = stepCommand(
      { kind: 'file', name: 'f', path: '/etc/x', content: 'a\nb', mode: '0600', owner: 'root:root' },
      'linux',
    );
    assert.deepEqual(file.parameters.commands?.slice(-2), [
      "chmod 0600 '/etc/x'",
      "chown root:root '/etc/x'",
    ]);
    assert.deepEqual(stepCommand({ kind: 'reboot', name: 'r' }, 'linux').parameters.commands, ['exit 194']);
    assert.deepEqual(stepCommand({ kind: 'reboot', name: 'r' }, 'windows').parameters.commands, [
      'exit 3010',
    ]);
    const doc = stepCommand(
      {
        kind: 'document',
        name: 'd',
        document: 'AWS-RunPatchBaseline',
        parameters: { Operation: ['Install'] },
      },
      'linux',
    );
    assert.deepEqual(doc, {
      documentName: 'AWS-RunPatchBaseline',
      parameters: { Operation: ['Install'] },
      timeoutSeconds: 3600,
    });
    assert.equal(
      stepCommand({ kind: 'powershell', name: 'p', commands: 'Get-Date' }, 'windows').documentName,
      'AWS-RunPowerShellScript',
    );
  });
});

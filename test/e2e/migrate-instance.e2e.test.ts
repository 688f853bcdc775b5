/**
 * Tier 3: migrateInstance end to end. The Temporal dev server and moto_server are started here, the
 * real worker talks to moto as it would to EC2, and the test drives it through the client library
 * and checks the sandbox from outside with its own EC2 client.
 *
 * What moto does here: default VPC subnets in every AZ, DescribeInstanceStatus (`ok` at once for a
 * running instance), DescribeInstanceAttribute (user data, termination protection, shutdown
 * behaviour), Elastic IPs, KMS-encrypted volumes, tag filters. What it does not (covered in
 * test/activities/launch.test.ts instead): ClientToken idempotency, the `client-token` filter,
 * DisableApiTermination on RunInstances, gp3 IOPS/throughput, status checks that take time or fail.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { Instance, Volume } from '@aws-sdk/client-ec2';
import {
  AllocateAddressCommand,
  AssociateAddressCommand,
  CreateKeyPairCommand,
  CreateSecurityGroupCommand,
  DescribeAddressesCommand,
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import type {
  MigrateInstanceInput,
  MigrateInstanceResult,
  WorkflowProgress,
  AmiflowClient,
} from '../../client';
import { RunFailedError } from '../../client';
import { FailureType, MANAGED_BY_VALUE, TAG, WORKFLOW_TYPES } from '../../workflows/contracts';
import { imageChildWorkflowId } from '../../workflows/migrate-instance';
import { recordHistory } from '../support/histories';
import {
  SANDBOX_REGION,
  instanceState,
  observeInstanceState,
  ownImages,
  ownSnapshots,
  stockEbsAmi,
  tagMap,
} from '../support/sandbox-ec2';
import { withSandboxWorker } from '../support/sandbox-worker';
import { useE2eStack } from './stack';

const ZONE_A = `${SANDBOX_REGION}a`;
const ZONE_B = `${SANDBOX_REGION}b`;
const USER_DATA = Buffer.from('#!/bin/sh\necho amiflow-e2e > /etc/motd\n').toString('base64');
const SOURCE_TAGS = { Name: 'web-1', team: 'platform', 'cost-center': '4711' };

const stack = useE2eStack();
let stockAmi: string;

async function withWorker<T>(name: string, fn: (client: AmiflowClient) => Promise<T>): Promise<T> {
  return withSandboxWorker(stack.env, stack.moto.endpoint, name, fn);
}

async function subnetIn(zone: string): Promise<{ subnetId: string; vpcId: string }> {
  const out = await stack.ec2.send(
    new DescribeSubnetsCommand({ Filters: [{ Name: 'availability-zone', Values: [zone] }] }),
  );
  const s = out.Subnets?.find((x) => x.DefaultForAz) ?? out.Subnets?.[0];
  if (!s?.SubnetId || !s.VpcId) throw new Error(`the sandbox has no subnet in ${zone}`);
  return { subnetId: s.SubnetId, vpcId: s.VpcId };
}

async function describe1(instanceId: string): Promise<Instance> {
  const out = await stack.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  const i = out.Reservations?.[0]?.Instances?.[0];
  if (!i) throw new Error(`instance ${instanceId} not found`);
  return i;
}

async function volumesOf(instanceId: string): Promise<Map<string, Volume>> {
  const i = await describe1(instanceId);
  const ids = (i.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.VolumeId ? [m.Ebs.VolumeId] : []));
  const out = await stack.ec2.send(new DescribeVolumesCommand({ VolumeIds: ids }));
  const byId = new Map((out.Volumes ?? []).map((v) => [v.VolumeId, v]));
  return new Map(
    (i.BlockDeviceMappings ?? []).flatMap((m) => {
      const v = byId.get(m.Ebs?.VolumeId);
      return m.DeviceName && v ? [[m.DeviceName, v] as const] : [];
    }),
  );
}

/** A source in AZ a with a security group, key pair, user data, metadata options, tagged volumes. */
async function launchSource(opts: { elasticIp?: boolean } = {}) {
  const a = await subnetIn(ZONE_A);
  const suffix = Math.random().toString(16).slice(2, 8);
  const sg = await stack.ec2.send(
    new CreateSecurityGroupCommand({ GroupName: `web-${suffix}`, Description: 'web', VpcId: a.vpcId }),
  );
  const keyName = `ops-${suffix}`;
  await stack.ec2.send(new CreateKeyPairCommand({ KeyName: keyName }));
  const out = await stack.ec2.send(
    new RunInstancesCommand({
      ImageId: stockAmi,
      MinCount: 1,
      MaxCount: 1,
      InstanceType: 't3.small',
      SubnetId: a.subnetId,
      SecurityGroupIds: [sg.GroupId ?? ''],
      KeyName: keyName,
      UserData: USER_DATA,
      EbsOptimized: true,
      Monitoring: { Enabled: true },
      MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 2 },
      BlockDeviceMappings: [
        { DeviceName: '/dev/sda1', Ebs: { VolumeSize: 10, VolumeType: 'gp3', DeleteOnTermination: true } },
        {
          DeviceName: '/dev/sdf',
          Ebs: { VolumeSize: 20, VolumeType: 'gp3', DeleteOnTermination: false, Encrypted: true },
        },
      ],
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: Object.entries(SOURCE_TAGS).map(([Key, Value]) => ({ Key, Value })),
        },
        { ResourceType: 'volume', Tags: [{ Key: 'backup', Value: 'daily' }] },
      ],
    }),
  );
  const instanceId = out.Instances?.[0]?.InstanceId;
  if (!instanceId) throw new Error('RunInstances returned no instance');
  let allocationId: string | undefined;
  if (opts.elasticIp) {
    const eip = await stack.ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
    allocationId = eip.AllocationId;
    await stack.ec2.send(new AssociateAddressCommand({ AllocationId: allocationId, InstanceId: instanceId }));
  }
  return { instanceId, securityGroupId: sg.GroupId ?? '', keyName, allocationId };
}

async function attribute(instanceId: string, name: 'userData' | 'disableApiTermination') {
  const out = await stack.ec2.send(
    new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: name }),
  );
  return name === 'userData' ? out.UserData?.Value : out.DisableApiTermination?.Value;
}

async function historyLength(client: AmiflowClient, workflowId: string): Promise<number> {
  return (await client.handle(workflowId).fetchHistory()).events?.length ?? 0;
}

void describe('migrateInstance end to end (dev server + moto + real worker + client)', () => {
  beforeEach(async () => {
    await stack.moto.reset();
    stockAmi = await stockEbsAmi(stack.ec2);
  });

  void it("GIVEN a running instance in AZ a with an Elastic IP WHEN migrated to AZ b with source 'terminate' and elasticIp 'move' THEN the new one runs in b with the source's type, groups, key, tags, user data and volumes, holds the Elastic IP, the source is terminated and the intermediate image is gone", async () => {
    const src = await launchSource({ elasticIp: true });
    const b = await subnetIn(ZONE_B);
    const sourceVolumes = await volumesOf(src.instanceId);
    const input: MigrateInstanceInput = {
      region: SANDBOX_REGION,
      instanceId: src.instanceId,
      targetAvailabilityZone: ZONE_B,
      sourceAction: 'terminate',
      elasticIp: 'move',
    };

    const progressSeen: WorkflowProgress[] = [];
    const began = Date.now();
    const { value, changes } = await withWorker('e2e-migrate', (client) =>
      observeInstanceState(stack.ec2, src.instanceId, async () => {
        const run = await client.startMigrateInstance(input);
        const result = await client.watch<MigrateInstanceResult>(
          run.workflowId,
          (p) => progressSeen.push(p),
          100,
        );
        await recordHistory(client.handle(run.workflowId), 'e2e-migrate-instance-terminate-move-eip');
        return {
          run,
          result,
          events: await historyLength(client, run.workflowId),
          childEvents: await historyLength(client, imageChildWorkflowId(run.workflowId)),
        };
      }),
    );
    const wallSeconds = (Date.now() - began) / 1000;
    const { run, result } = value;

    // THEN the new instance runs in AZ b, in b's subnet of the same VPC, shaped like the source
    const fresh = await describe1(result.newInstanceId);
    assert.equal(fresh.State?.Name, 'running');
    assert.equal(fresh.Placement?.AvailabilityZone, ZONE_B);
    assert.equal(fresh.SubnetId, b.subnetId);
    assert.equal(fresh.InstanceType, 't3.small');
    assert.deepEqual(
      (fresh.SecurityGroups ?? []).map((g) => g.GroupId),
      [src.securityGroupId],
    );
    assert.equal(fresh.KeyName, src.keyName);
    assert.equal(fresh.EbsOptimized, true);
    assert.equal(fresh.Monitoring?.State, 'enabled');
    assert.equal(fresh.MetadataOptions?.HttpTokens, 'required');
    assert.equal(fresh.MetadataOptions?.HttpPutResponseHopLimit, 2);
    assert.equal(await attribute(result.newInstanceId, 'userData'), USER_DATA);
    assert.deepEqual(tagMap(fresh.Tags), {
      ...SOURCE_TAGS,
      [TAG.managedBy]: MANAGED_BY_VALUE,
      [TAG.workflowId]: run.workflowId,
      [TAG.runId]: run.runId,
      [TAG.workflowType]: WORKFLOW_TYPES.migrateInstance,
      [TAG.sourceInstance]: src.instanceId,
    });
    // THEN each volume has the source volume's size, type, encryption and key, and its tags
    const freshVolumes = await volumesOf(result.newInstanceId);
    assert.deepEqual([...freshVolumes.keys()].sort(), [...sourceVolumes.keys()].sort());
    for (const [device, v] of sourceVolumes) {
      const n = freshVolumes.get(device);
      assert.equal(n?.AvailabilityZone, ZONE_B, device);
      assert.equal(n?.Size, v.Size, device);
      assert.equal(n?.VolumeType, v.VolumeType, device);
      assert.equal(n?.Encrypted, v.Encrypted, device);
      if (v.Encrypted) assert.equal(n?.KmsKeyId, v.KmsKeyId, device);
      assert.equal(tagMap(n?.Tags).backup, 'daily', device);
      assert.equal(tagMap(n?.Tags)[TAG.workflowId], run.workflowId, device);
    }
    // THEN the Elastic IP moved; the source is terminated; the intermediate image and its snapshots are gone
    const eip = await stack.ec2.send(
      new DescribeAddressesCommand({ AllocationIds: [src.allocationId ?? ''] }),
    );
    assert.equal(eip.Addresses?.[0]?.InstanceId, result.newInstanceId);
    assert.equal(await instanceState(stack.ec2, src.instanceId), 'terminated');
    assert.deepEqual(await ownImages(stack.ec2), []);
    const leftSnapshots = (await ownSnapshots(stack.ec2)).filter((s) =>
      result.image.snapshotIds.includes(s.SnapshotId ?? ''),
    );
    assert.deepEqual(leftSnapshots, []);
    // THEN the source was never running again after the stop that preceded the image
    const states = changes.map((c) => c.state);
    assert.equal(states[0], 'running');
    assert.ok(
      !states.slice(states.indexOf('stopped')).includes('running'),
      `states seen: ${states.join(' → ')}`,
    );

    assert.equal(result.sourceInitialState, 'running');
    assert.equal(result.sourceFinalState, 'terminated');
    assert.equal(result.targetAvailabilityZone, ZONE_B);
    assert.equal(result.elasticIp?.movedToNewInstance, true);
    assert.deepEqual(
      { kept: result.image.kept, deleted: result.image.deleted },
      { kept: false, deleted: true },
    );
    const final = progressSeen.at(-1);
    assert.equal(final?.phase, 'succeeded');
    assert.deepEqual(final?.compensations, []);
    assert.equal(final?.resources.newInstanceId, result.newInstanceId);
    console.log(
      `e2e migration: ${wallSeconds.toFixed(2)} s wall time (start → result), downtime ${result.downtimeSeconds.toFixed(2)} s; ` +
        `history: ${value.events} events (migrateInstance) + ${value.childEvents} (imageFromInstance child); ` +
        `source states seen: ${states.join(' → ')}`,
    );
  });

  void it("GIVEN a running instance WHEN migrated with source 'stop' and keepImage THEN the source is stopped, the new one runs in b and the image is kept", async () => {
    const src = await launchSource();

    const result = await withWorker('e2e-migrate-stop', async (client) => {
      const run = await client.startMigrateInstance({
        region: SANDBOX_REGION,
        instanceId: src.instanceId,
        targetAvailabilityZone: ZONE_B,
        sourceAction: 'stop',
        keepImage: true,
        imageName: `migrate-${src.instanceId}-kept`,
      });
      const migrated = await client.result<MigrateInstanceResult>(run.workflowId);
      await recordHistory(client.handle(run.workflowId), 'e2e-migrate-instance-stop-keep-image');
      return migrated;
    });

    assert.equal(await instanceState(stack.ec2, src.instanceId), 'stopped');
    const fresh = await describe1(result.newInstanceId);
    assert.equal(fresh.State?.Name, 'running');
    assert.equal(fresh.Placement?.AvailabilityZone, ZONE_B);
    assert.deepEqual(tagMap(fresh.Tags).Name, SOURCE_TAGS.Name);
    const images = await stack.ec2.send(new DescribeImagesCommand({ ImageIds: [result.image.imageId] }));
    assert.equal(images.Images?.[0]?.State, 'available');
    assert.equal(images.Images?.[0]?.Name, `migrate-${src.instanceId}-kept`);
    assert.equal(result.image.kept, true);
    assert.equal(result.sourceFinalState, 'stopped');
  });

  void it('GIVEN an instance with an Elastic IP WHEN a migration does not say what to do with it THEN it is refused with ElasticIpUnhandled and nothing is touched', async () => {
    const src = await launchSource({ elasticIp: true });

    const { failure, changes, progress } = await withWorker('e2e-migrate-refused', async (client) => {
      const observed = await observeInstanceState(stack.ec2, src.instanceId, async () => {
        const run = await client.startMigrateInstance({
          region: SANDBOX_REGION,
          instanceId: src.instanceId,
          targetAvailabilityZone: ZONE_B,
          sourceAction: 'terminate',
        });
        const failure = await client.result(run.workflowId).then(
          () => assert.fail('the migration should be refused'),
          (e: unknown) => e,
        );
        await recordHistory(client.handle(run.workflowId), 'e2e-migrate-instance-elastic-ip-unhandled');
        return { failure, progress: await client.progress(run.workflowId) };
      });
      return { ...observed.value, changes: observed.changes };
    });

    assert.ok(failure instanceof RunFailedError, String(failure));
    assert.equal(failure.failureType, FailureType.ElasticIpUnhandled);
    assert.match(failure.message, /nothing was changed.*elasticIp 'move'/);
    assert.deepEqual(
      changes.map((c) => c.state),
      ['running'],
    );
    assert.deepEqual(await ownImages(stack.ec2), []);
    const instances = await stack.ec2.send(new DescribeInstancesCommand({}));
    assert.equal(
      (instances.Reservations ?? []).flatMap((r) => r.Instances ?? []).length,
      1,
      'no instance was launched',
    );
    assert.equal(progress.steps.find((s) => s.name === 'plan migration')?.state, 'failed');
    assert.deepEqual(progress.compensations, []);
  });
});

/**
 * The chaos audit (devkit/chaos/audit.ts) against a real moto_server: an orphan is reported with
 * what it takes to find its run (region, name, the amiflow:workflow-id tag), so a leak seen once in
 * a long session can be traced to the workflow and undo path that missed it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { CreateImageCommand } from '@aws-sdk/client-ec2';
import { audit, contents } from '../../devkit/chaos/audit';
import type { Moto } from '../../devkit/moto';
import { startMoto } from '../../devkit/moto';
import { SANDBOX_REGION, launchInstance, sandboxEc2, stockEbsAmi } from '../../devkit/sandbox-ec2';
import { TAG } from '../../workflows/contracts';

let moto: Moto;
let ec2: EC2Client;

describe('chaos audit', () => {
  before(async () => {
    moto = await startMoto();
    ec2 = sandboxEc2(moto.endpoint);
  });
  after(async () => {
    ec2?.destroy();
    await moto?.stop();
  });

  it('GIVEN an image and snapshot no run reports, one tagged by a run and one not WHEN audited THEN each orphan names its region and name, and the run that tagged it or that it has no such tag', async () => {
    const clients = new Map([[SANDBOX_REGION, ec2]]);
    const instanceId = await launchInstance(ec2, await stockEbsAmi(ec2));
    const before = await contents(clients);
    const runId = 'image-from-instance/us-east-1/self/i-1/chaos-cancel-image-2';
    const tagged = await ec2.send(
      new CreateImageCommand({
        InstanceId: instanceId,
        Name: 'leaked-by-a-run',
        NoReboot: true,
        TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: TAG.workflowId, Value: runId }] }],
      }),
    );
    const untagged = await ec2.send(
      new CreateImageCommand({ InstanceId: instanceId, Name: 'leaked-untagged', NoReboot: true }),
    );

    const found = await audit(clients, ec2, before, []);

    const imageLine = (id: string | undefined) =>
      found.orphans.find((o) => o === `image ${id}` || o.startsWith(`image ${id} (`));
    assert.equal(
      imageLine(tagged.ImageId),
      `image ${tagged.ImageId} (in us-east-1, name leaked-by-a-run, run ${runId})`,
    );
    assert.equal(
      imageLine(untagged.ImageId),
      `image ${untagged.ImageId} (in us-east-1, name leaked-untagged, no ${TAG.workflowId} tag)`,
    );
    const snapshots = found.orphans.filter((o) => o.startsWith('snapshot '));
    assert.equal(snapshots.length, 2, found.orphans.join('\n'));
    for (const s of snapshots) assert.match(s, /^snapshot snap-[0-9a-f]+ \(in us-east-1, .+\)$/);
  });
});

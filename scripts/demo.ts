/**
 * `npm run demo`: the main job on embedded defaults. Starts the local stack (Temporal dev server
 * with Web UI, AWS sandbox), a worker, launches a sample instance in the sandbox, images it in
 * `stop` mode through the client library with a live step view, then checks the outcome in EC2.
 * `npm run demo -- --keep` leaves the stack up afterwards to look around the Web UI;
 * `npm run demo -- --realistic` puts the fault layer (devkit/faults, REALISTIC_FAULTS, AMIFLOW_FAULT_*
 * to change them) between the worker and the sandbox: slow stops, ids not visible at once, throttling.
 */
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { NativeConnection } from '@temporalio/worker';
import { AmiflowClient } from '../client';
import { progressPrinter } from '../client/render';
import { readWorkerSettings } from '../worker/config';
import { connectionOptions } from '../worker/connection';
import { buildWorker, installRuntime } from '../worker/worker';
import type { FaultProxy } from '../devkit/faults';
import { REALISTIC_FAULTS, describeFaults, faultOptionsFromEnv, startFaultProxy } from '../devkit/faults';
import { startLocalStack } from '../devkit/local-stack';

async function main(): Promise<void> {
  const keep = process.argv.includes('--keep');
  const t0 = Date.now();
  console.log('amiflow demo: starting the Temporal dev server and the AWS sandbox…');
  const stack = await startLocalStack();
  let faults: FaultProxy | undefined;
  if (process.argv.includes('--realistic')) {
    faults = await startFaultProxy({
      target: stack.awsEndpoint,
      options: faultOptionsFromEnv(process.env, REALISTIC_FAULTS),
    });
    // The worker goes through the fault layer; the demo's own checks read the sandbox directly.
    stack.env.AMIFLOW_AWS_ENDPOINT = faults.endpoint;
    console.log(`  fault layer:     ${faults.endpoint} (${describeFaults(faults.options())})`);
  }
  Object.assign(process.env, stack.env);
  console.log(`  Temporal Web UI: ${stack.uiUrl}\n  AWS sandbox:     ${stack.awsEndpoint}`);

  const settings = readWorkerSettings({ AMIFLOW_LOG_LEVEL: 'WARN', ...process.env });
  installRuntime(settings.logLevel);
  const connection = await NativeConnection.connect(await connectionOptions(settings.temporal));
  const { worker, deps } = await buildWorker({ connection, settings });
  const workerRun = worker.run();
  const client = await AmiflowClient.connect(settings.temporal);
  const region = process.env.AWS_REGION ?? 'eu-west-1';
  const ec2 = new EC2Client({ region, endpoint: stack.awsEndpoint });
  try {
    const stock = await ec2.send(
      new DescribeImagesCommand({
        Owners: ['amazon'],
        Filters: [{ Name: 'root-device-type', Values: ['ebs'] }],
      }),
    );
    const base = stock.Images?.[0]?.ImageId;
    if (!base) throw new Error('the sandbox offers no EBS-backed image to launch from');
    const launched = await ec2.send(
      new RunInstancesCommand({
        ImageId: base,
        MinCount: 1,
        MaxCount: 1,
        InstanceType: 't3.micro',
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'demo-web-1' }] }],
      }),
    );
    const instanceId = launched.Instances?.[0]?.InstanceId;
    if (!instanceId) throw new Error('RunInstances returned no instance');
    const imageName = `demo-web-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}`;
    console.log(`\nImaging ${instanceId} as '${imageName}' in stop mode (stop, image, start again):`);

    const started = await client.startImageFromInstance({
      region,
      instanceId,
      imageName,
      mode: 'stop',
      description: 'amiflow demo image',
      tags: { team: 'platform', purpose: 'demo' },
    });
    console.log(
      `  workflow: ${stack.uiUrl}/namespaces/${settings.temporal.namespace}/workflows/${encodeURIComponent(started.workflowId)}\n`,
    );
    const result = await client.watch(started.workflowId, progressPrinter(), 250);

    const instance = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    const image = await ec2.send(new DescribeImagesCommand({ ImageIds: [result.imageId] }));
    const state = instance.Reservations?.[0]?.Instances?.[0]?.State?.Name;
    const imageState = image.Images?.[0]?.State;
    console.log(`
Result: image ${result.imageId} is ${imageState}; snapshots ${result.snapshotIds.join(', ')}
        ${result.consistencyNote}
        instance ${instanceId} is ${state} again after ${result.downtimeSeconds.toFixed(2)} s of downtime
Demo finished in ${((Date.now() - t0) / 1000).toFixed(1)} s.`);
    if (state !== 'running' || imageState !== 'available')
      throw new Error('the demo did not end as expected');
    if (keep) {
      console.log(
        `\nThe stack stays up (Ctrl-C to stop). Try:\n${Object.entries(stack.env)
          .map(([k, v]) => `  export ${k}=${v}`)
          .join('\n')}\n  npm run cli -- status '${started.workflowId}'`,
      );
      await workerRun;
    }
  } finally {
    worker.shutdown();
    await workerRun.catch(() => undefined);
    deps.aws.destroy();
    ec2.destroy();
    await client.close();
    await connection.close();
    if (faults) {
      const calls = Object.entries(faults.stats().calls).map(([k, v]) => `${k} ${v}`);
      console.log(`AWS calls through the fault layer: ${calls.join(', ')}`);
      console.log(`Faults injected: ${JSON.stringify(faults.stats().faults)}`);
      await faults.stop();
    }
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

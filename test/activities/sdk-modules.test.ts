/**
 * activities/sdk-modules.ts and the client factories of activities/aws.ts: a worker that has only
 * started (or only images and waits) has not loaded the SSM, KMS, Auto Scaling, CloudWatch or STS SDK
 * modules (issue 13's idle RSS); the first client of a service loads its module and is the SDK's real
 * client, cached per (account, region) like before. Each case runs in a fresh Node process, so what
 * another test file loaded cannot hide a module loaded at start.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const ROOT = path.resolve(__dirname, '..', '..');
const LAZY = [
  '@aws-sdk/client-ssm',
  '@aws-sdk/client-kms',
  '@aws-sdk/client-auto-scaling',
  '@aws-sdk/client-cloudwatch',
  '@aws-sdk/client-sts',
];

/** Runs `body` (CommonJS, after `script` is required) in a fresh process; returns what it printed as JSON. */
async function inFreshProcess(body: string): Promise<unknown> {
  const prelude = `
    const loaded = () => ${JSON.stringify(LAZY)}.filter((m) =>
      Object.keys(require.cache).some((f) => f.includes('/node_modules/' + m + '/')));
  `;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '--import',
      'tsx',
      '--eval',
      `${prelude}\n(async () => { ${body} })().catch((e) => { console.error(e); process.exit(1); });`,
    ],
    { cwd: ROOT, env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } },
  );
  return JSON.parse(stdout.trim().split('\n').pop() ?? 'null');
}

const SETTINGS = `{ roleArns: {}, roleSessionSeconds: 3600, sdkMaxAttempts: 1,
  credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' } }`;

describe('AWS SDK modules loaded on first use', () => {
  it('GIVEN the worker module graph (worker, every activity) WHEN loaded THEN no SSM, KMS, Auto Scaling, CloudWatch or STS module is', async () => {
    const result = await inFreshProcess(`
      require('./worker/worker');
      require('./worker/health');
      const { createActivities } = require('./activities');
      const { createAwsClients } = require('./activities/aws');
      const aws = createAwsClients(${SETTINGS});
      const { DEFAULT_POLL_POLICY, activityClock } = require('./activities/waiting');
      createActivities({ aws, clock: activityClock, random: Math.random, policy: DEFAULT_POLL_POLICY });
      await aws.ec2({ region: 'us-east-1' });
      aws.destroy();
      console.log(JSON.stringify({ ec2: Object.keys(require.cache).some((f) => f.includes('/client-ec2/')), lazy: loaded() }));
    `);
    assert.deepEqual(result, { ec2: true, lazy: [] });
  });

  it('GIVEN no client of a service yet WHEN one is asked for THEN its module loads and the client is the SDK’s own, one per (account, region)', async () => {
    const result = await inFreshProcess(`
      const { createAwsClients } = require('./activities/aws');
      const aws = createAwsClients(${SETTINGS});
      const target = { region: 'eu-west-1' };
      const [kms, again, ssm, asg, cw] = await Promise.all([
        aws.kms(target), aws.kms(target), aws.ssm(target), aws.autoScaling(target), aws.cloudWatch(target),
      ]);
      const other = await aws.kms({ region: 'eu-west-2' });
      const out = {
        kms: kms instanceof require('@aws-sdk/client-kms').KMSClient,
        ssm: ssm instanceof require('@aws-sdk/client-ssm').SSMClient,
        autoScaling: asg instanceof require('@aws-sdk/client-auto-scaling').AutoScalingClient,
        cloudWatch: cw instanceof require('@aws-sdk/client-cloudwatch').CloudWatchClient,
        sameClient: kms === again,
        perRegion: kms !== other,
        region: await kms.config.region(),
        loaded: loaded(),
      };
      aws.destroy();
      console.log(JSON.stringify(out));
    `);
    assert.deepEqual(result, {
      kms: true,
      ssm: true,
      autoScaling: true,
      cloudWatch: true,
      sameClient: true,
      perRegion: true,
      region: 'eu-west-1',
      // STS loads only when the worker's own account must be read (a target with an account id).
      loaded: LAZY.filter((m) => m !== '@aws-sdk/client-sts'),
    });
  });
});

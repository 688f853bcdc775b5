/** worker/config.ts: typed settings from the environment; bad values refused with a message naming the variable. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConfigError,
  STICKY_SCHEDULE_TO_START_MS,
  parseRoleArns,
  readWorkerSettings,
} from '../../worker/config';
import { v8FlagsFor } from '../../worker/v8-settings';

const A = '111122223333';
const B = '444455556666';
const ARN_A = `arn:aws:iam::${A}:role/amiflow`;
const ARN_B = `arn:aws-cn:iam::${B}:role/ops/amiflow-worker`;

function refused(fn: () => unknown, ...messageContains: string[]): void {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    for (const fragment of messageContains)
      assert.ok(
        err.message.includes(fragment),
        `message ${JSON.stringify(err.message)} should contain ${fragment}`,
      );
    return true;
  });
}

void describe('readWorkerSettings', () => {
  void it('GIVEN an empty environment WHEN read THEN the local-stack defaults', () => {
    assert.deepEqual(readWorkerSettings({}, false), {
      temporal: {
        address: 'localhost:7233',
        addressSource: 'the default (TEMPORAL_ADDRESS unset)',
        namespace: 'default',
        taskQueue: 'amiflow',
      },
      logFormat: 'json',
      metricsAddress: '0.0.0.0:9464',
      healthAddress: '0.0.0.0:8080',
      aws: { roleArns: {}, roleSessionSeconds: 3600, sdkMaxAttempts: 3 },
      maxConcurrentActivities: 500,
      maxConcurrentLocalActivities: 100,
      shutdownGraceMs: 30_000,
      logLevel: 'INFO',
      asyncWaits: true,
      waitLeaseTimeoutsMs: { solo: 360_000, shared: 60_000 },
      stickyScheduleToStartMs: 10_000,
      imageWaitCallsPerSecond: 10,
      instanceWaitCallsPerSecond: 2,
      v8MemorySaver: false,
      ec2ClientSubset: true,
    });
  });

  void it('GIVEN AMIFLOW_V8_MEMORY_SAVER WHEN read THEN on sets V8 memory saver mode, off or unset none, anything else is refused', () => {
    assert.equal(readWorkerSettings({ AMIFLOW_V8_MEMORY_SAVER: 'on' }, false).v8MemorySaver, true);
    assert.deepEqual(v8FlagsFor({ AMIFLOW_V8_MEMORY_SAVER: 'on' }), ['--memory-saver-mode']);
    assert.equal(readWorkerSettings({ AMIFLOW_V8_MEMORY_SAVER: 'off' }, false).v8MemorySaver, false);
    assert.deepEqual(v8FlagsFor({ AMIFLOW_V8_MEMORY_SAVER: 'off' }), []);
    assert.deepEqual(v8FlagsFor({}), []);
    refused(
      () => readWorkerSettings({ AMIFLOW_V8_MEMORY_SAVER: '1' }, false),
      'AMIFLOW_V8_MEMORY_SAVER=1',
      'on or off',
    );
  });

  void it('GIVEN AMIFLOW_EC2_CLIENT_SUBSET WHEN read THEN on unless off; anything else is refused', () => {
    assert.equal(readWorkerSettings({ AMIFLOW_EC2_CLIENT_SUBSET: 'off' }, false).ec2ClientSubset, false);
    refused(
      () => readWorkerSettings({ AMIFLOW_EC2_CLIENT_SUBSET: 'no' }, false),
      'AMIFLOW_EC2_CLIENT_SUBSET=no',
    );
  });

  void it('GIVEN the wait lease timeouts set WHEN read THEN both tiers take them; a shared tier slower than solo, or under 5 s, is refused', () => {
    const read = (env: Record<string, string>) => readWorkerSettings(env, false).waitLeaseTimeoutsMs;
    assert.deepEqual(
      read({ AMIFLOW_WAIT_LEASE_SOLO_TIMEOUT_MS: '15000', AMIFLOW_WAIT_LEASE_SHARED_TIMEOUT_MS: '10000' }),
      { solo: 15_000, shared: 10_000 },
    );
    // A solo timeout under the shared default pulls the shared one down with it.
    assert.deepEqual(read({ AMIFLOW_WAIT_LEASE_SOLO_TIMEOUT_MS: '20000' }), { solo: 20_000, shared: 20_000 });
    assert.throws(
      () =>
        read({ AMIFLOW_WAIT_LEASE_SOLO_TIMEOUT_MS: '30000', AMIFLOW_WAIT_LEASE_SHARED_TIMEOUT_MS: '60000' }),
      /AMIFLOW_WAIT_LEASE_SHARED_TIMEOUT_MS=60000 must not exceed/,
    );
    assert.throws(() => read({ AMIFLOW_WAIT_LEASE_SOLO_TIMEOUT_MS: '1000' }), ConfigError);
  });

  void it('GIVEN the instance waits’ call budget set WHEN read THEN taken; outside 1-20 calls a second refused naming it', () => {
    const read = (raw: string) =>
      readWorkerSettings({ AMIFLOW_INSTANCE_WAIT_CALLS_PER_SECOND: raw }, false).instanceWaitCallsPerSecond;
    assert.equal(read('5'), 5);
    assert.throws(
      () => read('0'),
      /AMIFLOW_INSTANCE_WAIT_CALLS_PER_SECOND=0 must be a whole number from 1 to 20/,
    );
    assert.throws(() => read('21'), ConfigError);
  });

  void it('GIVEN the sticky queue’s schedule-to-start timeout set WHEN read THEN taken within its bounds; outside them, or not whole, refused naming it', () => {
    const read = (raw: string) =>
      readWorkerSettings({ AMIFLOW_STICKY_SCHEDULE_TO_START_MS: raw }, false).stickyScheduleToStartMs;
    const { min, max } = STICKY_SCHEDULE_TO_START_MS;
    assert.equal(read(''), STICKY_SCHEDULE_TO_START_MS.default);
    assert.equal(read(String(min)), min);
    assert.equal(read(String(max)), max);
    refused(
      () => read(String(min - 1)),
      `AMIFLOW_STICKY_SCHEDULE_TO_START_MS=${min - 1}`,
      `from ${min} to ${max}`,
    );
    refused(() => read(String(max + 1)), `AMIFLOW_STICKY_SCHEDULE_TO_START_MS=${max + 1}`);
    refused(() => read('10s'), 'AMIFLOW_STICKY_SCHEDULE_TO_START_MS=10s', 'whole number');
  });

  void it('GIVEN every variable set WHEN read THEN each lands in its typed setting', () => {
    const settings = readWorkerSettings({
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_NAMESPACE: 'amiflow-prod',
      AMIFLOW_TASK_QUEUE: 'amiflow-eu',
      TEMPORAL_TLS_CERT: '/etc/amiflow/client.pem',
      TEMPORAL_TLS_KEY: '/etc/amiflow/client.key',
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      TEMPORAL_TLS_CA: '/etc/amiflow/ca.pem',
      TEMPORAL_API_KEY: 'key-123',
      AMIFLOW_AWS_ENDPOINT: 'http://127.0.0.1:5000',
      AMIFLOW_ROLE_ARNS: `${A}=${ARN_A}`,
      AMIFLOW_ROLE_NAME: 'amiflow-worker',
      AMIFLOW_ROLE_EXTERNAL_ID: 'ext-1',
      AMIFLOW_ROLE_SESSION_SECONDS: '7200',
      AMIFLOW_AWS_MAX_ATTEMPTS: '5',
      AMIFLOW_MAX_CONCURRENT_ACTIVITIES: '50',
      AMIFLOW_MAX_CONCURRENT_LOCAL_ACTIVITIES: '20',
      AMIFLOW_SHUTDOWN_GRACE_MS: '0',
      AMIFLOW_LOG_LEVEL: 'debug',
      AMIFLOW_MAX_CACHED_WORKFLOWS: '100',
      AMIFLOW_WORKFLOW_BUNDLE: '/app/dist/workflow-bundle.js',
      AMIFLOW_LOG_FORMAT: 'pretty',
      AMIFLOW_METRICS_ADDRESS: '127.0.0.1:9000',
      AMIFLOW_HEALTH_ADDRESS: 'off',
      AMIFLOW_WAIT_LEASE_SOLO_TIMEOUT_MS: '120000',
      AMIFLOW_WAIT_LEASE_SHARED_TIMEOUT_MS: '30000',
      AMIFLOW_STICKY_SCHEDULE_TO_START_MS: '30000',
    });

    assert.deepEqual(settings, {
      temporal: {
        address: 'temporal.internal:7233',
        addressSource: 'TEMPORAL_ADDRESS',
        namespace: 'amiflow-prod',
        taskQueue: 'amiflow-eu',
        tls: {
          certPath: '/etc/amiflow/client.pem',
          keyPath: '/etc/amiflow/client.key',
          serverNameOverride: 'temporal.internal',
          serverRootCaPath: '/etc/amiflow/ca.pem',
        },
        apiKey: 'key-123',
      },
      aws: {
        endpoint: 'http://127.0.0.1:5000',
        roleArns: { [A]: ARN_A },
        roleName: 'amiflow-worker',
        externalId: 'ext-1',
        roleSessionSeconds: 7200,
        sdkMaxAttempts: 5,
      },
      maxConcurrentActivities: 50,
      maxConcurrentLocalActivities: 20,
      shutdownGraceMs: 0,
      logLevel: 'DEBUG',
      maxCachedWorkflows: 100,
      asyncWaits: true,
      waitLeaseTimeoutsMs: { solo: 120_000, shared: 30_000 },
      stickyScheduleToStartMs: 30_000,
      imageWaitCallsPerSecond: 10,
      instanceWaitCallsPerSecond: 2,
      workflowBundlePath: '/app/dist/workflow-bundle.js',
      logFormat: 'pretty',
      metricsAddress: '127.0.0.1:9000',
      v8MemorySaver: false,
      ec2ClientSubset: true,
    });
  });

  void it('GIVEN no log format WHEN stdout is a terminal THEN pretty, otherwise json', () => {
    assert.equal(readWorkerSettings({}, true).logFormat, 'pretty');
    assert.equal(readWorkerSettings({}, false).logFormat, 'json');
    assert.equal(readWorkerSettings({ AMIFLOW_LOG_FORMAT: 'json' }, true).logFormat, 'json');
  });

  void it('GIVEN bad telemetry settings WHEN read THEN refused naming the variable and the value', () => {
    refused(
      () => readWorkerSettings({ AMIFLOW_LOG_FORMAT: 'xml' }),
      'AMIFLOW_LOG_FORMAT=xml',
      'json or pretty',
    );
    refused(
      () => readWorkerSettings({ AMIFLOW_METRICS_ADDRESS: 'nowhere' }),
      'AMIFLOW_METRICS_ADDRESS=nowhere',
      'host:port',
    );
    refused(
      () => readWorkerSettings({ AMIFLOW_HEALTH_ADDRESS: 'h:99999' }),
      'AMIFLOW_HEALTH_ADDRESS=h:99999',
    );
  });

  void it('GIVEN a bare port or IPv6 address WHEN read THEN a listen address', () => {
    assert.equal(readWorkerSettings({ AMIFLOW_METRICS_ADDRESS: '9100' }).metricsAddress, '0.0.0.0:9100');
    assert.equal(readWorkerSettings({ AMIFLOW_HEALTH_ADDRESS: '[::]:8081' }).healthAddress, '[::]:8081');
  });

  void it('GIVEN a negative workflow cache size WHEN read THEN refused naming the variable', () => {
    assert.throws(
      () => readWorkerSettings({ AMIFLOW_MAX_CACHED_WORKFLOWS: '-1' }),
      /AMIFLOW_MAX_CACHED_WORKFLOWS=-1/,
    );
  });

  void it('GIVEN empty strings WHEN read THEN they count as unset', () => {
    const settings = readWorkerSettings({
      TEMPORAL_ADDRESS: '',
      AMIFLOW_ROLE_SESSION_SECONDS: '',
      AMIFLOW_ROLE_NAME: '',
    });
    assert.equal(settings.temporal.address, 'localhost:7233');
    assert.equal(settings.aws.roleSessionSeconds, 3600);
    assert.equal('roleName' in settings.aws, false);
  });

  for (const [name, value, range] of [
    ['AMIFLOW_ROLE_SESSION_SECONDS', '600', 'from 900 to 43200'],
    ['AMIFLOW_ROLE_SESSION_SECONDS', '43201', 'from 900 to 43200'],
    ['AMIFLOW_ROLE_SESSION_SECONDS', 'one hour', 'from 900 to 43200'],
    ['AMIFLOW_AWS_MAX_ATTEMPTS', '0', 'from 1 to 10'],
    ['AMIFLOW_AWS_MAX_ATTEMPTS', '2.5', 'from 1 to 10'],
    ['AMIFLOW_MAX_CONCURRENT_ACTIVITIES', '-1', 'from 1 to 10000'],
    ['AMIFLOW_MAX_CONCURRENT_LOCAL_ACTIVITIES', '1e9', 'from 1 to 10000'],
    ['AMIFLOW_SHUTDOWN_GRACE_MS', '-5', 'from 0 to 600000'],
  ] as const) {
    void it(`GIVEN ${name}=${value} WHEN read THEN refused, naming the variable, the value and the range`, () => {
      refused(() => readWorkerSettings({ [name]: value }), `${name}=${value}`, 'whole number', range);
    });
  }

  void it('GIVEN an unknown log level WHEN read THEN refused, listing the levels', () => {
    refused(
      () => readWorkerSettings({ AMIFLOW_LOG_LEVEL: 'verbose' }),
      'AMIFLOW_LOG_LEVEL=verbose',
      'TRACE, DEBUG, INFO',
    );
  });

  void it('GIVEN a TLS certificate without its key WHEN read THEN refused, asking for both', () => {
    refused(
      () => readWorkerSettings({ TEMPORAL_TLS_CERT: '/c.pem' }),
      'TEMPORAL_TLS_CERT',
      'TEMPORAL_TLS_KEY',
    );
    refused(() => readWorkerSettings({ TEMPORAL_TLS_KEY: '/c.key' }), 'set both');
  });

  void it('GIVEN a role name that is not an IAM role name WHEN read THEN refused, naming the variable', () => {
    refused(
      () => readWorkerSettings({ AMIFLOW_ROLE_NAME: 'amiflow worker!' }),
      'AMIFLOW_ROLE_NAME=amiflow worker!',
    );
    refused(() => readWorkerSettings({ AMIFLOW_ROLE_NAME: 'r'.repeat(65) }), 'AMIFLOW_ROLE_NAME');
  });

  void it('GIVEN bad role ARNs WHEN read THEN refused through readWorkerSettings too', () => {
    refused(() => readWorkerSettings({ AMIFLOW_ROLE_ARNS: 'nonsense' }), 'AMIFLOW_ROLE_ARNS');
  });
});

void describe('parseRoleArns', () => {
  void it('GIVEN nothing WHEN parsed THEN no roles', () => {
    assert.deepEqual(parseRoleArns(undefined), {});
    assert.deepEqual(parseRoleArns(''), {});
    assert.deepEqual(parseRoleArns('   '), {});
  });

  void it('GIVEN account=arn pairs with spaces, other partitions and role paths WHEN parsed THEN a map by account', () => {
    assert.deepEqual(parseRoleArns(` ${A} = ${ARN_A} , ${B}=${ARN_B}`), { [A]: ARN_A, [B]: ARN_B });
    assert.deepEqual(parseRoleArns(`${A}=${ARN_A},`), { [A]: ARN_A }, 'a trailing comma is tolerated');
    const gov = `arn:aws-us-gov:iam::${A}:role/amiflow`;
    assert.deepEqual(parseRoleArns(`${A}=${gov}`), { [A]: gov });
  });

  void it('GIVEN a JSON object WHEN parsed THEN the same map', () => {
    assert.deepEqual(parseRoleArns(JSON.stringify({ [A]: ARN_A, [B]: ARN_B })), { [A]: ARN_A, [B]: ARN_B });
  });

  for (const [what, raw, ...fragments] of [
    ['an entry without =', `${A}:${ARN_A}`, 'must be account=roleArn', `${A}:${ARN_A}`],
    [
      'an 11-digit account',
      `11112222333=arn:aws:iam::11112222333:role/x`,
      "'11112222333' is not a 12-digit account id",
    ],
    ['a letter in the account', `11112222333x=${ARN_A}`, 'not a 12-digit account id'],
    ['a role of another account', `${B}=${ARN_A}`, `'${ARN_A}' is not an IAM role ARN in account ${B}`],
    ['a user instead of a role', `${A}=arn:aws:iam::${A}:user/bob`, 'is not an IAM role ARN'],
    ['not an ARN at all', `${A}=amiflow`, "'amiflow' is not an IAM role ARN"],
    ['a role name with a space', `${A}=arn:aws:iam::${A}:role/ami flow`, 'is not an IAM role ARN'],
    ['invalid JSON', `{"${A}": "${ARN_A}"`, 'not valid JSON'],
    ['a JSON value that is not a string ARN', `{"${A}": 5}`, "'5' is not an IAM role ARN"],
  ] as const) {
    void it(`GIVEN ${what} WHEN parsed THEN refused with a message saying so`, () => {
      refused(() => parseRoleArns(raw), 'AMIFLOW_ROLE_ARNS', ...fragments);
    });
  }
});

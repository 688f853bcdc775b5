/**
 * Typed worker and client configuration, read from the environment. Every setting has one name
 * here; defaults give the local stack (dev server on localhost:7233, the worker's own AWS credentials).
 */
import { DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE } from '../contracts';
import type { AwsSettings } from '../activities/aws';
import { V8_MEMORY_SAVER_ENV } from './v8-settings';
import { EC2_CLIENT_SUBSET_ENV } from './ec2-client-subset';

export interface TemporalSettings {
  address: string;
  /** Where `address` came from, for messages: `TEMPORAL_ADDRESS` or `the default`. */
  addressSource?: string;
  namespace: string;
  taskQueue: string;
  /** mTLS client certificate and key (PEM paths), or an API key (Temporal Cloud). */
  tls?: { certPath: string; keyPath: string; serverNameOverride?: string; serverRootCaPath?: string };
  apiKey?: string;
}

export interface WorkerSettings {
  temporal: TemporalSettings;
  aws: AwsSettings;
  maxConcurrentActivities: number;
  maxConcurrentLocalActivities: number;
  shutdownGraceMs: number;
  logLevel: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /**
   * Workflows kept in memory between tasks; waiting runs need none (evicted ones replay their short
   * history). Default DEFAULT_CACHED_WORKFLOWS (worker.ts), so thousands of waiting runs are not held.
   */
  maxCachedWorkflows?: number;
  /**
   * Image waits completed asynchronously by one watcher per worker, with a per-worker lease
   * (AMIFLOW_ASYNC_WAITS=on, the default; `off` polls inside each waiting activity as before).
   */
  asyncWaits: boolean;
  /**
   * Heartbeat timeout of the per-worker wait lease, per tier: how long after a worker dies its image
   * waits resume on another (AMIFLOW_WAIT_LEASE_SOLO_TIMEOUT_MS, default 6 min, for fewer than 6
   * waits; AMIFLOW_WAIT_LEASE_SHARED_TIMEOUT_MS, default 1 min, from 6). Shorter costs more
   * heartbeats: one per 0.8 × timeout per worker, not per wait.
   */
  waitLeaseTimeoutsMs: { solo: number; shared: number };
  /**
   * How long a workflow task may wait on this worker's sticky queue before the server moves it to
   * the shared queue, where the run replays from its whole history (AMIFLOW_STICKY_SCHEDULE_TO_START_MS;
   * the SDK's 10 s by default). See STICKY_SCHEDULE_TO_START_MS for why and its bounds.
   */
  stickyScheduleToStartMs: number;
  /** DescribeImages calls per second per account and region for the image-wait watcher (EC2 refills 20/s). */
  imageWaitCallsPerSecond: number;
  /**
   * DescribeInstances/DescribeInstanceStatus calls per second per account and region for the
   * instance waits' merged reads (activities/instance-reads.ts): 1,000 stop waits in one
   * account-region (~200 ids a second) fit in two calls a second.
   */
  instanceWaitCallsPerSecond: number;
  /** A workflow bundle built ahead (`npm run build` writes dist/workflow-bundle.js): faster start, ~45 MB less memory. */
  workflowBundlePath?: string;
  /** `json` (one object per line) or `pretty`; json unless stdout is a terminal. */
  logFormat: 'json' | 'pretty';
  /** host:port of the Prometheus endpoint (`/metrics`); undefined when turned off. */
  metricsAddress?: string;
  /** host:port of `/healthz` and `/readyz`; undefined when turned off. */
  healthAddress?: string;
  /**
   * V8's memory saver mode (AMIFLOW_V8_MEMORY_SAVER=on, default off): less memory for more CPU per
   * run. Applied by `v8-settings.ts` before the worker's modules load; read here to validate it.
   */
  v8MemorySaver: boolean;
  /**
   * The build's EC2 client subset (AMIFLOW_EC2_CLIENT_SUBSET, default on; `ec2-client-subset.ts`
   * applies it before the activities load; read here to validate it).
   */
  ec2ClientSubset: boolean;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ConfigError(`${name}=${raw} must be a whole number from ${min} to ${max}`);
  return n;
}

function onOff(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'on' || raw === 'off') return raw === 'on';
  throw new ConfigError(`${name}=${raw} must be on or off`);
}

/** `111122223333=arn:aws:iam::111122223333:role/amiflow,444455556666=arn:…` or a JSON object. */
export function parseRoleArns(raw: string | undefined): Record<string, string> {
  if (!raw || raw.trim() === '') return {};
  let pairs: [string, string][];
  if (raw.trim().startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new ConfigError('AMIFLOW_ROLE_ARNS is not valid JSON');
    }
    if (typeof parsed !== 'object' || parsed === null)
      throw new ConfigError('AMIFLOW_ROLE_ARNS must be an object');
    pairs = Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k, String(v)]);
  } else {
    pairs = raw
      .split(',')
      .filter((item) => item.trim() !== '')
      .map((item) => {
        const at = item.indexOf('=');
        if (at < 0) throw new ConfigError(`AMIFLOW_ROLE_ARNS entry '${item}' must be account=roleArn`);
        return [item.slice(0, at).trim(), item.slice(at + 1).trim()];
      });
  }
  for (const [account, arn] of pairs) {
    if (!/^\d{12}$/.test(account))
      throw new ConfigError(`AMIFLOW_ROLE_ARNS: '${account}' is not a 12-digit account id`);
    if (!new RegExp(`^arn:aws[a-z-]*:iam::${account}:role/[\\w+=,.@/-]+$`).test(arn))
      throw new ConfigError(`AMIFLOW_ROLE_ARNS: '${arn}' is not an IAM role ARN in account ${account}`);
  }
  return Object.fromEntries(pairs);
}

export function readTemporalSettings(env: Env = process.env): TemporalSettings {
  const certPath = env.TEMPORAL_TLS_CERT;
  const keyPath = env.TEMPORAL_TLS_KEY;
  if (Boolean(certPath) !== Boolean(keyPath))
    throw new ConfigError('set both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY, or neither');
  return {
    address: env.TEMPORAL_ADDRESS || 'localhost:7233',
    addressSource: env.TEMPORAL_ADDRESS ? 'TEMPORAL_ADDRESS' : 'the default (TEMPORAL_ADDRESS unset)',
    namespace: env.TEMPORAL_NAMESPACE || DEFAULT_NAMESPACE,
    taskQueue: env.AMIFLOW_TASK_QUEUE || DEFAULT_TASK_QUEUE,
    ...(certPath && keyPath
      ? {
          tls: {
            certPath,
            keyPath,
            ...(env.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: env.TEMPORAL_TLS_SERVER_NAME } : {}),
            ...(env.TEMPORAL_TLS_CA ? { serverRootCaPath: env.TEMPORAL_TLS_CA } : {}),
          },
        }
      : {}),
    ...(env.TEMPORAL_API_KEY ? { apiKey: env.TEMPORAL_API_KEY } : {}),
  };
}

export function readAwsSettings(env: Env = process.env): AwsSettings {
  const roleName = env.AMIFLOW_ROLE_NAME;
  if (roleName !== undefined && roleName !== '' && !/^[\w+=,.@/-]{1,64}$/.test(roleName))
    throw new ConfigError(`AMIFLOW_ROLE_NAME=${roleName} is not an IAM role name`);
  return {
    ...(env.AMIFLOW_AWS_ENDPOINT ? { endpoint: env.AMIFLOW_AWS_ENDPOINT } : {}),
    roleArns: parseRoleArns(env.AMIFLOW_ROLE_ARNS),
    ...(roleName ? { roleName } : {}),
    ...(env.AMIFLOW_ROLE_EXTERNAL_ID ? { externalId: env.AMIFLOW_ROLE_EXTERNAL_ID } : {}),
    roleSessionSeconds: int(env, 'AMIFLOW_ROLE_SESSION_SECONDS', 3600, 900, 43200),
    ...(env.AMIFLOW_STS_REGION ? { stsRegion: env.AMIFLOW_STS_REGION } : {}),
    sdkMaxAttempts: int(env, 'AMIFLOW_AWS_MAX_ATTEMPTS', 3, 1, 10),
  };
}

const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
function logLevel(raw: string | undefined): WorkerSettings['logLevel'] {
  if (raw === undefined || raw === '') return 'INFO';
  const level = raw.toUpperCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new ConfigError(`AMIFLOW_LOG_LEVEL=${raw} must be one of ${LOG_LEVELS.join(', ')}`);
  return level as WorkerSettings['logLevel'];
}

function logFormat(raw: string | undefined, stdoutIsTTY: boolean): WorkerSettings['logFormat'] {
  if (raw === undefined || raw === '') return stdoutIsTTY ? 'pretty' : 'json';
  if (raw !== 'json' && raw !== 'pretty')
    throw new ConfigError(`AMIFLOW_LOG_FORMAT=${raw} must be json or pretty`);
  return raw;
}

/** `host:port` (IPv6 in brackets), or `off`; a port alone listens on every interface. */
export function listenAddress(env: Env, name: string, fallback: string): string | undefined {
  const raw = env[name] === undefined || env[name] === '' ? fallback : (env[name] ?? fallback);
  if (raw === 'off') return undefined;
  const address = /^\d+$/.test(raw) ? `0.0.0.0:${raw}` : raw;
  const m = /^(\[[0-9a-fA-F:]+\]|[\w.-]+):(\d{1,5})$/.exec(address);
  const port = Number(m?.[2]);
  if (!m || port > 65535)
    throw new ConfigError(`${name}=${raw} must be host:port (e.g. 0.0.0.0:${fallback.split(':')[1]}) or off`);
  return address;
}

/** Splits a `listenAddress` into what `http.Server.listen` takes. */
export function hostAndPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) };
}

/** The lease's heartbeat timeouts: 5 s to 1 h each, and the shared tier's no longer than the solo one. */
function waitLeaseTimeouts(env: Env): WorkerSettings['waitLeaseTimeoutsMs'] {
  const solo = int(env, 'AMIFLOW_WAIT_LEASE_SOLO_TIMEOUT_MS', 360_000, 5_000, 3_600_000);
  const shared = int(env, 'AMIFLOW_WAIT_LEASE_SHARED_TIMEOUT_MS', Math.min(60_000, solo), 5_000, 3_600_000);
  if (shared > solo)
    throw new ConfigError(
      `AMIFLOW_WAIT_LEASE_SHARED_TIMEOUT_MS=${shared} must not exceed AMIFLOW_WAIT_LEASE_SOLO_TIMEOUT_MS=${solo}: the shared tier is the one that reacts faster`,
    );
  return { solo, shared };
}

/**
 * The sticky queue's schedule-to-start timeout: default, and bounds. The server sends a task to a
 * worker's sticky queue only while that worker polled it in the last 10 s (otherwise to the shared
 * queue at once), and a graceful shutdown tells the server the queue is gone; so the timeout is
 * what a task pays only when its worker stopped polling in that window (SIGKILL, a lost node), and
 * what hands a too-busy worker's tasks to other workers. The SDK's 10 s stays the default: 60 s
 * removed the timeouts of 2,000 released runs but not their replays (they came back as cache
 * misses) and saved no CPU this bench can see (docs/fleet-waits.md, "Sticky queue"). Above 1 min
 * a dead worker's last tasks would wait longer than the lease's shared tier takes to release its waits.
 */
export const STICKY_SCHEDULE_TO_START_MS = { default: 10_000, min: 1_000, max: 60_000 } as const;

export function readWorkerSettings(
  env: Env = process.env,
  stdoutIsTTY: boolean = process.stdout.isTTY === true,
): WorkerSettings {
  const metricsAddress = listenAddress(env, 'AMIFLOW_METRICS_ADDRESS', '0.0.0.0:9464');
  const healthAddress = listenAddress(env, 'AMIFLOW_HEALTH_ADDRESS', '0.0.0.0:8080');
  return {
    logFormat: logFormat(env.AMIFLOW_LOG_FORMAT, stdoutIsTTY),
    ...(metricsAddress ? { metricsAddress } : {}),
    ...(healthAddress ? { healthAddress } : {}),
    temporal: readTemporalSettings(env),
    aws: readAwsSettings(env),
    // Most activities wait on AWS and hold no CPU: many fit in one worker.
    maxConcurrentActivities: int(env, 'AMIFLOW_MAX_CONCURRENT_ACTIVITIES', 500, 1, 10000),
    maxConcurrentLocalActivities: int(env, 'AMIFLOW_MAX_CONCURRENT_LOCAL_ACTIVITIES', 100, 1, 10000),
    shutdownGraceMs: int(env, 'AMIFLOW_SHUTDOWN_GRACE_MS', 30000, 0, 600000),
    logLevel: logLevel(env.AMIFLOW_LOG_LEVEL),
    ...(env.AMIFLOW_MAX_CACHED_WORKFLOWS
      ? { maxCachedWorkflows: int(env, 'AMIFLOW_MAX_CACHED_WORKFLOWS', 0, 0, 100000) }
      : {}),
    asyncWaits: onOff(env, 'AMIFLOW_ASYNC_WAITS', true),
    waitLeaseTimeoutsMs: waitLeaseTimeouts(env),
    stickyScheduleToStartMs: int(
      env,
      'AMIFLOW_STICKY_SCHEDULE_TO_START_MS',
      STICKY_SCHEDULE_TO_START_MS.default,
      STICKY_SCHEDULE_TO_START_MS.min,
      STICKY_SCHEDULE_TO_START_MS.max,
    ),
    imageWaitCallsPerSecond: int(env, 'AMIFLOW_IMAGE_WAIT_CALLS_PER_SECOND', 10, 1, 20),
    instanceWaitCallsPerSecond: int(env, 'AMIFLOW_INSTANCE_WAIT_CALLS_PER_SECOND', 2, 1, 20),
    ...(env.AMIFLOW_WORKFLOW_BUNDLE ? { workflowBundlePath: env.AMIFLOW_WORKFLOW_BUNDLE } : {}),
    v8MemorySaver: onOff(env, V8_MEMORY_SAVER_ENV, false),
    ec2ClientSubset: onOff(env, EC2_CLIENT_SUBSET_ENV, true),
  };
}

/**
 * AWS clients per (account, region). The worker's own credentials come from the usual chain
 * (environment, profile, SSO, instance or container role); another account is reached by assuming
 * the role configured for it, with credentials that refresh themselves before they expire, so a
 * copy or a wait longer than one hour of credentials keeps working.
 */
import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { EC2Client } from '@aws-sdk/client-ec2';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { STSClient } from '@aws-sdk/client-sts';
import { fromNodeProviderChain, fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { MetricMeter } from '@temporalio/common';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { AwsTarget } from '../contracts';
import { FailureType } from '../contracts';
import { aws, failure } from './errors';
import { AMIFLOW_USER_AGENT, awsTelemetry } from './aws-telemetry';
import { sdk } from './sdk-modules';

export interface AwsSettings {
  /** Endpoint for every service, e.g. the local sandbox; unset for real AWS. */
  endpoint?: string;
  /** Role to assume per account id. */
  roleArns: Record<string, string>;
  /** Role name assumed in any account without an entry in `roleArns` (arn:<partition>:iam::<account>:role/<name>). */
  roleName?: string;
  externalId?: string;
  /**
   * Session length of assumed roles; credentials refresh before this runs out. Capped at one hour
   * when the worker's own credentials are a role session (role chaining).
   */
  roleSessionSeconds: number;
  /**
   * Region whose STS endpoint assumes roles and reads the worker identity. Unset: the target region,
   * unless it is an opt-in region, then the partition's first region (always enabled).
   */
  stsRegion?: string;
  /** Retries inside the SDK before an error reaches Temporal's retry policy. */
  sdkMaxAttempts: number;
  /** Explicit base credentials (tests, sandbox); otherwise the default provider chain. */
  credentials?:
    AwsCredentialIdentityProvider | { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export interface AwsClients {
  ec2(target: AwsTarget): Promise<EC2Client>;
  /** KMS in the same (account, region), with the same credentials as `ec2(target)`. */
  kms(target: AwsTarget): Promise<KMSClient>;
  /**
   * SSM (Parameter Store) in the same (account, region), same credentials. Optional in the type so
   * test doubles that model EC2 alone need not provide it; `createAwsClients` always does.
   */
  ssm?(target: AwsTarget): Promise<SSMClient>;
  /** Auto Scaling in the same (account, region), same credentials (rollouts); optional like `ssm`. */
  autoScaling?(target: AwsTarget): Promise<AutoScalingClient>;
  /** CloudWatch in the same (account, region), same credentials (a rollout's bake alarms). */
  cloudWatch?(target: AwsTarget): Promise<CloudWatchClient>;
  /** Releases sockets; the worker calls it on shutdown. */
  destroy(): void;
}

/** The clients a worker may be built without (test doubles that model EC2 alone), by key. */
interface OptionalClients {
  ssm: SSMClient;
  autoScaling: AutoScalingClient;
  cloudWatch: CloudWatchClient;
}

const OPTIONAL_CLIENT_NAMES: Record<keyof OptionalClients, string> = {
  ssm: 'an SSM client',
  autoScaling: 'an Auto Scaling client',
  cloudWatch: 'a CloudWatch client',
};

/**
 * The optional client `key` for `target`. A worker built without it fails the activity at once,
 * non-retryable (another attempt on the same worker cannot do better), saying what needs it.
 */
export async function optionalClient<K extends keyof OptionalClients>(
  clients: AwsClients,
  key: K,
  target: AwsTarget,
  neededFor: string,
): Promise<OptionalClients[K]> {
  // Indexed by a generic key TypeScript cannot relate AwsClients[K] to OptionalClients[K]; the
  // interface above lists exactly AwsClients' optional makers and what each returns.
  const make = clients[key] as ((target: AwsTarget) => Promise<OptionalClients[K]>) | undefined;
  if (!make)
    throw failure(
      FailureType.AwsMalformedRequest,
      `this worker was built without ${OPTIONAL_CLIENT_NAMES[key]} (AwsClients.${key}); ${neededFor}`,
    );
  return make.call(clients, target);
}

const ISO_PARTITIONS: Record<string, string> = {
  iso: 'aws-iso',
  isob: 'aws-iso-b',
  isoe: 'aws-iso-e',
  isof: 'aws-iso-f',
};

export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  const iso = /^[a-z]{2}-(iso[a-z]?)-/.exec(region)?.[1];
  return (iso && ISO_PARTITIONS[iso]) ?? 'aws';
}

export function roleArnFor(settings: AwsSettings, accountId: string, region: string): string | undefined {
  const explicit = settings.roleArns[accountId];
  if (explicit) return explicit;
  if (settings.roleName) return `arn:${partitionOf(region)}:iam::${accountId}:role/${settings.roleName}`;
  return undefined;
}

/**
 * Regions an account must opt in to. Their STS endpoint answers only accounts that have enabled them
 * (RegionDisabledException otherwise), so STS calls for them go to the partition's first region,
 * whose regional endpoint issues session tokens valid in every region
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_enable-regions.html).
 */
const OPT_IN_REGIONS = new Set([
  'af-south-1',
  'ap-east-1',
  'ap-east-2',
  'ap-south-2',
  'ap-southeast-3',
  'ap-southeast-4',
  'ap-southeast-5',
  'ap-southeast-6',
  'ap-southeast-7',
  'ca-west-1',
  'eu-central-2',
  'eu-south-1',
  'eu-south-2',
  'il-central-1',
  'me-central-1',
  'me-south-1',
  'mx-central-1',
]);
const PARTITION_HOME: Record<string, string> = {
  aws: 'us-east-1',
  'aws-cn': 'cn-north-1',
  'aws-us-gov': 'us-gov-west-1',
};

/** The region whose STS endpoint serves calls made for `region`. */
export function stsRegionFor(settings: Pick<AwsSettings, 'stsRegion'>, region: string): string {
  if (settings.stsRegion) return settings.stsRegion;
  if (!OPT_IN_REGIONS.has(region)) return region;
  return PARTITION_HOME[partitionOf(region)] ?? region;
}

/**
 * Role chaining (assuming a role with a role session's credentials: an instance profile, a task or
 * pod role, SSO) limits the new session to one hour; AssumeRole refuses more
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_terms-and-concepts.html#iam-term-role-chaining).
 * Temporary base credentials (a session token) are taken as a role session.
 */
export const ROLE_CHAINING_MAX_SECONDS = 3600;
export function sessionSecondsFor(requested: number, base: AwsCredentialIdentity): number {
  return base.sessionToken ? Math.min(requested, ROLE_CHAINING_MAX_SECONDS) : requested;
}

/** Refresh assumed-role credentials this long before they expire (the SDK's own margin). */
const REFRESH_MARGIN_MS = 5 * 60_000;

/**
 * One provider shared by an account's EC2 and KMS clients: it assumes the role once and again only
 * when the credentials are about to expire, however many clients ask (and however concurrently).
 */
export function sharedProvider(provider: AwsCredentialIdentityProvider): AwsCredentialIdentityProvider {
  let current: AwsCredentialIdentity | undefined;
  let pending: Promise<AwsCredentialIdentity> | undefined;
  return () => {
    const fresh =
      current && (!current.expiration || current.expiration.getTime() - Date.now() > REFRESH_MARGIN_MS);
    if (fresh && current) return Promise.resolve(current);
    pending ??= provider().then(
      (c) => {
        current = c;
        pending = undefined;
        return c;
      },
      (err: unknown) => {
        pending = undefined;
        throw err;
      },
    );
    return pending;
  };
}

export interface AwsTelemetry {
  /** Where AWS error counters go (the worker's runtime meter); none in tests that do not look. */
  meter?: MetricMeter;
}

export function createAwsClients(settings: AwsSettings, telemetry: AwsTelemetry = {}): AwsClients {
  const instrumentation = awsTelemetry(telemetry.meter);
  const instrumented = <C extends { middlewareStack: { use(p: typeof instrumentation): void } }>(
    client: C,
  ): C => {
    client.middlewareStack.use(instrumentation);
    return client;
  };
  // Every client, one per (service, account, region); the promise is cached so concurrent first
  // calls share one client, and dropped when making it failed so the next call tries again.
  const made = new Map<string, Promise<{ destroy(): void }>>();
  function cached<C extends { destroy(): void; middlewareStack: { use(p: typeof instrumentation): void } }>(
    service: string,
    target: AwsTarget,
    make: (config: Record<string, unknown>) => C | Promise<C>,
  ): Promise<C> {
    const key = `${target.accountId ?? 'self'}/${target.region}`;
    const cacheKey = `${service}:${key}`;
    // Stored under its own service's key only, so the entry is the C it was made as.
    let client = made.get(cacheKey) as Promise<C> | undefined;
    if (!client) {
      client = sharedCredentials(target, key)
        .then((creds) => make({ ...base(target.region), ...creds }))
        .then(instrumented);
      client.catch(() => made.delete(cacheKey));
      made.set(cacheKey, client);
    }
    return client;
  }
  // One credential provider per (account, region), shared by its EC2 and KMS clients.
  const credentials = new Map<string, Promise<Record<string, unknown>>>();
  const stsClients: STSClient[] = [];
  const ownAccount = new Map<string, Promise<string>>();
  const baseCredentials: AwsCredentialIdentityProvider =
    typeof settings.credentials === 'function'
      ? settings.credentials
      : settings.credentials
        ? (() => {
            const fixed = settings.credentials;
            return () => Promise.resolve(fixed);
          })()
        : fromNodeProviderChain();

  const base = (region: string) => ({
    region,
    maxAttempts: settings.sdkMaxAttempts,
    customUserAgent: [AMIFLOW_USER_AGENT],
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
  });

  async function callerAccount(region: string): Promise<string> {
    let pending = ownAccount.get(region);
    if (!pending) {
      pending = sdk
        .sts()
        .then(({ STSClient, GetCallerIdentityCommand }) => {
          const sts = instrumented(new STSClient(base(stsRegionFor(settings, region))));
          stsClients.push(sts);
          return aws('reading the worker identity (sts:GetCallerIdentity)', () =>
            sts.send(new GetCallerIdentityCommand({})),
          );
        })
        .then((r) => r.Account ?? '');
      pending.catch(() => ownAccount.delete(region));
      ownAccount.set(region, pending);
    }
    return pending;
  }

  async function credentialsFor(target: AwsTarget): Promise<Record<string, unknown>> {
    if (target.accountId === undefined) return {};
    const roleArn = roleArnFor(settings, target.accountId, target.region);
    if (roleArn) {
      const accountId = target.accountId;
      // The session length depends on the base credentials (role chaining), read at each refresh.
      const assume: AwsCredentialIdentityProvider = async () => {
        const masterCredentials = await baseCredentials();
        return fromTemporaryCredentials({
          params: {
            RoleArn: roleArn,
            RoleSessionName: `amiflow-${accountId}`,
            DurationSeconds: sessionSecondsFor(settings.roleSessionSeconds, masterCredentials),
            ...(settings.externalId ? { ExternalId: settings.externalId } : {}),
          },
          clientConfig: base(stsRegionFor(settings, target.region)),
          masterCredentials,
        })();
      };
      return { credentials: sharedProvider(assume) };
    }
    const own = await callerAccount(target.region);
    if (own !== target.accountId) {
      throw failure(
        FailureType.AwsUnauthorized,
        `no role is configured for account ${target.accountId} and the worker's own credentials belong to ${own || 'another account'}; ` +
          'set AMIFLOW_ROLE_ARNS (account=roleArn,…) or AMIFLOW_ROLE_NAME on the worker',
      );
    }
    return {};
  }

  function sharedCredentials(target: AwsTarget, key: string): Promise<Record<string, unknown>> {
    let creds = credentials.get(key);
    if (!creds) {
      creds = credentialsFor(target);
      creds.catch(() => credentials.delete(key));
      credentials.set(key, creds);
    }
    return creds;
  }

  // SDK modules other than EC2 load with their first client (activities/sdk-modules.ts).
  return {
    ec2: (target) => cached('ec2', target, (config) => new EC2Client(config)),
    ssm: (target) => cached('ssm', target, async (config) => new (await sdk.ssm()).SSMClient(config)),
    kms: (target) => cached('kms', target, async (config) => new (await sdk.kms()).KMSClient(config)),
    autoScaling: (target) =>
      cached(
        'autoscaling',
        target,
        async (config) => new (await sdk.autoScaling()).AutoScalingClient(config),
      ),
    cloudWatch: (target) =>
      cached('cloudwatch', target, async (config) => new (await sdk.cloudWatch()).CloudWatchClient(config)),
    destroy() {
      for (const c of made.values())
        void c.then(
          (client) => client.destroy(),
          () => undefined,
        );
      for (const c of stsClients) c.destroy();
      made.clear();
      credentials.clear();
    },
  };
}

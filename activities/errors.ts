/**
 * AWS errors are classified here, once. Transient ones (throttling, 5xx, network, eventual
 * consistency) are rethrown untouched so Temporal retries them with backoff; concurrency limits are
 * retried after the delay AWS asks for; permanent ones become non-retryable `ApplicationFailure`s
 * with a stable type and a message that says what to do.
 *
 * Every code here is one an AWS API documents: EC2 https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html,
 * KMS/STS/SSM in each action's "Errors" section and https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { FailureType } from '../contracts';
import { regionOfHost, regionProblem } from './regions';

export type AwsErrorClass =
  | {
      retry: true;
      code: string;
      reason: 'throttling' | 'server' | 'network' | 'transient-state' | 'concurrency-limit' | 'unknown';
    }
  | { retry: false; code: string; type: FailureType };

const THROTTLING = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  // SSM: concurrent updates of one parameter
  'TooManyUpdates',
]);
const SERVER = new Set([
  'InternalError',
  'InternalFailure',
  'ServiceUnavailable',
  'Unavailable',
  'InsufficientInstanceCapacity',
  // KMS
  'KMSInternalException',
  'DependencyTimeoutException',
]);
/** States that settle by themselves: retrying later is the right answer. */
const TRANSIENT_STATE = new Set([
  'IncorrectInstanceState',
  'IncorrectState',
  // A snapshot stays "in use" by its AMI for a short while after DeregisterImage.
  'InvalidSnapshot.InUse',
  'PendingVerification',
  'ExpiredToken',
  'RequestExpired',
  // Two tag writes on one resource at once (our own retry racing its first attempt).
  'ConcurrentTagAccess',
  'InvalidState',
]);
/**
 * Concurrency limits of snapshots and copies: a CreateImage overlapping a DLM or AWS Backup snapshot
 * of the same volume, or a busy destination region. They clear as the other work finishes, so they
 * are retried, after at least the delay EC2 documents (15 s between snapshots of one volume, see
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html). The limit is per
 * account and region, shared with everything else there: a run can only wait for its turn.
 * CopyImage answers `ResourceLimitExceeded` when too many copies are in progress into a region.
 */
export const CONCURRENCY_LIMIT_DELAY_MS: Readonly<Record<string, number>> = {
  SnapshotCreationPerVolumeRateExceeded: 15_000,
  ConcurrentSnapshotLimitExceeded: 30_000,
  ConcurrentCreateImageNoRebootLimitExceeded: 30_000,
  PendingSnapshotLimitExceeded: 30_000,
  ResourceLimitExceeded: 30_000,
};
const UNAUTHORIZED = new Set([
  'UnauthorizedOperation',
  'AuthFailure',
  'AccessDenied',
  'AccessDeniedException',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'OptInRequired',
  'Blocked',
  // STS: the region's STS endpoint is not enabled for the account (not a malformed request).
  'RegionDisabledException',
  // KMS, SSM and STS spelling: the caller's session token has expired. A refreshed session
  // cannot be had by repeating the call: the base credentials themselves are stale.
  'ExpiredTokenException',
]);
const MALFORMED = new Set([
  'InvalidParameterValue',
  'InvalidParameter',
  'InvalidParameterCombination',
  'MissingParameter',
  'ValidationError',
  'ValidationException',
  'UnknownParameter',
  'InvalidRequest',
  'InvalidAMIName.Malformed',
  'InvalidAMIName.Duplicate',
  // KMS
  'InvalidArnException',
  'InvalidGrantIdException',
  'InvalidGrantTokenException',
  'InvalidAliasNameException',
  'MalformedPolicyDocumentException',
  // EC2 sharing: an account, organization or OU that ModifyImageAttribute does not accept
  'InvalidAMIAttributeItemValue',
  // SSM Parameter Store
  'HierarchyTypeMismatchException',
  'ParameterPatternMismatchException',
  'UnsupportedParameterType',
  'InvalidAllowedPatternException',
  // RunInstances / CreateImage: a device mapping EC2 cannot honour.
  'InvalidBlockDeviceMapping',
  // STS: the session policy and tags do not fit the packed size.
  'PackedPolicyTooLargeException',
]);
/**
 * An idempotency token that points at something else than what was asked: repeating cannot help,
 * and a new token (a new run) is needed.
 */
const IDEMPOTENCY_CONFLICT = new Set(['IdempotentParameterMismatch', 'IdempotentInstanceTerminated']);
/** The key is unusable for this data: revoked (external key store), disabled, pending deletion, or not a KMS key id. */
const KEY_UNUSABLE = new Set([
  'CustomerKeyHasBeenRevoked',
  'DisabledException',
  'KMSInvalidStateException',
  'InvalidKeyUsageException',
  // SSM: the KeyId of a SecureString parameter is not a usable KMS key.
  'InvalidKeyId',
]);
const LIMITS = new Set([
  'InstanceLimitExceeded',
  'SnapshotLimitExceeded',
  'VolumeLimitExceeded',
  'TagLimitExceeded',
  'LimitExceededException',
  // RunInstances: no vCPU quota or no free address left in the subnet
  'VcpuLimitExceeded',
  'InsufficientFreeAddressesInSubnet',
  // SSM Parameter Store
  'ParameterLimitExceeded',
  'ParameterMaxVersionLimitExceeded',
  'HierarchyLevelLimitExceededException',
]);
const POLICY = new Set([
  'OperationNotPermitted',
  'UnsupportedOperation',
  // An organization's tag policy refuses the tags (CreateTags, TagSpecifications).
  'TagPolicyViolation',
  // The instance type cannot attach encrypted volumes.
  'EncryptedVolumesNotSupported',
  // SSM PutParameter without Overwrite on a name that exists: someone else's parameter.
  'ParameterAlreadyExists',
  // RunInstances: the instance type (or an option) is not supported in that Availability Zone
  'Unsupported',
  // KMS: a key that cannot do what was asked (e.g. asymmetric, or not the key the data was encrypted with)
  'UnsupportedOperationException',
  'IncorrectKeyException',
]);

/** Every code named in the tables above (the table-driven test proves each one's class). */
export const CLASSIFIED_CODES: readonly string[] = [
  ...THROTTLING,
  ...SERVER,
  ...TRANSIENT_STATE,
  ...Object.keys(CONCURRENCY_LIMIT_DELAY_MS),
  ...UNAUTHORIZED,
  ...IDEMPOTENCY_CONFLICT,
  ...KEY_UNUSABLE,
  ...MALFORMED,
  ...LIMITS,
  ...POLICY,
];

interface AwsLikeError {
  name?: string;
  /** Node's DNS errors (ENOTFOUND) name the host they could not resolve. */
  hostname?: string;
  $response?: { headers?: Record<string, string | undefined> };
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: 'client' | 'server';
  $retryable?: unknown;
}

function asAwsError(err: unknown): AwsLikeError {
  return typeof err === 'object' && err !== null ? err : {};
}

export function awsErrorCode(err: unknown): string {
  const e = asAwsError(err);
  return e.Code ?? e.code ?? e.name ?? 'Unknown';
}

/**
 * Answers that are no AWS error code yet can never succeed on retry: no endpoint exists for the
 * region (DNS has no such host, and the SDK's partition data does not list the region), or the
 * endpoint answered with an HTML page instead of an EC2 error (moto's "action has not been
 * implemented"; EC2 itself always answers in XML).
 */
function endpointProblem(e: AwsLikeError, code: string): AwsErrorClass | undefined {
  if (code === 'ENOTFOUND' && e.hostname) {
    const region = regionOfHost(e.hostname);
    if (region && regionProblem(region)) return { retry: false, code, type: FailureType.AwsUnknownRegion };
  }
  const contentType = e.$response?.headers?.['content-type'] ?? '';
  if (code === 'Unknown' && e.$metadata?.httpStatusCode === 500 && contentType.startsWith('text/html'))
    return { retry: false, code: 'NotImplemented', type: FailureType.AwsNotImplemented };
  return undefined;
}

export function classifyAwsError(err: unknown): AwsErrorClass {
  const e = asAwsError(err);
  const code = awsErrorCode(err);
  const status = e.$metadata?.httpStatusCode;
  const endpoint = endpointProblem(e, code);
  if (endpoint) return endpoint;
  if (THROTTLING.has(code) || status === 429) return { retry: true, code, reason: 'throttling' };
  if (TRANSIENT_STATE.has(code)) return { retry: true, code, reason: 'transient-state' };
  if (CONCURRENCY_LIMIT_DELAY_MS[code] !== undefined)
    return { retry: true, code, reason: 'concurrency-limit' };
  if (SERVER.has(code) || (status !== undefined && status >= 500) || e.$fault === 'server')
    return { retry: true, code, reason: 'server' };
  if (UNAUTHORIZED.has(code)) return { retry: false, code, type: FailureType.AwsUnauthorized };
  if (code.endsWith('.NotFound') || code === 'InvalidAMIID.Unavailable' || code === 'NotFoundException')
    return { retry: false, code, type: FailureType.AwsNotFound };
  if (IDEMPOTENCY_CONFLICT.has(code)) return { retry: false, code, type: FailureType.AwsMalformedRequest };
  if (KEY_UNUSABLE.has(code)) return { retry: false, code, type: FailureType.KmsKeyUnusable };
  if (MALFORMED.has(code) || code.endsWith('.Malformed'))
    return { retry: false, code, type: FailureType.AwsMalformedRequest };
  if (LIMITS.has(code)) return { retry: false, code, type: FailureType.AwsLimitExceeded };
  if (POLICY.has(code)) return { retry: false, code, type: FailureType.AwsPolicyRefused };
  // Not an AWS service answer at all (socket reset, DNS, timeout): the request may not have arrived.
  if (e.$metadata === undefined || status === undefined) return { retry: true, code, reason: 'network' };
  // Another 4xx: the request itself was refused; repeating it will not help.
  if (status >= 400) return { retry: false, code, type: FailureType.AwsMalformedRequest };
  return { retry: true, code, reason: 'unknown' };
}

/**
 * Rethrows `err` in the form Temporal should see: transient errors untouched (retried), permanent
 * ones as a non-retryable `ApplicationFailure` whose message names the action and AWS's answer.
 */
export function rethrowAws(err: unknown, action: string): never {
  if (err instanceof ApplicationFailure) throw err;
  const c = classifyAwsError(err);
  const awsMessage = asAwsError(err).message ?? String(err);
  if (c.retry && c.reason === 'concurrency-limit')
    // Retryable, but not sooner than AWS asks: Temporal's own backoff starts at 1 s.
    throw ApplicationFailure.create({
      type: CONCURRENCY_LIMIT_FAILURE,
      nonRetryable: false,
      message: `${action}: AWS answered ${c.code} (${awsMessage}); retrying when other snapshots or copies have made room`,
      nextRetryDelay: CONCURRENCY_LIMIT_DELAY_MS[c.code] ?? 30_000,
      details: [{ awsCode: c.code }],
      cause: err instanceof Error ? err : undefined,
    });
  if (c.retry) throw err;
  throw ApplicationFailure.create({
    type: c.type,
    nonRetryable: true,
    message: `${action}: AWS refused with ${c.code}: ${awsMessage}${hint(c.type, c.code)}`,
    details: [{ awsCode: c.code }],
    cause: err instanceof Error ? err : undefined,
  });
}

/** The type of the retryable failure a concurrency limit becomes (never final: only seen in retries). */
export const CONCURRENCY_LIMIT_FAILURE = 'AwsConcurrencyLimit';
/** The type of the retryable failure of a step waiting for AWS to settle (visibility, a held name). */
export const NOT_SETTLED_FAILURE = 'AwsNotSettled';

function hint(type: FailureType, code: string): string {
  if (IDEMPOTENCY_CONFLICT.has(code))
    return ' (the idempotency token was used for another request or a terminated instance: start a new run)';
  switch (type) {
    case FailureType.AwsUnauthorized:
      return ' (check the worker credentials or the role configured for this account)';
    case FailureType.AwsLimitExceeded:
      return ' (raise the quota or clean up unused resources)';
    case FailureType.KmsKeyUnusable:
      return ' (enable the key, restore it, or choose another customer managed key)';
    case FailureType.AwsUnknownRegion:
      return ' (no endpoint for that region: check the region name, or opt a region newer than the SDK in with AMIFLOW_EXTRA_REGIONS)';
    case FailureType.AwsNotImplemented:
      return ' (the endpoint answered HTTP 500 with an HTML page instead of an EC2 error: it does not implement this action, as moto does for actions it lacks)';
    default:
      return '';
  }
}

/** Sends through `call`, classifying any error as above. */
export async function aws<T>(action: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    rethrowAws(err, action);
  }
}

export function isAwsCode(err: unknown, ...codes: string[]): boolean {
  return codes.includes(awsErrorCode(err));
}

export function failure(type: FailureType, message: string, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: true,
    ...(details !== undefined ? { details: [details] } : {}),
  });
}

/**
 * AWS errors are classified here, once. Transient ones (throttling, 5xx, network, eventual
 * consistency) are rethrown untouched so Temporal retries them with backoff; permanent ones become
 * non-retryable `ApplicationFailure`s with a stable type and a message that says what to do.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { FailureType } from '../workflows/contracts';
import { regionOfHost, regionProblem } from './regions';

export type AwsErrorClass =
  | { retry: true; code: string; reason: 'throttling' | 'server' | 'network' | 'transient-state' | 'unknown' }
  | { retry: false; code: string; type: FailureType };

const THROTTLING = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'SlowDown',
  'EC2ThrottledException',
  'PriorRequestNotComplete',
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
]);
const UNAUTHORIZED = new Set([
  'UnauthorizedOperation',
  'AuthFailure',
  'AccessDenied',
  'AccessDeniedException',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'OptInRequired',
  'Blocked',
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
  'IdempotentParameterMismatch',
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
]);
const LIMITS = new Set([
  'ResourceLimitExceeded',
  'InstanceLimitExceeded',
  'SnapshotLimitExceeded',
  'AMIQuotaExceeded',
  'TagLimitExceeded',
  'LimitExceededException',
  // RunInstances: no vCPU quota or no free address left in the subnet
  'VcpuLimitExceeded',
  'InsufficientFreeAddressesInSubnet',
  // SSM Parameter Store
  'ParameterLimitExceeded',
  'ParameterMaxVersionLimitExceeded',
]);
const POLICY = new Set([
  'OperationNotPermitted',
  'DisabledException',
  'KMSInvalidStateException',
  'InvalidKeyUsageException',
  'KMS.DisabledException',
  'UnsupportedOperation',
  // RunInstances: the instance type (or an option) is not supported in that Availability Zone
  'Unsupported',
  // KMS: a key that cannot do what was asked (e.g. asymmetric, or not the key the data was encrypted with)
  'UnsupportedOperationException',
  'IncorrectKeyException',
]);

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
  if (SERVER.has(code) || (status !== undefined && status >= 500) || e.$fault === 'server')
    return { retry: true, code, reason: 'server' };
  if (UNAUTHORIZED.has(code)) return { retry: false, code, type: FailureType.AwsUnauthorized };
  if (code.endsWith('.NotFound') || code === 'InvalidAMIID.Unavailable' || code === 'NotFoundException')
    return { retry: false, code, type: FailureType.AwsNotFound };
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
  if (c.retry) throw err;
  const awsMessage = asAwsError(err).message ?? String(err);
  throw ApplicationFailure.create({
    type: c.type,
    nonRetryable: true,
    message: `${action}: AWS refused with ${c.code}: ${awsMessage}${hint(c.type)}`,
    details: [{ awsCode: c.code }],
    cause: err instanceof Error ? err : undefined,
  });
}

function hint(type: FailureType): string {
  switch (type) {
    case FailureType.AwsUnauthorized:
      return ' (check the worker credentials or the role configured for this account)';
    case FailureType.AwsLimitExceeded:
      return ' (raise the quota or clean up unused resources)';
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

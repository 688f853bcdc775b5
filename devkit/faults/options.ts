/**
 * What the fault layer does, as options (tests) or environment (demo, chaos tier). Every duration is
 * in milliseconds; every rate is a probability per EC2 call. All zero/false means "the sandbox as
 * it is, plus the gaps filled" (unique AMI names, ClientToken idempotency, CopyImage tags).
 */
export interface FaultOptions {
  /** Seeds every random draw, so a failing run is reproduced by its seed. */
  seed: number;
  /** How long a new image, copy, snapshot or instance id stays invisible to Describe* and listings. */
  consistencyMs: number;
  /** Whether mutating calls (CreateTags, DeregisterImage, TerminateInstances…) on an invisible id fail NotFound too. */
  mutatingNotFound: boolean;
  /** How long an instance stays `stopping` after StopInstances (moto stops at once). */
  stoppingMs: number;
  /** How long an instance stays `pending` after RunInstances/StartInstances. */
  pendingMs: number;
  /** How long an instance's status checks stay `initializing` once it is running. */
  statusChecksMs: number;
  /** How long a new image stays `pending` (moto makes every image available at once). */
  imagePendingMs: number;
  /** Share of EC2 calls answered RequestLimitExceeded (HTTP 503) without reaching the sandbox. */
  throttleRate: number;
  /** Share of EC2 calls answered with a 5xx (InternalError / Unavailable). */
  serverErrorRate: number;
  /** Share of those 5xx that come after the call was applied (the caller sees a failure for a done call). */
  serverErrorAfterApplyShare: number;
  /** Latency added to every EC2 call, drawn uniformly from [min, max]. */
  latencyMs: [number, number];
  /**
   * Share of CreateImage and CopyImage calls refused with a concurrency limit error
   * (SnapshotCreationPerVolumeRateExceeded, ConcurrentSnapshotLimitExceeded; ResourceLimitExceeded),
   * not applied.
   */
  limitErrorRate: number;
  /** How long a deregistered image's name stays taken (InvalidAMIName.Duplicate with no image of it visible). */
  nameHeldMs: number;
  /** How long after ModifyImageAttribute adds a launch permission DescribeImages `ExecutableBy` that account leaves the image out. */
  shareVisibilityMs: number;
  /** The account's Allowed AMIs settings (GetAllowedImagesSettings, which the sandbox lacks). */
  allowedAmis: AllowedAmisModel;
}

/** Allowed AMIs as the layer models it: a state and image-provider criteria (account ids, `amazon`). */
export interface AllowedAmisModel {
  /** `enabled`: DescribeImages leaves out every image the criteria do not allow. */
  state: 'disabled' | 'enabled' | 'audit-mode';
  imageProviders: string[];
}

export const NO_FAULTS: FaultOptions = {
  seed: 1,
  consistencyMs: 0,
  mutatingNotFound: false,
  stoppingMs: 0,
  pendingMs: 0,
  statusChecksMs: 0,
  imagePendingMs: 0,
  throttleRate: 0,
  serverErrorRate: 0,
  serverErrorAfterApplyShare: 0.5,
  latencyMs: [0, 0],
  limitErrorRate: 0,
  nameHeldMs: 0,
  shareVisibilityMs: 0,
  allowedAmis: { state: 'disabled', imageProviders: [] },
};

/**
 * Close to what real EC2 does to a well-behaved client on a busy account, compressed in time:
 * the figures the chaos tier and `npm run demo -- --realistic` use (issue 9's "done when"). The
 * AWS rules stay off (limitErrorRate, nameHeldMs, shareVisibilityMs, allowedAmis as in NO_FAULTS):
 * each limit error holds a run 15 to 30 s (the delay EC2 documents), and the chaos plan has no
 * re-run or cross-account step for the others to meet.
 */
export const REALISTIC_FAULTS: FaultOptions = {
  ...NO_FAULTS,
  consistencyMs: 10_000,
  mutatingNotFound: true,
  stoppingMs: 3_000,
  pendingMs: 2_000,
  statusChecksMs: 3_000,
  imagePendingMs: 4_000,
  throttleRate: 0.2,
  serverErrorRate: 0.05,
  latencyMs: [5, 40],
};

const ENV_PREFIX = 'AMIFLOW_FAULT_';

function num(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
  const raw = env[ENV_PREFIX + name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > max)
    throw new Error(`${ENV_PREFIX}${name}=${raw} must be a number from 0 to ${max}`);
  return value;
}

/**
 * Options from AMIFLOW_FAULT_* variables on top of `base`: SEED, CONSISTENCY_MS, MUTATING_NOT_FOUND
 * (0/1), STOPPING_MS, PENDING_MS, STATUS_CHECKS_MS, IMAGE_PENDING_MS, THROTTLE_RATE, SERVER_ERROR_RATE,
 * SERVER_ERROR_AFTER_APPLY_SHARE, LATENCY_MS ("min-max" or one number), LIMIT_ERROR_RATE,
 * NAME_HELD_MS, SHARE_VISIBILITY_MS, ALLOWED_AMIS_STATE (disabled/enabled/audit-mode) and
 * ALLOWED_IMAGE_PROVIDERS (comma-separated account ids or `amazon`).
 */
export function faultOptionsFromEnv(env: NodeJS.ProcessEnv, base: FaultOptions = NO_FAULTS): FaultOptions {
  const latency = env[`${ENV_PREFIX}LATENCY_MS`];
  let latencyMs = base.latencyMs;
  if (latency) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(latency);
    if (!m?.[1]) throw new Error(`${ENV_PREFIX}LATENCY_MS=${latency} must be "min-max" milliseconds`);
    const min = Number(m[1]);
    latencyMs = [min, m[2] ? Math.max(min, Number(m[2])) : min];
  }
  return {
    seed: num(env, 'SEED', base.seed, 2 ** 32),
    consistencyMs: num(env, 'CONSISTENCY_MS', base.consistencyMs, 3_600_000),
    mutatingNotFound: (env[`${ENV_PREFIX}MUTATING_NOT_FOUND`] ?? (base.mutatingNotFound ? '1' : '0')) === '1',
    stoppingMs: num(env, 'STOPPING_MS', base.stoppingMs, 3_600_000),
    pendingMs: num(env, 'PENDING_MS', base.pendingMs, 3_600_000),
    statusChecksMs: num(env, 'STATUS_CHECKS_MS', base.statusChecksMs, 3_600_000),
    imagePendingMs: num(env, 'IMAGE_PENDING_MS', base.imagePendingMs, 3_600_000),
    throttleRate: num(env, 'THROTTLE_RATE', base.throttleRate, 1),
    serverErrorRate: num(env, 'SERVER_ERROR_RATE', base.serverErrorRate, 1),
    serverErrorAfterApplyShare: num(
      env,
      'SERVER_ERROR_AFTER_APPLY_SHARE',
      base.serverErrorAfterApplyShare,
      1,
    ),
    latencyMs,
    limitErrorRate: num(env, 'LIMIT_ERROR_RATE', base.limitErrorRate, 1),
    nameHeldMs: num(env, 'NAME_HELD_MS', base.nameHeldMs, 3_600_000),
    shareVisibilityMs: num(env, 'SHARE_VISIBILITY_MS', base.shareVisibilityMs, 3_600_000),
    allowedAmis: allowedAmisFromEnv(env, base.allowedAmis),
  };
}

function allowedAmisFromEnv(env: NodeJS.ProcessEnv, base: AllowedAmisModel): AllowedAmisModel {
  const state = env[`${ENV_PREFIX}ALLOWED_AMIS_STATE`] || base.state;
  if (state !== 'disabled' && state !== 'enabled' && state !== 'audit-mode')
    throw new Error(`${ENV_PREFIX}ALLOWED_AMIS_STATE=${state} must be disabled, enabled or audit-mode`);
  const providers = env[`${ENV_PREFIX}ALLOWED_IMAGE_PROVIDERS`];
  return {
    state,
    imageProviders:
      providers === undefined || providers === ''
        ? base.imageProviders
        : providers
            .split(',')
            .map((p) => p.trim())
            .filter((p) => p !== ''),
  };
}

/** A one-line description for logs and reports. */
export function describeFaults(o: FaultOptions): string {
  return (
    `seed=${o.seed} consistency=${o.consistencyMs}ms${o.mutatingNotFound ? ' (mutating calls too)' : ''} ` +
    `stopping=${o.stoppingMs}ms pending=${o.pendingMs}ms status-checks=${o.statusChecksMs}ms ` +
    `image-pending=${o.imagePendingMs}ms throttle=${o.throttleRate} 5xx=${o.serverErrorRate} ` +
    `(after apply ${o.serverErrorAfterApplyShare}) latency=${o.latencyMs[0]}-${o.latencyMs[1]}ms ` +
    `limit-errors=${o.limitErrorRate} name-held=${o.nameHeldMs}ms share-visibility=${o.shareVisibilityMs}ms ` +
    `allowed-amis=${o.allowedAmis.state}${o.allowedAmis.imageProviders.length ? ` (${o.allowedAmis.imageProviders.join(',')})` : ''}`
  );
}

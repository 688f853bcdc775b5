/**
 * The worker's Temporal connection through the SDK's standard configuration
 * (`@temporalio/envconfig`): a profile from temporal.toml (`TEMPORAL_CONFIG_FILE`, `TEMPORAL_PROFILE`)
 * under the standard `TEMPORAL_*` variables, as the Temporal CLI reads them. amiflow's older TLS
 * variables (`TEMPORAL_TLS_CERT`, `TEMPORAL_TLS_KEY`, …) still win when set. Every failure names the
 * address and where it came from.
 */
import type { ClientConfigProfile } from '@temporalio/envconfig';
import { loadClientConfigProfile, toClientOptions } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { NativeConnection } from '@temporalio/worker';
import { DEFAULT_NAMESPACE } from '../contracts';
import type { TemporalSettings } from './config';
import { ConfigError } from './config';
import { connectionOptions } from './connection';

type Env = Record<string, string | undefined>;

export interface WorkerConnectionPlan {
  options: NativeConnectionOptions;
  address: string;
  namespace: string;
  /** Where the address came from, for messages: a variable, a profile in a file, or the default. */
  source: string;
}

function definedOnly(env: Env): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

/** The Temporal client configuration, as the worker and the client (and the Temporal CLI) read it. */
export interface TemporalProfile {
  /** The profile with the TEMPORAL_* variables (and amiflow's earlier TLS variables) over it. */
  profile: ClientConfigProfile;
  /** Where address or namespace came from: its variable, or the profile in its file; undefined: nobody set it. */
  sourceOf: (key: 'address' | 'namespace') => string | undefined;
}

/**
 * Reads the profile (`profile`, else TEMPORAL_PROFILE, else `default`) from temporal.toml
 * (TEMPORAL_CONFIG_FILE or the user config directory) under the TEMPORAL_* variables. A named
 * profile must exist; the default one may be absent (then only the variables count). Failures
 * are ConfigErrors naming the profile, the file and the variables that choose them.
 */
export function readTemporalProfile(env: Env = process.env, profile?: string): TemporalProfile {
  const chosen = profile ?? (env.TEMPORAL_PROFILE || undefined);
  const file = env.TEMPORAL_CONFIG_FILE || '~/.config/temporalio/temporal.toml';
  const where = `profile '${chosen ?? 'default'}' in ${file}`;
  const load = (disableEnv: boolean) =>
    loadClientConfigProfile({
      ...(chosen !== undefined ? { profile: chosen } : {}),
      ...(disableEnv ? { disableEnv: true } : {}),
      overrideEnvVars: definedOnly(env),
    });
  let merged: ClientConfigProfile;
  let fromFile: ClientConfigProfile;
  try {
    merged = load(false);
    fromFile = load(true);
  } catch (err) {
    throw new ConfigError(
      `cannot read Temporal ${where.replace(' in ', ' from ')} (TEMPORAL_PROFILE / TEMPORAL_CONFIG_FILE): ` +
        (err instanceof Error ? err.message : String(err)),
    );
  }
  // amiflow's earlier TLS variables keep working when the standard ones are not set.
  if (!merged.tls && (env.TEMPORAL_TLS_CERT || env.TEMPORAL_TLS_KEY)) {
    if (!env.TEMPORAL_TLS_CERT || !env.TEMPORAL_TLS_KEY)
      throw new ConfigError('set both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY, or neither');
    merged.tls = {
      clientCert: { path: env.TEMPORAL_TLS_CERT },
      clientKey: { path: env.TEMPORAL_TLS_KEY },
      ...(env.TEMPORAL_TLS_CA ? { serverCACert: { path: env.TEMPORAL_TLS_CA } } : {}),
      ...(env.TEMPORAL_TLS_SERVER_NAME ? { serverName: env.TEMPORAL_TLS_SERVER_NAME } : {}),
    };
  }
  const variables = { address: 'TEMPORAL_ADDRESS', namespace: 'TEMPORAL_NAMESPACE' } as const;
  return {
    profile: merged,
    sourceOf: (key) => (env[variables[key]] ? variables[key] : fromFile[key] ? where : undefined),
  };
}

export async function workerConnectionPlan(
  settings: TemporalSettings,
  env: Env = process.env,
): Promise<WorkerConnectionPlan> {
  const { profile, sourceOf } = readTemporalProfile(env);
  const address = profile.address ?? settings.address;
  // amiflow's own TLS settings (worker/config.ts), when set, are the explicit choice.
  const own = settings.tls ? await connectionOptions({ ...settings, address }) : undefined;
  return {
    options: own ?? { ...toClientOptions({ ...profile, address }).connectionOptions, address },
    address,
    namespace: env.TEMPORAL_NAMESPACE || profile.namespace || DEFAULT_NAMESPACE,
    source: sourceOf('address') ?? 'the default (no TEMPORAL_ADDRESS, no profile address)',
  };
}

export async function connectWorker(plan: WorkerConnectionPlan): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect(plan.options);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(
      `cannot connect to Temporal at ${plan.address} (from ${plan.source}), namespace ${plan.namespace}: ${why}. ` +
        'Check the address, TLS (TEMPORAL_TLS_*) or API key (TEMPORAL_API_KEY), or the profile (TEMPORAL_PROFILE).',
      { cause: err },
    );
  }
}

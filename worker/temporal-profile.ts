/**
 * The worker's Temporal connection through the SDK's standard configuration
 * (`@temporalio/envconfig`): a profile from temporal.toml (`TEMPORAL_CONFIG_FILE`, `TEMPORAL_PROFILE`)
 * under the standard `TEMPORAL_*` variables, as the Temporal CLI reads them. amiflow's older TLS
 * variables (`TEMPORAL_TLS_CERT`, `TEMPORAL_TLS_KEY`, …) still win when set. Every failure names the
 * address and where it came from.
 */
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

export async function workerConnectionPlan(
  settings: TemporalSettings,
  env: Env = process.env,
): Promise<WorkerConnectionPlan> {
  const profileName = env.TEMPORAL_PROFILE || 'default';
  const file = env.TEMPORAL_CONFIG_FILE || '~/.config/temporalio/temporal.toml';
  let profile;
  try {
    // A named profile must exist; the default one may be absent (then only the variables count).
    profile = loadClientConfigProfile({
      overrideEnvVars: definedOnly(env),
      ...(env.TEMPORAL_PROFILE ? { profile: env.TEMPORAL_PROFILE } : {}),
    });
  } catch (err) {
    throw new ConfigError(
      `cannot read Temporal profile '${profileName}' from ${file} (TEMPORAL_PROFILE / TEMPORAL_CONFIG_FILE): ` +
        (err instanceof Error ? err.message : String(err)),
    );
  }
  const fromProfile = toClientOptions(profile);
  const address = profile.address ?? settings.address;
  const source = env.TEMPORAL_ADDRESS
    ? 'TEMPORAL_ADDRESS'
    : profile.address
      ? `profile '${profileName}' in ${file}`
      : 'the default (no TEMPORAL_ADDRESS, no profile address)';
  // amiflow's own TLS variables, when set, are the explicit choice.
  const own = settings.tls ? await connectionOptions({ ...settings, address }) : undefined;
  return {
    options: own ?? { ...fromProfile.connectionOptions, address },
    address,
    namespace: env.TEMPORAL_NAMESPACE || profile.namespace || DEFAULT_NAMESPACE,
    source,
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

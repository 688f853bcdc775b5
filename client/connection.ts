/**
 * Where the client connects, through Temporal's standard client configuration
 * (`@temporalio/envconfig`: temporal.toml profiles, TEMPORAL_PROFILE, TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*), with amiflow's own settings still honoured
 * (AMIFLOW_TASK_QUEUE; TEMPORAL_TLS_CERT / _KEY / _CA as earlier releases read them) and command-line
 * flags on top. Each setting remembers where it came from, so a failure can say so.
 */
import type { ConnectionOptions } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import { toClientOptions } from '@temporalio/envconfig';
import type { TemporalProfile } from '../worker/temporal-profile';
import { readTemporalProfile } from '../worker/temporal-profile';
import { DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE } from '../contracts';
import { AmiflowClient } from './index';
import { clientTracing } from './tracing';

export type Env = Record<string, string | undefined>;

export interface ConnectionOverrides {
  profile?: string;
  address?: string;
  namespace?: string;
}

export interface ResolvedConnection {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Where address and namespace came from: `--address`, `TEMPORAL_ADDRESS`, `profile 'x' (…/temporal.toml)`, `default`. */
  sources: { address: string; namespace: string };
  options: ConnectionOptions;
}

export class ConnectionFailedError extends Error {
  override name = 'ConnectionFailedError';
  constructor(
    readonly address: string,
    readonly source: string,
    cause: unknown,
  ) {
    super(
      `cannot connect to Temporal at ${address} (address from ${source}): ${cause instanceof Error ? cause.message : String(cause)}. ` +
        'Is the server up (npm run stack starts a local one)? Set the address with --address, TEMPORAL_ADDRESS or a temporal.toml profile.',
      { cause },
    );
  }
}

export class ConnectionConfigError extends Error {
  override name = 'ConnectionConfigError';
}

/** The connection the settings describe: flags, then environment, then the profile, then defaults. */
export function resolveConnection(
  overrides: ConnectionOverrides = {},
  env: Env = process.env,
): ResolvedConnection {
  // One reading of temporal.toml and the TEMPORAL_* variables, shared with the worker.
  let read: TemporalProfile;
  try {
    read = readTemporalProfile(env, overrides.profile);
  } catch (err) {
    throw new ConnectionConfigError(
      `Temporal client configuration: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const { profile, sourceOf } = read;
  const sources = {
    address: overrides.address !== undefined ? '--address' : (sourceOf('address') ?? 'the default'),
    namespace: overrides.namespace !== undefined ? '--namespace' : (sourceOf('namespace') ?? 'the default'),
  };
  const address = overrides.address ?? profile.address ?? 'localhost:7233';
  const connect = toClientOptions({ ...profile, address });
  const { address: _a, apiKey, tls, metadata } = connect.connectionOptions;
  return {
    address,
    namespace: overrides.namespace ?? connect.namespace ?? DEFAULT_NAMESPACE,
    taskQueue: env.AMIFLOW_TASK_QUEUE || DEFAULT_TASK_QUEUE,
    sources,
    options: {
      address,
      ...(apiKey !== undefined ? { apiKey } : {}),
      ...(tls !== undefined ? { tls } : {}),
      ...(metadata !== undefined ? { metadata } : {}),
      connectTimeout: '10s',
    },
  };
}

/** Connects as `resolved` says; a failure names the address and the setting it came from. */
export async function connectResolved(resolved: ResolvedConnection): Promise<AmiflowClient> {
  let connection: Connection;
  try {
    connection = await Connection.connect(resolved.options);
  } catch (err) {
    throw new ConnectionFailedError(resolved.address, resolved.sources.address, err);
  }
  // With OTEL_EXPORTER_OTLP_ENDPOINT set, the run's trace starts here (client/tracing.ts).
  const tracing = clientTracing();
  return AmiflowClient.owning(
    new Client({
      connection,
      namespace: resolved.namespace,
      ...(tracing ? { interceptors: tracing.interceptors } : {}),
    }),
    resolved.taskQueue,
    connection,
    tracing,
  );
}

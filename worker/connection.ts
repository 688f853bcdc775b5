import { readFile } from 'node:fs/promises';
import type { GrpcRetryOptions } from '@temporalio/client';
import { isRetryableError, makeGrpcRetryInterceptor } from '@temporalio/client';
import type { TemporalSettings } from './config';

/** Connection options shared by the worker's NativeConnection and the client's Connection. */
export async function connectionOptions(t: TemporalSettings) {
  const tls = t.tls
    ? {
        clientCertPair: { crt: await readFile(t.tls.certPath), key: await readFile(t.tls.keyPath) },
        ...(t.tls.serverNameOverride ? { serverNameOverride: t.tls.serverNameOverride } : {}),
        ...(t.tls.serverRootCaPath
          ? { serverRootCACertificate: await readFile(t.tls.serverRootCaPath) }
          : {}),
      }
    : t.apiKey
      ? true
      : undefined;
  return {
    address: t.address,
    ...(tls !== undefined ? { tls } : {}),
    ...(t.apiKey ? { apiKey: t.apiKey } : {}),
  };
}

/**
 * gRPC channel settings of the watcher's client connection. grpc-js backs its reconnects off up to
 * 120 s (1 s × 1.6ⁿ): after a 30 s server outage its next attempt came ~13 s after the server was
 * back, and every held wait's completion waited for it (bench/fleet-outage.ts, 12-17 s). Trying
 * every 0.5 s at most costs two TCP connects a second while the server is away.
 */
export const WATCHER_CHANNEL_ARGS = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 500,
};

/** gRPC's RESOURCE_EXHAUSTED: the server throttling us, which keeps the client's default backoff. */
const RESOURCE_EXHAUSTED = 8;

/**
 * The watcher's client connection: the reconnect settings above, and a retry interceptor whose waits
 * between attempts of one call stop growing at 0.5 s (the default grows to 5 s with jitter to 6 s).
 * With the default, an answer being retried inside the client when the server came back waited up to
 * 6 s for its next attempt (a 30 s outage cost 33 s extra on the merged fleet bench); now about 0.5 s.
 * The server's own throttling (RESOURCE_EXHAUSTED) still backs off to 5 s.
 */
export const WATCHER_RETRY: GrpcRetryOptions = {
  // Written out: SDK 1.24's defaultGrpcRetryOptions() ignores a maxIntervalMs override (always 5 s).
  delayFunction(attempt, status) {
    const throttled = Number(status.code) === RESOURCE_EXHAUSTED;
    const interval = Math.min(throttled ? 5_000 : 500, 1.7 ** attempt * (throttled ? 1_000 : 100));
    return interval * (0.8 + Math.random() * 0.4);
  },
  retryableDecider: (attempt, status) => attempt < 10 && isRetryableError(status),
};

export const WATCHER_CONNECTION = {
  channelArgs: WATCHER_CHANNEL_ARGS,
  interceptors: [makeGrpcRetryInterceptor(WATCHER_RETRY)],
};

import { readFile } from 'node:fs/promises';
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
 * every second at most costs one TCP connect a second while the server is away.
 */
export const WATCHER_CHANNEL_ARGS = {
  'grpc.initial_reconnect_backoff_ms': 250,
  'grpc.max_reconnect_backoff_ms': 1_000,
};

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

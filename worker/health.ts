/**
 * `/healthz` and `/readyz` for Kubernetes probes and load balancers. Liveness means the process
 * answers; readiness means this copy does useful work: connected to Temporal, polling its task
 * queue, and able to resolve AWS credentials. Until all three hold, `/readyz` answers 503 naming
 * what is missing, so a rollout waits for a worker that can actually run activities.
 */
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import { hostAndPort } from './config';

export interface ReadinessCheck {
  name: string;
  /** Resolves to undefined when ready, or to a reason when not. Must not throw. */
  check: () => Promise<string | undefined>;
}

export interface HealthServer {
  /** The bound address (a port of 0 becomes the real one). */
  address: string;
  close(): Promise<void>;
}

async function readiness(checks: readonly ReadinessCheck[]): Promise<string[]> {
  const reasons = await Promise.all(
    checks.map(async (c) => {
      try {
        const reason = await c.check();
        return reason === undefined ? undefined : `${c.name}: ${reason}`;
      } catch (err) {
        return `${c.name}: ${err instanceof Error ? err.message : String(err)}`;
      }
    }),
  );
  return reasons.filter((r): r is string => r !== undefined);
}

export async function startHealthServer(
  address: string,
  checks: readonly ReadinessCheck[],
): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      void readiness(checks).then((missing) => {
        if (missing.length === 0) res.writeHead(200, { 'content-type': 'text/plain' }).end('ready\n');
        else res.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${missing.join('; ')}\n`);
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('try /healthz or /readyz\n');
  });
  const { host, port } = hostAndPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new Error(`cannot listen on ${address} (AMIFLOW_HEALTH_ADDRESS): ${err.message}`)),
    );
    server.listen(port, host, resolve);
  });
  const bound = server.address();
  const boundPort = typeof bound === 'object' && bound ? bound.port : port;
  return {
    address: `${host.includes(':') ? `[${host}]` : host}:${boundPort}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * A check that succeeds once `probe` has succeeded, re-probing at most every `everyMs` (AWS
 * credentials: resolving them may call STS or IMDS, which a probe every few seconds must not hammer).
 */
export function cachedCheck(
  name: string,
  probe: () => Promise<unknown>,
  everyMs: number,
  now: () => number = Date.now,
): ReadinessCheck {
  let last: { at: number; reason: string | undefined } | undefined;
  let pending: Promise<string | undefined> | undefined;
  return {
    name,
    check: () => {
      if (last && now() - last.at < everyMs) return Promise.resolve(last.reason);
      pending ??= probe()
        .then(
          () => undefined,
          (err: unknown) => (err instanceof Error ? err.message : String(err)),
        )
        .then((reason) => {
          last = { at: now(), reason };
          pending = undefined;
          return reason;
        });
      return pending;
    },
  };
}

/**
 * The local stack: Temporal dev server (with Web UI) and the AWS sandbox (moto_server), both from
 * the pinned tools. `scripts/local-stack.ts` starts them plus a worker and keeps them up for the CLI;
 * the demo, the benches and the chaos tier use the same pieces. The worker and client reach them only
 * through their usual settings (TEMPORAL_ADDRESS, AMIFLOW_AWS_ENDPOINT, AWS credentials): no
 * sandbox-only code path.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { SEARCH_ATTRIBUTE_TYPES } from '../contracts';
import type { Moto } from './moto';
import { SANDBOX_CREDENTIALS, startMoto } from './moto';
import { freePort, waitForPort } from './ports';
import { temporalCli } from './tools';

export interface LocalStack {
  temporalAddress: string;
  uiUrl: string;
  awsEndpoint: string;
  /** Environment for a worker or the CLI to use this stack. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** The preferred port when it is free (stable URLs for people), otherwise any free one. */
export async function portOr(preferred: number): Promise<number> {
  try {
    await waitForPort(preferred, 1);
    return freePort(); // taken
  } catch {
    return preferred;
  }
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the child has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

export interface DevServerOptions {
  port: number;
  uiPort?: number;
  /** Persist the server's state in this SQLite file, so a restarted server resumes every run. */
  dbFilename?: string;
}

/** A running `temporal server start-dev`; `exited` rejects when it dies (kill it with `child`). */
export interface DevServer {
  child: ChildProcess;
  address: string;
  exited: Promise<never>;
}

/** Starts the dev server with amiflow's search attributes and waits until it accepts connections. */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port)];
  if (opts.uiPort !== undefined) args.push('--ui-port', String(opts.uiPort), '--ui-disable-news-fetch');
  else args.push('--headless');
  if (opts.dbFilename) args.push('--db-filename', opts.dbFilename);
  args.push('--log-level', 'error');
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_TYPES))
    args.push('--search-attribute', `${name}=${type}`);
  const child = spawn(temporalCli(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) =>
      reject(new Error(`temporal server start-dev exited (${code ?? signal}): ${stderr}`)),
    ),
  );
  exited.catch(() => undefined);
  try {
    await Promise.race([waitForPort(opts.port, 60_000), exited]);
    if (opts.uiPort !== undefined) await Promise.race([waitForPort(opts.uiPort, 60_000), exited]);
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return { child, address: `127.0.0.1:${opts.port}`, exited };
}

export async function startLocalStack(opts: { region?: string } = {}): Promise<LocalStack> {
  const port = await portOr(7233);
  const uiPort = await portOr(8233);
  // Both start at once: the dev server takes seconds, moto about one.
  const [motoStart, serverStart] = await Promise.allSettled([startMoto(), startDevServer({ port, uiPort })]);
  if (motoStart.status === 'rejected' || serverStart.status === 'rejected') {
    if (motoStart.status === 'fulfilled') await motoStart.value.stop();
    if (serverStart.status === 'fulfilled') await stopChild(serverStart.value.child);
    throw motoStart.status === 'rejected' ? motoStart.reason : (serverStart as PromiseRejectedResult).reason;
  }
  const moto: Moto = motoStart.value;
  const server: DevServer = serverStart.value;
  const region = opts.region ?? 'eu-west-1';
  const running = { moto, server };
  return {
    temporalAddress: server.address,
    uiUrl: `http://127.0.0.1:${uiPort}`,
    awsEndpoint: moto.endpoint,
    env: {
      TEMPORAL_ADDRESS: server.address,
      AMIFLOW_AWS_ENDPOINT: moto.endpoint,
      AWS_ACCESS_KEY_ID: SANDBOX_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: SANDBOX_CREDENTIALS.secretAccessKey,
      AWS_REGION: region,
    },
    async stop() {
      await stopChild(running.server.child);
      await running.moto.stop();
    },
  };
}

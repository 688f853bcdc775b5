/**
 * The local stack: Temporal dev server (with Web UI) and the AWS sandbox (moto_server), both from
 * the pinned tools. `npm run stack` starts them plus a worker and keeps them up for the CLI;
 * the demo uses the same pieces. The worker and client reach them only through their usual
 * settings (TEMPORAL_ADDRESS, AMIFLOW_AWS_ENDPOINT, AWS credentials): no sandbox-only code path.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { NativeConnection } from '@temporalio/worker';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/contracts';
import { readWorkerSettings } from '../worker/config';
import { connectionOptions } from '../worker/connection';
import { buildWorker, installRuntime } from '../worker/worker';
import type { Moto } from '../test/support/moto';
import { SANDBOX_CREDENTIALS, startMoto } from '../test/support/moto';
import { freePort, waitForPort } from '../test/support/ports';
import { temporalCli } from '../test/support/tools';

export interface LocalStack {
  temporalAddress: string;
  uiUrl: string;
  awsEndpoint: string;
  /** Environment for a worker or the CLI to use this stack. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

async function portOr(preferred: number): Promise<number> {
  try {
    await waitForPort(preferred, 1);
    return freePort(); // taken
  } catch {
    return preferred;
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

export async function startLocalStack(opts: { region?: string } = {}): Promise<LocalStack> {
  const port = await portOr(7233);
  const uiPort = await portOr(8233);
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--log-level',
    'error',
    '--ui-disable-news-fetch',
  ];
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_TYPES))
    args.push('--search-attribute', `${name}=${type}`);
  const temporal = spawn(temporalCli(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  temporal.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<never>((_, reject) =>
    temporal.once('exit', (code) =>
      reject(new Error(`temporal server start-dev exited (${code}): ${stderr}`)),
    ),
  );
  exited.catch(() => undefined);
  let moto: Moto | undefined;
  try {
    moto = await startMoto();
    await Promise.race([waitForPort(port, 60_000), exited]);
    await Promise.race([waitForPort(uiPort, 60_000), exited]);
  } catch (err) {
    await stopChild(temporal);
    await moto?.stop();
    throw err;
  }
  const temporalAddress = `127.0.0.1:${port}`;
  const region = opts.region ?? 'eu-west-1';
  const running = moto;
  return {
    temporalAddress,
    uiUrl: `http://127.0.0.1:${uiPort}`,
    awsEndpoint: running.endpoint,
    env: {
      TEMPORAL_ADDRESS: temporalAddress,
      AMIFLOW_AWS_ENDPOINT: running.endpoint,
      AWS_ACCESS_KEY_ID: SANDBOX_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: SANDBOX_CREDENTIALS.secretAccessKey,
      AWS_REGION: region,
    },
    async stop() {
      await stopChild(temporal);
      await running.stop();
    },
  };
}

async function main(): Promise<void> {
  const stack = await startLocalStack();
  Object.assign(process.env, stack.env);
  const settings = readWorkerSettings({ AMIFLOW_LOG_LEVEL: 'WARN', ...process.env });
  installRuntime(settings.logLevel);
  const connection = await NativeConnection.connect(await connectionOptions(settings.temporal));
  const { worker, deps } = await buildWorker({ connection, settings });
  console.log(`Temporal Web UI: ${stack.uiUrl}
Temporal:        ${stack.temporalAddress}
AWS sandbox:     ${stack.awsEndpoint}
A worker is running. In another shell:
${Object.entries(stack.env)
  .map(([k, v]) => `  export ${k}=${v}`)
  .join('\n')}
  npm run cli -- image create --instance <i-…> --name my-image --mode stop --watch
Ctrl-C stops everything.`);
  try {
    await worker.run();
  } finally {
    deps.aws.destroy();
    await connection.close();
    await stack.stop();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}

/**
 * The local stack kept up for the CLI: Temporal dev server with Web UI, the AWS sandbox and a worker
 * (the pieces live in devkit/local-stack.ts, shared with the demo, the benches and the chaos tier).
 */
import { NativeConnection } from '@temporalio/worker';
import { startLocalStack } from '../devkit/local-stack';
import { readWorkerSettings } from '../worker/config';
import { connectionOptions } from '../worker/connection';
import { buildWorker, installRuntime } from '../worker/worker';

export type { LocalStack } from '../devkit/local-stack';
export { startLocalStack } from '../devkit/local-stack';

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

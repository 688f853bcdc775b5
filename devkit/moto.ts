/**
 * The local AWS sandbox: moto_server on a free loopback port, reset between tests. It is only an
 * endpoint: the code under test talks to it exactly as it talks to AWS.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { motoServer } from './tools';
import { freePort, waitForPort } from './ports';

export const SANDBOX_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' } as const;
/** moto's default account: what the sandbox credentials act as. */
export const SANDBOX_ACCOUNT = '123456789012';

export interface Moto {
  endpoint: string;
  port: number;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMoto(opts: { port?: number } = {}): Promise<Moto> {
  const port = opts.port ?? (await freePort());
  const child: ChildProcess = spawn(motoServer(), ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'false' },
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`moto_server exited (${code}): ${stderr}`))),
  );
  exited.catch(() => undefined);
  await Promise.race([waitForPort(port, 30_000), exited]);
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    port,
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!res.ok) throw new Error(`moto reset failed: ${res.status}`);
    },
    async stop() {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/**
 * Points the worker process's `@aws-sdk/client-ec2` at the subset `npm run build` writes next to the
 * compiled worker (`dist/vendor/client-ec2.js`, scripts/ec2-client-subset.ts): the EC2 client with
 * only the commands amiflow imports, ~16 MB less RSS for every worker, idle or not, and loaded at the
 * first read of one of its exports, so a worker that has made no EC2 call yet does not hold it at all
 * (docs/sizing.md, "Idle worker"). Imported by `worker/main.ts` before any module that loads the client.
 *
 * Where there is no subset (running the TypeScript sources, `npm start`) or Node has no
 * `module.registerHooks` (before 22.15), the package loads as it is: same code, all of it.
 * AMIFLOW_EC2_CLIENT_SUBSET=off does the same on purpose (to compare, or if a build lacks a command).
 */
import { existsSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { subsetCodeFile } from './ec2-client-files';

const EC2_CLIENT = '@aws-sdk/client-ec2';
export const EC2_CLIENT_SUBSET_ENV = 'AMIFLOW_EC2_CLIENT_SUBSET';

/** Where the build puts the subset, relative to this module's compiled file (dist/worker/). */
export const EC2_CLIENT_SUBSET_FILE = path.join(__dirname, '..', 'vendor', 'client-ec2.js');

type RegisterHooks = (hooks: {
  resolve: (
    specifier: string,
    context: unknown,
    next: (specifier: string, context: unknown) => { url: string },
  ) => { url: string; format?: string; shortCircuit?: boolean };
}) => unknown;

/** Resolves the EC2 client to `file` from now on; returns whether it does (see the module comment). */
export function useEc2ClientSubset(
  file: string = EC2_CLIENT_SUBSET_FILE,
  env: Record<string, string | undefined> = process.env,
): boolean {
  const registerHooks = (module as unknown as { registerHooks?: RegisterHooks }).registerHooks;
  // Both files or neither: the subset's code loads only at the first EC2 call, and a build that
  // lacks it must show at start (the whole package, as without a subset), not at that call.
  if (env[EC2_CLIENT_SUBSET_ENV] === 'off' || !registerHooks) return false;
  if (!existsSync(file) || !existsSync(subsetCodeFile(file))) return false;
  const url = pathToFileURL(file).href;
  registerHooks({
    resolve: (specifier, context, next) =>
      specifier === EC2_CLIENT ? { url, format: 'commonjs', shortCircuit: true } : next(specifier, context),
  });
  return true;
}

/** Whether this process loads the subset, for the start-up log. */
export const ec2ClientSubset: boolean = useEc2ClientSubset();

/**
 * The stack the end-to-end tests share: the Temporal dev server and a moto_server (started
 * together, with the workflow bundle built meanwhile), an EC2 client on the sandbox and, where a
 * test asks for them, the fault layer in front of moto, a stock EBS-backed AMI and the bundle as a
 * file for worker processes (devkit/worker-process.ts). Each test file
 * declares it once; what is particular to a file (more clients, fixtures) goes in its own hooks,
 * which run after these.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FaultProxy } from '../../devkit/faults/fault-proxy';
import type { FaultOptions } from '../../devkit/faults/options';
import { startFaultProxy } from '../../devkit/faults/fault-proxy';
import type { Moto } from '../../devkit/moto';
import { startMoto } from '../../devkit/moto';
import { installQuietRuntime } from '../../devkit/runtime';
import { sandboxEc2, stockEbsAmi } from '../../devkit/sandbox-ec2';
import { devServerEnv, workflowBundle } from '../../devkit/temporal';

export interface E2eStack {
  env: TestWorkflowEnvironment;
  moto: Moto;
  /** EC2 on the sandbox, without the fault layer: what was really applied. */
  ec2: EC2Client;
  /** The fault layer in front of moto (only with `faultLayer`; the file configures it). */
  proxy: FaultProxy;
  /** A stock EBS-backed AMI (only with `stockAmi`; read once, before the first test). */
  stockAmi: string;
  /** The workflow bundle as a file, for AMIFLOW_WORKFLOW_BUNDLE (only with `bundleFile`). */
  bundlePath: string;
}

export interface E2eStackOptions {
  /** `true`, or the layer's options from the start and the clock it reads (one the test moves). */
  faultLayer?: boolean | { options?: Partial<FaultOptions>; clock?: () => number };
  stockAmi?: boolean;
  bundleFile?: boolean;
}

/**
 * Registers the file's hooks (started before its first test, stopped after its last) and returns
 * the stack, whose fields are set once it has started.
 */
export function useE2eStack(options: E2eStackOptions = {}): E2eStack {
  const stack = {} as E2eStack;
  let dir: string | undefined;
  before(async () => {
    installQuietRuntime();
    const [env, moto, bundle] = await Promise.all([devServerEnv(), startMoto(), workflowBundle()]);
    Object.assign(stack, { env, moto, ec2: sandboxEc2(moto.endpoint) });
    const { faultLayer } = options;
    if (faultLayer)
      stack.proxy = await startFaultProxy({
        target: moto.endpoint,
        ...(faultLayer === true ? {} : faultLayer),
      });
    if (options.stockAmi) stack.stockAmi = await stockEbsAmi(stack.ec2);
    if (options.bundleFile) {
      dir = await mkdtemp(path.join(os.tmpdir(), 'amiflow-e2e-'));
      stack.bundlePath = path.join(dir, 'workflow-bundle.js');
      await writeFile(stack.bundlePath, bundle.code);
    }
  });
  after(async () => {
    // Each may be missing when `before` failed part-way.
    const { ec2, proxy, env, moto } = stack as Partial<E2eStack>;
    ec2?.destroy();
    await proxy?.stop();
    await Promise.allSettled([env?.teardown(), moto?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return stack;
}

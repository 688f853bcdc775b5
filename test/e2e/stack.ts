/**
 * The stack the end-to-end tests share: the Temporal dev server and a moto_server (started
 * together, with the workflow bundle built meanwhile), an EC2 client on the sandbox and, where a
 * test asks for them, the fault layer in front of moto and a stock EBS-backed AMI. Each test file
 * declares it once; what is particular to a file (more clients, fixtures) goes in its own hooks,
 * which run after these.
 */
import { after, before } from 'node:test';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FaultProxy } from '../../devkit/faults/fault-proxy';
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
}

export interface E2eStackOptions {
  faultLayer?: boolean;
  stockAmi?: boolean;
}

/**
 * Registers the file's hooks (started before its first test, stopped after its last) and returns
 * the stack, whose fields are set once it has started.
 */
export function useE2eStack(options: E2eStackOptions = {}): E2eStack {
  const stack = {} as E2eStack;
  before(async () => {
    installQuietRuntime();
    const [env, moto] = await Promise.all([devServerEnv(), startMoto(), workflowBundle()]);
    Object.assign(stack, { env, moto, ec2: sandboxEc2(moto.endpoint) });
    if (options.faultLayer) stack.proxy = await startFaultProxy({ target: moto.endpoint });
    if (options.stockAmi) stack.stockAmi = await stockEbsAmi(stack.ec2);
  });
  after(async () => {
    // Each may be missing when `before` failed part-way.
    const { ec2, proxy, env, moto } = stack as Partial<E2eStack>;
    ec2?.destroy();
    await proxy?.stop();
    await Promise.allSettled([env?.teardown(), moto?.stop()]);
  });
  return stack;
}

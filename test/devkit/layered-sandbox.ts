/**
 * The fixture the fault-layer tests share: a real moto_server, the fault layer in front of it on
 * the test's clock, and two SDK clients, one straight to the sandbox (the truth) and one through
 * the layer with no SDK retries (so every fault is seen). Reset to an empty sandbox and no faults
 * before each test.
 */
import { after, before, beforeEach } from 'node:test';
import type { EC2ServiceException } from '@aws-sdk/client-ec2';
import { EC2Client } from '@aws-sdk/client-ec2';
import type { FaultProxy } from '../../devkit/faults/fault-proxy';
import { startFaultProxy } from '../../devkit/faults/fault-proxy';
import { NO_FAULTS } from '../../devkit/faults/options';
import type { Moto } from '../../devkit/moto';
import { SANDBOX_CREDENTIALS, startMoto } from '../../devkit/moto';
import { SANDBOX_REGION, sandboxEc2, stockEbsAmi } from '../../devkit/sandbox-ec2';

export interface LayeredSandbox {
  moto: Moto;
  proxy: FaultProxy;
  /** The sandbox itself, without the layer: the truth. */
  direct: EC2Client;
  /** The sandbox through the layer, with no SDK retries so every fault is seen. */
  layered: EC2Client;
  /** A stock EBS-backed AMI of the sandbox, to launch instances from. */
  stockAmi: string;
}

/**
 * Registers the hooks of the enclosing suite (started before its first test, stopped after its
 * last, reset before each) and returns the sandbox, whose fields are set once the suite starts.
 */
export function useLayeredSandbox(clock: () => number): LayeredSandbox {
  const sandbox = {} as LayeredSandbox;
  before(async () => {
    sandbox.moto = await startMoto();
    sandbox.proxy = await startFaultProxy({ target: sandbox.moto.endpoint, clock });
    sandbox.direct = sandboxEc2(sandbox.moto.endpoint);
    sandbox.layered = new EC2Client({
      region: SANDBOX_REGION,
      endpoint: sandbox.proxy.endpoint,
      credentials: SANDBOX_CREDENTIALS,
      maxAttempts: 1,
    });
    sandbox.stockAmi = await stockEbsAmi(sandbox.direct);
  });
  after(async () => {
    // Each may be missing when `before` failed part-way.
    const { layered, direct, proxy, moto } = sandbox as Partial<LayeredSandbox>;
    layered?.destroy();
    direct?.destroy();
    await proxy?.stop();
    await moto?.stop();
  });
  beforeEach(async () => {
    await sandbox.moto.reset();
    sandbox.proxy.reset();
    sandbox.proxy.configure(NO_FAULTS);
  });
  return sandbox;
}

/** The error `p` rejects with; fails if it resolves. */
export async function errorOf(p: Promise<unknown>): Promise<EC2ServiceException> {
  try {
    await p;
  } catch (err) {
    return err as EC2ServiceException;
  }
  throw new Error('expected the call to fail');
}

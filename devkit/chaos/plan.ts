/**
 * What a chaos session runs: a seeded plan of image, copy, share and migrate runs, which of them are
 * cancelled and when, and what each must end as. The sandbox resources each run needs are made
 * directly in moto (no fault layer): the chaos is aimed at amiflow, not at the set-up.
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { StopInstancesCommand } from '@aws-sdk/client-ec2';
import type { ConsistencyMode } from '../../workflows/contracts';
import { unitDraw } from '../faults/random';
import { SANDBOX_REGION, createImageDirectly, launchInstance, stockEbsAmi } from '../sandbox-ec2';

export type RunKind = 'image' | 'copy' | 'share' | 'migrate' | 'copy-rollback';
export type Outcome = 'completed' | 'cancelled' | 'failed';

export interface PlannedRun {
  name: string;
  kind: RunKind;
  expect: Outcome;
  /** Cancel this long after the start (only for runs expected to end cancelled). */
  cancelAfterMs?: number;
  /** Wait for the worker to be down before cancelling. */
  cancelWhileWorkerDead?: boolean;
  mode?: ConsistencyMode;
  instanceId?: string;
  startState?: 'running' | 'stopped';
  imageId?: string;
  /** copy-rollback: a destination whose name is taken, so the run fails and rolls back. */
  takenName?: string;
}

export interface PlanShape {
  seed: number;
  /** Image runs left to finish (modes in turn). */
  imageRuns: number;
  /** Runs cancelled at a random moment, per kind (image, copy, share, migrate). */
  cancelledPerKind: number;
  /** Copy and migrate rollbacks under the consistency window (section d). */
  rollbacks: boolean;
  /** Latest moment of a random cancellation. */
  maxCancelMs: number;
}

export const COPY_REGIONS = ['us-west-2', 'eu-west-1'];
export const ROLLBACK_TAKEN_REGION = 'eu-west-1';
export const SHARE_ACCOUNT = '111122223333';
const MODES: ConsistencyMode[] = ['stop', 'no-reboot', 'reboot'];

/** Builds the plan and the sandbox resources it needs. */
export async function makePlan(ec2: EC2Client, regionClient: (r: string) => EC2Client, shape: PlanShape) {
  const stock = await stockEbsAmi(ec2);
  const draw = (key: string): number => unitDraw(shape.seed, `plan|${key}`);
  const runs: PlannedRun[] = [];
  const instance = async (key: string, mayBeStopped = true) => {
    const stopped = mayBeStopped && draw(`stopped|${key}`) < 0.3;
    const id = await launchInstance(ec2, stock);
    if (stopped) await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    return { instanceId: id, startState: stopped ? ('stopped' as const) : ('running' as const) };
  };
  const image = async (key: string) =>
    createImageDirectly(ec2, (await instance(`src|${key}`)).instanceId, `chaos-src-${key}-${Date.now()}`);
  for (let i = 0; i < shape.imageRuns; i++)
    runs.push({
      name: `image-${i}`,
      kind: 'image',
      expect: 'completed',
      mode: MODES[i % 3],
      ...(await instance(`image-${i}`)),
    });
  const cancel = (key: string) => ({
    expect: 'cancelled' as const,
    cancelAfterMs: Math.round(300 + draw(`cancel|${key}`) * (shape.maxCancelMs - 300)),
    cancelWhileWorkerDead: draw(`dead|${key}`) < 0.35,
  });
  for (let i = 0; i < shape.cancelledPerKind; i++) {
    runs.push({
      name: `cancel-image-${i}`,
      kind: 'image',
      mode: MODES[i % 3],
      ...(await instance(`ci-${i}`)),
      ...cancel(`ci-${i}`),
    });
    runs.push({
      name: `cancel-copy-${i}`,
      kind: 'copy',
      imageId: await image(`cc-${i}`),
      ...cancel(`cc-${i}`),
    });
    runs.push({
      name: `cancel-share-${i}`,
      kind: 'share',
      imageId: await image(`cs-${i}`),
      ...cancel(`cs-${i}`),
    });
    runs.push({
      name: `cancel-migrate-${i}`,
      kind: 'migrate',
      ...(await instance(`cm-${i}`, false)),
      ...cancel(`cm-${i}`),
    });
  }
  if (shape.rollbacks) {
    const taken = `chaos-taken-${Date.now()}`;
    const far = regionClient(ROLLBACK_TAKEN_REGION);
    await createImageDirectly(far, await launchInstance(far, await stockEbsAmi(far)), taken);
    runs.push({
      name: 'rollback-copy',
      kind: 'copy-rollback',
      expect: 'failed',
      imageId: await image('rb'),
      takenName: taken,
    });
    // Cancelled right after its RunInstances: the undo meets the new instance inside the window.
    runs.push({
      name: 'rollback-migrate',
      kind: 'migrate',
      expect: 'cancelled',
      cancelAfterMs: -1,
      ...(await instance('rm', false)),
    });
  }
  return { runs, region: SANDBOX_REGION };
}

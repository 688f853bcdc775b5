/**
 * The chaos tier (DESIGN.md tier 5): the real worker and dev server against the sandbox behind the
 * fault layer, while the worker is SIGKILLed and restarted, the server is SIGKILLed once, and runs
 * are cancelled at random moments; then an audit of what EC2 holds. `npm run chaos` prints the
 * figures; test/chaos runs a bounded session in `npm test`. Everything random comes from the seed.
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { msToNumber } from '@temporalio/common/lib/time';
import type { ActivityOptions } from '@temporalio/workflow';
import {
  compensationCall,
  instanceWait,
  settledAwsActivity,
  statusChecksWait,
} from '../../workflows/presets';
import type { FaultOptions, FaultStats } from '../faults';
import { describeFaults } from '../faults';
import { sandboxEc2, SANDBOX_REGION } from '../sandbox-ec2';
import type { Audit } from './audit';
import { audit, contents } from './audit';
import type { DriveOptions, RunRecord } from './drive';
import { drive } from './drive';
import type { PlanShape } from './plan';
import { COPY_REGIONS, makePlan } from './plan';
import { CHAOS_LEASE_TIMEOUT_MS, startChaosStack } from './stack';

/**
 * How long Temporal may take, at most, to notice that an activity task was lost: its worker was
 * SIGKILLed, or its completion report was dropped while the server was down (the SDK retries a report
 * for about 10 s, and a dev server restarting on a slow machine can take longer). Nothing but the
 * activity's heartbeat timeout (or, without one, its start-to-close timeout) ends such an attempt, so
 * a run hit once can take this much longer: the longest of those timeouts among the activities chaos
 * runs use. Image and copy waits have none (the watcher completes them; runs before the async-wait
 * patch used longImageWait's 6 minutes): the worker's wait lease brings them back, in the chaos
 * stack within its lease timeout plus the release (which heartbeats under compensationCall).
 */
export const LOST_TASK_RECOVERY_MS = Math.max(
  ...[instanceWait(0), statusChecksWait(0), compensationCall].map((o: ActivityOptions) =>
    msToNumber(o.heartbeatTimeout ?? 0),
  ),
  msToNumber(settledAwsActivity.startToCloseTimeout ?? 0),
  CHAOS_LEASE_TIMEOUT_MS + 30_000,
);

export interface ChaosOptions {
  faults: FaultOptions;
  plan: Omit<PlanShape, 'seed'>;
  drive: Omit<DriveOptions, 'seed'>;
}

export interface ChaosReport {
  seed: number;
  faults: string;
  runs: { completed: number; failed: number; cancelled: number; unsettled: number; total: number };
  workerKills: number;
  serverRestarts: number;
  audit: Audit;
  runSeconds: { p50: number; p90: number; max: number };
  wallSeconds: number;
  aws: FaultStats;
  records: RunRecord[];
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const t0 = Date.now();
  const seed = o.faults.seed;
  // The plan's resources are made before the faults apply; the layer is set after.
  const stack = await startChaosStack({ ...o.faults });
  const clients = new Map<string, EC2Client>(
    [SANDBOX_REGION, ...COPY_REGIONS].map((r) => [r, sandboxEc2(stack.moto.endpoint, r)]),
  );
  const home = clients.get(SANDBOX_REGION) as EC2Client;
  try {
    const { runs } = await makePlan(home, (r) => clients.get(r) ?? sandboxEc2(stack.moto.endpoint, r), {
      ...o.plan,
      seed,
    });
    const before = await contents(clients);
    stack.proxy.reset();
    const { records, disruption } = await drive(stack, runs, { ...o.drive, seed });
    const aws = stack.proxy.stats();
    const found = await audit(clients, home, before, records);
    const times = records
      .filter((r) => r.outcome === 'completed')
      .map((r) => (r.endedAt - r.startedAt) / 1000)
      .sort((a, b) => a - b);
    const count = (x: RunRecord['outcome']) => records.filter((r) => r.outcome === x).length;
    return {
      seed,
      faults: describeFaults(o.faults),
      runs: {
        completed: count('completed'),
        failed: count('failed'),
        cancelled: count('cancelled'),
        unsettled: count('unsettled'),
        total: records.length,
      },
      workerKills: disruption.workerKills,
      serverRestarts: disruption.serverRestarts,
      audit: found,
      runSeconds: { p50: quantile(times, 0.5), p90: quantile(times, 0.9), max: times.at(-1) ?? 0 },
      wallSeconds: (Date.now() - t0) / 1000,
      aws,
      records,
    };
  } finally {
    for (const c of clients.values()) c.destroy();
    await stack.stop();
  }
}

/** The figures, for people. */
export function formatChaosReport(r: ChaosReport): string {
  const calls = Object.entries(r.aws.calls)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const faults = Object.entries(r.aws.faults)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const aliveCancels = r.records.filter((x) => x.cancelledWithWorkerAlive).length;
  const list = (title: string, items: string[]) =>
    items.length === 0 ? '' : `\n  ${title}:\n${items.map((i) => `    - ${i}`).join('\n')}`;
  return (
    [
      `chaos: seed ${r.seed}; faults: ${r.faults}`,
      `  runs: ${r.runs.total} (ok ${r.runs.completed}, failed ${r.runs.failed}, cancelled ${r.runs.cancelled}, unsettled ${r.runs.unsettled})`,
      `  worker SIGKILLs ${r.workerKills}, server SIGKILLs ${r.serverRestarts}` +
        (aliveCancels > 0
          ? `; ${aliveCancels} cancel(s) meant for a dead worker met a live one (no kill left)`
          : ''),
      `  wrong outcomes ${r.audit.wrongOutcomes.length}, instances not in their state ${r.audit.wrongStates.length}, duplicates ${r.audit.duplicates.length}, orphans ${r.audit.orphans.length}`,
      `  run time of completed runs: p50 ${r.runSeconds.p50.toFixed(1)} s, p90 ${r.runSeconds.p90.toFixed(1)} s, max ${r.runSeconds.max.toFixed(1)} s; session ${r.wallSeconds.toFixed(1)} s`,
      `  AWS calls: ${calls}`,
      `  faults injected: ${faults || 'none'}`,
    ].join('\n') +
    list('wrong outcomes', r.audit.wrongOutcomes) +
    list('instances not in their state', r.audit.wrongStates) +
    list('duplicates', r.audit.duplicates) +
    list('orphans', r.audit.orphans)
  );
}

export function violations(r: ChaosReport): number {
  return (
    r.runs.unsettled +
    r.audit.wrongOutcomes.length +
    r.audit.wrongStates.length +
    r.audit.duplicates.length +
    r.audit.orphans.length
  );
}

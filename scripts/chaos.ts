/**
 * `npm run chaos`: the chaos tier at full size (issue 9): ≥ 20 image runs across every mode, runs of
 * each kind cancelled at random moments (some while the worker is dead), a copy and a migrate
 * rollback under the consistency window, the worker SIGKILLed ≥ 10 times and the server once, with
 * the fault layer at REALISTIC_FAULTS (10 s window, 20 % throttling, 5 % 5xx half after apply).
 *
 *   npm run chaos -- --seed 7 [--image-runs 21] [--cancel 3] [--kills 12] [--json]
 *   AMIFLOW_FAULT_CONSISTENCY_MS=0 npm run chaos      # any AMIFLOW_FAULT_* overrides a fault
 *
 * Exits 1 when any run ends otherwise than expected or anything is duplicated or orphaned.
 */
import { parseArgs } from 'node:util';
import { formatChaosReport, runChaos, violations } from '../devkit/chaos';
import { REALISTIC_FAULTS, faultOptionsFromEnv } from '../devkit/faults';
import { installQuietRuntime } from '../devkit/runtime';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      'image-runs': { type: 'string', default: '21' },
      cancel: { type: 'string', default: '3' },
      kills: { type: 'string', default: '12' },
      'kill-every-ms': { type: 'string', default: '4000' },
      'no-rollbacks': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const faults = faultOptionsFromEnv(process.env, REALISTIC_FAULTS);
  if (values.seed !== undefined) faults.seed = Number(values.seed);
  installQuietRuntime();
  const report = await runChaos({
    faults,
    plan: {
      imageRuns: Number(values['image-runs']),
      cancelledPerKind: Number(values.cancel),
      rollbacks: !values['no-rollbacks'],
      maxCancelMs: 12_000,
    },
    drive: {
      workerKills: Number(values.kills),
      killEveryMs: Number(values['kill-every-ms']),
      serverRestartAtMs: 15_000,
      deadlineMs: 15 * 60_000,
    },
  });
  if (values.json) {
    const { records, ...figures } = report;
    console.log(
      JSON.stringify(
        {
          ...figures,
          runs: {
            ...figures.runs,
            each: records.map((r) => ({
              name: r.run.name,
              outcome: r.outcome,
              seconds: (r.endedAt - r.startedAt) / 1000,
              message: r.message,
            })),
          },
        },
        null,
        2,
      ),
    );
  } else console.log(formatChaosReport(report));
  if (violations(report) > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(`chaos failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});

/**
 * Issue 13's outage figure: "a server outage of 30 s costs no wait more than 30 s extra", measured
 * on the whole worker (devkit/server-outage.ts): `runs` image runs held in their wait by the compiled
 * production worker, the dev server SIGKILLed, the images released while it is away, the server back
 * on the same database after 30 s. Before the async watcher, 7 of 20 runs waited 6 extra minutes.
 *
 * A phase of `npm run bench` section (e) (fleet-report.ts calls `outagePhase`), or on its own:
 *   node --import tsx bench/fleet-outage.ts [--runs 30] [--outage-seconds 30] [--json FILE]
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import type { OutageFigures } from '../devkit/server-outage';
import { measureServerOutage } from '../devkit/server-outage';
import { compileForBench } from './compile';
import type { Row } from './report';
import { line, note, seconds } from './report';

export const OUTAGE_TARGET_SECONDS = 30;

export interface OutagePhase extends OutageFigures {
  load: { atStart: string; atEnd: string };
}

const loadNow = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

export async function measureOutagePhase(runs = 30, outageSeconds = 30): Promise<OutagePhase> {
  const atStart = loadNow();
  const figures = await measureServerOutage({
    runs,
    outageMs: outageSeconds * 1000,
    // Plain JavaScript, as production runs it, with the worker's production lease timeouts.
    entry: await compileForBench('worker/main.ts'),
  });
  return { ...figures, load: { atStart, atEnd: loadNow() } };
}

const max = (xs: number[]) => Math.max(...xs);

/** Prints the phase and adds its row; returns the JSON under `resumeSeconds`. */
export function reportOutage(o: OutagePhase, rows: Row[]) {
  const extra = o.extraSeconds.wait;
  line(
    `${o.runs} waits, server away ${o.outageSeconds.toFixed(1)} s`,
    `slowest wait done ${seconds(max(o.afterReturnSeconds) * 1000)} after the server was back; ` +
      `extra over no outage ${seconds(extra * 1000)} per wait, ${seconds(o.extraSeconds.run * 1000)} per run`,
  );
  line(
    'same runs without an outage',
    `slowest wait ${seconds(max(o.baseline.map((t) => t.waitDone)) * 1000)}, run ${seconds(max(o.baseline.map((t) => t.runDone)) * 1000)} after release`,
  );
  if (!o.workerSurvived) note('the worker process exited during the outage');
  note(`load average ${o.load.atStart} → ${o.load.atEnd}`);
  rows.push({
    figure: 'e. 30 s server outage: extra wait, worst of N',
    measured: `${seconds(extra * 1000)} (${o.runs} waits)`,
    target: `≤ ${OUTAGE_TARGET_SECONDS} s`,
    pass: extra <= OUTAGE_TARGET_SECONDS && o.workerSurvived,
  });
  return {
    outage30s: extra,
    outage: {
      runs: o.runs,
      serverAwaySeconds: o.outageSeconds,
      extraWaitSeconds: extra,
      extraRunSeconds: o.extraSeconds.run,
      maxAfterServerBackSeconds: max(o.afterReturnSeconds),
      baselineMaxWaitSeconds: max(o.baseline.map((t) => t.waitDone)),
      workerSurvived: o.workerSurvived,
      load: o.load,
    },
  };
}

async function main(): Promise<void> {
  const flag = (name: string) => {
    const at = process.argv.indexOf(name);
    return at >= 0 ? process.argv[at + 1] : undefined;
  };
  const runs = Number(flag('--runs') ?? 30);
  const outageSeconds = Number(flag('--outage-seconds') ?? 30);
  const json = flag('--json');
  const rows: Row[] = [];
  const phase = await measureOutagePhase(runs, outageSeconds);
  const figures = reportOutage(phase, rows);
  for (const r of rows) note(`${r.figure}: ${r.measured} (target ${r.target}) ${r.pass ? 'PASS' : 'FAIL'}`);
  if (json) await writeFile(json, `${JSON.stringify({ resumeSeconds: figures, detail: phase }, null, 2)}\n`);
}

if (require.main === module)
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });

/**
 * Section (e) of `npm run bench`: issue 13's fleet-scale figures, printed as rows of the summary
 * table and written with `--json FILE` under the keys the issue names. `--fleet-only` runs just this
 * section; `--waits 1000,10000` chooses the sizes (a quick try: `--waits 200`).
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { DEFAULT_WATCHER_OPTIONS } from '../activities/image-wait-watcher';
import { measureOutagePhase, reportOutage } from './fleet-outage';
import { actionsPerRunHour, lagAt, todaysActionsPerRunHour } from './fleet-waits';
import type { FleetWorkerFigures } from './fleet-worker';
import { measureFleetWorker } from './fleet-worker';
import type { Row } from './report';
import { heading, line, mib, note, seconds } from './report';

export interface FleetArgs {
  only: boolean;
  sizes: number[];
  json?: string;
}

export function fleetArgs(argv: string[]): FleetArgs {
  const value = (name: string) => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const sizes = (value('--waits') ?? '1000,10000').split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n <= 0))
    throw new Error('--waits takes sizes like 1000,10000');
  const json = value('--json');
  return { only: argv.includes('--fleet-only'), sizes, ...(json ? { json } : {}) };
}

/** What the rest of the bench measured of today's design, for the side-by-side figures. */
export interface TodaysFigures {
  idleRssMb?: number;
  waitingRssMb?: { runs: number; rssMb: number };
  overheadRatioModelled?: number;
  overheadRatioSandbox?: number;
}

export async function fleetSection(args: FleetArgs, rows: Row[], today: TodaysFigures): Promise<void> {
  heading(
    'e. fleet-scale waits (issue 13): the production worker process, dev server, moto behind the fault layer',
  );
  note(`Load average at start: ${loadNow()} (a shared 2-core machine: figures are upper bounds).`);
  const f = await measureFleetWorker({ sizes: args.sizes, throughputRuns: 300, resumeWaits: 20 });
  const lag = await lagAt(10_000, DEFAULT_WATCHER_OPTIONS.callsPerSecond);
  const single = actionsPerRunHour(1);
  const at100 = actionsPerRunHour(100);
  const todayActions = todaysActionsPerRunHour();
  printFleet(f, lag.lagSeconds);
  const outage = reportOutage(await measureOutagePhase(), rows);
  const at = (n: number) => f.waiting.find((w) => w.runs === n);
  const w1000 = at(1000);
  const w10000 = at(10_000);
  rows.push(
    {
      figure: 'e. idle worker RSS',
      measured: mib(f.idleRssMb),
      target: '≤ 160 MB',
      pass: f.idleRssMb <= 160,
    },
    ...f.waiting.map((w) => ({
      figure: `e. worker RSS, ${w.runs.toLocaleString('en')} runs waiting (peak)`,
      measured: `${mib(w.rssMb)} (${mib(w.peakMb)})`,
      target: w.runs >= 10_000 ? '≤ 300 MB (peak ≤ 400)' : w.runs >= 1000 ? '≤ 250 MB' : '(reported)',
      ...(w.runs >= 1000
        ? { pass: w.runs >= 10_000 ? w.rssMb <= 300 && w.peakMb <= 400 : w.rssMb <= 250 }
        : {}),
    })),
    {
      figure: 'e. resume after SIGTERM | SIGKILL',
      measured: `${seconds(f.resumeSeconds.sigterm * 1000)} | ${seconds(f.resumeSeconds.sigkill * 1000)}`,
      target: '≤ 5 s | ≤ 65 s',
      pass: f.resumeSeconds.sigterm <= 5 && f.resumeSeconds.sigkill <= 65,
    },
    {
      figure: 'e. Actions per run-hour, 1 | 100 waits',
      measured: `${single.total.toFixed(2)} | ${at100.total.toFixed(2)} (today ${todayActions.toFixed(2)})`,
      target: '≤ 15 | ≤ 3',
      pass: single.total <= 15 && at100.total <= 3,
    },
    {
      figure: 'e. detection lag, 10,000 waits, one region',
      measured: seconds(lag.lagSeconds * 1000),
      target: '≤ 15 s',
      pass: lag.lagSeconds <= 15,
    },
    {
      figure: 'e. image runs per minute (CPU per run)',
      measured: `${f.throughput.perMinute.toFixed(0)} (${f.throughput.cpuMsPerRun.toFixed(0)} ms)`,
      target: '≥ 500 (≤ 50 ms)',
      pass: f.throughput.perMinute >= 500 && f.throughput.cpuMsPerRun <= 50,
    },
  );
  if (!args.json) return;
  const figures = {
    rssMb: {
      idle: f.idleRssMb,
      waiting1000: w1000?.rssMb ?? null,
      waiting10000: w10000?.rssMb ?? null,
      peak10000: w10000?.peakMb ?? null,
      bySize: f.waiting,
      today: { idle: today.idleRssMb ?? null, waiting: today.waitingRssMb ?? null },
    },
    resumeSeconds: {
      sigterm: f.resumeSeconds.sigterm,
      sigkill: f.resumeSeconds.sigkill,
      waits: f.resumeSeconds.waits,
      sigtermWorkerExit: f.sigtermExitSeconds,
      ...outage,
    },
    actionsPerRunHour: {
      single: single.total,
      at100: at100.total,
      today: todayActions,
      breakdown: { single, at100 },
    },
    lagSeconds: {
      max: lag.lagSeconds,
      mean: lag.meanLagSeconds,
      describeImagesPerSecond: lag.callsPerSecond,
    },
    overheadRatio: {
      modelled: today.overheadRatioModelled ?? null,
      sandbox: today.overheadRatioSandbox ?? null,
    },
    throughputPerMinute: f.throughput.perMinute,
    cpuMsPerRun: f.throughput.cpuMsPerRun,
    loadAverage: { atStart: loadNow(), atEnd: f.load },
    ...(today.overheadRatioModelled === undefined
      ? { notMeasured: { overheadRatio: 'section c (run without --fleet-only) measures it' } }
      : {}),
  };
  await writeFile(args.json, `${JSON.stringify(figures, null, 2)}\n`);
  note(`figures written to ${args.json}`);
}

function loadNow(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

function printFleet(f: FleetWorkerFigures, lagSeconds: number): void {
  line('idle worker RSS (lean settings, prebuilt bundle)', mib(f.idleRssMb));
  for (const w of f.waiting)
    line(
      `${w.runs.toLocaleString('en')} runs waiting: RSS (peak)`,
      `${mib(w.rssMb)} (${mib(w.peakMb)}); all waiting after ${seconds(w.secondsToAllWaiting * 1000)}, all done ${seconds(w.secondsToAllDone * 1000)} after release`,
    );
  line(
    `${f.throughput.runs} runs, images available at once`,
    `${f.throughput.perMinute.toFixed(0)} runs/min, worker CPU ${f.throughput.cpuMsPerRun.toFixed(0)} ms per run`,
  );
  line(
    `resume of ${f.resumeSeconds.waits} waits after SIGTERM | SIGKILL`,
    `${seconds(f.resumeSeconds.sigterm * 1000)} | ${seconds(f.resumeSeconds.sigkill * 1000)} (lease heartbeat timeout 60 s)`,
  );
  line('SIGTERMed worker exited after', seconds(f.sigtermExitSeconds * 1000));
  line('detection lag, 10,000 waits (watcher, virtual time)', seconds(lagSeconds * 1000));
  note(`load average at end: ${f.load}`);
}

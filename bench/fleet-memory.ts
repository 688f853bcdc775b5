/**
 * Where the whole worker's memory goes with N image runs waiting (issue 13): the fleet bench's
 * stack (compiled `worker/main`, lean settings, dev server, moto behind the fault layer) with the
 * probe of memory-diag.ts preloaded into the worker. At each point it reads the main thread's and
 * the workflow thread's V8 heaps (as they are and after a full GC) and what is native (smaps:
 * file-backed, glibc's brk heap, anonymous mappings):
 *
 *   idle 5 s and 30 s after ready · all N waiting · after glibc's malloc_trim(0) (through gdb,
 *   `--trim`) · every run done after release.
 *
 *   node --import tsx bench/fleet-memory.ts [--waits 1000] [--snapshot] [--trim] [--json FILE]
 *
 * `--snapshot` writes heap snapshots of both threads at N waiting (summarise them with
 * bench/heap-summary.ts). AMIFLOW_BENCH_WORKER_<ENV>=value passes a setting to the worker, as in
 * the fleet bench.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { WorkerProcess } from '../devkit/worker-process';
import { LEAN_ENV } from '../devkit/worker-process';
import { compileForBench } from './compile';
import type { Stack } from './fleet-worker';
import { cpuMs, running, startAndHold, startStack, until } from './fleet-worker';
import type { DiagReport, ThreadMemory } from './memory-diag';

const execFileAsync = promisify(execFile);
const MB = 1e6;

function arg(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

interface Point {
  label: string;
  rssMb: number;
  report: DiagReport;
}

class Probe {
  private n = 0;
  readonly points: Point[] = [];
  constructor(
    private readonly w: WorkerProcess,
    private readonly dir: string,
  ) {}

  async read(label: string, mode: 'plain' | 'gc' | 'snapshot'): Promise<Point> {
    await writeFile(path.join(this.dir, 'mode'), mode);
    const id = (this.n += 1);
    process.kill(this.w.pid, 'SIGWINCH');
    const file = path.join(this.dir, `report-${id}.json`);
    let report: DiagReport | undefined;
    await until(
      `memory report ${id}`,
      async () => {
        report = await readFile(file, 'utf8')
          .then((t) => JSON.parse(t) as DiagReport)
          .catch(() => undefined);
        return report !== undefined;
      },
      180_000,
      250,
    );
    const point = {
      label: `${label}${mode === 'plain' ? '' : ` (${mode})`}`,
      rssMb: (
        await this.w.memory().catch((err: unknown) => {
          throw new Error(`the worker is gone: ${this.w.output()}`, { cause: err });
        })
      ).rssMb,
      report: report as DiagReport,
    };
    this.points.push(point);
    return point;
  }
}

function row(p: Point): string {
  const main = p.report.threads.find((t) => t.main);
  const wf = p.report.threads.filter((t) => !t.main);
  const heap = (t: ThreadMemory | undefined) =>
    t ? `${(t.heapUsed / MB).toFixed(0)}/${(t.totalPhysical / MB).toFixed(0)}` : '-';
  const sum = (pick: (t: ThreadMemory) => number) => p.report.threads.reduce((a, t) => a + pick(t), 0);
  const v8Physical = sum((t) => t.totalPhysical);
  const s = p.report.smaps;
  const native = s.rss - s.fileBacked - v8Physical;
  return [
    p.label.padEnd(34),
    (s.rss / MB).toFixed(0).padStart(5),
    heap(main).padStart(9),
    wf.map(heap).join('+').padStart(9),
    (sum((t) => t.external) / MB).toFixed(1).padStart(8),
    (sum((t) => t.arrayBuffers) / MB).toFixed(1).padStart(7),
    (s.fileBacked / MB).toFixed(0).padStart(6),
    (s.brkHeap / MB).toFixed(0).padStart(6),
    (s.anonymous / MB).toFixed(0).padStart(6),
    (native / MB).toFixed(0).padStart(7),
  ].join(' ');
}

const HEADER = [
  'point'.padEnd(34),
  '  RSS',
  ' main u/c',
  '   wf u/c',
  'external',
  '   bufs',
  '  file',
  '   brk',
  '  anon',
  ' native',
].join(' ');

/** glibc's malloc_trim(0) in the worker, through gdb: what free() kept in the arenas. */
async function mallocTrim(pid: number): Promise<void> {
  await execFileAsync('gdb', ['-p', String(pid), '-batch', '-ex', 'call (int) malloc_trim(0)'], {
    timeout: 60_000,
  });
}

interface VariantResult {
  variant: string;
  runs: number;
  toWaiting: number;
  /** Worker CPU (user + system) per run from the first start until all were waiting. */
  cpuMsPerRun: number;
  peakMb: number;
  load: string;
  samples: { t: number; rssMb: number }[];
  points: Point[];
}

/** `--variants 'base;MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=65536'`: env of each worker in turn. */
function variants(): { name: string; env: Record<string, string> }[] {
  const spec = arg('--variants') ?? 'base';
  return spec.split(';').map((v) => ({
    name: v.trim() || 'base',
    env: Object.fromEntries(
      v
        .trim()
        .split(/\s+/)
        .filter((kv) => kv.includes('='))
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    ),
  }));
}

async function measureVariant(
  s: Stack,
  v: { name: string; env: Record<string, string> },
  opts: { runs: number; diag: string; dir: string; trim: boolean; snapshot: boolean },
): Promise<VariantResult> {
  const { runs } = opts;
  const extraNodeOptions = v.env.NODE_OPTIONS ?? '';
  const w = await s.startWorker({
    ...v.env,
    NODE_OPTIONS: `${LEAN_ENV.NODE_OPTIONS} ${extraNodeOptions} --expose-gc --require ${opts.diag}`,
    AMIFLOW_MEMORY_DIAG_DIR: opts.dir,
  });
  const samples: { t: number; rssMb: number }[] = [];
  try {
    const ready = Date.now();
    const probe = new Probe(w, opts.dir);
    const sleepUntil = (ms: number) =>
      new Promise((r) => setTimeout(r, Math.max(0, ready + ms - Date.now())));
    await sleepUntil(5_000);
    await probe.read('idle, ready + 5 s', 'plain');
    await sleepUntil(30_000);
    await probe.read('idle, ready + 30 s', 'plain');
    await probe.read('idle, ready + 30 s', 'gc');

    const began = Date.now();
    const cpuBefore = await cpuMs(w.pid);
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push({ t: (Date.now() - began) / 1000, rssMb: (await w.memory()).rssMb });
        await new Promise((r) => setTimeout(r, 1_000));
      }
    })();
    await startAndHold(s, w, runs);
    const toWaiting = (Date.now() - began) / 1000;
    const cpuMsPerRun = ((await cpuMs(w.pid)) - cpuBefore) / runs;
    await new Promise((r) => setTimeout(r, 3_000));
    sampling = false;
    await sampler;
    await probe.read(`${runs} waiting`, 'plain');
    await new Promise((r) => setTimeout(r, 20_000));
    await probe.read(`${runs} waiting + 20 s`, 'plain');
    await probe.read(`${runs} waiting + 20 s`, 'gc');
    if (opts.trim && !v.env.LD_PRELOAD) {
      await mallocTrim(w.pid);
      await probe.read(`${runs} waiting, after malloc_trim`, 'plain');
    }
    if (opts.snapshot) await probe.read(`${runs} waiting`, 'snapshot');
    const peakMb = (await w.memory()).peakMb;
    s.release();
    await until('every run done', async () => (await running(s)) === 0, 600_000, 1_000);
    await new Promise((r) => setTimeout(r, 10_000));
    await probe.read('all done + 10 s', 'plain');
    const load = os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
    return { variant: v.name, runs, toWaiting, cpuMsPerRun, peakMb, load, samples, points: probe.points };
  } finally {
    await w.kill('SIGKILL');
  }
}

function print(r: VariantResult): void {
  console.log(
    `\n${r.variant}: ${r.runs} runs; all waiting after ${r.toWaiting.toFixed(0)} s; ` +
      `peak (VmHWM) ${r.peakMb.toFixed(0)} MB; load ${r.load}`,
  );
  console.log(HEADER);
  for (const p of r.points) console.log(row(p));
  const rises = r.samples
    .filter((_, i) => i % 10 === 0)
    .map((x) => `${x.t.toFixed(0)}s ${x.rssMb.toFixed(0)}`);
  console.log(`RSS during the burst (every 10 s): ${rises.join(' · ')}`);
  const snaps = r.points.flatMap((p) => p.report.threads.flatMap((t) => (t.snapshot ? [t.snapshot] : [])));
  if (snaps.length) console.log(`heap snapshots: ${snaps.join(' ')}`);
}

async function main(): Promise<void> {
  const runs = Number(arg('--waits') ?? 1000);
  const snapshot = process.argv.includes('--snapshot');
  const trim = process.argv.includes('--trim');
  const json = arg('--json');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'amiflow-fleet-memory-'));
  const [s, diag] = await Promise.all([startStack(), compileForBench('bench/memory-diag.ts')]);
  const results: VariantResult[] = [];
  try {
    console.log('MB; heaps used/committed (V8 physical); native = RSS − file-backed − V8 committed');
    for (const [i, v] of variants().entries()) {
      // A directory per worker: its report numbers start at 1 again.
      const own = path.join(dir, String(i));
      await mkdir(own);
      const r = await measureVariant(s, v, { runs, diag, dir: own, trim, snapshot });
      print(r);
      results.push(r);
    }
    if (json) await writeFile(json, JSON.stringify(results, null, 2));
  } finally {
    await s.stop();
    if (!snapshot) await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

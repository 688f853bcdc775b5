/**
 * Where one phase of a bench run's CPU went, from V8 CPU profiles (`--cpu-prof`, one file per
 * thread): only the samples from a monotonic instant on (µs, the clock the profiles use), self time
 * by function, with the thread's busy, idle and garbage-collection totals.
 *
 *   node --import tsx bench/cpu-profile-phase.ts --dir DIR --from-us N [--top 25]
 *
 * The light bench's worker writes the release's instant to AMIFLOW_BENCH_WORKER_BENCH_RELEASE_MARK_FILE.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time (ms) by frame for the samples at or after `fromUs`, and the span they cover. */
export function selfTimeFrom(
  p: CpuProfile,
  fromUs: number,
): { spanMs: number; byFrame: Map<string, number> } {
  const frame = new Map<number, string>();
  for (const n of p.nodes) {
    const f = n.callFrame;
    const where = f.url ? ` ${path.basename(f.url)}:${f.lineNumber + 1}` : '';
    frame.set(n.id, `${f.functionName || '(anonymous)'}${where}`);
  }
  const byFrame = new Map<string, number>();
  let t = p.startTime;
  let first: number | undefined;
  let last = t;
  for (let i = 0; i < p.samples.length; i += 1) {
    const delta = p.timeDeltas[i] ?? 0;
    t += delta;
    if (t < fromUs) continue;
    first ??= t;
    last = t;
    // A sample stands for the time until the next one.
    const ms = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const name = frame.get(p.samples[i] ?? -1) ?? '?';
    byFrame.set(name, (byFrame.get(name) ?? 0) + ms);
  }
  return { spanMs: first === undefined ? 0 : (last - first) / 1000, byFrame };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      'from-us': { type: 'string' },
      top: { type: 'string', default: '25' },
    },
  });
  if (!values.dir || !values['from-us']) throw new Error('usage: --dir DIR --from-us N [--top 25]');
  const fromUs = Number(values['from-us']);
  const top = Number(values.top);
  for (const file of (await readdir(values.dir)).filter((f) => f.endsWith('.cpuprofile')).sort()) {
    const profile = JSON.parse(await readFile(path.join(values.dir, file), 'utf8')) as CpuProfile;
    const { spanMs, byFrame } = selfTimeFrom(profile, fromUs);
    const idle = byFrame.get('(idle)') ?? 0;
    const total = [...byFrame.values()].reduce((a, b) => a + b, 0);
    const gc = byFrame.get('(garbage collector)') ?? 0;
    console.log(
      `\n${file}: ${(spanMs / 1000).toFixed(1)} s from the mark; busy ${((total - idle) / 1000).toFixed(1)} s ` +
        `(GC ${(gc / 1000).toFixed(1)} s), idle ${(idle / 1000).toFixed(1)} s`,
    );
    const rows = [...byFrame.entries()].filter(([name]) => name !== '(idle)').sort((a, b) => b[1] - a[1]);
    // The same self time by source file: which module the phase's time went to.
    const byFile = new Map<string, number>();
    for (const [name, ms] of rows) {
      const file = / (\S+):\d+$/.exec(name)?.[1] ?? name;
      byFile.set(file, (byFile.get(file) ?? 0) + ms);
    }
    console.log('-- by file');
    for (const [file, ms] of [...byFile.entries()].sort((a, b) => b[1] - a[1]).slice(0, top))
      console.log(`${(ms / 1000).toFixed(2).padStart(8)} s  ${file}`);
    console.log('-- by function');
    for (const [name, ms] of rows.slice(0, top))
      console.log(
        `${(ms / 1000).toFixed(2).padStart(8)} s  ${((100 * ms) / Math.max(1, total - idle)).toFixed(1).padStart(5)} %  ${name}`,
      );
  }
}

if (require.main === module)
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });

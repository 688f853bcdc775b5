/**
 * A memory probe preloaded into a worker process under measurement (`--require` this file, compiled
 * by compile.ts, through NODE_OPTIONS together with `--expose-gc`). Node runs a `--require` preload
 * in every thread, so it answers for the main thread and for the SDK's workflow thread alike:
 *
 * - every thread listens on a BroadcastChannel and answers an `ask` with its own V8 heap
 *   (`process.memoryUsage()` is per isolate for the heap fields, `v8.getHeapStatistics()`), after a
 *   full collection when asked, and writes its own heap snapshot when asked;
 * - the main thread, on SIGWINCH (SIGUSR2 would stop the worker: the Temporal runtime shuts down on
 *   it), asks every thread, reads /proc/self/smaps for what is native
 *   (file-backed, brk heap, anonymous mappings) and writes one JSON report per signal into
 *   AMIFLOW_MEMORY_DIAG_DIR, named `report-<n>.json`. `AMIFLOW_MEMORY_DIAG_MODE` in that directory's
 *   `mode` file chooses `plain`, `gc` or `snapshot` (gc, then heap snapshots) for the next signal.
 *
 * Why a preload and not code in the worker: it measures the production entry unchanged; nothing of
 * it ships in the worker.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { isMainThread, threadId } from 'node:worker_threads';

const CHANNEL = 'amiflow-memory-diag';

interface Ask {
  type: 'ask';
  id: number;
  gc: boolean;
  snapshotDir?: string;
}

export interface ThreadMemory {
  type: 'answer';
  id: number;
  threadId: number;
  main: boolean;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** V8's committed physical memory for this isolate (what the heap costs in RSS). */
  totalPhysical: number;
  mallocedMemory: number;
  peakMallocedMemory: number;
  heapLimit: number;
  spaces: { name: string; used: number; physical: number }[];
  snapshot?: string;
}

export interface SmapsSummary {
  rss: number;
  fileBacked: number;
  brkHeap: number;
  anonymous: number;
  /** Anonymous mappings of 64 MB-aligned size classes: glibc's per-thread malloc arenas. */
  anonymousBySize: { bucket: string; count: number; rss: number }[];
}

export interface DiagReport {
  at: number;
  label: string;
  rssBefore: number;
  threads: ThreadMemory[];
  smaps: SmapsSummary;
}

function answer(ask: Ask): ThreadMemory {
  if (ask.gc) (globalThis as { gc?: () => void }).gc?.();
  const usage = process.memoryUsage();
  const stats = v8.getHeapStatistics();
  const snapshot = ask.snapshotDir
    ? v8.writeHeapSnapshot(path.join(ask.snapshotDir, `thread-${threadId}-${ask.id}.heapsnapshot`))
    : undefined;
  return {
    type: 'answer',
    id: ask.id,
    threadId,
    main: isMainThread,
    heapUsed: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
    totalPhysical: stats.total_physical_size,
    mallocedMemory: stats.malloced_memory,
    peakMallocedMemory: stats.peak_malloced_memory,
    heapLimit: stats.heap_size_limit,
    spaces: v8
      .getHeapSpaceStatistics()
      .map((s) => ({ name: s.space_name, used: s.space_used_size, physical: s.physical_space_size })),
    ...(snapshot ? { snapshot } : {}),
  };
}

/** Summarises /proc/self/smaps: what is file-backed, the brk heap (glibc's main arena), anonymous. */
export function summariseSmaps(text: string): SmapsSummary {
  const summary: SmapsSummary = { rss: 0, fileBacked: 0, brkHeap: 0, anonymous: 0, anonymousBySize: [] };
  const buckets = new Map<string, { count: number; rss: number }>();
  let name = '';
  let size = 0;
  for (const line of text.split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const [from, to] = line
        .split(' ')[0]
        ?.split('-')
        .map((h) => parseInt(h, 16)) ?? [0, 0];
      name = header[1] ?? '';
      size = (to ?? 0) - (from ?? 0);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (!rss) continue;
    const bytes = Number(rss[1]) * 1024;
    summary.rss += bytes;
    if (name === '[heap]') summary.brkHeap += bytes;
    else if (name.startsWith('/')) summary.fileBacked += bytes;
    else {
      summary.anonymous += bytes;
      const mb = size / 2 ** 20;
      const bucket = mb < 1 ? '<1 MB' : mb < 8 ? '1-8 MB' : mb < 64 ? '8-64 MB' : '≥ 64 MB';
      const b = buckets.get(bucket) ?? { count: 0, rss: 0 };
      b.count += 1;
      b.rss += bytes;
      buckets.set(bucket, b);
    }
  }
  summary.anonymousBySize = [...buckets].map(([bucket, b]) => ({ bucket, ...b }));
  return summary;
}

function vmRss(): number {
  const status = readFileSync('/proc/self/status', 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024;
}

function install(): void {
  const dir = process.env.AMIFLOW_MEMORY_DIAG_DIR;
  if (!dir) return;
  const listener = new BroadcastChannel(CHANNEL);
  listener.onmessage = (e: MessageEvent) => {
    const m = e.data as Ask | ThreadMemory;
    if (m.type === 'ask' && !isMainThread) listener.postMessage(answer(m));
  };
  // The probe must never keep a thread (and so the worker) alive on its own.
  listener.unref();
  if (!isMainThread) return;
  let reports = 0;
  process.on('SIGWINCH', () => {
    const id = (reports += 1);
    const rssBefore = vmRss();
    const mode = (() => {
      try {
        return readFileSync(path.join(dir, 'mode'), 'utf8').trim();
      } catch {
        return 'plain';
      }
    })();
    const ask: Ask = {
      type: 'ask',
      id,
      gc: mode !== 'plain',
      ...(mode === 'snapshot' ? { snapshotDir: dir } : {}),
    };
    const threads: ThreadMemory[] = [];
    const asker = new BroadcastChannel(CHANNEL);
    asker.onmessage = (e: MessageEvent) => {
      const m = e.data as Ask | ThreadMemory;
      if (m.type === 'answer' && m.id === id) threads.push(m);
    };
    asker.postMessage(ask);
    threads.push(answer(ask));
    // A heap snapshot of the workflow thread takes seconds; the threads answer when they are free.
    // The SDK runs one workflow thread (reuseV8Context), so two answers are all of them.
    const expected = Number(process.env.AMIFLOW_MEMORY_DIAG_THREADS ?? 2);
    const deadline = Date.now() + 120_000;
    const write = () => {
      if (threads.length < expected && Date.now() < deadline) {
        setTimeout(write, 200);
        return;
      }
      asker.close();
      const report: DiagReport = {
        at: Date.now(),
        label: mode,
        rssBefore,
        threads,
        smaps: summariseSmaps(readFileSync('/proc/self/smaps', 'utf8')),
      };
      writeFileSync(path.join(dir, `report-${id}.json`), JSON.stringify(report));
    };
    setTimeout(write, 200);
  });
}

install();

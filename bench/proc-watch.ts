/**
 * Reads the processes of a bench from /proc (Linux): CPU seconds of the worker, the Temporal dev
 * server and the bench (client) process, and the worker's RSS. The dev server is found as the child
 * of this process named `temporal` (the SDK's ephemeral server spawns the CLI directly).
 */
import { readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import { cpuSecondsFromStat, parentAndNameFromStat } from './run-rates';

export interface CpuSplit {
  worker: number;
  server: number;
  client: number;
}

export interface Sample {
  /** Seconds since the first start. */
  t: number;
  started: number;
  waiting: number;
  done?: number;
  /** Lease heartbeats sent so far and their size (the list of held waits each time). */
  leaseHeartbeats?: { calls: number; mb: number };
  rssMb: number;
  /** CPU seconds used so far by each process (cumulative, from /proc/<pid>/stat). */
  cpuS: CpuSplit;
  load1: number;
}

/** CPU seconds of one process (all threads); NaN once it is gone. */
export async function cpuSecondsOf(pid: number | undefined): Promise<number> {
  if (pid === undefined) return NaN;
  try {
    return cpuSecondsFromStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return NaN;
  }
}

/** The pid of this process's child named `temporal` (the dev server), if there is one. */
export async function devServerPid(): Promise<number | undefined> {
  const entries = await readdir('/proc').catch((): string[] => []);
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const { ppid, name } = parentAndNameFromStat(await readFile(`/proc/${entry}/stat`, 'utf8'));
      if (ppid === process.pid && name.startsWith('temporal')) return Number(entry);
    } catch {
      // The process ended between readdir and the read.
    }
  }
  return undefined;
}

export async function cpuSplitOf(pids: { worker?: number; server?: number }): Promise<CpuSplit> {
  const [worker, server] = await Promise.all([cpuSecondsOf(pids.worker), cpuSecondsOf(pids.server)]);
  return { worker, server, client: await cpuSecondsOf(process.pid) };
}

export function cpuDelta(from: CpuSplit, to: CpuSplit): CpuSplit {
  return {
    worker: to.worker - from.worker,
    server: to.server - from.server,
    client: to.client - from.client,
  };
}

export function load1(): number {
  return Number(os.loadavg()[0]?.toFixed(2));
}

/**
 * The one virtual clock of the tests and benchmarks: `sleep` moves time on at once instead of
 * waiting, so hours of AWS polling run in milliseconds of wall time, and records each duration.
 */
import type { Clock } from '../activities/waiting';

export interface VirtualClockOptions {
  /**
   * Let the event loop run once per sleep, as a real sleep would: an activity on a worker then gives
   * its heartbeats and the worker a turn. Without it a sleep resolves at once.
   */
  yieldToEventLoop?: boolean;
}

export class VirtualClock implements Clock {
  /** Every duration slept, in order. */
  readonly sleeps: number[] = [];

  constructor(
    private t = 0,
    private readonly options: VirtualClockOptions = {},
  ) {}

  now(): number {
    return this.t;
  }

  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.t += ms;
    if (this.options.yieldToEventLoop) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Time passing inside an AWS call (latency). */
  advance(ms: number): void {
    this.t += ms;
  }

  set(ms: number): void {
    this.t = ms;
  }
}

/**
 * A counting semaphore for workflow code: at most `limit` holders at once, waiters served first in,
 * first out. Deterministic (workflow state and `condition` only), and a waiter whose scope is
 * cancelled leaves the queue. `Semaphores` keeps one per key, e.g. per destination region.
 */
import { condition } from '@temporalio/workflow';

export class Semaphore {
  private holders = 0;
  private readonly queue: number[] = [];
  private tickets = 0;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`semaphore limit must be ≥ 1, got ${limit}`);
  }

  /** Holders now. */
  get running(): number {
    return this.holders;
  }

  /** Waiters now. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Waits for a permit (in queue order); rejects, leaving the queue, if the scope is cancelled. */
  async acquire(): Promise<void> {
    const ticket = this.tickets++;
    this.queue.push(ticket);
    try {
      await condition(() => this.holders < this.limit && this.queue[0] === ticket);
    } catch (err) {
      this.queue.splice(this.queue.indexOf(ticket), 1);
      throw err;
    }
    this.queue.shift();
    this.holders += 1;
  }

  release(): void {
    if (this.holders === 0) throw new Error('semaphore released more often than acquired');
    this.holders -= 1;
  }

  /** Runs `fn` holding a permit; `onQueued` is told when it has to wait, with its place in the queue. */
  async withPermit<T>(fn: () => Promise<T>, onQueued?: (ahead: number) => void): Promise<T> {
    if (this.holders >= this.limit || this.queue.length > 0) onQueued?.(this.queue.length);
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

export class Semaphores {
  private readonly byKey = new Map<string, Semaphore>();

  constructor(readonly limit: number) {}

  of(key: string): Semaphore {
    let s = this.byKey.get(key);
    if (!s) {
      s = new Semaphore(this.limit);
      this.byKey.set(key, s);
    }
    return s;
  }
}

/**
 * Virtual time for code that sleeps through an injected `sleep` and reads an injected `now`: timers
 * fire in time order, each after the promise chains the previous one started have settled, so an
 * hour of a polling loop runs in milliseconds and every call can be stamped with its virtual time.
 * Works for code whose awaits are promise-based (no real I/O or real timers in between).
 */
interface Timer {
  at: number;
  seq: number;
  resolve: () => void;
}

/** Lets every promise chain started so far run until it waits on something else. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

export class VirtualTimers {
  private t: number;
  private seq = 0;
  private readonly queue: Timer[] = [];

  constructor(start = 0) {
    this.t = start;
  }

  readonly now = (): number => this.t;

  readonly sleep = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      this.queue.push({ at: this.t + Math.max(0, ms), seq: this.seq++, resolve });
    });

  /** Pending sleeps. */
  get pending(): number {
    return this.queue.length;
  }

  /** Fires timers in order until the clock reaches `until` (or `done()` holds, or none is left). */
  async runUntil(until: number, done: () => boolean = () => false): Promise<void> {
    for (;;) {
      await settle();
      if (done()) return;
      this.queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.queue[0];
      if (!next || next.at > until) {
        this.t = Math.max(this.t, until);
        return;
      }
      this.queue.shift();
      this.t = Math.max(this.t, next.at);
      next.resolve();
    }
  }
}

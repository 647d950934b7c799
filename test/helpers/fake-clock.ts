// A stopped clock for driver tests: one-shot timers that run only when the test moves time, in order.
import type { TimeoutTimers } from '../../sensors/reconnect.ts';

export class FakeClock implements TimeoutTimers {
  private seq = 0;
  private readonly due = new Map<number, { at: number; fn: () => void }>();
  constructor(public t = 1_700_000_000_000) {}
  readonly now = (): number => this.t;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.due.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.due.delete(handle as number);
  }
  get pending(): number {
    return this.due.size;
  }
  /** Moves time forward by `ms`, running the timers that fall due, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.due.entries()].filter(([, d]) => d.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (next === undefined) break;
      this.due.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

// The machinery every driver shares: a bounded reading queue consumed as an async iterator (the source is
// paused when it is full: backpressure), per-stream sequence numbers, counters, status with change events,
// rate-limited logging of rejects, and the one reconnect path (reconnect.ts) every driver uses.
import { EventEmitter } from 'node:events';
import type { DriverContext, DriverCounters, DriverStatus } from './driver.ts';
import type { Reading, SensorLogger } from './reading.ts';
import { Reconnector, type ReconnectPolicy, type TimeoutTimers } from './reconnect.ts';

export { backoffDelay } from './reconnect.ts';

/** Logs at most `perWindow` lines per `windowMs` per key, then one summary of what was suppressed. */
export class RateLimitedLog {
  private readonly windows = new Map<string, { start: number; count: number; suppressed: number }>();
  constructor(
    private readonly log: SensorLogger,
    private readonly now: () => number,
    private readonly perWindow = 5,
    private readonly windowMs = 10_000,
  ) {}

  warn(key: string, msg: string, fields: Record<string, unknown>): void {
    const t = this.now();
    let w = this.windows.get(key);
    if (w === undefined || t - w.start >= this.windowMs) {
      if (w !== undefined && w.suppressed > 0) this.log.warn(`${w.suppressed} more like this suppressed`, { key, windowMs: this.windowMs });
      w = { start: t, count: 0, suppressed: 0 };
      this.windows.set(key, w);
    }
    if (w.count < this.perWindow) {
      w.count++;
      this.log.warn(msg, fields);
    } else {
      w.suppressed++;
    }
  }
}

/**
 * Base class of drivers. Subclasses call `emitReading` / `reject` / `setStatus`, and implement
 * `pauseSource` / `resumeSource` when their source can be paused (serial and MQTT streams can).
 */
export abstract class DriverBase extends EventEmitter {
  protected readonly log: SensorLogger;
  protected readonly now: () => number;
  private readonly rejectLog: RateLimitedLog;
  private currentStatus: DriverStatus = { state: 'starting' };
  private readonly seqs = new Map<string, number>();
  private readonly rejectCounts: Record<string, number> = {};
  private readingCount = 0;
  private reconnector: Reconnector | null = null;
  private readonly queue: Reading[] = [];
  private waiter: ((r: IteratorResult<Reading>) => void) | null = null;
  private ended = false;
  private paused = false;

  constructor(
    readonly name: string,
    ctx: DriverContext,
    /** Readings buffered before the source is paused. */
    private readonly highWater = 1024,
  ) {
    super();
    this.log = ctx.logger.child({ driver: name });
    this.now = ctx.now ?? Date.now;
    this.rejectLog = new RateLimitedLog(this.log, this.now);
  }

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;

  /** Pause reading from the source (queue full); default: nothing to pause. */
  protected pauseSource(): void {}
  protected resumeSource(): void {}

  status(): DriverStatus {
    return this.currentStatus;
  }

  counters(): DriverCounters {
    return { readings: this.readingCount, rejects: { ...this.rejectCounts }, reconnects: this.reconnector?.reconnects ?? 0 };
  }

  /**
   * The driver's reconnect path (reconnect.ts): `attempt` is its connect function, run when a retry's delay
   * is over. Statuses go out through setStatus; reconnects are counted in counters().
   */
  protected reconnects(policy: ReconnectPolicy | undefined, attempt: () => void, opts: { timers?: TimeoutTimers | undefined; random?: (() => number) | undefined } = {}): Reconnector {
    this.reconnector = new Reconnector(policy ?? {}, { now: this.now, status: (s) => this.setStatus(s), timers: opts.timers, random: opts.random }, attempt);
    return this.reconnector;
  }

  protected setStatus(s: DriverStatus): void {
    this.currentStatus = s;
    this.emit('status', s);
  }

  /** Count and (rate-limited) log a rejected input; never throws. */
  protected reject(reason: string, detail: string): void {
    this.rejectCounts[reason] = (this.rejectCounts[reason] ?? 0) + 1;
    this.rejectLog.warn(reason, 'rejected input', { reason, detail: detail.length > 200 ? detail.slice(0, 200) + '...' : detail });
    this.emit('reject', { reason, detail });
  }

  /** Queue a reading; assigns its per-stream sequence number. Returns the reading as consumers get it (null once ended). */
  protected emitReading(r: Omit<Reading, 'seq'>): Reading | null {
    if (this.ended) return null;
    const seq = this.seqs.get(r.stream) ?? 0;
    this.seqs.set(r.stream, seq + 1);
    const reading: Reading = { ...r, seq };
    this.readingCount++;
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: reading, done: false });
      return reading;
    }
    this.queue.push(reading);
    if (!this.paused && this.queue.length >= this.highWater) {
      this.paused = true;
      this.pauseSource();
    }
    return reading;
  }

  /** End the readings() iteration (on stop). */
  protected endReadings(): void {
    this.ended = true;
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: undefined, done: true });
    }
  }

  readings(): AsyncIterable<Reading> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: (): Promise<IteratorResult<Reading>> => {
          const r = this.queue.shift();
          if (r !== undefined) {
            if (this.paused && this.queue.length < this.highWater / 2) {
              this.paused = false;
              this.resumeSource();
            }
            return Promise.resolve({ value: r, done: false });
          }
          if (this.ended) return Promise.resolve({ value: undefined, done: true });
          return new Promise((resolve) => (this.waiter = resolve));
        },
        return: async (): Promise<IteratorResult<Reading>> => {
          await this.stop();
          return { value: undefined, done: true };
        },
      }),
    };
  }
}

// The one reconnect path of every driver (docs/architecture.md, "Reconnect"): capped exponential backoff
// with jitter, the attempt count starting over once a connection has stayed up for a healthy period, the
// status an operator sees ('retrying' with the reason and the next attempt, 'connected', 'failed'), and a
// pending retry that stop() cancels at once. Timers are a port so unit tests run the delays by hand.
import type { DriverStatus } from './driver.ts';

/** One-shot timer port; the default is the process's setTimeout/clearTimeout. */
export interface TimeoutTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimeoutTimers: TimeoutTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Reconnect delays: base * 2^attempt, capped, with +-20% jitter from `random` (injectable for tests). */
export function backoffDelay(attempt: number, opts: { baseMs?: number; maxMs?: number; random?: () => number } = {}): number {
  const base = opts.baseMs ?? 500;
  const max = opts.maxMs ?? 30_000;
  const raw = Math.min(max, base * 2 ** Math.min(attempt, 30));
  const jitter = 0.8 + 0.4 * (opts.random ?? Math.random)();
  return Math.round(Math.min(max, raw * jitter));
}

/** How a driver backs off; every field optional (defaults 500 ms doubling to 30 s, reset at once). */
export interface ReconnectPolicy {
  readonly baseMs?: number;
  readonly maxMs?: number;
  /**
   * A connection that stayed up this long (ms) makes the next failure start the backoff over; one that
   * broke sooner keeps growing it, so a source that accepts and drops at once is not hammered. 0: at once.
   */
  readonly resetAfterMs?: number;
}

export interface ReconnectPorts {
  readonly now: () => number;
  readonly status: (s: DriverStatus) => void;
  /** Default: systemTimeoutTimers. */
  readonly timers?: TimeoutTimers | undefined;
  /** Jitter source, [0, 1); default Math.random. */
  readonly random?: (() => number) | undefined;
}

/** What retry() scheduled: the delay and the attempt number the status shows. */
export interface ScheduledRetry {
  readonly delayMs: number;
  readonly attempt: number;
  readonly nextAttemptAt: number;
}

/**
 * The reconnect state of one driver. The driver calls `connected()` when its source is usable, `retry(reason)`
 * when an attempt failed or the connection broke, `fail(reason)` when retrying cannot help, and `stop()`.
 * `attempt` is the driver's own connect function, called when a retry's delay is over.
 */
export class Reconnector {
  private readonly timers: TimeoutTimers;
  private readonly random: () => number;
  private timer: unknown = null;
  private failures = 0;
  private connectedAt: number | null = null;
  private everConnected = false;
  private stopped = false;
  /** Connections after the first one. */
  reconnects = 0;

  constructor(
    private readonly policy: ReconnectPolicy,
    private readonly ports: ReconnectPorts,
    private readonly attempt: () => void,
  ) {
    this.timers = ports.timers ?? systemTimeoutTimers;
    this.random = ports.random ?? Math.random;
  }

  /** Failed attempts since the backoff last started over. */
  get attempts(): number {
    return this.failures;
  }

  /** A retry is waiting for its delay. */
  get pending(): boolean {
    return this.timer !== null;
  }

  /** The source is usable: status 'connected'; counts a reconnect after the first connection. */
  connected(): void {
    if (this.stopped) return;
    this.cancel();
    const now = this.ports.now();
    if (this.everConnected) this.reconnects++;
    this.everConnected = true;
    this.connectedAt = now;
    if ((this.policy.resetAfterMs ?? 0) <= 0) this.failures = 0;
    this.ports.status({ state: 'connected', since: now });
  }

  /** Start the backoff over now (e.g. the source answered, before the driver is fully set up). */
  resetAttempts(): void {
    this.failures = 0;
  }

  /**
   * Schedules the next attempt after the backoff delay (grown by `penalty` extra steps, e.g. refusals in a
   * row) and reports 'retrying'. Returns null once stopped. A retry already pending is replaced.
   */
  retry(reason: string, penalty = 0): ScheduledRetry | null {
    if (this.stopped) return null;
    this.cancel();
    const now = this.ports.now();
    if (this.connectedAt !== null && now - this.connectedAt >= (this.policy.resetAfterMs ?? 0)) this.failures = 0;
    this.connectedAt = null;
    const delayMs = backoffDelay(this.failures + penalty, { baseMs: this.policy.baseMs, maxMs: this.policy.maxMs, random: this.random });
    this.failures++;
    const scheduled = { delayMs, attempt: this.failures, nextAttemptAt: now + delayMs };
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.attempt();
    }, delayMs);
    this.ports.status({ state: 'retrying', reason, nextAttemptAt: scheduled.nextAttemptAt, attempt: scheduled.attempt });
    return scheduled;
  }

  /** Retrying cannot help: no further attempt, status 'failed' with the reason. */
  fail(reason: string): void {
    this.cancel();
    this.connectedAt = null;
    this.ports.status({ state: 'failed', reason });
  }

  /** Cancels a pending retry at once; later retry() calls schedule nothing. */
  stop(): void {
    this.stopped = true;
    this.cancel();
  }

  private cancel(): void {
    if (this.timer === null) return;
    this.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}

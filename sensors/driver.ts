// What every sensor driver is: an async stream of readings with backpressure, counters of what it read and
// rejected, and a status an operator can look at. Drivers turn malformed input into counted, rate-limited
// rejections and reconnect by themselves with capped exponential backoff; they never throw from input.
import type { Reading, SensorLogger } from './reading.ts';

/** Connection state of a driver. */
export type DriverStatus =
  | { readonly state: 'starting' }
  | { readonly state: 'connected'; readonly since: number }
  | { readonly state: 'retrying'; readonly reason: string; readonly nextAttemptAt: number; readonly attempt: number }
  | { readonly state: 'failed'; readonly reason: string }
  | { readonly state: 'stopped' };

export interface DriverCounters {
  readonly readings: number;
  /** Rejected inputs by reason (e.g. 'bad-json', 'checksum', 'line-too-long', 'not-finite', 'missing-field'). */
  readonly rejects: Readonly<Record<string, number>>;
  readonly reconnects: number;
}

export interface SensorDriver {
  /** The source name from the configuration (e.g. 'barn-serial'). */
  readonly name: string;
  /** Readings in arrival order. The driver pauses its source when the consumer is slow (bounded buffer). */
  readings(): AsyncIterable<Reading>;
  status(): DriverStatus;
  counters(): DriverCounters;
  /** Status changes and rejects, for `sensors watch` and logs. */
  on(event: 'status', listener: (s: DriverStatus) => void): void;
  on(event: 'reject', listener: (r: { reason: string; detail: string }) => void): void;
  start(): Promise<void>;
  /** Stops the driver; the readings() iterator ends. */
  stop(): Promise<void>;
  /**
   * The consumer made `reading` durable. Drivers that can hold their source's acknowledgement until then
   * (MQTT's PUBACK) release it here; the others need not implement it.
   */
  acknowledge?(reading: Reading): void;
  /**
   * The consumer could not take `reading` (e.g. the pipeline is full). A driver holding its source's
   * acknowledgement has the source deliver it again later (MQTT: a new connection after backoff).
   */
  refuse?(reading: Reading): void;
}

/** What every driver gets from the composition root. */
export interface DriverContext {
  readonly logger: SensorLogger;
  readonly signal?: AbortSignal;
  /** Clock port (ms); tests pass a fake. */
  readonly now?: () => number;
}

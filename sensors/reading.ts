// The unit of sensor data: a Reading, as every driver produces it, and the ports a driver needs (logger).
// sensors/ imports nothing from chain/, device/ or gateway/: it owns these small interfaces.

/** One reading of a stream. Exactly one of `value` or `values` is set. */
export interface Reading {
  /** Stream name, e.g. 'greenhouse/temperature' (configured per source). */
  readonly stream: string;
  /** When the reading was taken (ms since the epoch): the device's time if it sent one, else arrival time. */
  readonly ts: number;
  /** Per-stream sequence number, strictly increasing from 0 for the driver's lifetime. */
  readonly seq: number;
  /** A single numeric value. */
  readonly value?: number;
  /** Several named numeric values (e.g. an NMEA fix: lat, lon, alt, speed). */
  readonly values?: Readonly<Record<string, number>>;
  readonly unit?: string;
  /** 0..1 or a device-specific quality code (e.g. NMEA fix quality), when the source reports one. */
  readonly quality?: number;
  /** Set by sources that may deliver the same message again after a crash (MQTT QoS 1): lets a durable
   * consumer store it once. Not part of the reading's data. */
  readonly delivery?: DeliveryTag;
}

/** What a line parser (formats.ts, nmea.ts) makes of one line: readings without their seq, or why not. */
export type ParseResult = { ok: true; readings: Omit<Reading, 'seq'>[] } | { ok: false; reason: string; detail: string };

/**
 * Which message of its source a reading came from, for sources that redeliver what was not acknowledged.
 * A durable consumer records the tag with the reading, in the same atomic write, and keeps it until the
 * source knows its acknowledgement arrived (DeliveryLog): a redelivered message whose tag it still holds was
 * stored before, and the source skips it.
 */
export interface DeliveryTag {
  /** Names the reading among the source's unacknowledged ones, e.g. '<client id>|<packet id>|<index in message>'. */
  readonly key: string;
  /** Digest of the message (topic and payload), so a key reused for another message is not taken for a repeat. */
  readonly digest: string;
  /** The source marked the message as possibly delivered before (MQTT's DUP flag). */
  readonly redelivered: boolean;
}

export type LogFields = Record<string, unknown>;

/** Structured logger port (same shape as the gateway's), with a no-op default. */
export interface SensorLogger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): SensorLogger;
}

export const nopSensorLogger: SensorLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return nopSensorLogger;
  },
};

/** Error with a stable code, for bad configuration of a driver (never thrown for bad input data). */
export class SensorError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly fields: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SensorError';
  }
}

/** A value usable in a reading: a finite number. */
export function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/**
 * A durable consumer's record of the delivery tags of readings it stored whose acknowledgement to the source
 * may not have gone out yet (the gateway pipeline implements it). Both calls are synchronous so a driver can
 * decide before it numbers a reading: a skipped repeat takes no seq, so it leaves no gap.
 */
export interface DeliveryLog {
  /** True when a reading with this tag's key and digest is stored and not yet released. */
  has(tag: DeliveryTag): boolean;
  /** The source knows its acknowledgement covering this reading arrived (no redelivery can follow): the record may go. */
  release(tag: DeliveryTag): void;
}

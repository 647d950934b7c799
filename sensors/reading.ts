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

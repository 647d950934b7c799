// Firmata boards (an Arduino running StandardFirmata on a serial port) through johnny-five: analog inputs,
// analog/one-wire thermometers and I2C environmental sensors (BME280, MPL3115A2, ...) become Readings.
// A lost board (port closed or unplugged, an error, no bytes for `silenceMs`, no handshake within
// `readyTimeoutMs`) is torn down completely and a new Board is built after a capped exponential backoff.
// johnny-five is CommonJS without types: the small surface used here is declared below, and the module is
// loaded lazily (createRequire) so importing sensors/ never loads johnny-five or serialport 8.
import { createRequire } from 'node:module';
import { DriverBase } from './base.ts';
import type { DriverContext, SensorDriver } from './driver.ts';
import { SensorError, isFiniteNumber } from './reading.ts';
import type { Reconnector, TimeoutTimers } from './reconnect.ts';

/** One sensor on the board. */
export type FirmataSensorConfig =
  | {
      kind: 'analog';
      /** Analog pin, 'A0'..'A15'. */
      pin: string;
      stream: string;
      /** Reading period (johnny-five `freq`, the median of the samples in each period); default 1000. */
      freqMs?: number;
      /** Maps 0..ADC max (1023 on 10-bit boards) linearly onto [low, high]; default: the raw value. */
      scale?: [number, number];
      unit?: string;
    }
  | {
      kind: 'thermometer';
      /** A johnny-five Thermometer controller on a pin: LM35, LM335, TMP36, GROVE, TINKERKIT, ANALOG, DS18B20, MAX31850K. */
      controller: string;
      pin: string;
      stream: string;
      freqMs?: number;
    }
  | {
      kind: 'i2c';
      /** A johnny-five Multi controller with environmental components, e.g. 'BME280', 'MPL3115A2', 'SHT31D'. */
      controller: string;
      stream: string;
      freqMs?: number;
      /** I2C address when not the controller's default. */
      address?: number;
    };

export interface FirmataConfig {
  name: string;
  /** Serial device of the board, e.g. '/dev/ttyACM0' or a udev symlink. */
  port: string;
  sensors: FirmataSensorConfig[];
  /** Connect-to-ready limit (Firmata asks for the version only after 5 s of silence); default 10000. */
  readyTimeoutMs?: number;
  /** A ready board that sends no byte for this long is treated as lost; default 5000, 0 turns it off. */
  silenceMs?: number;
  /** Reconnect backoff: base * 2^attempt with jitter, capped; defaults 500 and 30000 ms. */
  reconnect?: { baseMs?: number; maxMs?: number };
}

/** The part of a johnny-five component (Sensor, Thermometer, Multi) this driver uses. */
export interface FiveComponent {
  on(event: 'data', listener: (value: unknown) => void): unknown;
  removeAllListeners(event?: string): unknown;
  disable?(): unknown;
  enable?(): unknown;
  readonly resolution?: number;
  readonly celsius?: number;
  readonly thermometer?: { readonly celsius?: number };
  readonly barometer?: { readonly pressure?: number };
  readonly hygrometer?: { readonly relativeHumidity?: number };
  readonly altimeter?: { readonly meters?: number };
}

/** The part of a Firmata IO object (firmata-io Board or an IO plugin) this driver uses. */
export interface FiveIo {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  removeAllListeners(event?: string): unknown;
  /** firmata-io's timer that asks for the version after 5 s of silence (left running when the port never opened). */
  readonly reportVersionTimeoutId?: ReturnType<typeof setTimeout>;
  readonly transport?: {
    readonly isOpen?: boolean;
    on?(event: 'data', listener: (data: unknown) => void): unknown;
    close?(callback?: (err?: unknown) => void): unknown;
  } | null;
}

/** The part of a johnny-five Board this driver uses. */
export interface FiveBoard {
  on(event: string, listener: (arg: unknown) => void): unknown;
  removeAllListeners(event?: string): unknown;
  readonly io: FiveIo | null;
  /** johnny-five's connect-to-ready timer (never cleared when the port fails to open). */
  readonly timer?: ReturnType<typeof setTimeout> | null;
}

type ComponentClass = new (opts: Record<string, unknown>) => FiveComponent;

/** The johnny-five exports this driver uses (the module itself in production; a fake in unit tests). */
export interface FiveModule {
  Board: (new (opts: Record<string, unknown>) => FiveBoard) & { readonly cache?: unknown[] };
  Sensor: ComponentClass;
  Thermometer: ComponentClass;
  Multi: ComponentClass;
}

export interface FirmataDeps {
  /** Default: `require('johnny-five')`, loaded on first connect. */
  readonly five?: FiveModule;
  /**
   * Builds a fresh IO object for each connection attempt (an IO plugin, or a mock IO in tests); the Board is then
   * created with `{ io }` instead of `{ port }`.
   */
  readonly createIo?: () => unknown;
  /** Readings buffered before the components are disabled (default 1024). */
  readonly highWater?: number;
  /** Timers of the reconnect; default the real setTimeout. */
  readonly timers?: TimeoutTimers;
  /** Jitter source of the reconnect backoff, [0, 1); default Math.random. */
  readonly random?: () => number;
}

/** Analog thermometer controllers of johnny-five 2.1 that read a pin (the I2C ones belong to kind 'i2c'). */
const PIN_THERMOMETERS = new Set(['ANALOG', 'LM35', 'LM335', 'TMP36', 'GROVE', 'TINKERKIT', 'DS18B20', 'MAX31850K']);
/** johnny-five 2.1 Multi controllers with a thermometer, barometer, hygrometer or altimeter. */
const I2C_CONTROLLERS = new Set([
  'BME280', 'BMP280', 'BMP180', 'BMP085', 'MPL3115A2', 'MPL115A2', 'MS5611', 'SHT31D', 'HTU21D', 'HIH6130', 'SI7020',
  'SI7021', 'TH02', 'DHT_I2C_NANO_BACKPACK', 'DHT11_I2C_NANO_BACKPACK', 'DHT21_I2C_NANO_BACKPACK', 'DHT22_I2C_NANO_BACKPACK',
]);
const ANALOG_PIN = /^A(?:[0-9]|1[0-5])$/;
const ANY_PIN = /^(?:A(?:[0-9]|1[0-5])|[0-9]{1,3})$/;

/** johnny-five spells controllers without dashes and in upper case ('bme-280' is 'BME280'). */
function controllerName(c: string): string {
  return c.replace(/-/g, '').toUpperCase();
}

/** Checks a Firmata config; throws SensorError 'SENSOR_CONFIG_INVALID' naming the bad field. */
export function validateFirmataConfig(config: FirmataConfig): void {
  const bad = (field: string, msg: string): never => {
    throw new SensorError('SENSOR_CONFIG_INVALID', `firmata: '${field}' ${msg}`, { field });
  };
  const positive = (v: unknown, field: string, allowZero = false): void => {
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && (v > 0 || (allowZero && v === 0)))) bad(field, 'must be a positive number of ms');
  };
  if (typeof config !== 'object' || config === null) bad('config', 'must be an object');
  if (typeof config.name !== 'string' || config.name.trim() === '') bad('name', 'must be a non-empty source name');
  if (typeof config.port !== 'string' || config.port.trim() === '') bad('port', "must be the board's serial device path");
  if (!Array.isArray(config.sensors) || config.sensors.length === 0) bad('sensors', 'must list at least one sensor');
  positive(config.readyTimeoutMs, 'readyTimeoutMs');
  positive(config.silenceMs, 'silenceMs', true);
  positive(config.reconnect?.baseMs, 'reconnect.baseMs');
  positive(config.reconnect?.maxMs, 'reconnect.maxMs');
  const streams = new Set<string>();
  config.sensors.forEach((s, i) => {
    const f = (name: string): string => `sensors[${i}].${name}`;
    if (typeof s !== 'object' || s === null) bad(`sensors[${i}]`, 'must be an object');
    if (typeof s.stream !== 'string' || s.stream.trim() === '') bad(f('stream'), 'must be a non-empty stream name');
    if (streams.has(s.stream)) bad(f('stream'), `'${s.stream}' is configured twice`);
    streams.add(s.stream);
    positive(s.freqMs, f('freqMs'));
    if (s.kind === 'analog') {
      if (typeof s.pin !== 'string' || !ANALOG_PIN.test(s.pin)) bad(f('pin'), "must be an analog pin 'A0'..'A15'");
      const sc = s.scale;
      if (sc !== undefined && !(Array.isArray(sc) && sc.length === 2 && sc.every(isFiniteNumber) && sc[0] !== sc[1])) bad(f('scale'), 'must be [low, high], two different finite numbers');
      if (s.unit !== undefined && typeof s.unit !== 'string') bad(f('unit'), 'must be a string');
    } else if (s.kind === 'thermometer') {
      if (typeof s.controller !== 'string' || !PIN_THERMOMETERS.has(controllerName(s.controller))) bad(f('controller'), `must be one of ${[...PIN_THERMOMETERS].join(', ')} (I2C sensors use kind 'i2c')`);
      if (typeof s.pin !== 'string' || !ANY_PIN.test(s.pin)) bad(f('pin'), "must be a pin such as 'A0' or '2'");
    } else if (s.kind === 'i2c') {
      if (typeof s.controller !== 'string' || !I2C_CONTROLLERS.has(controllerName(s.controller))) bad(f('controller'), `must be one of ${[...I2C_CONTROLLERS].join(', ')}`);
      if (s.address !== undefined && !(Number.isInteger(s.address) && s.address >= 0x03 && s.address <= 0x77)) bad(f('address'), 'must be a 7-bit I2C address (0x03..0x77)');
    } else {
      bad(f('kind'), "must be 'analog', 'thermometer' or 'i2c'");
    }
  });
}

/** Runs `make` and returns the intervals it started (johnny-five components start some they never clear). */
function capturingIntervals<T>(make: () => T): { value: T; intervals: ReturnType<typeof setInterval>[] } {
  const original = globalThis.setInterval;
  const intervals: ReturnType<typeof setInterval>[] = [];
  const capture = (...args: Parameters<typeof setInterval>): ReturnType<typeof setInterval> => {
    const t = original(...args);
    intervals.push(t);
    return t;
  };
  globalThis.setInterval = capture as typeof setInterval;
  try {
    return { value: make(), intervals };
  } catch (err) {
    for (const t of intervals) clearInterval(t);
    throw err;
  } finally {
    globalThis.setInterval = original;
  }
}

/** The first line of an error or of a johnny-five log event (whose messages run to several lines of advice). */
function message(x: unknown): string {
  let m = String(x);
  if (x instanceof Error) m = x.message;
  else if (typeof x === 'object' && x !== null && 'message' in x && typeof x.message === 'string') m = x.message;
  return (m.split('\n')[0] ?? '').trim();
}

interface Attached {
  readonly component: FiveComponent;
  readonly intervals: ReturnType<typeof setInterval>[];
}

/** One connection attempt: a Board and everything built on it. */
interface Session {
  readonly board: FiveBoard;
  readonly components: Attached[];
  readyTimer: ReturnType<typeof setTimeout> | null;
  silenceTimer: ReturnType<typeof setInterval> | null;
  lastByteAt: number;
  dead: boolean;
}

const DEFAULT_FREQ_MS = 1000;

/** Readings from the sensors of one Firmata board; reconnects by itself. */
export class FirmataDriver extends DriverBase implements SensorDriver {
  private readonly config: FirmataConfig;
  private session: Session | null = null;
  private readonly reconnect: Reconnector;
  private started = false;
  private stopped = false;
  private sourcePaused = false;
  private five: FiveModule | null;
  private readonly onAbort = (): void => void this.stop();

  constructor(
    config: FirmataConfig,
    private readonly ctx: DriverContext,
    private readonly deps: FirmataDeps = {},
  ) {
    validateFirmataConfig(config);
    super(config.name, ctx, deps.highWater);
    this.config = structuredClone(config);
    this.five = deps.five ?? null;
    this.reconnect = this.reconnects(this.config.reconnect, () => this.connect(), { timers: deps.timers, random: deps.random });
  }

  async start(): Promise<void> {
    if (this.stopped) throw new SensorError('SENSOR_DRIVER_STOPPED', `firmata '${this.name}' was stopped: create a new driver`);
    if (this.started) return;
    this.started = true;
    if (this.ctx.signal?.aborted === true) return this.stop();
    this.ctx.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.connect();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ctx.signal?.removeEventListener('abort', this.onAbort);
    this.reconnect.stop();
    const s = this.session;
    this.session = null;
    if (s !== null) await this.teardown(s);
    this.setStatus({ state: 'stopped' });
    this.endReadings();
  }

  protected override pauseSource(): void {
    this.sourcePaused = true;
    for (const a of this.session?.components ?? []) a.component.disable?.();
  }

  protected override resumeSource(): void {
    this.sourcePaused = false;
    for (const a of this.session?.components ?? []) a.component.enable?.();
  }

  private loadFive(): FiveModule {
    if (this.five === null) this.five = createRequire(import.meta.url)('johnny-five') as FiveModule;
    return this.five;
  }

  private connect(): void {
    if (this.stopped) return;
    let board: FiveBoard;
    try {
      const five = this.loadFive();
      // johnny-five's own connect timeout is set past ours: ours fires first, with a clear reason.
      const common = { repl: false, debug: false, sigint: false, timeout: this.readyTimeoutMs() + 5000 };
      board = new five.Board(this.deps.createIo !== undefined ? { ...common, io: this.deps.createIo() } : { ...common, port: this.config.port });
    } catch (err) {
      this.retry(`board could not be created: ${message(err)}`);
      return;
    }
    const s: Session = { board, components: [], readyTimer: null, silenceTimer: null, lastByteAt: this.now(), dead: false };
    this.session = s;
    const lose = (why: string) => (arg: unknown) => this.lost(s, arg === undefined ? why : `${why}: ${message(arg)}`);
    board.on('ready', () => this.onReady(s));
    board.on('error', lose('error'));
    board.on('fail', lose('fail'));
    board.on('close', lose('port closed'));
    board.on('disconnect', lose('disconnected'));
    board.on('exit', lose('exit'));
    board.on('warn', (e) => this.log.warn('johnny-five warning', { detail: message(e) }));
    // Before 'ready' johnny-five does not pass the IO's close on: listen to the IO itself as well.
    board.io?.on('close', lose('port closed'));
    board.io?.on('disconnect', lose('disconnected'));
    board.io?.transport?.on?.('data', () => (s.lastByteAt = this.now()));
    s.readyTimer = setTimeout(() => this.lost(s, `no Firmata handshake within ${this.readyTimeoutMs()} ms`), this.readyTimeoutMs());
  }

  private readyTimeoutMs(): number {
    return this.config.readyTimeoutMs ?? 10_000;
  }

  private onReady(s: Session): void {
    if (s.dead || this.session !== s) return;
    if (s.readyTimer !== null) clearTimeout(s.readyTimer);
    s.readyTimer = null;
    const five = this.loadFive();
    for (const cfg of this.config.sensors) {
      try {
        s.components.push(this.attach(five, s.board, cfg));
      } catch (err) {
        // A pin or controller this board does not have: the other sensors still run.
        this.reject('sensor-setup', `${cfg.stream}: ${message(err)}`);
      }
    }
    if (this.sourcePaused) for (const a of s.components) a.component.disable?.();
    const silenceMs = this.config.silenceMs ?? 5000;
    if (silenceMs > 0 && s.board.io?.transport?.on !== undefined) {
      s.lastByteAt = this.now();
      s.silenceTimer = setInterval(() => {
        if (this.now() - s.lastByteAt > silenceMs) this.lost(s, `no data from the board for ${silenceMs} ms`);
      }, Math.min(1000, silenceMs));
    }
    this.reconnect.connected();
    this.log.info('firmata board ready', { port: this.config.port, sensors: s.components.length });
  }

  private attach(five: FiveModule, board: FiveBoard, cfg: FirmataSensorConfig): Attached {
    const freq = cfg.freqMs ?? DEFAULT_FREQ_MS;
    if (cfg.kind === 'analog') {
      const { value: c, intervals } = capturingIntervals(() => new five.Sensor({ pin: cfg.pin, freq, board }));
      c.on('data', (raw) => {
        if (!isFiniteNumber(raw)) return this.reject('not-finite', `${cfg.stream}: analog value ${String(raw)}`);
        const max = isFiniteNumber(c.resolution) && c.resolution > 0 ? c.resolution : 1023;
        const value = cfg.scale === undefined ? raw : cfg.scale[0] + ((cfg.scale[1] - cfg.scale[0]) * raw) / max;
        this.emitReading(cfg.unit === undefined ? { stream: cfg.stream, ts: this.now(), value } : { stream: cfg.stream, ts: this.now(), value, unit: cfg.unit });
      });
      return { component: c, intervals };
    }
    if (cfg.kind === 'thermometer') {
      const controller = controllerName(cfg.controller);
      const { value: c, intervals } = capturingIntervals(() => new five.Thermometer({ controller, pin: cfg.pin, freq, board }));
      c.on('data', () => {
        const t = c.celsius;
        if (!isFiniteNumber(t)) return this.reject('not-finite', `${cfg.stream}: temperature ${String(t)}`);
        this.emitReading({ stream: cfg.stream, ts: this.now(), value: t, unit: '°C' });
      });
      return { component: c, intervals };
    }
    const controller = controllerName(cfg.controller);
    const opts: Record<string, unknown> = { controller, freq, board };
    if (cfg.address !== undefined) opts.address = cfg.address;
    const { value: c, intervals } = capturingIntervals(() => new five.Multi(opts));
    c.on('data', () => {
      if (this.sourcePaused) return; // Multi cannot be disabled: drop samples while the consumer is behind
      const values: Record<string, number> = {};
      const put = (k: string, v: unknown): void => {
        if (isFiniteNumber(v)) values[k] = v;
      };
      put('temperature', c.thermometer?.celsius);
      put('pressure', c.barometer?.pressure);
      put('humidity', c.hygrometer?.relativeHumidity);
      put('altitude', c.altimeter?.meters);
      if (Object.keys(values).length === 0) return this.reject('not-finite', `${cfg.stream}: ${controller} gave no finite value`);
      this.emitReading({ stream: cfg.stream, ts: this.now(), values });
    });
    return { component: c, intervals };
  }

  /** The board of session `s` is gone: tear it down and schedule the next attempt. */
  private lost(s: Session, reason: string): void {
    if (s.dead || this.session !== s || this.stopped) return;
    this.session = null;
    void this.teardown(s);
    this.log.warn('firmata board lost', { port: this.config.port, reason });
    this.retry(reason);
  }

  private retry(reason: string): void {
    if (!this.stopped) this.reconnect.retry(reason);
  }

  /** Stops every timer, listener and the port of a session; johnny-five keeps boards in a cache: drop it there. */
  private async teardown(s: Session): Promise<void> {
    s.dead = true;
    if (s.readyTimer !== null) clearTimeout(s.readyTimer);
    if (s.silenceTimer !== null) clearInterval(s.silenceTimer);
    for (const a of s.components) {
      a.component.removeAllListeners('data');
      a.component.disable?.();
      for (const t of a.intervals) clearInterval(t);
    }
    const { board } = s;
    if (board.timer !== undefined && board.timer !== null) clearTimeout(board.timer);
    board.removeAllListeners();
    // Late errors of a dead board must not become uncaught 'error' events.
    board.on('error', () => {});
    const io = board.io;
    if (io !== null) {
      io.removeAllListeners('close');
      io.removeAllListeners('disconnect');
      io.on('error', () => {});
      if (io.reportVersionTimeoutId !== undefined) clearTimeout(io.reportVersionTimeoutId);
      const t = io.transport;
      if (t?.isOpen === true && t.close !== undefined) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          try {
            t.close?.(() => {
              clearTimeout(timer);
              resolve();
            });
          } catch {
            clearTimeout(timer);
            resolve();
          }
        });
      }
    }
    const cache = this.five?.Board.cache;
    const i = cache?.indexOf(board) ?? -1;
    if (cache !== undefined && i >= 0) cache.splice(i, 1);
  }
}

// A line-protocol sensor on a serial port (USB-serial adapter, UART): bytes -> LineFramer -> line parser ->
// Readings. It survives unplugging: on a disconnect it reports 'retrying' and reopens the same path with capped
// exponential backoff, forever, without a process restart. It pauses the port while the consumer is behind.
// The port is a small interface (SerialPortLike); production opens serialport's SerialPort, tests inject
// serialport's own SerialPortMock or a script. Input never throws: bad lines become counted rejections.
import { DriverBase } from './base.ts';
import type { DriverContext, SensorDriver } from './driver.ts';
import { createLineParser } from './formats.ts';
import type { LineFormatConfig, LineParser } from './formats.ts';
import { LineFramer } from './line-framer.ts';
import { SensorError } from './reading.ts';
import { systemTimeoutTimers, type Reconnector, type TimeoutTimers } from './reconnect.ts';
import { excerpt } from './values.ts';

export interface SerialLineConfig {
  /** Source name (log and status). */
  name: string;
  /** Device path. Prefer /dev/serial/by-id/...: it names the adapter and survives replugging, ttyUSB0 does not. */
  path: string;
  baudRate: number;
  /** Default 'none'. */
  parity?: 'none' | 'even' | 'odd';
  /** Default 8. */
  dataBits?: 5 | 6 | 7 | 8;
  /** Default 1. */
  stopBits?: 1 | 2;
  format: LineFormatConfig;
  /** Longest line kept, in bytes; longer ones are dropped and counted as 'line-too-long'. Default 4096. */
  maxLineBytes?: number;
  /** Reopen delays: baseMs * 2^attempt with jitter, capped at maxMs. Defaults 500 and 30000. */
  reconnect?: { baseMs?: number; maxMs?: number };
}

/** What the driver asks a port factory to open (serialport's SerialPort options). */
export interface SerialOpenOptions {
  readonly path: string;
  readonly baudRate: number;
  readonly dataBits: 5 | 6 | 7 | 8;
  readonly parity: 'none' | 'even' | 'odd';
  readonly stopBits: 1 | 2;
  readonly autoOpen: false;
}

type ErrorCallback = (err: Error | null) => void;

/** The part of serialport's SerialPort (a Readable stream) this driver uses. */
export interface SerialPortLike {
  readonly isOpen: boolean;
  open(callback: ErrorCallback): void;
  close(callback?: ErrorCallback): void;
  pause(): unknown;
  resume(): unknown;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  /** After a disconnect, `err` is serialport's DisconnectedError (`err.disconnected === true`). */
  on(event: 'close', listener: (err?: Error | null) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  removeListener(event: 'close', listener: (err?: Error | null) => void): unknown;
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
}

export type SerialPortFactory = (opts: SerialOpenOptions) => SerialPortLike;

export { systemTimeoutTimers, type TimeoutTimers };

export interface SerialLineOptions {
  /** Default: serialport's SerialPort (its native binding is loaded on start()). */
  readonly openPort?: SerialPortFactory;
  /** Default: the real setTimeout. */
  readonly timers?: TimeoutTimers;
  /** Jitter source of the backoff, [0, 1); default Math.random. */
  readonly random?: () => number;
  /** Readings buffered before the port is paused (default 1024). */
  readonly highWater?: number;
}

const BAUD_MAX = 4_000_000;
const LINE_MAX = 1 << 20;

/** Checks a serial source config (not its format, see createLineParser); throws SensorError 'SENSOR_CONFIG_INVALID' naming the field. */
export function validateSerialConfig(config: SerialLineConfig): void {
  const bad = (field: string, msg: string): never => {
    throw new SensorError('SENSOR_CONFIG_INVALID', `serial source: '${field}' ${msg}`, { field });
  };
  if (typeof config !== 'object' || config === null) bad('config', 'must be an object');
  if (typeof config.name !== 'string' || config.name.trim() === '') bad('name', 'must be a non-empty source name');
  if (typeof config.path !== 'string' || config.path.trim() === '') bad('path', 'must be a device path, e.g. /dev/serial/by-id/usb-FTDI_...-if00-port0');
  if (!Number.isInteger(config.baudRate) || config.baudRate < 1 || config.baudRate > BAUD_MAX) bad('baudRate', `must be an integer in 1..${BAUD_MAX} (e.g. 9600, 115200), got ${String(config.baudRate)}`);
  if (config.parity !== undefined && !['none', 'even', 'odd'].includes(config.parity)) bad('parity', "must be 'none', 'even' or 'odd'");
  if (config.dataBits !== undefined && ![5, 6, 7, 8].includes(config.dataBits)) bad('dataBits', 'must be 5, 6, 7 or 8');
  if (config.stopBits !== undefined && ![1, 2].includes(config.stopBits)) bad('stopBits', 'must be 1 or 2');
  const m = config.maxLineBytes;
  if (m !== undefined && !(Number.isInteger(m) && m >= 16 && m <= LINE_MAX)) bad('maxLineBytes', `must be an integer in 16..${LINE_MAX}`);
  const r = config.reconnect ?? {};
  if (typeof r !== 'object' || r === null) bad('reconnect', 'must be an object {baseMs?, maxMs?}');
  for (const k of ['baseMs', 'maxMs'] as const) {
    const v = r[k];
    if (v !== undefined && !(Number.isFinite(v) && v >= 1)) bad(`reconnect.${k}`, 'must be a number of milliseconds >= 1');
  }
  if ((r.baseMs ?? 500) > (r.maxMs ?? 30_000)) bad('reconnect.maxMs', 'must not be less than reconnect.baseMs');
}

/**
 * Why an open failed, in words that say what to do; `fatal` when retrying cannot help (settings the port or
 * the OS refuses, such as an unsupported baud rate): the driver then stops with status 'failed'.
 */
export function classifyOpenError(err: unknown): { fatal: boolean; reason: string } {
  // The native binding prefixes its messages with 'Error: '.
  const m = (err instanceof Error ? err.message : String(err)).replace(/^Error:? */, '');
  if (err instanceof TypeError || /baud ?rate|invalid (data bits|parity|stop bits)/i.test(m)) {
    return { fatal: true, reason: `port settings refused: ${m} (check baudRate, dataBits, parity and stopBits)` };
  }
  if (/no such file|ENOENT/i.test(m)) return { fatal: false, reason: `not present: ${m} (unplugged? /dev/serial/by-id/ names survive replugging)` };
  if (/permission denied|EACCES/i.test(m)) return { fatal: false, reason: `${m} (add the datagate user to the 'dialout' group)` };
  if (/lock|EBUSY|resource temporarily/i.test(m)) return { fatal: false, reason: `${m} (another program holds the port)` };
  return { fatal: false, reason: `open failed: ${m}` };
}

/** One open (or opening) port and the line state that belongs to it. */
interface Connection {
  readonly port: SerialPortLike;
  readonly framer: LineFramer;
  readonly onData: (chunk: Uint8Array) => void;
  readonly onClose: (err?: Error | null) => void;
  readonly onError: (err: Error) => void;
  /** Resolves when the open callback has run (either way). */
  readonly settled: Promise<void>;
}

const noop = (): void => {};

/** Readings from a line-protocol device on a serial port; see the file comment. */
export class SerialLineDriver extends DriverBase implements SensorDriver {
  private readonly config: SerialLineConfig;
  private readonly parse: LineParser;
  private readonly openOptions: SerialOpenOptions;
  private readonly maxLineBytes: number;
  private readonly reconnect: Reconnector;
  private openPort: SerialPortFactory | undefined;
  private conn: Connection | null = null;
  /** Reason of the retry logged at warn level last; null while connected. */
  private warnedReason: string | null = null;
  private sourcePaused = false;
  private started = false;
  private stopped = false;
  private readonly onAbort = (): void => void this.stop();

  /** Throws SensorError 'SENSOR_CONFIG_INVALID' for a bad config or format; never afterwards. */
  constructor(
    config: SerialLineConfig,
    private readonly ctx: DriverContext,
    opts: SerialLineOptions = {},
  ) {
    validateSerialConfig(config);
    const parse = createLineParser(config.format);
    super(config.name, ctx, opts.highWater);
    this.config = { ...config, reconnect: { ...config.reconnect } };
    this.parse = parse;
    this.maxLineBytes = config.maxLineBytes ?? 4096;
    this.openOptions = {
      path: config.path,
      baudRate: config.baudRate,
      dataBits: config.dataBits ?? 8,
      parity: config.parity ?? 'none',
      stopBits: config.stopBits ?? 1,
      autoOpen: false,
    };
    this.openPort = opts.openPort;
    this.reconnect = this.reconnects(this.config.reconnect, () => this.connect(), { timers: opts.timers, random: opts.random });
    if (/^\/dev\/tty(USB|ACM)\d+$/.test(config.path)) {
      this.log.warn('serial path may name another adapter after a replug or reboot; prefer /dev/serial/by-id/...', { path: config.path });
    }
  }

  /** Opens the port; resolves after the first attempt (status 'connected', 'retrying' or 'failed'). */
  async start(): Promise<void> {
    if (this.stopped) throw new SensorError('SENSOR_DRIVER_STOPPED', `serial source '${this.name}' was stopped: create a new driver`);
    if (this.started) return;
    this.started = true;
    if (this.ctx.signal?.aborted === true) return this.stop();
    this.ctx.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (this.openPort === undefined) {
      try {
        const { SerialPort } = await import('serialport');
        this.openPort = (o) => new SerialPort(o);
      } catch (err) {
        const reason = `serialport's native binding did not load: ${err instanceof Error ? err.message : String(err)} (reinstall with npm_config_nodedir=/usr npm ci)`;
        this.log.error('serial source failed', { reason });
        this.reconnect.fail(reason);
        return;
      }
      if (this.stopped) return;
    }
    const first = new Promise<void>((resolve) => this.once('status', () => resolve()));
    this.connect();
    await first;
  }

  /** Closes the port (waiting for an open in progress) and ends readings(). Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ctx.signal?.removeEventListener('abort', this.onAbort);
    this.reconnect.stop();
    const c = this.conn;
    this.conn = null;
    if (c !== null) {
      this.detach(c);
      await c.settled;
      if (c.port.isOpen) await new Promise<void>((resolve) => c.port.close(() => resolve()));
    }
    this.setStatus({ state: 'stopped' });
    this.endReadings();
    this.log.info('serial source stopped', { path: this.config.path });
  }

  protected override pauseSource(): void {
    this.sourcePaused = true;
    this.conn?.port.pause();
  }

  protected override resumeSource(): void {
    this.sourcePaused = false;
    this.conn?.port.resume();
  }

  /** One open attempt; every outcome ends in a status change. */
  private connect(): void {
    if (this.stopped || this.openPort === undefined) return;
    let port: SerialPortLike;
    try {
      port = this.openPort(this.openOptions);
    } catch (err) {
      this.openFailed(err);
      return;
    }
    let settle = noop;
    const c: Connection = {
      port,
      framer: new LineFramer(this.maxLineBytes),
      onData: (chunk) => this.onData(c, chunk),
      onClose: (err) => this.lost(c, err ? `disconnected: ${err.message}` : 'port closed'),
      onError: (err) => this.lost(c, `port error: ${err.message}`),
      settled: new Promise<void>((resolve) => (settle = resolve)),
    };
    this.conn = c;
    port.on('error', c.onError);
    port.on('close', c.onClose);
    port.on('data', c.onData);
    if (this.sourcePaused) port.pause();
    const opened = (err: Error | null): void => {
      settle();
      if (this.conn !== c) {
        // Stopped (stop() closes it) or lost while opening: close what opened too late to be used.
        if (!err && !this.stopped && port.isOpen) port.close(noop);
        return;
      }
      if (err) {
        this.conn = null;
        this.detach(c);
        this.openFailed(err);
        return;
      }
      this.warnedReason = null;
      this.log.info('serial port open', { path: this.config.path, baudRate: this.config.baudRate });
      this.reconnect.connected();
    };
    try {
      port.open(opened);
    } catch (err) {
      opened(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private onData(c: Connection, chunk: Uint8Array): void {
    if (this.conn !== c) return;
    try {
      const now = this.now();
      const framed = c.framer.push(chunk);
      for (let i = 0; i < framed.oversize; i++) this.reject('line-too-long', `line longer than ${this.maxLineBytes} bytes dropped`);
      for (let i = 0; i < framed.undecodable; i++) this.reject('bad-encoding', 'line is not valid UTF-8');
      for (const line of framed.lines) {
        const r = this.parse(line, now);
        if (r.ok) for (const reading of r.readings) this.emitReading(reading);
        else this.reject(r.reason, r.detail);
      }
    } catch (err) {
      // The framer and parser promise not to throw; if one does, count it rather than kill the process.
      this.log.error('serial input handling threw', { err: err instanceof Error ? err.stack : String(err) });
      this.reject('internal-error', err instanceof Error ? err.message : String(err));
    }
  }

  /** The port went away (unplug, I/O error): drop it and schedule a reopen. */
  private lost(c: Connection, reason: string): void {
    if (this.conn !== c) return;
    this.conn = null;
    this.detach(c);
    if (c.port.isOpen) c.port.close(noop);
    this.scheduleRetry(reason);
  }

  private openFailed(err: unknown): void {
    const { fatal, reason } = classifyOpenError(err);
    if (fatal) {
      this.log.error('serial source failed', { path: this.config.path, reason });
      this.reconnect.fail(reason);
      return;
    }
    this.scheduleRetry(reason);
  }

  private scheduleRetry(reason: string): void {
    const next = this.reconnect.retry(reason);
    if (next === null) return;
    // An absent device must show in the log, but not once per attempt for as long as it stays absent: a new
    // reason (the first failure, an unplug, another error) is a warning, the same reason again is debug.
    const fields = { path: this.config.path, reason, attempt: next.attempt, retryInMs: next.delayMs };
    if (reason === this.warnedReason) this.log.debug('serial port still unavailable; retrying', fields);
    else this.log.warn('serial port unavailable; retrying', fields);
    this.warnedReason = reason;
  }

  /** Stops listening to a port and counts its unfinished line; a late 'error' from it is swallowed. */
  private detach(c: Connection): void {
    c.port.removeListener('data', c.onData);
    c.port.removeListener('close', c.onClose);
    c.port.removeListener('error', c.onError);
    c.port.on('error', noop);
    const tail = c.framer.flush();
    if (tail !== null && tail !== '') this.reject('truncated-line', `unterminated line at disconnect: ${excerpt(tail)}`);
  }
}

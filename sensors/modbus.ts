// Modbus RTU polling over a serial port (RS-485 adapter): register maps from the config become Readings.
// One bus, one request at a time: a scheduler picks the device that is due first, reads its registers in as few
// requests as contiguity allows, and decodes them (int16/uint16/int32/uint32/float32 in either word order, bits).
// A request that fails (timeout, exception response, bad CRC) is counted as a reject and backs off: a silent
// device is skipped with capped exponential backoff, so a dead slave costs the bus one timeout per backoff
// period instead of one per poll; a failing request range backs off the same way. When the port itself goes
// (unplug, EIO) it is reopened with backoff. The master is a small port (`ModbusMaster`); production uses
// modbus-serial, loaded lazily so importing sensors/ never loads serialport.
import { createRequire } from 'node:module';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import { DriverBase } from './base.ts';
import type { DriverContext, SensorDriver } from './driver.ts';
import { SensorError, isFiniteNumber } from './reading.ts';
import type { Reconnector, TimeoutTimers } from './reconnect.ts';

export type ModbusTable = 'holding' | 'input' | 'coil' | 'discrete';
export type ModbusValueType = 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'bool';

export interface ModbusRegisterConfig {
  stream: string;
  table: ModbusTable;
  /** Protocol address (0-based), as sent on the wire. */
  address: number;
  /** 'bool' for coils and discrete inputs, a numeric type for holding and input registers. */
  type: ModbusValueType;
  /** For 32-bit types: 'big' = high word at `address` (default), 'little' = low word first. */
  wordOrder?: 'big' | 'little';
  /** value = raw * scale + offset; defaults 1 and 0. */
  scale?: number;
  offset?: number;
  unit?: string;
}

export interface ModbusDeviceConfig {
  /** Slave address 1..247. */
  unitId: number;
  pollMs: number;
  registers: ModbusRegisterConfig[];
}

export interface ModbusRtuConfig {
  name: string;
  /** Serial device, e.g. '/dev/ttyUSB0'. */
  path: string;
  baudRate: number;
  parity?: 'none' | 'even' | 'odd' | 'mark' | 'space';
  dataBits?: 5 | 6 | 7 | 8;
  stopBits?: 1 | 1.5 | 2;
  /** Per request; default 500. */
  timeoutMs?: number;
  devices: ModbusDeviceConfig[];
  /** Upper bound of the skip after failed requests; default 30000. */
  maxBackoffMs?: number;
  /** Port reopen backoff: base * 2^attempt with jitter, capped; defaults 500 and 30000 ms. */
  reconnect?: { baseMs?: number; maxMs?: number };
}

/** Why a request failed. 'port' means the port is gone (reopen), the others are counted rejects. */
export type ModbusFailure = 'timeout' | 'exception' | 'crc' | 'bad-frame' | 'port';

/** A failed Modbus request, as the master port reports it. */
export class ModbusRequestError extends Error {
  constructor(
    readonly kind: ModbusFailure,
    message: string,
    /** The exception code of an exception response (1 illegal function, 2 illegal address, ...). */
    readonly exceptionCode?: number,
  ) {
    super(message);
    this.name = 'ModbusRequestError';
  }
}

/** The Modbus RTU master a driver needs: one open port. */
export interface ModbusMaster {
  /** Reads `count` registers (words) or bits (as 0/1); rejects with a ModbusRequestError. */
  read(unitId: number, table: ModbusTable, address: number, count: number, timeoutMs: number): Promise<number[]>;
  close(): Promise<void>;
  /** Called once when the port closes or fails by itself (unplug). */
  onLost(listener: (reason: string) => void): void;
}

export type ModbusPortOptions = Pick<ModbusRtuConfig, 'path' | 'baudRate' | 'parity' | 'dataBits' | 'stopBits'>;

/** Opens the port; rejects when it cannot be opened. */
export type ModbusOpener = (opts: ModbusPortOptions) => Promise<ModbusMaster>;

function classify(err: unknown): ModbusRequestError {
  if (err instanceof ModbusRequestError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as { message?: unknown; errno?: unknown; modbusCode?: unknown; name?: unknown };
  const msg = typeof e.message === 'string' ? e.message : String(err);
  if (e.errno === 'ETIMEDOUT' || msg === 'Timed out') return new ModbusRequestError('timeout', msg);
  if (typeof e.modbusCode === 'number') return new ModbusRequestError('exception', msg, e.modbusCode);
  if (msg === 'CRC error') return new ModbusRequestError('crc', msg);
  if (e.name === 'PortNotOpenError' || msg === 'Port Not Open') return new ModbusRequestError('port', msg);
  return new ModbusRequestError('bad-frame', msg);
}

/** The production master: modbus-serial's buffered RTU client on serialport. */
export const modbusSerialOpener: ModbusOpener = async (opts) => {
  const Client = createRequire(import.meta.url)('modbus-serial') as typeof ModbusRTU;
  const client = new Client();
  const serial: Record<string, unknown> = { baudRate: opts.baudRate };
  if (opts.parity !== undefined) serial.parity = opts.parity;
  if (opts.dataBits !== undefined) serial.dataBits = opts.dataBits;
  if (opts.stopBits !== undefined) serial.stopBits = opts.stopBits;
  await client.connectRTUBuffered(opts.path, serial);
  let lostListener: ((reason: string) => void) | null = null;
  let lost = false;
  const lose = (reason: string): void => {
    if (lost) return;
    lost = true;
    lostListener?.(reason);
  };
  client.on('close', () => lose('port closed'));
  client.on('error', (e) => lose(`port error: ${e instanceof Error ? e.message : String(e)}`));
  return {
    async read(unitId, table, address, count, timeoutMs) {
      // A late answer to an earlier, timed-out request could match this one: drop what the client buffered.
      const port = (client as unknown as { _port?: { _buffer?: unknown } })._port;
      if (port !== undefined && Buffer.isBuffer(port._buffer)) port._buffer = Buffer.alloc(0);
      client.setID(unitId);
      client.setTimeout(timeoutMs);
      try {
        if (table === 'holding') return (await client.readHoldingRegisters(address, count)).data;
        if (table === 'input') return (await client.readInputRegisters(address, count)).data;
        const bits = table === 'coil' ? await client.readCoils(address, count) : await client.readDiscreteInputs(address, count);
        return bits.data.slice(0, count).map((b) => (b ? 1 : 0));
      } catch (err) {
        throw classify(err);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        lost = true;
        if (!client.isOpen) return resolve();
        client.close(() => resolve());
      }),
    onLost(listener) {
      lostListener = listener;
    },
  };
};

const WORDS: Record<ModbusValueType, number> = { int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, bool: 1 };
/** Largest reads the protocol allows in one request. */
const MAX_REGISTERS = 125;
const MAX_BITS = 2000;

/** Decodes one value from the words (or bits) of a read; raw, before scale and offset. */
export function decodeModbusValue(type: ModbusValueType, words: readonly number[], wordOrder: 'big' | 'little' = 'big'): number {
  const w0 = words[0] ?? 0;
  if (type === 'bool') return w0 !== 0 ? 1 : 0;
  if (type === 'uint16') return w0 & 0xffff;
  if (type === 'int16') return ((w0 & 0xffff) << 16) >> 16;
  const [hi, lo] = wordOrder === 'big' ? [w0, words[1] ?? 0] : [words[1] ?? 0, w0];
  const buf = Buffer.alloc(4);
  buf.writeUInt16BE(hi & 0xffff, 0);
  buf.writeUInt16BE(lo & 0xffff, 2);
  if (type === 'uint32') return buf.readUInt32BE(0);
  if (type === 'int32') return buf.readInt32BE(0);
  return buf.readFloatBE(0);
}

/** One request: a contiguous range of one table and the registers decoded from it. */
export interface ModbusBatch {
  readonly table: ModbusTable;
  readonly address: number;
  readonly count: number;
  readonly registers: readonly ModbusRegisterConfig[];
}

/** Groups a device's registers into the fewest contiguous reads (overlaps allowed, no gaps, protocol limits kept). */
export function planModbusBatches(registers: readonly ModbusRegisterConfig[]): ModbusBatch[] {
  const out: ModbusBatch[] = [];
  for (const table of ['holding', 'input', 'coil', 'discrete'] as const) {
    const max = table === 'coil' || table === 'discrete' ? MAX_BITS : MAX_REGISTERS;
    const regs = registers.filter((r) => r.table === table).sort((a, b) => a.address - b.address || WORDS[b.type] - WORDS[a.type]);
    let cur: { address: number; end: number; registers: ModbusRegisterConfig[] } | null = null;
    for (const r of regs) {
      const end = r.address + WORDS[r.type];
      if (cur !== null && r.address <= cur.end && Math.max(cur.end, end) - cur.address <= max) {
        cur.end = Math.max(cur.end, end);
        cur.registers.push(r);
        continue;
      }
      if (cur !== null) out.push({ table, address: cur.address, count: cur.end - cur.address, registers: cur.registers });
      cur = { address: r.address, end, registers: [r] };
    }
    if (cur !== null) out.push({ table, address: cur.address, count: cur.end - cur.address, registers: cur.registers });
  }
  return out;
}

/** Checks a Modbus RTU config; throws SensorError 'SENSOR_CONFIG_INVALID' naming the bad field. */
export function validateModbusConfig(config: ModbusRtuConfig): void {
  const bad = (field: string, msg: string): never => {
    throw new SensorError('SENSOR_CONFIG_INVALID', `modbus: '${field}' ${msg}`, { field });
  };
  const positive = (v: unknown, field: string): void => {
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0)) bad(field, 'must be a positive number of ms');
  };
  if (typeof config !== 'object' || config === null) bad('config', 'must be an object');
  if (typeof config.name !== 'string' || config.name.trim() === '') bad('name', 'must be a non-empty source name');
  if (typeof config.path !== 'string' || config.path.trim() === '') bad('path', 'must be the serial device path');
  if (!(Number.isInteger(config.baudRate) && config.baudRate > 0)) bad('baudRate', 'must be a positive integer (e.g. 9600)');
  if (config.parity !== undefined && !['none', 'even', 'odd', 'mark', 'space'].includes(config.parity)) bad('parity', "must be 'none', 'even', 'odd', 'mark' or 'space'");
  if (config.dataBits !== undefined && ![5, 6, 7, 8].includes(config.dataBits)) bad('dataBits', 'must be 5, 6, 7 or 8');
  if (config.stopBits !== undefined && ![1, 1.5, 2].includes(config.stopBits)) bad('stopBits', 'must be 1, 1.5 or 2');
  positive(config.timeoutMs, 'timeoutMs');
  positive(config.maxBackoffMs, 'maxBackoffMs');
  positive(config.reconnect?.baseMs, 'reconnect.baseMs');
  positive(config.reconnect?.maxMs, 'reconnect.maxMs');
  if (!Array.isArray(config.devices) || config.devices.length === 0) bad('devices', 'must list at least one device');
  const streams = new Set<string>();
  const units = new Set<number>();
  config.devices.forEach((d, i) => {
    const f = (name: string): string => `devices[${i}].${name}`;
    if (typeof d !== 'object' || d === null) bad(`devices[${i}]`, 'must be an object');
    if (!(Number.isInteger(d.unitId) && d.unitId >= 1 && d.unitId <= 247)) bad(f('unitId'), 'must be a slave address 1..247');
    if (units.has(d.unitId)) bad(f('unitId'), `${d.unitId} is configured twice: put all its registers in one device`);
    units.add(d.unitId);
    if (!(typeof d.pollMs === 'number' && Number.isFinite(d.pollMs) && d.pollMs >= 10)) bad(f('pollMs'), 'must be a number of ms >= 10');
    if (!Array.isArray(d.registers) || d.registers.length === 0) bad(f('registers'), 'must list at least one register');
    d.registers.forEach((r, j) => {
      const g = (name: string): string => `devices[${i}].registers[${j}].${name}`;
      if (typeof r !== 'object' || r === null) bad(`devices[${i}].registers[${j}]`, 'must be an object');
      if (typeof r.stream !== 'string' || r.stream.trim() === '') bad(g('stream'), 'must be a non-empty stream name');
      if (streams.has(r.stream)) bad(g('stream'), `'${r.stream}' is configured twice`);
      streams.add(r.stream);
      if (!['holding', 'input', 'coil', 'discrete'].includes(r.table)) bad(g('table'), "must be 'holding', 'input', 'coil' or 'discrete'");
      if (!Object.hasOwn(WORDS, r.type)) bad(g('type'), "must be 'int16', 'uint16', 'int32', 'uint32', 'float32' or 'bool'");
      const bits = r.table === 'coil' || r.table === 'discrete';
      if (bits !== (r.type === 'bool')) bad(g('type'), bits ? `must be 'bool' for table '${r.table}'` : `'bool' is only for coils and discrete inputs`);
      if (!(Number.isInteger(r.address) && r.address >= 0 && r.address + WORDS[r.type] - 1 <= 0xffff)) bad(g('address'), 'must be an integer 0..65535 (0-based protocol address)');
      if (r.wordOrder !== undefined && !(WORDS[r.type] === 2 && ['big', 'little'].includes(r.wordOrder))) bad(g('wordOrder'), "must be 'big' or 'little', and only for 32-bit types");
      if (r.scale !== undefined && !isFiniteNumber(r.scale)) bad(g('scale'), 'must be a finite number');
      if (r.offset !== undefined && !isFiniteNumber(r.offset)) bad(g('offset'), 'must be a finite number');
      if (r.unit !== undefined && typeof r.unit !== 'string') bad(g('unit'), 'must be a string');
    });
  });
}

/** Backoff of a device or a batch after consecutive failures. */
interface Backoff {
  failures: number;
  until: number;
}

interface DeviceState {
  readonly cfg: ModbusDeviceConfig;
  readonly batches: { readonly batch: ModbusBatch; readonly backoff: Backoff }[];
  readonly backoff: Backoff;
  nextDueAt: number;
}

export interface ModbusDeps {
  /** Default: modbus-serial (`modbusSerialOpener`). */
  readonly open?: ModbusOpener;
  /** Readings buffered before polling pauses (default 1024). */
  readonly highWater?: number;
  /** Timers of the port reopen; default the real setTimeout. */
  readonly timers?: TimeoutTimers;
  /** Jitter source of the reopen backoff, [0, 1); default Math.random. */
  readonly random?: () => number;
}

/** Polls the devices of one Modbus RTU bus; reopens the port by itself. */
export class ModbusRtuDriver extends DriverBase implements SensorDriver {
  private readonly config: ModbusRtuConfig;
  private readonly devices: DeviceState[];
  private readonly open: ModbusOpener;
  private master: ModbusMaster | null = null;
  private loop: Promise<void> | null = null;
  private readonly reconnect: Reconnector;
  private started = false;
  private stopped = false;
  private sourcePaused = false;
  private wakeUp: (() => void) | null = null;
  private readonly onAbort = (): void => void this.stop();

  constructor(
    config: ModbusRtuConfig,
    private readonly ctx: DriverContext,
    deps: ModbusDeps = {},
  ) {
    validateModbusConfig(config);
    super(config.name, ctx, deps.highWater);
    this.config = structuredClone(config);
    this.open = deps.open ?? modbusSerialOpener;
    this.reconnect = this.reconnects(this.config.reconnect, () => void this.connect(), { timers: deps.timers, random: deps.random });
    this.devices = this.config.devices.map((cfg) => ({
      cfg,
      batches: planModbusBatches(cfg.registers).map((batch) => ({ batch, backoff: { failures: 0, until: 0 } })),
      backoff: { failures: 0, until: 0 },
      nextDueAt: 0,
    }));
  }

  /** The requests each device is polled with (for `sensors show` and tests). */
  plan(): { unitId: number; batches: ModbusBatch[] }[] {
    return this.devices.map((d) => ({ unitId: d.cfg.unitId, batches: d.batches.map((b) => b.batch) }));
  }

  async start(): Promise<void> {
    if (this.stopped) throw new SensorError('SENSOR_DRIVER_STOPPED', `modbus '${this.name}' was stopped: create a new driver`);
    if (this.started) return;
    this.started = true;
    if (this.ctx.signal?.aborted === true) return this.stop();
    this.ctx.signal?.addEventListener('abort', this.onAbort, { once: true });
    void this.connect();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ctx.signal?.removeEventListener('abort', this.onAbort);
    this.reconnect.stop();
    this.wake();
    const m = this.master;
    this.master = null;
    await m?.close();
    await this.loop;
    this.setStatus({ state: 'stopped' });
    this.endReadings();
  }

  protected override pauseSource(): void {
    this.sourcePaused = true;
  }

  protected override resumeSource(): void {
    this.sourcePaused = false;
    this.wake();
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /** Sleeps until `ms` pass or something wakes the loop (stop, resume, port lost). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let master: ModbusMaster;
    try {
      master = await this.open({ path: this.config.path, baudRate: this.config.baudRate, parity: this.config.parity, dataBits: this.config.dataBits, stopBits: this.config.stopBits });
    } catch (err) {
      this.retry(`cannot open ${this.config.path}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (this.stopped) {
      await master.close();
      return;
    }
    this.master = master;
    master.onLost((reason) => this.lost(master, reason));
    this.reconnect.connected();
    this.log.info('modbus port open', { path: this.config.path, devices: this.devices.map((d) => d.cfg.unitId) });
    const now = this.now();
    for (const d of this.devices) d.nextDueAt = Math.max(d.nextDueAt, now);
    this.loop = this.run(master);
  }

  private lost(master: ModbusMaster, reason: string): void {
    if (this.master !== master || this.stopped) return;
    this.master = null;
    this.wake();
    void master.close();
    this.log.warn('modbus port lost', { path: this.config.path, reason });
    this.retry(reason);
  }

  private retry(reason: string): void {
    if (!this.stopped) this.reconnect.retry(reason);
  }

  private dueAt(d: DeviceState): number {
    return Math.max(d.nextDueAt, d.backoff.until);
  }

  /** The bus loop of one open port: poll whichever device is due first, one request at a time. */
  private async run(master: ModbusMaster): Promise<void> {
    while (!this.stopped && this.master === master) {
      if (this.sourcePaused) {
        await this.sleep(1000);
        continue;
      }
      let next: DeviceState | undefined;
      for (const d of this.devices) if (next === undefined || this.dueAt(d) < this.dueAt(next)) next = d;
      if (next === undefined) return;
      const wait = this.dueAt(next) - this.now();
      if (wait > 0) {
        await this.sleep(wait);
        continue;
      }
      await this.poll(master, next);
      // Keep the rate: the next poll is one period after this one was due, never in a burst to catch up.
      next.nextDueAt = Math.max(next.nextDueAt + next.cfg.pollMs, this.now());
    }
  }

  private async poll(master: ModbusMaster, d: DeviceState): Promise<void> {
    const timeoutMs = this.config.timeoutMs ?? 500;
    let answered = false;
    for (const b of d.batches) {
      if (b.backoff.until > this.now()) continue;
      const { table, address, count } = b.batch;
      let data: number[];
      try {
        data = await guard(master.read(d.cfg.unitId, table, address, count, timeoutMs), timeoutMs + 1000);
      } catch (err) {
        if (this.stopped || this.master !== master) return;
        const e = classify(err);
        if (e.kind === 'port') return this.lost(master, e.message);
        const where = `unit ${d.cfg.unitId} ${table} ${address}+${count}`;
        if (e.kind === 'timeout') {
          this.reject('timeout', `${where}: no answer within ${timeoutMs} ms`);
          // The device does not answer: skip it (all its ranges) for a while so the others keep their rate.
          this.backOff(d.backoff, d.cfg.pollMs);
          return;
        }
        answered = true;
        this.reject(e.kind === 'exception' ? `exception-${e.exceptionCode ?? 0}` : e.kind, `${where}: ${e.message}`);
        this.backOff(b.backoff, d.cfg.pollMs);
        continue;
      }
      answered = true;
      b.backoff.failures = 0;
      b.backoff.until = 0;
      this.emitBatch(b.batch, data);
    }
    if (answered) {
      d.backoff.failures = 0;
      d.backoff.until = 0;
    }
  }

  private backOff(b: Backoff, pollMs: number): void {
    b.failures++;
    const skip = Math.min(this.config.maxBackoffMs ?? 30_000, pollMs * 2 ** Math.min(b.failures, 20));
    b.until = this.now() + skip;
  }

  private emitBatch(batch: ModbusBatch, data: readonly number[]): void {
    const ts = this.now();
    if (data.length < batch.count) {
      this.reject('bad-frame', `${batch.table} ${batch.address}+${batch.count}: ${data.length} values in the answer`);
      return;
    }
    for (const r of batch.registers) {
      const at = r.address - batch.address;
      const raw = decodeModbusValue(r.type, data.slice(at, at + WORDS[r.type]), r.wordOrder);
      const value = raw * (r.scale ?? 1) + (r.offset ?? 0);
      if (!Number.isFinite(value)) {
        this.reject('not-finite', `${r.stream}: ${r.type} at ${r.table} ${r.address} decodes to ${raw}`);
        continue;
      }
      this.emitReading(r.unit === undefined ? { stream: r.stream, ts, value } : { stream: r.stream, ts, value, unit: r.unit });
    }
  }
}

/** Rejects with a timeout if `p` does not settle in `ms` (a master that never calls back must not stall the bus). */
function guard<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new ModbusRequestError('timeout', `no callback within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

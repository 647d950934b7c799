// ModbusRtuDriver over a real serial port: modbus-serial + serialport open one end of a socat PTY pair, a small
// Modbus RTU slave (function codes 1-4, CRC, exception responses, optional dead unit ids) answers on the other.
// Checks decoding of every type and word order with scale/offset, request batching, exception and CRC rejects,
// that a dead slave does not stall a live one, and reopening the port after an unplug.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ModbusRtuDriver } from '../../sensors/modbus.ts';
import type { ModbusRtuConfig } from '../../sensors/modbus.ts';
import { nopSensorLogger } from '../../sensors/reading.ts';
import type { Reading } from '../../sensors/reading.ts';
import { ptySkipReason, startPtyPair } from '../helpers/pty.ts';
import type { PtyPair } from '../helpers/pty.ts';

const skip = ptySkipReason();

/** CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), sent low byte first. */
function crc16(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

function frame(body: number[]): Buffer {
  const buf = Buffer.alloc(body.length + 2);
  Buffer.from(body).copy(buf);
  buf.writeUInt16LE(crc16(buf.subarray(0, body.length)), body.length);
  return buf;
}

interface Unit {
  holding: Map<number, number>;
  input: Map<number, number>;
  coil: Map<number, boolean>;
  discrete: Map<number, boolean>;
}

/** The requests the slave saw, for batching and rate assertions. */
interface Request {
  unit: number;
  fc: number;
  address: number;
  count: number;
  at: number;
}

/**
 * A Modbus RTU slave on the sim end of a PTY pair. Units not in `units` never answer (a dead slave). Reading an
 * address the unit does not have answers exception 2 (illegal data address); `corruptNext` sends bad CRCs.
 */
class RtuSlave {
  readonly units = new Map<number, Unit>();
  readonly requests: Request[] = [];
  corruptNext = 0;
  private buf = Buffer.alloc(0);

  constructor(private readonly pty: PtyPair) {
    pty.onData((chunk) => this.feed(chunk));
  }

  unit(id: number): Unit {
    let u = this.units.get(id);
    if (u === undefined) {
      u = { holding: new Map(), input: new Map(), coil: new Map(), discrete: new Map() };
      this.units.set(id, u);
    }
    return u;
  }

  private feed(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    // Requests for FC 1-4 are 8 bytes; on a bad CRC drop a byte and look again (resynchronise).
    while (this.buf.length >= 8) {
      const req = this.buf.subarray(0, 8);
      if (req.readUInt16LE(6) !== crc16(req.subarray(0, 6))) {
        this.buf = this.buf.subarray(1);
        continue;
      }
      this.buf = this.buf.subarray(8);
      this.handle(req[0] ?? 0, req[1] ?? 0, req.readUInt16BE(2), req.readUInt16BE(4));
    }
  }

  private handle(unitId: number, fc: number, address: number, count: number): void {
    this.requests.push({ unit: unitId, fc, address, count, at: Date.now() });
    const u = this.units.get(unitId);
    if (u === undefined) return; // dead slave
    let body: number[];
    const addrs = Array.from({ length: count }, (_, i) => address + i);
    if (fc === 3 || fc === 4) {
      const table = fc === 3 ? u.holding : u.input;
      if (!addrs.every((a) => table.has(a))) body = [unitId, fc | 0x80, 2];
      else body = [unitId, fc, count * 2, ...addrs.flatMap((a) => [((table.get(a) ?? 0) >> 8) & 0xff, (table.get(a) ?? 0) & 0xff])];
    } else if (fc === 1 || fc === 2) {
      const table = fc === 1 ? u.coil : u.discrete;
      if (!addrs.every((a) => table.has(a))) body = [unitId, fc | 0x80, 2];
      else {
        const bytes = new Array<number>(Math.ceil(count / 8)).fill(0);
        addrs.forEach((a, i) => {
          if (table.get(a) === true) bytes[i >> 3] = (bytes[i >> 3] ?? 0) | (1 << (i & 7));
        });
        body = [unitId, fc, bytes.length, ...bytes];
      }
    } else {
      body = [unitId, fc | 0x80, 1];
    }
    const out = frame(body);
    if (this.corruptNext > 0) {
      this.corruptNext--;
      out[out.length - 1] = (out[out.length - 1] ?? 0) ^ 0xff;
    }
    this.pty.write(out).catch(() => {});
  }
}

function words32(kind: 'int32' | 'uint32' | 'float32', v: number, order: 'big' | 'little'): [number, number] {
  const b = Buffer.alloc(4);
  if (kind === 'int32') b.writeInt32BE(v);
  else if (kind === 'uint32') b.writeUInt32BE(v);
  else b.writeFloatBE(v);
  const hi = b.readUInt16BE(0);
  const lo = b.readUInt16BE(2);
  return order === 'big' ? [hi, lo] : [lo, hi];
}

function put(table: Map<number, number>, address: number, words: readonly number[]): void {
  words.forEach((w, i) => table.set(address + i, w & 0xffff));
}

async function waitFor<T>(what: string, check: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function setup(t: { after(fn: () => unknown): void }): Promise<{ pty: PtyPair; slave: RtuSlave }> {
  const dir = mkdtempSync(join(tmpdir(), 'dg-modbus-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pty = await startPtyPair(dir);
  t.after(() => pty.stop());
  return { pty, slave: new RtuSlave(pty) };
}

function run(config: ModbusRtuConfig, t: { after(fn: () => unknown): void }): { driver: ModbusRtuDriver; readings: Reading[]; done: Promise<void> } {
  const driver = new ModbusRtuDriver(config, { logger: nopSensorLogger });
  const readings: Reading[] = [];
  const done = (async () => {
    for await (const r of driver.readings()) readings.push(r);
  })();
  t.after(() => driver.stop());
  return { driver, readings, done };
}

test('modbus: every type and word order, scale/offset, batched reads, exception and CRC rejects', { skip, timeout: 60_000 }, async (t) => {
  const { pty, slave } = await setup(t);
  const u = slave.unit(1);
  put(u.holding, 0, [-1234]);
  put(u.holding, 1, [54321]);
  put(u.holding, 2, words32('int32', -123456789, 'big'));
  put(u.holding, 4, words32('uint32', 3_000_000_000, 'big'));
  put(u.holding, 6, words32('float32', 21.5, 'big'));
  put(u.holding, 8, words32('float32', -3.25, 'little'));
  put(u.holding, 10, words32('int32', -2_000_000_000, 'little'));
  put(u.holding, 20, [655]);
  put(u.input, 0, [-250]);
  put(u.input, 1, words32('float32', 1013.25, 'big'));
  put(u.input, 3, words32('uint32', 70_000, 'little'));
  u.coil.set(0, true).set(1, false).set(2, true);
  u.discrete.set(5, true);

  const { driver, readings, done } = run(
    {
      name: 'plc',
      path: pty.devPath,
      baudRate: 19200,
      parity: 'even',
      timeoutMs: 300,
      devices: [
        {
          unitId: 1,
          pollMs: 100,
          registers: [
            { stream: 'h-int16', table: 'holding', address: 0, type: 'int16' },
            { stream: 'h-uint16', table: 'holding', address: 1, type: 'uint16' },
            { stream: 'h-int32', table: 'holding', address: 2, type: 'int32' },
            { stream: 'h-uint32', table: 'holding', address: 4, type: 'uint32', wordOrder: 'big' },
            { stream: 'h-float-big', table: 'holding', address: 6, type: 'float32', unit: '°C' },
            { stream: 'h-float-little', table: 'holding', address: 8, type: 'float32', wordOrder: 'little' },
            { stream: 'h-int32-little', table: 'holding', address: 10, type: 'int32', wordOrder: 'little' },
            { stream: 'h-scaled', table: 'holding', address: 20, type: 'uint16', scale: 0.1, offset: -40, unit: '°C' },
            { stream: 'i-int16', table: 'input', address: 0, type: 'int16', scale: 0.01 },
            { stream: 'i-float', table: 'input', address: 1, type: 'float32', unit: 'hPa' },
            { stream: 'i-uint32-little', table: 'input', address: 3, type: 'uint32', wordOrder: 'little' },
            { stream: 'i-missing', table: 'input', address: 100, type: 'uint16' },
            { stream: 'c0', table: 'coil', address: 0, type: 'bool' },
            { stream: 'c1', table: 'coil', address: 1, type: 'bool' },
            { stream: 'c2', table: 'coil', address: 2, type: 'bool' },
            { stream: 'd5', table: 'discrete', address: 5, type: 'bool' },
          ],
        },
      ],
    },
    t,
  );
  assert.deepEqual(
    driver.plan()[0]?.batches.map((b) => `${b.table} ${b.address}+${b.count}`),
    ['holding 0+12', 'holding 20+1', 'input 0+5', 'input 100+1', 'coil 0+3', 'discrete 5+1'],
    'contiguous registers share one request; a gap starts a new one',
  );
  await driver.start();
  const last = (s: string): Reading | undefined => readings.findLast((r) => r.stream === s);
  await waitFor('two polls', () => (readings.filter((r) => r.stream === 'd5').length >= 2 ? true : undefined));

  const want: Record<string, number> = {
    'h-int16': -1234,
    'h-uint16': 54321,
    'h-int32': -123456789,
    'h-uint32': 3_000_000_000,
    'h-float-big': 21.5,
    'h-float-little': -3.25,
    'h-int32-little': -2_000_000_000,
    'i-float': 1013.25,
    'i-uint32-little': 70_000,
    c0: 1,
    c1: 0,
    c2: 1,
    d5: 1,
  };
  for (const [stream, value] of Object.entries(want)) assert.equal(last(stream)?.value, value, stream);
  assert.ok(Math.abs((last('h-scaled')?.value ?? NaN) - 25.5) < 1e-9, `655 * 0.1 - 40 = 25.5, got ${last('h-scaled')?.value}`);
  assert.ok(Math.abs((last('i-int16')?.value ?? NaN) + 2.5) < 1e-9, `-250 * 0.01 = -2.5, got ${last('i-int16')?.value}`);
  assert.equal(last('h-float-big')?.unit, '°C');
  assert.equal(last('i-float')?.unit, 'hPa');
  assert.equal(last('i-missing'), undefined);

  // The missing register got an exception response: counted, and only its request is backed off.
  const c = driver.counters();
  assert.ok((c.rejects['exception-2'] ?? 0) >= 1, JSON.stringify(c.rejects));
  assert.equal(c.rejects.timeout, undefined);
  const unit1 = slave.requests.filter((r) => r.unit === 1);
  const ranges = new Set(unit1.map((r) => `${r.fc}:${r.address}+${r.count}`));
  assert.deepEqual([...ranges].sort(), ['1:0+3', '2:5+1', '3:0+12', '3:20+1', '4:0+5', '4:100+1'].sort());
  const polls = unit1.filter((r) => r.fc === 3 && r.address === 0).length;
  const missing = unit1.filter((r) => r.fc === 4 && r.address === 100).length;
  assert.ok(missing < polls, `the failing range is skipped with backoff (${missing} requests vs ${polls} polls)`);

  // A corrupted answer is a 'crc' reject, and the next poll reads fine again.
  slave.corruptNext = 1;
  await waitFor('crc reject', () => (driver.counters().rejects.crc === 1 ? true : undefined));
  u.holding.set(0, 777);
  await waitFor('fresh value after the crc error', () => (last('h-int16')?.value === 777 ? true : undefined));
  assert.equal(driver.status().state, 'connected');

  // Sequence numbers are per stream, from 0.
  const seqs = readings.filter((r) => r.stream === 'c0').map((r) => r.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => i));
  await driver.stop();
  await done;
});

test('modbus: a dead slave does not stall a live one', { skip, timeout: 60_000 }, async (t) => {
  const { pty, slave } = await setup(t);
  slave.unit(1).holding.set(0, 42);
  const pollMs = 100;
  const timeoutMs = 200;
  const { driver, readings, done } = run(
    {
      name: 'bus',
      path: pty.devPath,
      baudRate: 9600,
      timeoutMs,
      maxBackoffMs: 2000,
      devices: [
        { unitId: 1, pollMs, registers: [{ stream: 'live', table: 'holding', address: 0, type: 'uint16' }] },
        { unitId: 9, pollMs, registers: [{ stream: 'dead', table: 'holding', address: 0, type: 'uint16' }] },
      ],
    },
    t,
  );
  await driver.start();
  await waitFor('first live reading', () => readings[0]);
  const windowMs = 4000;
  const from = Date.now();
  await new Promise((r) => setTimeout(r, windowMs));
  const live = readings.filter((r) => r.stream === 'live' && r.ts >= from);
  const deadRequests = slave.requests.filter((r) => r.unit === 9 && r.at >= from).length;
  // Without backoff the dead unit would cost a timeout every cycle: one live poll per 300 ms (13 in the window).
  // With it, the dead unit is asked a handful of times and the live one keeps most of its 40 polls.
  assert.ok(live.length >= 0.7 * (windowMs / pollMs), `live readings in ${windowMs} ms: ${live.length}`);
  assert.ok(deadRequests <= 5, `dead unit asked ${deadRequests} times in ${windowMs} ms`);
  // No gap between live readings is longer than one period plus one timeout (plus scheduling slack).
  const gaps = live.slice(1).map((r, i) => r.ts - (live[i]?.ts ?? r.ts));
  assert.ok(Math.max(...gaps) <= pollMs + timeoutMs + 200, `largest gap ${Math.max(...gaps)} ms`);
  assert.equal(readings.filter((r) => r.stream === 'dead').length, 0);
  assert.ok((driver.counters().rejects.timeout ?? 0) >= 2);
  await driver.stop();
  await done;
});

test('modbus: the port is reopened with backoff after an unplug', { skip, timeout: 60_000 }, async (t) => {
  const { pty, slave } = await setup(t);
  slave.unit(3).input.set(7, 1);
  const { driver, readings, done } = run(
    {
      name: 'meter',
      path: pty.devPath,
      baudRate: 9600,
      timeoutMs: 200,
      reconnect: { baseMs: 100, maxMs: 400 },
      devices: [{ unitId: 3, pollMs: 50, registers: [{ stream: 'kwh', table: 'input', address: 7, type: 'uint16' }] }],
    },
    t,
  );
  await driver.start();
  await waitFor('a reading', () => readings[0]);
  await pty.stop();
  const s = await waitFor('retrying', () => {
    const st = driver.status();
    return st.state === 'retrying' ? st : undefined;
  });
  assert.ok(s.attempt >= 1);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(driver.status().state, 'retrying', 'the device node is gone: opening keeps failing');
  await pty.restart();
  slave.unit(3).input.set(7, 2);
  await waitFor('connected again', () => (driver.status().state === 'connected' ? true : undefined));
  await waitFor('kwh = 2', () => (readings.at(-1)?.value === 2 ? true : undefined));
  assert.equal(driver.counters().reconnects, 1);
  assert.equal(driver.counters().rejects.timeout, undefined, 'requests cut by the unplug are not counted as timeouts');
  await driver.stop();
  await done;
});

// SerialLineDriver against serialport's own mock binding (SerialPortMock, taken from 'serialport' itself: a
// separately imported @serialport/binding-mock is another copy under ESM) and scripted ports: line framing
// across chunks, backpressure (the port is paused while the consumer is behind), reconnect timing on a
// stopped clock, fatal settings, config validation and stop().
import { EventEmitter } from 'node:events';
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { SerialPortMock } from 'serialport';
import { nopSensorLogger } from '../../sensors/index.ts';
import type { DriverStatus, Reading, SensorLogger } from '../../sensors/index.ts';
import { recordingLogger } from '../helpers/pipeline-fixtures.ts';
import { SerialLineDriver } from '../../sensors/serial.ts';
import type { SerialLineConfig, SerialOpenOptions, SerialPortLike } from '../../sensors/serial.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const PATH = '/dev/serial/by-id/usb-mock-if00';
const binding = SerialPortMock.binding;


function config(over: Partial<SerialLineConfig> = {}): SerialLineConfig {
  return { name: 'barn', path: PATH, baudRate: 9600, format: { kind: 'jsonl', stream: 'barn/t', fields: { t: 't' } }, ...over };
}

/** A driver on the mock binding; `ports` holds every SerialPortMock the driver opened. */
function mockDriver(over: Partial<SerialLineConfig> = {}, highWater?: number, logger: SensorLogger = nopSensorLogger) {
  const clock = new FakeClock();
  const ports: SerialPortMock[] = [];
  const opened: SerialOpenOptions[] = [];
  const driver = new SerialLineDriver(
    config(over),
    { logger, now: clock.now },
    {
      timers: clock,
      random: () => 0.5, // jitter factor 1: delays are exactly base * 2^attempt, capped
      highWater,
      openPort: (o) => {
        opened.push(o);
        const p = new SerialPortMock(o);
        ports.push(p);
        return p;
      },
    },
  );
  const last = (): SerialPortMock => {
    const p = ports[ports.length - 1];
    assert.ok(p);
    return p;
  };
  const feed = (data: string): void => {
    const b = last().port;
    assert.ok(b, 'port is open');
    b.emitData(Buffer.from(data));
  };
  return { driver, clock, ports, opened, last, feed };
}

/** Lets the mock binding's promises and stream events run. */
async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await tick();
}

async function take(it: AsyncIterator<Reading>, n: number): Promise<Reading[]> {
  const out: Reading[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    assert.equal(r.done, false);
    out.push(r.value as Reading);
  }
  return out;
}

afterEach(() => binding.reset());

test('lines split across chunks become readings; bad and oversize lines are counted; the next line is still read', async () => {
  binding.createPort(PATH);
  const { driver, feed, opened } = mockDriver({ maxLineBytes: 32, parity: 'even', dataBits: 7 });
  await driver.start();
  assert.equal(driver.status().state, 'connected');
  assert.deepEqual(opened[0], { path: PATH, baudRate: 9600, dataBits: 7, parity: 'even', stopBits: 1, autoOpen: false });
  const it = driver.readings()[Symbol.asyncIterator]();
  feed('{"t":2');
  feed('1.5}\r\n{"t":22}\nnot json\n');
  feed(`{"t":${'9'.repeat(60)}}\n{"t":23}\n`);
  const got = await take(it, 3);
  assert.deepEqual(
    got.map((r) => [r.stream, r.value, r.seq]),
    [
      ['barn/t', 21.5, 0],
      ['barn/t', 22, 1],
      ['barn/t', 23, 2],
    ],
  );
  assert.deepEqual(driver.counters().rejects, { 'bad-json': 1, 'line-too-long': 1 });
  await driver.stop();
});

test('backpressure: the port is paused while the consumer is behind, resumed when it catches up, nothing lost', async () => {
  binding.createPort(PATH);
  const { driver, feed, last } = mockDriver({}, 4);
  await driver.start();
  const lines = (from: number, n: number): string => Array.from({ length: n }, (_, i) => `{"t":${from + i}}\n`).join('');
  feed(lines(0, 10));
  await settle();
  assert.equal(driver.counters().readings, 10);
  assert.equal(last().isPaused(), true, 'paused after the queue passed its high-water mark');

  feed(lines(10, 10)); // the device keeps talking: held in the stream, not delivered
  await settle();
  assert.equal(driver.counters().readings, 10);

  const it = driver.readings()[Symbol.asyncIterator]();
  const first = await take(it, 9); // queue drops below half of 4: resume
  assert.equal(last().isPaused(), false);
  await settle();
  const rest = await take(it, 11);
  assert.deepEqual([...first, ...rest].map((r) => r.value), Array.from({ length: 20 }, (_, i) => i));
  assert.deepEqual([...first, ...rest].map((r) => r.seq), Array.from({ length: 20 }, (_, i) => i));
  await driver.stop();
});

test('unplug: retrying with capped exponential backoff on the injected clock, reopen resumes without a restart', async () => {
  binding.createPort(PATH);
  const { driver, clock, ports, feed, last } = mockDriver({ reconnect: { baseMs: 100, maxMs: 1000 } });
  const statuses: DriverStatus[] = [];
  driver.on('status', (s) => statuses.push(s));
  await driver.start();
  const it = driver.readings()[Symbol.asyncIterator]();
  feed('{"t":1}\n{"t":');
  assert.equal((await take(it, 1))[0]?.value, 1);

  // Pull the plug: the device node goes away and the stream reports a disconnect (as serialport does on EIO).
  binding.reset();
  const t0 = clock.t;
  last().close(undefined, Object.assign(new Error('device unplugged'), { disconnected: true }));
  await settle();
  let s = driver.status();
  assert.equal(s.state, 'retrying');
  assert.ok(s.state === 'retrying' && s.attempt === 1 && s.nextAttemptAt === t0 + 100 && /unplugged/.test(s.reason));
  assert.deepEqual(driver.counters().rejects, { 'truncated-line': 1 }, 'the half line at the unplug is counted');

  // Each failed open doubles the wait, up to maxMs.
  const waits: number[] = [];
  for (const expected of [100, 200, 400, 800, 1000, 1000]) {
    const before = ports.length;
    clock.advance(expected - 1);
    assert.equal(ports.length, before, `no attempt before ${expected} ms`);
    clock.advance(1);
    assert.equal(ports.length, before + 1, `an attempt at ${expected} ms`);
    await settle();
    s = driver.status();
    assert.equal(s.state, 'retrying');
    if (s.state === 'retrying') waits.push(s.nextAttemptAt - clock.t);
  }
  assert.deepEqual(waits, [200, 400, 800, 1000, 1000, 1000]);
  assert.equal(driver.counters().reconnects, 0);

  binding.createPort(PATH); // plugged back in
  clock.advance(1000);
  await settle();
  assert.equal(driver.status().state, 'connected');
  assert.equal(driver.counters().reconnects, 1);
  feed('{"t":2}\n');
  assert.deepEqual((await take(it, 1)).map((r) => [r.value, r.seq]), [[2, 1]]);

  // Connected again: the backoff starts over.
  const t1 = clock.t;
  last().close(undefined, Object.assign(new Error('device unplugged'), { disconnected: true }));
  await settle();
  s = driver.status();
  assert.ok(s.state === 'retrying' && s.attempt === 1 && s.nextAttemptAt === t1 + 100);
  await driver.stop();
  assert.equal(clock.pending, 0, 'stop() cancels the pending reopen');
  assert.equal(driver.status().state, 'stopped');
  assert.deepEqual(
    statuses.map((x) => x.state),
    ['connected', 'retrying', 'retrying', 'retrying', 'retrying', 'retrying', 'retrying', 'retrying', 'connected', 'retrying', 'stopped'],
  );
});

test('a port error while open is treated like an unplug', async () => {
  binding.createPort(PATH);
  const { driver, last } = mockDriver();
  await driver.start();
  last().emit('error', new Error('EIO: i/o error, read'));
  const s = driver.status();
  assert.ok(s.state === 'retrying' && /EIO/.test(s.reason));
  await settle();
  assert.equal(last().isOpen, false, 'the broken port is closed');
  await driver.stop();
});

test('a device missing at start is retried, not failed', async () => {
  const { driver, clock } = mockDriver();
  await driver.start();
  const s = driver.status();
  assert.equal(s.state, 'retrying');
  binding.createPort(PATH);
  clock.advance(600); // 500 ms base * jitter 1
  await settle();
  assert.equal(driver.status().state, 'connected');
  assert.equal(driver.counters().reconnects, 0, 'a first connection is not a reconnect');
  await driver.stop();
});

test('a missing device is logged: a warning naming the path at the first failure, debug while it stays away', { timeout: 10_000 }, async () => {
  const log = recordingLogger();
  const { driver, clock } = mockDriver({}, undefined, log);
  await driver.start();
  assert.equal(driver.status().state, 'retrying');
  const retries = (): { level: string; path: unknown }[] => log.lines.filter((l) => l.fields['path'] === PATH && l.fields['attempt'] !== undefined).map((l) => ({ level: l.level, path: l.fields['path'] }));
  assert.deepEqual(retries(), [{ level: 'warn', path: PATH }]);
  clock.advance(600);
  await settle();
  clock.advance(1100);
  await settle();
  assert.deepEqual(retries().map((r) => r.level), ['warn', 'debug', 'debug'], 'the same reason again is not another warning');
  binding.createPort(PATH);
  clock.advance(2100);
  await settle();
  assert.equal(driver.status().state, 'connected');
  await driver.stop();
});

/** A scripted port whose open fails with `message` (what the native binding says). */
function failingPort(message: string): SerialPortLike {
  return {
    isOpen: false,
    open: (cb) => process.nextTick(cb, new Error(message)),
    close: (cb) => cb?.(null),
    pause: () => undefined,
    resume: () => undefined,
    on: () => undefined,
    removeListener: () => undefined,
  };
}

/** A port whose open completes only when the test says so. */
class ScriptedPort extends EventEmitter implements SerialPortLike {
  isOpen = false;
  pending: ((err: Error | null) => void) | null = null;
  open(cb: (err: Error | null) => void): void {
    this.pending = cb;
  }
  finishOpen(err: Error | null): void {
    this.isOpen = err === null;
    this.pending?.(err);
  }
  close(cb?: (err: Error | null) => void): void {
    this.isOpen = false;
    cb?.(null);
  }
  pause(): void {}
  resume(): void {}
}

test('an error while the port is still opening: retrying, and the port that opens late is closed', async () => {
  const clock = new FakeClock();
  const ports: ScriptedPort[] = [];
  const driver = new SerialLineDriver(config(), { logger: nopSensorLogger, now: clock.now }, {
    timers: clock,
    openPort: () => {
      const p = new ScriptedPort();
      ports.push(p);
      return p;
    },
  });
  const started = driver.start();
  await settle();
  const first = ports[0];
  assert.ok(first);
  first.emit('error', new Error('EIO while opening'));
  await started;
  assert.equal(driver.status().state, 'retrying');
  first.finishOpen(null);
  assert.equal(first.isOpen, false, 'closed again: it belongs to no connection');
  assert.equal(driver.status().state, 'retrying');
  first.emit('error', new Error('late error from the dead port')); // swallowed, no throw
  clock.advance(600);
  ports[1]?.finishOpen(null);
  assert.equal(driver.status().state, 'connected');
  await driver.stop();
});

test('settings the port refuses (bad baud rate) fail for good: status failed, no retry', async () => {
  const clock = new FakeClock();
  let opens = 0;
  const driver = new SerialLineDriver(config({ baudRate: 12345 }), { logger: nopSensorLogger, now: clock.now }, {
    timers: clock,
    openPort: () => {
      opens++;
      return failingPort('Error: Invalid argument setting custom baud rate of 12345');
    },
  });
  await driver.start();
  const s = driver.status();
  assert.equal(s.state, 'failed');
  assert.ok(s.state === 'failed' && /baudRate/.test(s.reason), 'the reason says what to check');
  assert.equal(clock.pending, 0);
  clock.advance(60_000);
  assert.equal(opens, 1);
  await driver.stop();
});

test('bad configuration throws SENSOR_CONFIG_INVALID naming the field', () => {
  const bad: [Partial<SerialLineConfig>, string][] = [
    [{ baudRate: 0 }, 'baudRate'],
    [{ baudRate: 9600.5 }, 'baudRate'],
    [{ path: '' }, 'path'],
    [{ dataBits: 9 as 8 }, 'dataBits'],
    [{ parity: 'mark' as 'odd' }, 'parity'],
    [{ stopBits: 3 as 1 }, 'stopBits'],
    [{ maxLineBytes: 0 }, 'maxLineBytes'],
    [{ reconnect: { baseMs: 5000, maxMs: 100 } }, 'reconnect.maxMs'],
    [{ format: { kind: 'csv', stream: 's', columns: [] } }, 'columns'],
  ];
  for (const [over, field] of bad) {
    assert.throws(
      () => new SerialLineDriver(config(over), { logger: nopSensorLogger }),
      (err: any) => err.code === 'SENSOR_CONFIG_INVALID' && err.fields.field === field,
      `${JSON.stringify(over)} -> ${field}`,
    );
  }
});

test('stop() closes the port and ends readings(); start() after stop() is refused', async () => {
  binding.createPort(PATH);
  const { driver, last } = mockDriver();
  await driver.start();
  const it = driver.readings()[Symbol.asyncIterator]();
  const pending = it.next();
  await driver.stop();
  assert.deepEqual(await pending, { value: undefined, done: true });
  assert.equal(last().isOpen, false);
  assert.equal(driver.status().state, 'stopped');
  await assert.rejects(driver.start(), (err: any) => err.code === 'SENSOR_DRIVER_STOPPED');
  await driver.stop(); // idempotent
});

test('an AbortSignal stops the driver', async () => {
  binding.createPort(PATH);
  const ac = new AbortController();
  const driver = new SerialLineDriver(config(), { logger: nopSensorLogger, signal: ac.signal }, { openPort: (o) => new SerialPortMock(o) });
  await driver.start();
  ac.abort();
  await settle();
  assert.equal(driver.status().state, 'stopped');
});

// FirmataDriver end to end over a real serial port: johnny-five + firmata + serialport 8 open one end of a socat
// PTY pair, a Firmata board emulator plays the Arduino on the other. Checks analog and thermometer readings
// (values as johnny-five computes them), then unplugs the PTY (status retrying) and plugs it back (reconnect).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FirmataDriver } from '../../sensors/firmata.ts';
import type { DriverStatus } from '../../sensors/driver.ts';
import { nopSensorLogger } from '../../sensors/reading.ts';
import type { Reading } from '../../sensors/reading.ts';
import { FirmataBoardEmulator } from '../helpers/firmata-board.ts';
import { ptySkipReason, startPtyPair } from '../helpers/pty.ts';

const skip = ptySkipReason();

/** Polls `check` until it returns a value (not undefined) or `ms` pass. */
async function waitFor<T>(what: string, check: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('firmata: analog and thermometer readings through johnny-five, board loss and reconnect', { skip, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dg-firmata-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pty = await startPtyPair(dir);
  t.after(() => pty.stop());
  const board = FirmataBoardEmulator.start(pty);
  t.after(() => board.close());
  board.setAnalog(0, 512); // pot, scaled to 0..100
  board.setAnalog(1, 31); // LM35: 5000 mV * 31 / 1023 = 151.5 mV -> 15 °C (johnny-five rounds)
  board.setAnalog(2, 153); // TMP36: 747.8 mV -> 74.78 - 50 = 24.78 -> 25 °C
  board.setAnalog(3, 700); // raw

  const driver = new FirmataDriver(
    {
      name: 'bench-uno',
      port: pty.devPath,
      sensors: [
        { kind: 'analog', pin: 'A0', stream: 'pot', freqMs: 50, scale: [0, 100], unit: '%' },
        { kind: 'thermometer', controller: 'LM35', pin: 'A1', stream: 'lm35', freqMs: 50 },
        { kind: 'thermometer', controller: 'tmp-36', pin: 'A2', stream: 'tmp36', freqMs: 50 },
        { kind: 'analog', pin: 'A3', stream: 'raw', freqMs: 50 },
      ],
      reconnect: { baseMs: 100, maxMs: 400 },
    },
    { logger: nopSensorLogger },
  );
  const statuses: DriverStatus[] = [];
  driver.on('status', (s) => statuses.push(s));
  const readings: Reading[] = [];
  const consumed = (async () => {
    for await (const r of driver.readings()) readings.push(r);
  })();
  t.after(() => driver.stop());
  await driver.start();

  const last = (stream: string): Reading | undefined => readings.findLast((r) => r.stream === stream);
  await waitFor('connected', () => (driver.status().state === 'connected' ? true : undefined));
  await waitFor('a reading of every stream', () => (['pot', 'lm35', 'tmp36', 'raw'].every((s) => last(s) !== undefined) ? true : undefined));
  assert.deepEqual(board.reportingChannels(), [0, 1, 2, 3], 'REPORT_ANALOG enabled for A0..A3');
  const pot = last('pot');
  assert.equal(pot?.unit, '%');
  assert.ok(Math.abs((pot?.value ?? NaN) - (100 * 512) / 1023) < 1e-9, `pot ${pot?.value}`);
  assert.equal(last('raw')?.value, 700);
  assert.equal(last('raw')?.unit, undefined);
  assert.deepEqual({ value: last('lm35')?.value, unit: last('lm35')?.unit }, { value: 15, unit: '°C' });
  assert.equal(last('tmp36')?.value, 25);

  // A new value on the wire shows up in the readings.
  board.setAnalog(3, 12);
  await waitFor('raw = 12', () => (last('raw')?.value === 12 ? true : undefined));

  // Unplug: the port closes under johnny-five, the driver tears the board down and retries.
  const before = readings.length;
  await pty.stop();
  const retrying = await waitFor('retrying', () => {
    const s = driver.status();
    return s.state === 'retrying' ? s : undefined;
  });
  assert.ok(retrying.attempt >= 1);
  await new Promise((r) => setTimeout(r, 600)); // a few failed attempts while the device node is gone
  const duringOutage = readings.length;
  assert.ok(duringOutage - before <= 8, `at most the readings in flight arrive after the unplug (${duringOutage - before})`);
  assert.equal(driver.status().state, 'retrying');

  // Plug back in (a freshly reset board): the driver reconnects and the readings continue with new values.
  await pty.restart();
  board.reset();
  board.setAnalog(0, 1023);
  board.setAnalog(1, 61); // 298.1 mV -> 30 °C
  await waitFor('connected again', () => (driver.status().state === 'connected' ? true : undefined));
  await waitFor('pot = 100 after the reconnect', () => (last('pot')?.value === 100 ? true : undefined));
  await waitFor('lm35 = 30 after the reconnect', () => (last('lm35')?.value === 30 ? true : undefined));
  assert.equal(driver.counters().reconnects, 1);
  assert.ok(statuses.some((s) => s.state === 'retrying') && statuses.at(-1)?.state === 'connected');
  // Sequence numbers keep counting across the reconnect.
  const potSeqs = readings.filter((r) => r.stream === 'pot').map((r) => r.seq);
  assert.deepEqual(potSeqs, potSeqs.map((_, i) => i));

  await driver.stop();
  await consumed;
  assert.equal(driver.status().state, 'stopped');
});

test('firmata: a board that goes silent with its port open is reconnected; no handshake means retrying', { skip, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dg-firmata-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pty = await startPtyPair(dir);
  t.after(() => pty.stop());
  const board = FirmataBoardEmulator.start(pty);
  t.after(() => board.close());
  board.setAnalog(0, 100);
  const driver = new FirmataDriver(
    {
      name: 'hung-uno',
      port: pty.devPath,
      sensors: [{ kind: 'analog', pin: 'A0', stream: 'a0', freqMs: 50 }],
      silenceMs: 400,
      readyTimeoutMs: 800,
      reconnect: { baseMs: 100, maxMs: 200 },
    },
    { logger: nopSensorLogger },
  );
  const reasons: string[] = [];
  driver.on('status', (s) => {
    if (s.state === 'retrying') reasons.push(s.reason);
  });
  const readings: Reading[] = [];
  const consumed = (async () => {
    for await (const r of driver.readings()) readings.push(r);
  })();
  t.after(() => driver.stop());
  await driver.start();
  await waitFor('a reading', () => readings[0]);

  board.hang();
  await waitFor('silence detected', () => reasons.find((r) => r.includes('no data from the board')));
  // The port opens but the hung board never answers the handshake: the ready timeout keeps it retrying.
  await waitFor('handshake timeout', () => reasons.find((r) => r.includes('no Firmata handshake')), 5000);
  assert.notEqual(driver.status().state, 'connected');

  board.reset(); // the sketch restarts
  board.setAnalog(0, 200);
  await waitFor('connected again', () => (driver.status().state === 'connected' ? true : undefined), 5000);
  await waitFor('a0 = 200', () => (readings.at(-1)?.value === 200 ? true : undefined));
  assert.ok(driver.counters().reconnects >= 1);
  await driver.stop();
  await consumed;
});

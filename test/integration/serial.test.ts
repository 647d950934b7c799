// SerialLineDriver on real PTYs (socat pairs, serialport's native binding): the test plays the device on the
// 'sim' end and the driver reads the 'dev' end. JSON lines, CSV, key=value and NMEA give the right readings
// and reject counts; an oversize line is cut and the next one read; an unplug (socat killed) turns into
// 'retrying', and a replug on the same path resumes the readings without restarting the driver.
// Skipped when socat is missing, unless DATAGATE_REQUIRE_SYSTEM=1 (then it fails).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nopSensorLogger } from '../../sensors/index.ts';
import type { DriverStatus, LineFormatConfig, Reading } from '../../sensors/index.ts';
import { SerialLineDriver } from '../../sensors/serial.ts';
import type { SerialLineConfig } from '../../sensors/serial.ts';
import { ptySkipReason, startPtyPair } from '../helpers/pty.ts';
import type { PtyPair } from '../helpers/pty.ts';

const skip = ptySkipReason();
const WAIT_MS = 5000;

interface Rig {
  readonly pty: PtyPair;
  readonly driver: SerialLineDriver;
  /** The next n readings, or a failure after WAIT_MS. */
  next(n: number): Promise<Reading[]>;
}

/** A PTY pair and a started, connected driver on its dev end; both are cleaned up after the test. */
async function rig(t: { after: (fn: () => Promise<void> | void) => void }, format: LineFormatConfig, over: Partial<SerialLineConfig> = {}): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-serial-'));
  const pty = await startPtyPair(dir);
  const driver = new SerialLineDriver({ name: 'pty', path: pty.devPath, baudRate: 115200, format, ...over }, { logger: nopSensorLogger });
  t.after(async () => {
    await driver.stop();
    await pty.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await driver.start();
  assert.equal(driver.status().state, 'connected');
  const it = driver.readings()[Symbol.asyncIterator]();
  const next = async (n: number): Promise<Reading[]> => {
    const out: Reading[] = [];
    for (let i = 0; i < n; i++) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`reading ${i + 1} of ${n} did not arrive in ${WAIT_MS} ms; rejects ${JSON.stringify(driver.counters().rejects)}`)), WAIT_MS);
      });
      try {
        const r = await Promise.race([it.next(), timeout]);
        assert.equal(r.done, false);
        out.push(r.value as Reading);
      } finally {
        clearTimeout(timer);
      }
    }
    return out;
  };
  return { pty, driver, next };
}

/** Resolves when the driver's status satisfies `pred` (now or later). */
function statusBecomes(driver: SerialLineDriver, pred: (s: DriverStatus) => boolean): Promise<DriverStatus> {
  if (pred(driver.status())) return Promise.resolve(driver.status());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`status still ${JSON.stringify(driver.status())} after ${WAIT_MS} ms`)), WAIT_MS);
    const on = (s: DriverStatus): void => {
      if (!pred(s)) return;
      clearTimeout(timer);
      driver.off('status', on);
      resolve(s);
    };
    driver.on('status', on);
  });
}

const opts = { skip };

test('JSON lines: values, device timestamps and rejects', opts, async (t) => {
  const { pty, driver, next } = await rig(t, { kind: 'jsonl', stream: 'barn/env', fields: { t: 'data.t', h: 'data.h' }, tsField: 'ts', unit: 'mixed' });
  await pty.write('{"data":{"t":21.5,"h":40},"ts":"2024-05-01T12:00:00Z"}\r\n');
  await pty.write('{"data":{"t":22}}\nnot json\n{"data":{"t":"22.5","h":41}}\n\n');
  await pty.write('{"data":{"t":23,"h":42},"ts":1714564801000}\n');
  const got = await next(2);
  assert.deepEqual(got, [
    { stream: 'barn/env', ts: Date.UTC(2024, 4, 1, 12), unit: 'mixed', values: { t: 21.5, h: 40 }, seq: 0 },
    { stream: 'barn/env', ts: 1714564801000, unit: 'mixed', values: { t: 23, h: 42 }, seq: 1 },
  ]);
  assert.deepEqual(driver.counters().rejects, { 'missing-field': 1, 'bad-json': 1, 'not-a-number': 1, 'empty-line': 1 });
});

test('CSV: columns to values, timestamp column, wrong column counts rejected', opts, async (t) => {
  const { pty, driver, next } = await rig(t, { kind: 'csv', stream: 'tank', columns: ['ts', 'level', '-', 'temp'], tsColumn: 'ts' });
  await pty.write('1714564800000,1.25,x,18.5\n1714564801000,1.5\n1714564802000,abc,x,18\n1714564803000,1.75,x,19\n');
  const got = await next(2);
  assert.deepEqual(
    got.map((r) => [r.ts, r.values]),
    [
      [1714564800000, { level: 1.25, temp: 18.5 }],
      [1714564803000, { level: 1.75, temp: 19 }],
    ],
  );
  assert.deepEqual(driver.counters().rejects, { 'column-count': 1, 'not-a-number': 1 });
});

test('key=value: one configured key gives value; nan from the firmware is not-finite', opts, async (t) => {
  const { pty, driver, next } = await rig(t, { kind: 'kv', stream: 'soil', fields: ['moisture'], unit: '%' });
  await pty.write('boot ok\r\nmoisture=31.5 batt=3.7\r\nmoisture=nan\r\nbatt=3.6\r\nmoisture=32\r\n');
  const got = await next(2);
  assert.deepEqual(
    got.map((r) => [r.stream, r.value, r.unit, r.values]),
    [
      ['soil', 31.5, '%', undefined],
      ['soil', 32, '%', undefined],
    ],
  );
  assert.deepEqual(driver.counters().rejects, { 'missing-field': 2, 'not-finite': 1 });
});

test('NMEA: GGA and RMC with good checksums read, broken checksums and other sentences counted', opts, async (t) => {
  const { pty, driver, next } = await rig(t, { kind: 'nmea', stream: 'gps' }, { baudRate: 4800 });
  // The classic examples from the NMEA 0183 literature, with their published checksums.
  const gga = '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47';
  const rmc = '$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A';
  await pty.write(`${gga}\r\n${gga.replace('*47', '*48')}\r\n${rmc.replace('022.4', '023.4')}\r\n`);
  await pty.write('$GPGSV,1,1,00*79\r\n'); // valid, not parsed
  await pty.write(`${rmc}\r\n`);
  const [fix, course] = await next(2);
  assert.equal(fix?.stream, 'gps');
  assert.equal(fix?.quality, 1);
  const v = fix?.values ?? {};
  assert.ok(Math.abs((v['lat'] ?? 0) - (48 + 7.038 / 60)) < 1e-9);
  assert.ok(Math.abs((v['lon'] ?? 0) - (11 + 31 / 60)) < 1e-9);
  assert.deepEqual([v['alt'], v['fixQuality'], v['satellites'], v['hdop']], [545.4, 1, 8, 0.9]);
  assert.equal(course?.ts, Date.UTC(1994, 2, 23, 12, 35, 19));
  assert.deepEqual([course?.values?.['speedKn'], course?.values?.['course']], [22.4, 84.4]);
  assert.deepEqual(driver.counters().rejects, { checksum: 2, 'ignored-sentence': 1 });
});

test('an oversize line is cut and counted; the next line is still read', opts, async (t) => {
  const { pty, driver, next } = await rig(t, { kind: 'jsonl', stream: 's', fields: { v: 'v' } }, { maxLineBytes: 64 });
  await pty.write(`{"v":1,"pad":"${'x'.repeat(5000)}"}\n`);
  await pty.write('{"v":2}\n');
  const got = await next(1);
  assert.deepEqual(got.map((r) => [r.value, r.seq]), [[2, 0]]);
  assert.deepEqual(driver.counters().rejects, { 'line-too-long': 1 });
});

test('unplug and replug: retrying while socat is gone, readings resume on the same path without a restart', opts, async (t) => {
  const { pty, driver, next } = await rig(t, { kind: 'jsonl', stream: 's', fields: { v: 'v' } }, { reconnect: { baseMs: 50, maxMs: 200 } });
  await pty.write('{"v":1}\n');
  assert.equal((await next(1))[0]?.value, 1);
  const before = driver.counters().reconnects;

  await pty.stop(); // unplug: the dev link disappears and the open port reads EIO/EBADF
  const retrying = await statusBecomes(driver, (s) => s.state === 'retrying');
  assert.ok(retrying.state === 'retrying' && retrying.nextAttemptAt > Date.now() - WAIT_MS);
  await new Promise((r) => setTimeout(r, 300)); // a few failed reopens while unplugged
  assert.equal(driver.status().state, 'retrying');

  await pty.restart(); // replug on the same link paths
  await statusBecomes(driver, (s) => s.state === 'connected');
  await pty.write('{"v":2}\n{"v":3}\n');
  assert.deepEqual((await next(2)).map((r) => [r.value, r.seq]), [
    [2, 1],
    [3, 2],
  ]);
  assert.equal(driver.counters().reconnects, before + 1);
});

// The simulator driver on a stopped clock with hand-fired interval timers: every shape stays within its
// bounds and looks like its name, a seed repeats a run exactly, sequence numbers count per stream, a slow
// consumer pauses the timers (bounded queue), and configs are checked naming the field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DriverStatus, IntervalTimers, Reading, SimulatorConfig, SimulatorStreamConfig } from '../../sensors/index.ts';
import { SensorError, SimulatorDriver, nopSensorLogger, sampler } from '../../sensors/index.ts';

const T0 = Date.UTC(2024, 4, 1, 12);

/** A stopped clock and interval timers that fire only when the test moves time. */
class FakeTimers implements IntervalTimers {
  now = T0;
  private nextId = 1;
  private readonly intervals = new Map<number, { fn: () => void; ms: number; due: number }>();

  setInterval(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.intervals.set(id, { fn, ms, due: this.now + ms });
    return id;
  }

  clearInterval(handle: unknown): void {
    this.intervals.delete(handle as number);
  }

  get active(): number {
    return this.intervals.size;
  }

  /** Moves the clock by `ms`, firing every interval that falls due on the way, in time order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: [number, { fn: () => void; ms: number; due: number }] | undefined;
      for (const e of this.intervals) if (e[1].due <= end && (next === undefined || e[1].due < next[1].due)) next = e;
      if (next === undefined) break;
      const [, iv] = next;
      this.now = iv.due;
      iv.due += iv.ms;
      iv.fn();
    }
    this.now = end;
  }
}

function make(config: SimulatorConfig, highWater?: number): { driver: SimulatorDriver; timers: FakeTimers } {
  const timers = new FakeTimers();
  const driver = new SimulatorDriver(config, { logger: nopSensorLogger, now: () => timers.now }, highWater === undefined ? { timers } : { timers, highWater });
  return { driver, timers };
}

/**
 * Takes up to `n` readings that are already queued (never waits for the timers). When the queue runs dry it
 * leaves one next() pending, which takes the next reading: call it again only after stop() or for a final drain.
 */
async function take(driver: SimulatorDriver, n: number): Promise<Reading[]> {
  const it = driver.readings()[Symbol.asyncIterator]();
  const out: Reading[] = [];
  for (let i = 0; i < n; i++) {
    const r = await Promise.race([it.next(), new Promise<'empty'>((resolve) => setImmediate(() => resolve('empty')))]);
    if (r === 'empty' || r.done === true) break;
    out.push(r.value);
  }
  return out;
}

function samples(cfg: SimulatorStreamConfig, n: number): number[] {
  const next = sampler(cfg);
  return Array.from({ length: n }, () => next());
}

test('every shape stays within [min, max] and looks like its name', () => {
  const base = { stream: 's', rateHz: 10, min: -5, max: 5, periodS: 10 };
  const n = 10 * 3600; // an hour at 10 Hz
  for (const shape of ['sine', 'random-walk', 'step', 'spike'] as const) {
    const v = samples({ ...base, shape, seed: 7 }, n);
    assert.ok(v.every((x) => Number.isFinite(x) && x >= -5 && x <= 5), shape);
  }
  const sine = samples({ ...base, shape: 'sine', seed: 1 }, n);
  assert.ok(Math.max(...sine) > 4.5 && Math.min(...sine) < -4.5, 'sine reaches both ends');
  assert.ok(Math.abs(sine[25]! - 5) < 0.2, 'sine peaks a quarter period in'); // t = 2.5 s of a 10 s period

  const walk = samples({ ...base, shape: 'random-walk', seed: 2 }, n);
  const maxStep = Math.max(...walk.slice(1).map((x, i) => Math.abs(x - walk[i]!)));
  assert.ok(maxStep <= 0.05 * 10 + 1e-9, `walk steps are small (${maxStep})`);
  assert.ok(new Set(walk).size > n / 2, 'walk moves');

  const step = samples({ ...base, shape: 'step', seed: 3 }, 400);
  assert.deepEqual(new Set(step), new Set([-5, 5]));
  // 10 s per level at 10 Hz: 100 samples of min, 100 of max, ...
  assert.deepEqual([step[0], step[99], step[100], step[199], step[200]], [-5, -5, 5, 5, -5]);

  const spike = samples({ ...base, shape: 'spike', seed: 4 }, n);
  const spikes = spike.filter((x) => x === 5).length;
  assert.ok(spikes > n * 0.005 && spikes < n * 0.05, `rare spikes (${spikes} of ${n})`);
  assert.ok(spike.filter((x) => x !== 5).every((x) => x <= -5 + 0.5), 'otherwise near min');
});

test('the same seed repeats a run exactly; another seed does not; the default seed comes from the stream name', () => {
  const cfg: SimulatorStreamConfig = { stream: 'a', shape: 'random-walk', rateHz: 5, seed: 42 };
  assert.deepEqual(samples(cfg, 500), samples(cfg, 500));
  assert.notDeepEqual(samples(cfg, 500), samples({ ...cfg, seed: 43 }, 500));
  const { seed: _seed, ...unseeded } = cfg;
  assert.deepEqual(samples(unseeded, 100), samples(unseeded, 100));
  assert.notDeepEqual(samples(unseeded, 100), samples({ ...unseeded, stream: 'b' }, 100));
});

test('two drivers with the same config emit the same readings at the configured rates, seq per stream', async () => {
  const config: SimulatorConfig = {
    name: 'sim',
    streams: [
      { stream: 'greenhouse/temperature', shape: 'sine', rateHz: 2, min: 15, max: 30, periodS: 60, unit: 'degC', seed: 9 },
      { stream: 'greenhouse/humidity', shape: 'random-walk', rateHz: 1, min: 30, max: 90, seed: 10 },
    ],
  };
  const runs: Reading[][] = [];
  for (let k = 0; k < 2; k++) {
    const { driver, timers } = make(config);
    const statuses: DriverStatus[] = [];
    driver.on('status', (s) => statuses.push(s));
    await driver.start();
    await driver.start(); // idempotent
    assert.equal(timers.active, 2);
    timers.advance(10_000);
    const got = await take(driver, 100);
    runs.push(got);
    assert.equal(got.length, 30);
    const temp = got.filter((r) => r.stream === 'greenhouse/temperature');
    const hum = got.filter((r) => r.stream === 'greenhouse/humidity');
    assert.deepEqual(temp.map((r) => r.seq), Array.from({ length: 20 }, (_, i) => i));
    assert.deepEqual(hum.map((r) => r.seq), Array.from({ length: 10 }, (_, i) => i));
    assert.deepEqual(temp.slice(0, 3).map((r) => r.ts), [T0 + 500, T0 + 1000, T0 + 1500]);
    assert.ok(temp.every((r) => r.unit === 'degC' && r.value !== undefined && r.value >= 15 && r.value <= 30));
    assert.ok(hum.every((r) => r.unit === undefined && r.value !== undefined && r.value >= 30 && r.value <= 90));
    assert.deepEqual(driver.counters(), { readings: 30, rejects: {}, reconnects: 0 });
    await driver.stop();
    assert.equal(timers.active, 0);
    assert.deepEqual(statuses.map((s) => s.state), ['connected', 'stopped']);
  }
  assert.deepEqual(runs[0], runs[1]);
});

test('streams faster than 100 Hz tick every 10 ms with several readings, at the configured rate', async () => {
  const { driver, timers } = make({ name: 'sim', streams: [{ stream: 'fast', shape: 'sine', rateHz: 2_500 }, { stream: 'odd', shape: 'step', rateHz: 333 }] }, 100_000);
  await driver.start();
  timers.advance(1000);
  const got = await take(driver, 100_000);
  const fast = got.filter((r) => r.stream === 'fast');
  const odd = got.filter((r) => r.stream === 'odd');
  assert.equal(fast.length, 2_500);
  // 3.33 readings per tick: the fractions carry over, so 100 ticks give 333 (floating-point sums may leave one behind).
  assert.ok(odd.length === 333 || odd.length === 332, `odd stream emitted ${odd.length}`);
  assert.deepEqual(fast.map((r) => r.seq), Array.from({ length: 2_500 }, (_, i) => i));
  assert.deepEqual(fast.slice(0, 26).map((r) => r.ts - T0), [...Array<number>(25).fill(10), 20]);
  await driver.stop();
});

test('a slow consumer pauses the simulator: the queue stays bounded and resumes when drained', async () => {
  const { driver, timers } = make({ name: 'sim', streams: [{ stream: 'a', shape: 'sine', rateHz: 100 }, { stream: 'b', shape: 'spike', rateHz: 50 }] }, 16);
  await driver.start();
  timers.advance(60_000); // a minute at 150 readings/s with nobody reading
  assert.equal(driver.counters().readings, 16);
  assert.equal(timers.active, 0, 'timers stopped while the queue is full');

  const first = await take(driver, 9); // below half of the high-water mark: resume
  assert.equal(first.length, 9);
  assert.equal(timers.active, 2);
  timers.advance(60_000);
  assert.equal(driver.counters().readings, 16 + 9, 'refilled to the high-water mark, not beyond');
  assert.equal(timers.active, 0);

  const rest = await take(driver, 1000);
  assert.equal(rest.length, 16);
  // Nothing was lost or duplicated: per-stream seq is gap-free.
  for (const stream of ['a', 'b']) {
    const seqs = [...first, ...rest].filter((r) => r.stream === stream).map((r) => r.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i));
  }
  await driver.stop();
  assert.equal(timers.active, 0);
});

test('stop ends readings(); an abort signal stops the driver; a stopped driver does not restart', async () => {
  const timers = new FakeTimers();
  const ac = new AbortController();
  const driver = new SimulatorDriver({ name: 'sim', streams: [{ stream: 'a', shape: 'step', rateHz: 1 }] }, { logger: nopSensorLogger, now: () => timers.now, signal: ac.signal }, { timers });
  await driver.start();
  const it = driver.readings()[Symbol.asyncIterator]();
  const pending = it.next();
  timers.advance(1000);
  assert.equal((await pending).value?.seq, 0);
  const waiting = it.next();
  ac.abort();
  assert.deepEqual(await waiting, { value: undefined, done: true });
  assert.equal(driver.status().state, 'stopped');
  assert.equal(timers.active, 0);
  await assert.rejects(driver.start(), (err: unknown) => err instanceof SensorError && err.code === 'SENSOR_DRIVER_STOPPED');
});

test('simulator configs are checked and the error names the field', () => {
  const ok: SimulatorStreamConfig = { stream: 'a', shape: 'sine', rateHz: 1 };
  const cases: [unknown, string][] = [
    [{ name: '', streams: [ok] }, 'name'],
    [{ name: 'sim', streams: [] }, 'streams'],
    [{ name: 'sim', streams: [{ ...ok, stream: '' }] }, 'streams[0].stream'],
    [{ name: 'sim', streams: [ok, ok] }, 'streams[1].stream'],
    [{ name: 'sim', streams: [{ ...ok, shape: 'square' }] }, 'streams[0].shape'],
    [{ name: 'sim', streams: [{ ...ok, rateHz: 0 }] }, 'streams[0].rateHz'],
    [{ name: 'sim', streams: [{ ...ok, rateHz: 10_001 }] }, 'streams[0].rateHz'],
    [{ name: 'sim', streams: [{ ...ok, min: 5, max: 5 }] }, 'streams[0].max'],
    [{ name: 'sim', streams: [{ ...ok, min: Number.NaN }] }, 'streams[0].min'],
    [{ name: 'sim', streams: [{ ...ok, min: -Number.MAX_VALUE, max: Number.MAX_VALUE }] }, 'streams[0].max'],
    [{ name: 'sim', streams: [{ ...ok, periodS: 0 }] }, 'streams[0].periodS'],
    [{ name: 'sim', streams: [{ ...ok, seed: -1 }] }, 'streams[0].seed'],
    [{ name: 'sim', streams: [{ ...ok, unit: 5 }] }, 'streams[0].unit'],
    [{ name: 'sim', streams: [{ ...ok, rate: 5 }] }, 'streams[0].rate'],
  ];
  for (const [config, field] of cases) {
    assert.throws(
      () => new SimulatorDriver(config as SimulatorConfig, { logger: nopSensorLogger }),
      (err: unknown) => err instanceof SensorError && err.code === 'SENSOR_CONFIG_INVALID' && err.fields.field === field,
      `expected SENSOR_CONFIG_INVALID on '${field}' for ${JSON.stringify(config)}`,
    );
  }
});

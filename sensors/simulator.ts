// A driver that needs no hardware: synthetic streams (sine, bounded random walk, square step, rare spikes) at a
// configured rate, from a seeded PRNG so a run can be repeated exactly. `datagate dev` uses it by default.
// Values depend only on the seed and the sample number, never on timer jitter; timestamps come from the clock.
import { DriverBase } from './base.ts';
import type { DriverContext, SensorDriver } from './driver.ts';
import { SensorError } from './reading.ts';

export type SimulatorShape = 'sine' | 'random-walk' | 'step' | 'spike';

export interface SimulatorStreamConfig {
  stream: string;
  shape: SimulatorShape;
  /** Readings per second, 0 < rateHz <= 10,000. */
  rateHz: number;
  /** Bounds of the values; default 0 and 100. */
  min?: number;
  max?: number;
  /** Period of 'sine' and half-period of 'step', in seconds; default 60. */
  periodS?: number;
  unit?: string;
  /** PRNG seed (uint32); default derived from the stream name, so runs repeat unless told otherwise. */
  seed?: number;
}

export interface SimulatorConfig {
  name: string;
  streams: SimulatorStreamConfig[];
}

/** Interval timer port, so tests can fire ticks by hand. */
export interface IntervalTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export const systemIntervalTimers: IntervalTimers = {
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). Not for anything secret. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of a string: the default seed of a stream. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Chance per sample of a 'spike' stream jumping to max. */
const SPIKE_P = 0.02;
/** Random-walk step and sine noise as fractions of (max - min). */
const WALK_STEP = 0.05;
const SINE_NOISE = 0.01;
const MAX_RATE_HZ = 10_000;
/** Shortest timer period: node's timers are not precise below a few ms, so faster streams emit several readings per tick. */
const MIN_TICK_MS = 10;

/**
 * The sample generator of one stream: `next()` returns sample k = 0, 1, 2, ... as a pure function of the
 * config and seed (exported for tests and for tools that want the values without a driver).
 */
export function sampler(cfg: SimulatorStreamConfig): () => number {
  const min = cfg.min ?? 0;
  const max = cfg.max ?? 100;
  const range = max - min;
  const periodS = cfg.periodS ?? 60;
  const rand = mulberry32(cfg.seed ?? fnv1a(cfg.stream));
  const clamp = (v: number): number => Math.min(max, Math.max(min, v));
  let k = 0;
  let walk = min + range / 2;
  return () => {
    const t = k++ / cfg.rateHz;
    switch (cfg.shape) {
      case 'sine':
        return clamp(min + (range / 2) * (1 + Math.sin((2 * Math.PI * t) / periodS)) + (rand() - 0.5) * 2 * SINE_NOISE * range);
      case 'random-walk': {
        walk += (rand() - 0.5) * 2 * WALK_STEP * range;
        if (walk > max) walk = 2 * max - walk;
        if (walk < min) walk = 2 * min - walk;
        walk = clamp(walk);
        return walk;
      }
      case 'step':
        return Math.floor(t / periodS) % 2 === 0 ? min : max;
      case 'spike':
        return rand() < SPIKE_P ? max : min + rand() * WALK_STEP * range;
    }
  };
}

/** Checks a simulator config; throws SensorError 'SENSOR_CONFIG_INVALID' naming the bad field. */
export function validateSimulatorConfig(config: SimulatorConfig): void {
  const bad = (field: string, msg: string): never => {
    throw new SensorError('SENSOR_CONFIG_INVALID', `simulator: '${field}' ${msg}`, { field });
  };
  if (typeof config !== 'object' || config === null) bad('config', 'must be an object');
  if (typeof config.name !== 'string' || config.name.trim() === '') bad('name', 'must be a non-empty source name');
  if (!Array.isArray(config.streams) || config.streams.length === 0) bad('streams', 'must list at least one stream');
  const seen = new Set<string>();
  const known = new Set(['stream', 'shape', 'rateHz', 'min', 'max', 'periodS', 'unit', 'seed']);
  config.streams.forEach((s, i) => {
    const f = (name: string): string => `streams[${i}].${name}`;
    if (typeof s !== 'object' || s === null) bad(`streams[${i}]`, 'must be an object');
    for (const key of Object.keys(s)) if (!known.has(key)) bad(f(key), 'is not a simulator stream option');
    if (typeof s.stream !== 'string' || s.stream.trim() === '') bad(f('stream'), 'must be a non-empty stream name');
    if (seen.has(s.stream)) bad(f('stream'), `'${s.stream}' is configured twice`);
    seen.add(s.stream);
    if (!['sine', 'random-walk', 'step', 'spike'].includes(s.shape)) bad(f('shape'), "must be 'sine', 'random-walk', 'step' or 'spike'");
    if (typeof s.rateHz !== 'number' || !(s.rateHz > 0 && s.rateHz <= MAX_RATE_HZ)) bad(f('rateHz'), `must be a number in (0, ${MAX_RATE_HZ}]`);
    for (const k of ['min', 'max'] as const) {
      if (s[k] !== undefined && !(typeof s[k] === 'number' && Number.isFinite(s[k]))) bad(f(k), 'must be a finite number');
    }
    if (!((s.min ?? 0) < (s.max ?? 100))) bad(f('max'), `must be greater than min (${s.min ?? 0})`);
    if (!Number.isFinite((s.max ?? 100) - (s.min ?? 0))) bad(f('max'), 'max - min must be finite');
    if (s.periodS !== undefined && !(typeof s.periodS === 'number' && Number.isFinite(s.periodS) && s.periodS > 0)) bad(f('periodS'), 'must be a positive number of seconds');
    if (s.unit !== undefined && typeof s.unit !== 'string') bad(f('unit'), 'must be a string');
    if (s.seed !== undefined && !(Number.isInteger(s.seed) && s.seed >= 0 && s.seed <= 0xffffffff)) bad(f('seed'), 'must be an integer in [0, 2^32)');
  });
}

export interface SimulatorOptions {
  /** Default: the real setInterval. */
  readonly timers?: IntervalTimers;
  /** Readings buffered before the simulator pauses (default 1024). */
  readonly highWater?: number;
}

interface SimulatedStream {
  readonly cfg: SimulatorStreamConfig;
  readonly next: () => number;
  /** Timer period; rates above 100 Hz tick every MIN_TICK_MS with several readings. */
  readonly tickMs: number;
  /** Readings owed per tick (rateHz x tickMs / 1000, 1 at rates up to 100 Hz). */
  readonly perTick: number;
  /** Readings owed and not yet emitted (fractions carry over between ticks). */
  credit: number;
}

/** Synthetic readings at the configured rates; pauses its timers while the consumer is behind. */
export class SimulatorDriver extends DriverBase implements SensorDriver {
  private readonly timers: IntervalTimers;
  private readonly streams: SimulatedStream[];
  private handles: unknown[] = [];
  private running = false;
  private stopped = false;
  private readonly onAbort = (): void => void this.stop();

  constructor(
    config: SimulatorConfig,
    private readonly ctx: DriverContext,
    opts: SimulatorOptions = {},
  ) {
    validateSimulatorConfig(config);
    super(config.name, ctx, opts.highWater);
    this.timers = opts.timers ?? systemIntervalTimers;
    this.streams = config.streams.map((cfg) => {
      const slow = cfg.rateHz <= 1000 / MIN_TICK_MS;
      return { cfg: { ...cfg }, next: sampler(cfg), tickMs: slow ? 1000 / cfg.rateHz : MIN_TICK_MS, perTick: slow ? 1 : (cfg.rateHz * MIN_TICK_MS) / 1000, credit: 0 };
    });
  }

  async start(): Promise<void> {
    if (this.stopped) throw new SensorError('SENSOR_DRIVER_STOPPED', `simulator '${this.name}' was stopped: create a new driver`);
    if (this.running) return;
    if (this.ctx.signal?.aborted === true) return this.stop();
    this.ctx.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.setStatus({ state: 'connected', since: this.now() });
    this.arm();
    this.log.info('simulator started', { streams: this.streams.map((s) => s.cfg.stream) });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.disarm();
    this.ctx.signal?.removeEventListener('abort', this.onAbort);
    this.setStatus({ state: 'stopped' });
    this.endReadings();
  }

  protected override pauseSource(): void {
    this.disarm();
  }

  protected override resumeSource(): void {
    if (!this.stopped) this.arm();
  }

  private arm(): void {
    if (this.running) return;
    this.running = true;
    this.handles = this.streams.map((s) => this.timers.setInterval(() => this.tick(s), s.tickMs));
  }

  private disarm(): void {
    for (const h of this.handles) this.timers.clearInterval(h);
    this.handles = [];
    this.running = false;
  }

  private tick(s: SimulatedStream): void {
    const { stream, unit } = s.cfg;
    s.credit += s.perTick;
    // Stops early when the consumer falls behind (emitReading pauses the source); the rest waits for the next tick.
    while (this.running && s.credit >= 1) {
      s.credit -= 1;
      const value = s.next();
      this.emitReading(unit === undefined ? { stream, ts: this.now(), value } : { stream, ts: this.now(), value, unit });
    }
  }
}

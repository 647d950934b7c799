// Pipeline benchmark: readings/s end to end (ingest -> fsync'd LevelDB queue -> segmenter -> seal: sign,
// encrypt, wrap -> UnixFS content store), run in this process on one event loop, first fed by a real
// SimulatorDriver (--sim-streams at 1000 Hz each: whether the pipeline keeps up with what it offers), then by
// readings generated directly in the simulator's shape as fast as the pipeline acknowledges them (its
// capacity); then sealing on 256 KiB segments: the per-reading cost at ingest (ReadingsBuilder), the cost of
// closing a segment (sealReadings) against raw XChaCha20-Poly1305 on the same bytes, and a one-pass
// sealSegment with its steps; the process RSS; finally the whole `datagate dev` process (compiled, with its
// LBFT committee, run with the gateway's node flags) fed by its own simulator at --dev-streams x --dev-rate
// Hz: readings/s sealed and stored, and its RSS. Prints figures; asserts nothing.
//   npm run bench:pipeline [-- --seconds 10 --source all|sim|direct|dev --streams 8 --sim-streams 32 --inflight 1024
//                             --dev-streams 30 --dev-rate 1000 --dir /tmp]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { merkleRoot } from '../chain/index.ts';
import { MemorySigner } from '../device/index.ts';
import { UnixFsContentStore } from '../gateway/content/unixfs-store.ts';
import type { PipelineStatus } from '../gateway/pipeline/pipeline.ts';
import { Pipeline } from '../gateway/pipeline/pipeline.ts';
import { sealReadings, sealSegment } from '../gateway/pipeline/segment-crypto.ts';
import { ReadingsBuilder, encodeReadingLeaf, encodeSegmentReadings, summarizeReadings } from '../gateway/pipeline/segment-format.ts';
import type { Reading, SimulatorShape, SimulatorStreamConfig } from '../sensors/index.ts';
import { SimulatorDriver, nopSensorLogger, sampler } from '../sensors/index.ts';
import { verifyStore } from '../gateway/pipeline/verify-store.ts';
import { distIsFresh } from '../gateway/bin/build-state.mjs';
import { GATEWAY_NODE_FLAGS } from '../gateway/bin/node-flags.mjs';
import { startDev } from '../test/helpers/dev-process.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    source: { type: 'string', default: 'all' },
    'dev-streams': { type: 'string', default: '30' },
    'dev-rate': { type: 'string', default: '1000' },
    streams: { type: 'string', default: '8' },
    'sim-streams': { type: 'string', default: '32' },
    inflight: { type: 'string', default: '1024' },
    'window-ms': { type: 'string', default: '60000' },
    dir: { type: 'string', default: tmpdir() },
  },
});
const SECONDS = Number(values.seconds);
const SOURCE = String(values.source);
const DEV_STREAMS = Number(values['dev-streams']);
const DEV_RATE = Number(values['dev-rate']);
const runs = (which: string) => SOURCE === 'all' || SOURCE === which || (SOURCE === 'both' && which !== 'dev');
const STREAMS = Number(values.streams);
const SIM_STREAMS = Number(values['sim-streams']);
const INFLIGHT = Number(values.inflight);
const WINDOW_MS = Number(values['window-ms']);
const SEGMENT_BYTES = 262_144;
const SIM_MAX_HZ = 1000;

const MiB = 1048576;
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const memLine = () => {
  const m = process.memoryUsage();
  return `RSS ${(m.rss / MiB).toFixed(0)} MiB (JS heap used ${(m.heapUsed / MiB).toFixed(0)} MiB, array buffers ${(m.arrayBuffers / MiB).toFixed(0)} MiB)`;
};
const peakRssMiB = () => process.resourceUsage().maxRSS / 1024;

const SHAPES: SimulatorShape[] = ['sine', 'random-walk', 'step', 'spike'];
const UNITS = ['C', '%', 'hPa', undefined];
const streamConfigs = (n: number, rateHz: number): SimulatorStreamConfig[] =>
  Array.from({ length: n }, (_, i) => {
    const unit = UNITS[i % UNITS.length];
    return { stream: `bench/s${i}`, shape: SHAPES[i % SHAPES.length]!, rateHz, ...(unit !== undefined ? { unit } : {}) };
  });

/** Readings as SimulatorDriver emits them ({stream, ts, value, unit?} plus a per-stream seq), round robin, without timers. */
function* directReadings(configs: readonly SimulatorStreamConfig[]): Generator<Reading> {
  const next = configs.map((c) => sampler(c));
  const seq = configs.map(() => 0);
  for (let i = 0; ; i = (i + 1) % configs.length) {
    const { stream, unit } = configs[i]!;
    const value = next[i]!();
    const s = seq[i]!++;
    yield unit === undefined ? { stream, ts: Date.now(), seq: s, value } : { stream, ts: Date.now(), seq: s, value, unit };
  }
}

/** Keeps up to INFLIGHT ingest() calls in flight; `wait()` resolves once one more may start. */
class InFlight {
  n = 0;
  acked = 0;
  rejected = 0;
  firstError: unknown = null;
  #wake: (() => void) | null = null;
  #idle: (() => void) | null = null;

  ingest(pipeline: Pipeline, r: Reading): void {
    this.n++;
    pipeline.ingest(r).then(
      () => this.#settle(true),
      (err: unknown) => {
        this.firstError ??= err;
        this.#settle(false);
      },
    );
  }

  #settle(ok: boolean): void {
    this.n--;
    if (ok) this.acked++;
    else this.rejected++;
    const w = this.#wake;
    this.#wake = null;
    w?.();
    if (this.n === 0) this.#idle?.();
  }

  wait(): Promise<void> {
    return new Promise((resolve) => (this.#wake = resolve));
  }

  drained(): Promise<void> {
    return this.n === 0 ? Promise.resolve() : new Promise((resolve) => (this.#idle = resolve));
  }
}

interface Fed {
  readonly offered: number;
  readonly note: string;
}

async function runPipeline(label: string, base: string, feed: (p: Pipeline, f: InFlight, deadline: number) => Promise<Fed>): Promise<number> {
  console.log(`\n== ${label}`);
  const content = await UnixFsContentStore.open(join(base, 'content'));
  const pipeline = await Pipeline.open({
    dir: join(base, 'pipeline'), contentStore: content, signer: new MemorySigner(new Uint8Array(32).fill(0x5b)), masterKeyPath: join(base, 'master.key'),
    windowMs: WINDOW_MS, maxSegmentBytes: SEGMENT_BYTES, limits: { maxQueueBytes: 512 * MiB, maxStoreBytes: 8 * 1024 * MiB, policy: 'stop-accepting' },
  });
  const f = new InFlight();
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const fed = await feed(pipeline, f, start + SECONDS * 1000);
  await f.drained();
  const ackSecs = (performance.now() - start) / 1000;
  const atWindow: PipelineStatus = pipeline.status();
  const windowMem = memLine();
  const t0 = performance.now();
  await pipeline.flush();
  const flushSecs = (performance.now() - t0) / 1000;
  const totalSecs = ackSecs + flushSecs;
  const cpu = process.cpuUsage(cpu0);
  const s = pipeline.status();
  await pipeline.close();
  await content.close();
  const e2e = s.ingested / totalSecs;
  console.log(`offered: ${fmt(fed.offered)} readings (${fed.note})`);
  console.log(`acknowledged: ${fmt(f.acked)} readings in ${ackSecs.toFixed(1)} s = ${fmt(f.acked / ackSecs)} readings/s; rejected ${f.rejected}${f.firstError !== null ? ` (first: ${(f.firstError as { code?: string }).code ?? (f.firstError as Error).message})` : ''}`);
  console.log(`group commits: ${fmt(s.commits)} (${fmt(s.ingested / Math.max(1, s.commits), 1)} readings per fsync'd batch)`);
  console.log(`at the end of the window: ${atWindow.sealed} segments sealed, ${atWindow.stored} stored, ${fmt(atWindow.queuedReadings)} readings still queued (${atWindow.openSegments} open segments, ${atWindow.awaitingSeal} awaiting seal)`);
  console.log(`memory at the end of the window: ${windowMem}`);
  console.log(`flush: ${flushSecs.toFixed(2)} s; then ${s.stored} segments stored (${s.sealErrors + s.storeErrors} errors), ${(s.storeBytes / MiB).toFixed(1)} MiB of envelopes, ${fmt(s.ingested / Math.max(1, s.stored))} readings per segment`);
  console.log(`end to end (acknowledged, sealed and stored, flush included): ${fmt(e2e)} readings/s`);
  console.log(`CPU: ${(((cpu.user + cpu.system) / 1e6 / totalSecs) * 100).toFixed(0)}% of one core (user+system of the whole process, LevelDB's and libuv's threads included)`);
  console.log(`memory after close: ${memLine()}, peak RSS so far ${peakRssMiB().toFixed(0)} MiB`);
  return e2e;
}

/** SimulatorDriver at its 1000 Hz cap per stream, consumed with up to INFLIGHT ingest() calls in flight. */
async function feedSimulator(pipeline: Pipeline, f: InFlight, deadline: number): Promise<Fed> {
  const driver = new SimulatorDriver({ name: 'bench', streams: streamConfigs(SIM_STREAMS, SIM_MAX_HZ) }, { logger: nopSensorLogger }, { highWater: 4096 });
  await driver.start();
  const stopAt = setTimeout(() => void driver.stop(), Math.max(0, deadline - performance.now()));
  for await (const r of driver.readings()) {
    if (performance.now() >= deadline) break;
    f.ingest(pipeline, r);
    if (f.n >= INFLIGHT) await f.wait();
  }
  clearTimeout(stopAt);
  await driver.stop();
  const offered = driver.counters().readings;
  return { offered, note: `emitted by the simulator: ${fmt(offered / SECONDS)}/s of a nominal ${fmt(SIM_STREAMS * SIM_MAX_HZ)}/s` };
}

/** Readings generated in the simulator's shape as fast as acknowledgements free slots. */
async function feedDirect(pipeline: Pipeline, f: InFlight, deadline: number): Promise<Fed> {
  const gen = directReadings(streamConfigs(STREAMS, SIM_MAX_HZ));
  let offered = 0;
  while (performance.now() < deadline) {
    while (f.n < INFLIGHT) {
      f.ingest(pipeline, gen.next().value as Reading);
      offered++;
    }
    await f.wait();
  }
  return { offered, note: 'generated directly, no timers' };
}

/** Runs `fn` for about `ms` and returns calls per second. */
function perSecond(fn: () => unknown, ms = 1500): number {
  fn();
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    fn();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

async function benchSealing(): Promise<void> {
  console.log('\n== sealing 256 KiB segments (one stream, simulator-shaped readings with a unit)');
  const [cfg] = streamConfigs(1, SIM_MAX_HZ);
  const sample = [...take(directReadings([cfg!]), 1000)];
  const perReading = encodeSegmentReadings(sample).bytes.length / sample.length;
  const readings = [...take(directReadings([cfg!]), Math.floor(SEGMENT_BYTES / perReading))];
  const encoded = encodeSegmentReadings(readings);
  const plainMiB = encoded.bytes.length / MiB;
  const signer = new MemorySigner(new Uint8Array(32).fill(0x5c));
  console.log(`segment: ${readings.length} readings, ${fmt(encoded.bytes.length)} bytes of plaintext (${perReading.toFixed(1)} bytes per reading)`);

  // The pipeline's way: each reading goes into a ReadingsBuilder as it arrives (leaf encoding and hash,
  // running Merkle root); closing the segment is sealReadings: one signature and one encryption.
  const leaves = readings.map((r) => encodeReadingLeaf(r));
  const buildPerS = perSecond(() => {
    const b = new ReadingsBuilder(cfg!.stream);
    for (let i = 0; i < readings.length; i++) b.add(readings[i]!, leaves[i]);
    return b.finish();
  });
  const built = (() => {
    const b = new ReadingsBuilder(cfg!.stream);
    for (const r of readings) b.add(r);
    return b.finish();
  })();
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < 2000) {
    const sealed = await sealReadings(built, signer);
    sealed.key.fill(0);
    n++;
  }
  const closePerS = n / ((performance.now() - start) / 1000);
  const key = new Uint8Array(32).fill(7);
  const nonce = new Uint8Array(24).fill(9);
  const aad = new Uint8Array(32).fill(1);
  const cipherPerS = perSecond(() => xchacha20poly1305(key, nonce, aad).encrypt(encoded.bytes));
  console.log(`per reading at ingest (ReadingsBuilder.add with the leaf from prepareReading: append, leaf hash, Merkle merge): ${((1e6 / buildPerS) / readings.length).toFixed(2)} us`);
  console.log(`closing a segment (sealReadings: sign, encrypt, envelope): ${(1000 / closePerS).toFixed(2)} ms, i.e. ${(closePerS * plainMiB).toFixed(1)} MiB/s`);
  console.log(`raw @noble/ciphers xchacha20poly1305 on the same bytes: ${(cipherPerS * plainMiB).toFixed(1)} MiB/s (${(1000 / cipherPerS).toFixed(2)} ms); closing runs at ${((closePerS / cipherPerS) * 100).toFixed(0)}% of it (ratio ${(closePerS / cipherPerS).toFixed(2)})`);

  // sealSegment from reading objects in one pass (what a segment costs when nothing was built as it arrived).
  let m = 0;
  const wholeStart = performance.now();
  while (performance.now() - wholeStart < 2000) {
    const sealed = await sealSegment(readings, cfg!.stream, signer);
    sealed.key.fill(0);
    m++;
  }
  const wholePerS = m / ((performance.now() - wholeStart) / 1000);
  console.log(`sealSegment in one pass from reading objects: ${(1000 / wholePerS).toFixed(1)} ms per segment (${(wholePerS * plainMiB).toFixed(1)} MiB/s; ratio to the raw cipher ${(wholePerS / cipherPerS).toFixed(3)})`);
  const steps: [string, number][] = [
    ['encode readings (RLP leaves + segment bytes)', 1000 / perSecond(() => encodeSegmentReadings(readings))],
    ['summarize readings (manifest fields)', 1000 / perSecond(() => summarizeReadings(readings))],
    [`Merkle root (keccak256 of ${readings.length} leaves and ${readings.length - 1} nodes)`, 1000 / perSecond(() => merkleRoot(encoded.leaves))],
    ['cipher (xchacha20poly1305 encrypt)', 1000 / cipherPerS],
  ];
  const sum = steps.reduce((a, [, ms]) => a + ms, 0);
  console.log(`  where a one-pass seal goes (each step timed alone; the pipeline spreads the first three over ingest):`);
  for (const [label, ms] of steps) console.log(`    ${label}: ${ms.toFixed(2)} ms (${((ms / sum) * 100).toFixed(0)}%)`);
}

/** Resident memory of a process from /proc (VmRSS now, VmHWM peak), in MiB. */
function procMemMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/**
 * The whole `datagate dev` process (default committee of 4 validators + 2 proposers, RPC, content store)
 * with its simulator at DEV_STREAMS x DEV_RATE readings/s for SECONDS, then a clean stop (which seals what
 * is queued). Readings are counted afterwards by opening every stored segment (verifyStore), which also
 * checks that none is missing or duplicated.
 */
async function benchDev(dir: string): Promise<{ rate: number; peakMiB: number; compiled: boolean }> {
  const compiled = distIsFresh(fileURLToPath(new URL('..', import.meta.url)));
  // As `npm start` and the datagate shebang run it, unless the caller says otherwise.
  process.env.DATAGATE_DEV_NODE_ARGS ??= GATEWAY_NODE_FLAGS.join(' ');
  console.log(`\n== datagate dev (${compiled ? 'compiled dist/' : 'TypeScript through tsx'}, node ${process.env.DATAGATE_DEV_NODE_ARGS || '(no flags)'}), simulator ${DEV_STREAMS} streams x ${fmt(DEV_RATE)} Hz = ${fmt(DEV_STREAMS * DEV_RATE)} readings/s offered, ${SECONDS} s`);
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'bench.json');
  const streams = streamConfigs(DEV_STREAMS, DEV_RATE).map((c) => ({ ...c, stream: c.stream.replace('bench/', 'dev/') }));
  writeFileSync(config, JSON.stringify({ dataDir: join(dir, 'data'), sensors: { sources: [{ kind: 'simulator', name: 'bench', streams }] }, log: { level: 'warn', format: 'json' } }));
  const node = await startDev(['--config', config]);
  const pid = node.child.pid!;
  const samples: number[] = [];
  const started = performance.now();
  const sampler = setInterval(() => samples.push(procMemMiB(pid).rss), 250);
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  clearInterval(sampler);
  const { peak } = procMemMiB(pid);
  const stopAt = performance.now();
  const code = await node.stop('SIGINT');
  const stopSecs = (performance.now() - stopAt) / 1000;
  const runSecs = (stopAt - started) / 1000;
  if (code !== 0) console.log(`dev exited with ${code}:\n${node.output().slice(-2000)}`);
  const data = join(dir, 'data');
  const content = await UnixFsContentStore.open(join(data, 'content'));
  const report = await verifyStore({ dir: join(data, 'pipeline'), contentStore: content, masterKeyPath: join(data, 'master.key') });
  await content.close();
  const rate = report.readings / runSecs;
  const sorted = [...samples].sort((a, b) => a - b);
  console.log(`stored: ${fmt(report.readings)} readings in ${report.segments} segments (gaps ${report.gaps}, duplicates ${report.duplicates}, corrupt ${report.corrupt}, still queued ${report.queued})`);
  console.log(`rate: ${fmt(rate)} readings/s over the ${runSecs.toFixed(1)} s run (the simulator pauses when the pipeline is behind, so this is what the process sustained); clean stop incl. final seal ${stopSecs.toFixed(1)} s`);
  console.log(`RSS of the dev process: median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)} MiB, peak (VmHWM) ${peak.toFixed(0)} MiB`);
  return { rate, peakMiB: peak, compiled };
}

function* take<T>(it: Iterator<T>, n: number): Generator<T> {
  for (let i = 0; i < n; i++) yield it.next().value as T;
}

const loadedMem = memLine();
const base = mkdtempSync(join(String(values.dir), 'datagate-bench-pipeline-'));
try {
  console.log(`pipeline benchmark: ${SECONDS} s per source, up to ${INFLIGHT} ingest() calls in flight, 256 KiB segments, ${fmt(WINDOW_MS / 1000, 1)} s window, UnixFS content store; data in ${base}`);
  let simRate: number | null = null;
  let directRate: number | null = null;
  if (runs('sim')) {
    simRate = await runPipeline(`SimulatorDriver, ${SIM_STREAMS} streams at ${SIM_MAX_HZ} Hz (the simulator's cap per stream)`, join(base, 'sim'), feedSimulator);
  }
  if (runs('direct')) {
    directRate = await runPipeline(`readings generated directly in the simulator's shape, ${STREAMS} streams, as fast as acknowledged`, join(base, 'direct'), feedDirect);
  }
  const pipelinePeak = peakRssMiB();
  await benchSealing();

  console.log('\n== memory');
  console.log(`peak RSS (process.resourceUsage().maxRSS): ${fmt(process.resourceUsage().maxRSS)} KiB = ${peakRssMiB().toFixed(0)} MiB (${pipelinePeak.toFixed(0)} MiB when the pipeline runs were over, before the sealing loop)`);
  console.log(`after loading the modules (node + tsx + imports, before any pipeline): ${loadedMem}`);
  console.log(`after the run: ${memLine()}`);

  const goalRate = directRate ?? simRate;
  if (goalRate !== null) {
    const which = directRate !== null ? 'directly generated readings' : 'simulator-fed, capped by the simulator';
    console.log(`\ngoal: >= 20,000 readings/s end to end: ${goalRate >= 20_000 ? 'met' : 'NOT met'} (${fmt(goalRate)} readings/s acknowledged, sealed and stored, ${which})`);
  }
  if (runs('dev')) {
    const dev = await benchDev(join(base, 'dev'));
    console.log(`goal: >= 20,000 readings/s through the whole datagate dev process: ${dev.rate >= 20_000 ? 'met' : 'NOT met'} (${fmt(dev.rate)} readings/s sealed and stored)`);
    console.log(`goal: whole datagate dev process < 150 MiB RSS: ${dev.peakMiB < 150 ? 'met' : 'NOT met'} (peak ${dev.peakMiB.toFixed(0)} MiB while taking ${fmt(dev.rate)} readings/s${dev.compiled ? '' : '; ran from the TypeScript sources through tsx, run `npm run build` first'})`);
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}

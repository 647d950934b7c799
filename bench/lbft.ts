// LBFT benchmark: n validators and 2 proposers in one process over real ledgers and real secp256k1
// signatures, on the native and the noble crypto path. For each n it prints heights per second with empty
// blocks, p50/p99 time from a round-0 PROPOSAL to a validator's commit, and how long after the round-0
// timer fires a silent proposer's impeachment block I(h) is committed. Prints figures and whether the goals
// are met; asserts nothing. All nodes share one JS thread, so the CPU cost of a height is the sum over its
// nodes, which real deployments spread over n machines. DATAGATE_CRYPTO is read once at import, so each path runs in a child process
// (this file with --child) and the parent gathers the JSON the children print.
//   npm run bench:lbft [-- --seconds 8 --n 4,7,16 --paths native,noble --timeout-ms 200 --wal --profile DIR]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { secp256k1BackendName } from '../chain/index.ts';
import type { BenchCluster } from './lbft-cluster.ts';
import { clock, startBenchCluster } from './lbft-cluster.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    n: { type: 'string', default: '4,7,16' },
    paths: { type: 'string', default: 'native,noble' },
    'timeout-ms': { type: 'string', default: '200' },
    'period-ms': { type: 'string', default: '1' },
    wal: { type: 'boolean', default: false },
    profile: { type: 'string' },
    child: { type: 'boolean', default: false },
  },
});

function positive(name: string, text: string): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`--${name} must be a positive number, got ${JSON.stringify(text)}`);
  return v;
}
const SECONDS = positive('seconds', values.seconds);
const TIMEOUT_MS = positive('timeout-ms', values['timeout-ms']);
const PERIOD_MS = positive('period-ms', values['period-ms']);
const SIZES = values.n.split(',').map((s) => positive('n', s));
for (const n of SIZES) if (!Number.isInteger(n)) throw new RangeError(`--n takes whole numbers of validators, got ${n}`);
const PATHS = values.paths.split(',').map((p) => p.trim());
for (const p of PATHS) if (p !== 'native' && p !== 'noble') throw new RangeError(`--paths takes native and/or noble, got ${JSON.stringify(p)}`);
const PROPOSERS = 2;
const WAL = values.wal;
/** Goals printed next to the figures. */
const GOAL_N4_NATIVE_P50_MS = 10;
const GOAL_IMPEACHMENT_MS = 50;

interface Percentiles {
  readonly p50: number;
  readonly p99: number;
  readonly samples: number;
}

interface ConfigResult {
  readonly path: string;
  readonly n: number;
  readonly heights: number;
  readonly seconds: number;
  readonly heightsPerSecond: number;
  /** CPU time of the whole process (all nodes, user + system) per height. */
  readonly cpuMsPerHeight: number;
  /** Round-0 PROPOSAL signed by the proposer to each validator's commit. */
  readonly latency: Percentiles;
  /** Heights of the throughput run decided in a round above 0 (should be none). */
  readonly laterRounds: number;
  /** Commit of I(h) minus the moment the validator's round-0 timer was due; null when skipped. */
  readonly impeachment: (Percentiles & { readonly timeoutMs: number; readonly liveImpeached: number }) | null;
  readonly notes: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => process.stderr.write(`  [${secp256k1BackendName()}] ${line}\n`);

function percentiles(samples: number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
  return { p50: at(50), p99: at(99), samples: sorted.length };
}

/** Empty blocks as fast as consensus allows: heights/s and PROPOSAL-to-commit latency over `SECONDS`. */
async function measureThroughput(dir: string, n: number): Promise<Omit<ConfigResult, 'path' | 'impeachment' | 'notes'>> {
  const latencies: number[] = [];
  let window: { from: bigint; end: number } | null = null;
  // The timeout is long here so that only consensus speed is measured, never a round change.
  const cluster: BenchCluster = await startBenchCluster(dir, {
    validators: n,
    proposers: PROPOSERS,
    periodMs: PERIOD_MS,
    timeoutMs: 60_000,
    wal: WAL,
    onCommit(node, block, at) {
      if (!node.validator || window === null || at > window.end || block.header.number <= window.from) return;
      const sent = cluster.proposedAt.get(block.hash);
      if (sent !== undefined) latencies.push(at - sent);
    },
  });
  try {
    const v0 = cluster.validators[0]!;
    const height = () => v0.ledger.head.header.number;
    // Warm up (JIT, LevelDB) for 20 heights or one second, whichever comes first.
    const warm = clock() + 1000;
    while (height() < 20n && clock() < warm) await sleep(5);
    const from = height();
    const start = clock();
    const cpu = process.cpuUsage();
    window = { from, end: start + SECONDS * 1000 };
    await sleep(SECONDS * 1000);
    const seconds = (clock() - start) / 1000;
    const heights = Number(height() - from);
    const used = process.cpuUsage(cpu);
    const cpuMsPerHeight = (used.user + used.system) / 1000 / heights;
    const laterRounds = v0.metrics.roundsHistogram.slice(1).reduce((a, b) => a + b, 0);
    return { n, heights, seconds, heightsPerSecond: heights / seconds, cpuMsPerHeight, latency: percentiles(latencies), laterRounds };
  } finally {
    await cluster.stop();
  }
}

/**
 * Proposer p0 silent from the start, so every other height is impeached. For each validator and each
 * I(h) it commits: commit time minus the moment its round-0 timer was due, which is
 * max(parent timestamp + period, start of the height at that validator) + timeout.
 */
async function measureImpeachment(dir: string, n: number, timeoutMs: number): Promise<NonNullable<ConfigResult['impeachment']>> {
  const costs: number[] = [];
  const last = new Map<string, { height: bigint; at: number; timestamp: number }>();
  let end = Infinity;
  const cluster = await startBenchCluster(dir, {
    validators: n,
    proposers: PROPOSERS,
    periodMs: PERIOD_MS,
    timeoutMs,
    down: ['p0'],
    wal: WAL,
    onCommit(node, block, at) {
      if (!node.validator) return;
      const h = block.header;
      const prev = last.get(node.name);
      last.set(node.name, { height: h.number, at, timestamp: h.timestamp });
      // An unsealed block is I(h); the previous commit of this node started the height.
      if (at > end || h.seal.length !== 0 || prev === undefined || prev.height !== h.number - 1n) return;
      costs.push(at - (Math.max(prev.timestamp + PERIOD_MS, prev.at) + timeoutMs));
    },
  });
  try {
    end = clock() + SECONDS * 1000;
    await sleep(SECONDS * 1000);
    const live = cluster.spec.proposers[1];
    const liveImpeached = cluster.validators[0]!.metrics.impeachments.filter((i) => i.proposer === live).length;
    return { ...percentiles(costs), timeoutMs, liveImpeached };
  } finally {
    await cluster.stop();
  }
}

async function child(): Promise<void> {
  const path = secp256k1BackendName();
  const dir = mkdtempSync(join(tmpdir(), 'datagate-bench-lbft-'));
  try {
    for (const n of SIZES) {
      const notes: string[] = [];
      log(`n=${n}: consensus speed for ${SECONDS} s...`);
      const tp = await measureThroughput(join(dir, `speed-${n}`), n);
      log(`n=${n}: ${tp.heights} heights in ${tp.seconds.toFixed(1)} s`);
      if (tp.laterRounds > 0) notes.push(`${tp.laterRounds} heights needed a round change without any fault`);
      let impeachment: ConfigResult['impeachment'] = null;
      const msPerHeight = (tp.seconds * 1000) / tp.heights;
      if (tp.heights < 10) {
        notes.push(`too slow: only ${tp.heights} heights in ${tp.seconds.toFixed(1)} s, so the figures are rough and impeachment is not measured`);
      } else {
        // A timeout close to the time a height takes would impeach the live proposer too: raise it then.
        const timeoutMs = Math.max(TIMEOUT_MS, 100 * Math.ceil((3 * msPerHeight) / 100));
        if (timeoutMs > TIMEOUT_MS) notes.push(`impeachment measured with timeout ${timeoutMs} ms: a height takes ~${msPerHeight.toFixed(0)} ms, too close to ${TIMEOUT_MS} ms`);
        log(`n=${n}: impeachments (p0 silent, timeout ${timeoutMs} ms) for ${SECONDS} s...`);
        impeachment = await measureImpeachment(join(dir, `impeach-${n}`), n, timeoutMs);
        if (impeachment.liveImpeached > 0) notes.push(`the live proposer was impeached ${impeachment.liveImpeached} times`);
      }
      const result: ConfigResult = { path, ...tp, impeachment, notes };
      process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Run this file with --child under DATAGATE_CRYPTO=`path`; resolves with the results it printed. */
function runChild(path: string): Promise<{ results: ConfigResult[]; error: string | null }> {
  const args = ['--child', '--seconds', String(SECONDS), '--n', SIZES.join(','), '--timeout-ms', String(TIMEOUT_MS), '--period-ms', String(PERIOD_MS), ...(WAL ? ['--wal'] : [])];
  const prof = values.profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values.profile}`];
  const proc = spawn(process.execPath, [...process.execArgv, ...prof, fileURLToPath(import.meta.url), ...args], {
    env: { ...process.env, DATAGATE_CRYPTO: path },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const profiled = values.profile === undefined ? '' : ` (pid ${proc.pid}: its profile is ${values.profile}/CPU.*.${proc.pid}.0.*.cpuprofile)`;
  console.error(`running the ${path} path${profiled}...`);
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (c: string) => (out += c));
  return new Promise((resolve) => {
    proc.on('close', (code) => {
      const results = out
        .split('\n')
        .filter((l) => l.startsWith('RESULT '))
        .map((l) => JSON.parse(l.slice('RESULT '.length)) as ConfigResult);
      resolve({ results, error: code === 0 ? null : `child exited with code ${code}` });
    });
  });
}

const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : '-');
const met = (ok: boolean) => (ok ? 'met' : 'NOT met');

function impeachmentVerdict(i: ConfigResult['impeachment']): string {
  if (i === null) return 'not measured';
  if (i.samples === 0) return 'no impeachment committed';
  const timeout = i.timeoutMs === TIMEOUT_MS ? '' : ` (timeout raised to ${i.timeoutMs} ms)`;
  return `${met(i.p50 < GOAL_IMPEACHMENT_MS)} at p50 (${ms(i.p50)}), ${met(i.p99 < GOAL_IMPEACHMENT_MS)} at p99 (${ms(i.p99)})${timeout}`;
}

async function parent(): Promise<void> {
  const wal = WAL ? 'a consensus WAL per node' : 'no consensus WAL (--wal adds one per node)';
  console.log(`LBFT: n validators + ${PROPOSERS} proposers in one process (${cpus().length} CPUs, node ${process.version}; every node's work on one JS thread),`);
  console.log(`LevelDB per node, ${wal},`);
  console.log(`real secp256k1 signatures (verified once per process: the nodes share a verification cache), empty blocks,`);
  console.log(`period ${PERIOD_MS} ms, ${SECONDS} s per figure; impeachment timeout ${TIMEOUT_MS} ms with proposer p0 silent.`);
  const all: ConfigResult[] = [];
  for (const path of PATHS) {
    const { results, error } = await runChild(path);
    all.push(...results);
    if (error !== null) console.log(`${path}: ${error}${results.length === 0 ? ' (see its output above)' : ''}`);
  }
  console.log('');
  console.log('path    n   heights/s  CPU/height   proposal->commit p50 / p99   impeachment beyond timeout p50 / p99');
  for (const r of all) {
    const i = r.impeachment;
    const imp = i === null ? 'not measured' : `${ms(i.p50)} / ${ms(i.p99)} (${i.samples} commits of I(h)${i.timeoutMs === TIMEOUT_MS ? '' : `, timeout ${i.timeoutMs} ms`})`;
    const speed = r.heightsPerSecond.toFixed(1).padStart(9);
    const cpu = ms(r.cpuMsPerHeight).padStart(10);
    console.log(`${r.path.padEnd(7)} ${String(r.n).padStart(2)}  ${speed}  ${cpu}   ${`${ms(r.latency.p50)} / ${ms(r.latency.p99)}`.padEnd(28)} ${imp}`);
    for (const note of r.notes) console.log(`           note: ${note}`);
  }
  console.log('');
  console.log('goals (printed, not asserted):');
  const n4 = all.find((r) => r.path === 'native' && r.n === 4);
  console.log(`  n=4 native proposal->commit p50 < ${GOAL_N4_NATIVE_P50_MS} ms: ${n4 === undefined ? 'not run' : `${met(n4.latency.p50 < GOAL_N4_NATIVE_P50_MS)} (${ms(n4.latency.p50)})`}`);
  for (const r of all) console.log(`  ${r.path} n=${r.n} impeachment < ${GOAL_IMPEACHMENT_MS} ms beyond its timeout: ${impeachmentVerdict(r.impeachment)}`);
}

if (values.child) {
  await child();
  // LbftNode.stop() can leave a round timer armed when it stops during a WAL write (the event in flight
  // sets it after stop cleared them), which would keep this process alive until the timer fires.
  process.exit(0);
} else {
  await parent();
}

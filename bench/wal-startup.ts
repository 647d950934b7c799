// Start-up benchmark of an LBFT node with a long-running consensus WAL. A committee (4 validators, 1 proposer,
// each with its own LevelDB ledger and WAL) runs empty blocks until validator v0 has written each of the given
// amounts to its WAL (over its whole life: pruned files count); at each amount the committee stops and v0 alone
// is started again (WAL open and LbftNode.start(), which reads the WAL), as a restarted node does before it
// votes again. Prints what was written, what is on disk, how much of it the start-up read (files, records,
// payload bytes) and how long it took. Asserts nothing.
//   npm run bench:wal-startup [-- --mib 2,5,10 --runs 3]
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Ledger } from '../chain/index.ts';
import { LbftNode } from '../chain/lbft/driver.ts';
import { MemoryTransport } from '../chain/lbft/memory-transport.ts';
import { Wal } from '../chain/lbft/wal.ts';
import { MemorySigner } from '../device/index.ts';
import type { BenchCluster } from './lbft-cluster.ts';
import { clock, keyOf, startBenchCluster } from './lbft-cluster.ts';

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '2,5,10' },
    runs: { type: 'string', default: '3' },
  },
});
const SIZES = values.mib.split(',').map((s) => {
  const v = Number(s);
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`--mib takes positive sizes in MiB, got ${JSON.stringify(s)}`);
  return v;
});
const RUNS = Number(values.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new RangeError(`--runs must be a whole number >= 1, got ${JSON.stringify(values.runs)}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Largest size seen of each WAL file of v0, by name: their sum is what v0 wrote, pruned files included. */
const seen = new Map<string, number>();

function walBytes(dir: string): { bytes: number; files: number; written: number } {
  let bytes = 0;
  let files = 0;
  for (const name of readdirSync(dir)) {
    const size = statSync(join(dir, name)).size;
    seen.set(name, Math.max(size, seen.get(name) ?? 0));
    bytes += size;
    files++;
  }
  let written = 0;
  for (const size of seen.values()) written += size;
  return { bytes, files, written };
}

/** Run the committee in `dir` until v0 has written `bytes` to its WAL; returns v0's head when it stopped. */
async function growTo(dir: string, bytes: number): Promise<bigint> {
  const cluster: BenchCluster = await startBenchCluster(dir, { validators: 4, proposers: 1, periodMs: 1, timeoutMs: 60_000, wal: true });
  try {
    while (walBytes(join(dir, 'v0-wal')).written < bytes) await sleep(100);
    return cluster.validators[0]!.ledger.head.header.number;
  } finally {
    await cluster.stop();
  }
}

/** Start v0 alone as a restarted node does; times the WAL open plus LbftNode.start() (which reads the WAL). */
async function restartV0(dir: string, spec: BenchCluster['spec']) {
  const ledger = await Ledger.open(join(dir, 'v0'), spec);
  try {
    const t0 = clock();
    const wal = await Wal.open(join(dir, 'v0-wal'));
    const signer = new MemorySigner(keyOf('validator 0'));
    const transport = new MemoryTransport(spec.committee.map((m) => m.address));
    const node = new LbftNode({ ledger, signer, transport, wal });
    await node.start();
    const ms = clock() - t0;
    await node.stop();
    const stats = wal.replayStats;
    await wal.close();
    return { ms, files: stats.files, records: stats.frames, payloadBytes: stats.payloadBytes };
  } finally {
    await ledger.close();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'datagate-bench-wal-'));
try {
  // The spec only depends on the keys and parameters: a throw-away cluster gives it.
  const probe = await startBenchCluster(join(dir, 'probe'), { validators: 4, proposers: 1, periodMs: 1, timeoutMs: 60_000 });
  const spec = probe.spec;
  await probe.stop();
  console.log('WAL written (MiB) | on disk (MiB, files) | head | start-up read (files, records, MiB) | start-up ms (min / median of runs)');
  for (const mib of SIZES) {
    const head = await growTo(dir, mib * 1024 * 1024);
    const disk = walBytes(join(dir, 'v0-wal'));
    const runs = [];
    for (let i = 0; i < RUNS; i++) runs.push(await restartV0(dir, spec));
    const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
    const r = runs[0]!;
    console.log(
      `${(disk.written / 2 ** 20).toFixed(1).padStart(6)} MiB | ${(disk.bytes / 2 ** 20).toFixed(1)} MiB, ${disk.files} files | ${head} | ${r.files} files, ${r.records} records, ` +
        `${(r.payloadBytes / 2 ** 20).toFixed(2)} MiB | ${ms[0]!.toFixed(0)} / ${ms[Math.floor(ms.length / 2)]!.toFixed(0)}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

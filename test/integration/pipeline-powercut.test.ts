// Power cuts: a child process (test/helpers/pipeline-child.ts) ingests ~5k readings/s into a Pipeline over a
// real UnixFsContentStore (LevelDB) with 200 ms windows, printing each acknowledged reading; we SIGKILL it at
// seeded random moments (some during open and recovery, most while ingesting, sealing and storing) and
// restart it on the same directory, at least 50 times. After a final clean run that flushes, every
// acknowledged reading must be in exactly one stored segment, and verifyStore must find no gap, duplicate or
// corrupt segment. Each run restarts the streams' seq at 0 (a restarted driver); the pipeline records the
// boundary, and the wall-clock ts tells runs apart. PIPELINE_POWERCUT_SEED / _RUNS override the defaults.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MemorySigner } from '../../device/index.ts';
import { UnixFsContentStore } from '../../gateway/content/unixfs-store.ts';
import { Pipeline } from '../../gateway/pipeline/pipeline.ts';
import { verifyStore } from '../../gateway/pipeline/verify-store.ts';
import { mulberry32 } from '../../sensors/index.ts';
import { tempDir } from '../helpers/chain.ts';
import { CHILD_SIGNER_KEY } from '../helpers/pipeline-child.ts';
import { allSegments, storedReadings } from '../helpers/pipeline-fixtures.ts';

const CHILD = fileURLToPath(new URL('../helpers/pipeline-child.ts', import.meta.url));
const SEED = Number(process.env.PIPELINE_POWERCUT_SEED ?? 0x5eed);
const RUNS = Number(process.env.PIPELINE_POWERCUT_RUNS ?? 50);

interface RunResult {
  readonly acked: string[];
  readonly rejected: string[];
  readonly signal: NodeJS.Signals | null;
  readonly code: number | null;
  readonly stderr: string;
  readonly phase: string;
}

/**
 * Run the child once. `killAt` picks the moment: after the line `after` ('loaded' or 'ready') plus `delayMs`;
 * null lets it run to its end (mode 'flush').
 */
function runChild(base: string, mode: 'run' | 'flush', killAt: { after: 'loaded' | 'ready'; delayMs: number } | null): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, base, mode, '5000', '200'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: string[] = [];
    const rejected: string[] = [];
    let phase = 'starting';
    let stderr = '';
    let buf = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => void (stderr += d));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('a ')) acked.push(line.slice(2).replaceAll(' ', '|'));
        else if (line.startsWith('r ')) rejected.push(line);
        else {
          phase = line;
          if (killAt !== null && line === killAt.after) setTimeout(() => child.kill('SIGKILL'), killAt.delayMs);
        }
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ acked, rejected, signal, code, stderr, phase }));
  });
}

// The work is fixed (RUNS children, each started through tsx: 1-3 s on a busy 2-core box); the timeout only
// catches a hang, so it leaves room for a loaded machine (135 s idle-ish, 170+ s under a second suite).
test('SIGKILL at random moments never loses an acknowledged reading nor stores one twice', { timeout: 480_000 }, async (t) => {
  const base = tempDir(t);
  const rand = mulberry32(SEED);
  const acked = new Set<string>();
  const phases: Record<string, number> = {};
  t.diagnostic(`seed ${SEED}, ${RUNS} runs`);
  const started = performance.now();
  for (let i = 0; i < RUNS; i++) {
    const early = rand() < 0.2;
    const killAt = early ? { after: 'loaded' as const, delayMs: Math.floor(rand() * 60) } : { after: 'ready' as const, delayMs: 20 + Math.floor(rand() * 280) };
    const r = await runChild(base, 'run', killAt);
    assert.equal(r.signal, 'SIGKILL', `run ${i} ended by itself (code ${r.code}, last line ${r.phase}): ${r.stderr}`);
    assert.deepEqual(r.rejected, [], `run ${i}: ingest rejected readings`);
    for (const k of r.acked) {
      assert.ok(!acked.has(k), `run ${i}: ${k} acknowledged twice`);
      acked.add(k);
    }
    const key = `killed after ${r.phase}`;
    phases[key] = (phases[key] ?? 0) + 1;
  }
  const final = await runChild(base, 'flush', null);
  assert.equal(final.code, 0, `final run failed: ${final.stderr}`);
  assert.equal(final.phase, 'flushed');
  t.diagnostic(`${RUNS} kills in ${((performance.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(phases)}; ${acked.size} readings acknowledged`);

  const content = await UnixFsContentStore.open(join(base, 'content'));
  t.after(() => content.close());
  const report = await verifyStore({ dir: join(base, 'pipeline'), contentStore: content, masterKeyPath: join(base, 'master.key') });
  t.diagnostic(`verifyStore: ${JSON.stringify({ ...report, details: report.details.slice(0, 5) })}`);
  assert.deepEqual([report.gaps, report.duplicates, report.corrupt, report.queued, report.dropped], [0, 0, 0, 0, 0], report.details.join('\n'));

  const pipeline = await Pipeline.open({
    dir: join(base, 'pipeline'), contentStore: content, signer: new MemorySigner(CHILD_SIGNER_KEY), masterKeyPath: join(base, 'master.key'),
    now: Date.now, limits: { maxQueueBytes: 1 << 30, maxStoreBytes: 1 << 30, policy: 'stop-accepting' },
  });
  t.after(() => pipeline.close());
  const segs = await allSegments(pipeline);
  assert.ok(segs.every((s) => s.state === 'stored'), 'the final flush stored every segment');
  const copies = new Map<string, number>();
  for (const readings of (await storedReadings(pipeline, content)).values()) {
    for (const r of readings) {
      const k = `${r.stream}|${r.seq}|${r.ts}`;
      copies.set(k, (copies.get(k) ?? 0) + 1);
    }
  }
  const missing = [...acked].filter((k) => copies.get(k) !== 1);
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acknowledged readings not stored exactly once`);
  assert.equal(report.readings, copies.size);
  t.diagnostic(`${segs.length} segments (${segs.filter((s) => s.runStart).length} run starts), ${copies.size} readings stored, ${copies.size - acked.size} durable but never acknowledged`);
});

// The pipeline under 'drop-oldest-unsold' over the real UnixFS content store on LevelDB: each round of drops
// ends in one gc, so the store's blocks stay bounded by maxStoreBytes instead of growing with every segment
// sealed; dropped segments' CIDs are gone from the store, kept segments still open, and the pipeline's
// accounting (storeBytes) matches the block bytes really stored.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Signer } from '../../chain/index.ts';
import { hasCode } from '../../chain/index.ts';
import { MemorySigner } from '../../device/index.ts';
import { UnixFsContentStore } from '../../gateway/content/unixfs-store.ts';
import type { PipelineContentStore } from '../../gateway/pipeline/pipeline.ts';
import { Pipeline } from '../../gateway/pipeline/pipeline.ts';
import { verifyStore } from '../../gateway/pipeline/verify-store.ts';
import { tempDir } from '../helpers/chain.ts';
import { allSegments, fakeClock, recordingLogger, simReading, storedReadings } from '../helpers/pipeline-fixtures.ts';

const CHUNK = 262_144;
const SIGNER = new MemorySigner(new Uint8Array(32).fill(7));
const GC_LINE = 'content store gc after dropping segments';

/** A temp dir, a stopped clock and a real UnixFS store in it (closed before the dir is removed). */
async function openStore(t: { after(fn: () => void | Promise<void>): void }) {
  const cleanup: (() => Promise<unknown>)[] = [];
  const dir = tempDir(t, cleanup);
  const store = await UnixFsContentStore.open(join(dir, 'content'));
  cleanup.push(() => store.close());
  return { dir, clock: fakeClock(), store, cleanup };
}

test("drop-oldest-unsold with the UnixFS store: one gc per round of drops keeps the blocks within the bound", async (t) => {
  const { dir, clock, store, cleanup } = await openStore(t);
  let gcCalls = 0;
  const content: PipelineContentStore = {
    add: (b) => store.add(b),
    get: (c) => store.get(c),
    pin: (c) => store.pin(c),
    unpin: (c) => store.unpin(c),
    gc: (opts) => {
      gcCalls++;
      gcScopes.push(opts?.scope ?? 'all');
      return store.gc(opts);
    },
  };
  const gcScopes: string[] = [];
  const logger = recordingLogger();
  const limits = { maxQueueBytes: 1 << 20, maxStoreBytes: 400_000, policy: 'drop-oldest-unsold' as const };
  const p = await Pipeline.open({
    dir: join(dir, 'pipeline'), masterKeyPath: join(dir, 'master.key'), contentStore: content, signer: SIGNER as Signer,
    now: clock.now, windowMs: 1000, maxSegmentBytes: 300_000, limits, logger,
  });
  cleanup.push(() => p.close());

  const cidOf = new Map<number, string>(); // every CID a segment ever had: tombstones forget theirs
  let seq = 0;
  let peakBytes = 0;
  /** One window of `n` readings, sealed and stored; then the store must hold exactly what the pipeline accounts for. */
  const windowOf = async (n: number): Promise<void> => {
    await Promise.all(Array.from({ length: n }, (_, i) => p.ingest(simReading('farm/temp', seq + i, clock.now() + i))));
    seq += n;
    clock.advance(1000);
    await p.tick();
    const segs = await allSegments(p);
    for (const s of segs) if (s.cid !== undefined) cidOf.set(s.id, s.cid);
    const stored = segs.filter((s) => s.state === 'stored');
    const { blocks, bytes } = await store.stat();
    peakBytes = Math.max(peakBytes, bytes);
    // A segment is one raw block up to a chunk, else its leaves under a dag-pb root of a few hundred bytes.
    const expectedBlocks = stored.reduce((k, s) => k + (s.bytes <= CHUNK ? 1 : Math.ceil(s.bytes / CHUNK) + 1), 0);
    const status = p.status();
    assert.equal(status.awaitingStore, 0);
    assert.equal(blocks, expectedBlocks, `${blocks} blocks stored for ${stored.length} segments`);
    assert.equal(status.storeBytes, stored.reduce((k, s) => k + s.bytes, 0));
    const overhead = bytes - status.storeBytes;
    assert.ok(overhead >= 0 && overhead <= 1000 * (blocks - stored.length), `${bytes} block bytes for ${status.storeBytes} accounted`);
    assert.ok(bytes <= limits.maxStoreBytes + 1000, `${bytes} block bytes stored, bound ${limits.maxStoreBytes}`);
  };

  for (let w = 0; w < 40; w++) await windowOf(600); // small segments: from the 20th or so, rounds of drops begin
  const dropsBefore = p.status().droppedSegments;
  const gcBefore = gcCalls;
  assert.ok(dropsBefore >= 10, `${dropsBefore} dropped`);
  // A round frees down to 98% of the bound, so it may drop one more than the new segment needs; one gc each.
  const rounds = logger.lines.filter((l) => l.msg === GC_LINE);
  assert.equal(rounds.length, gcCalls);
  assert.ok(gcCalls >= 1 && gcCalls <= dropsBefore, `${gcCalls} gc rounds for ${dropsBefore} drops`);
  assert.equal(rounds.reduce((k, l) => k + (l.fields.droppedSegments as number), 0), dropsBefore);
  assert.deepEqual(new Set(gcScopes), new Set(['unpinned']), 'the pipeline asks for the cheap, scoped gc');

  await windowOf(9000); // one segment over a chunk (a dag-pb DAG) needs many small ones dropped in one round
  const bigRound = p.status().droppedSegments - dropsBefore;
  assert.ok(bigRound > 5, `${bigRound} dropped for the big segment`);
  assert.equal(gcCalls, gcBefore + 1, 'several drops in one round: a single gc');
  const line = logger.lines.filter((l) => l.msg === GC_LINE).at(-1);
  assert.equal(line?.level, 'info');
  assert.equal(line?.fields.droppedSegments, bigRound);
  assert.equal(line?.fields.removedBlocks, bigRound);
  assert.ok((line?.fields.freedBytes as number) > 0);

  for (let w = 0; w < 25; w++) await windowOf(600); // and the big one goes in its turn, root and leaves
  const segs = await allSegments(p);
  const big = segs.find((s) => s.count === 9000)!;
  assert.equal(big.state, 'dropped');
  const s = p.status();
  t.diagnostic(`${segs.length} segments sealed, ${s.droppedSegments} dropped in ${gcCalls} gc rounds; peak ${peakBytes} block bytes for maxStoreBytes ${limits.maxStoreBytes}`);

  // Dropped segments' CIDs are gone from the store; the roots left are exactly the stored segments'.
  const dropped = segs.filter((x) => x.state === 'dropped');
  assert.equal(dropped.length, s.droppedSegments);
  for (const d of dropped) {
    const cid = cidOf.get(d.id)!;
    assert.equal(await store.has(cid), false, `segment ${d.id}'s ${cid} is gone`);
    await assert.rejects(store.get(cid), (err) => hasCode(err, 'CONTENT_NOT_FOUND'));
  }
  const roots = new Set<string>();
  for await (const e of store.list()) roots.add(e.cid);
  assert.deepEqual(roots, new Set(segs.filter((x) => x.state === 'stored').map((x) => x.cid!)));

  // Kept segments still open with their keys, and with the dropped ones account for every reading.
  const kept = [...(await storedReadings(p, content)).values()].flat();
  assert.equal(kept.length + s.droppedReadings, seq);
  assert.deepEqual(kept.map((r) => r.seq), Array.from({ length: kept.length }, (_, i) => seq - kept.length + i));
  await p.close();
  const report = await verifyStore({ dir: join(dir, 'pipeline'), contentStore: store, masterKeyPath: join(dir, 'master.key') });
  assert.deepEqual([report.dropped, report.readings, report.corrupt], [dropped.length, kept.length, 0]);
});

test('a failing gc is logged, the pipeline goes on, and the next round\'s gc collects what it left', async (t) => {
  const { dir, clock, store, cleanup } = await openStore(t);
  let failNext = true;
  const content: PipelineContentStore = {
    add: (b) => store.add(b),
    get: (c) => store.get(c),
    pin: (c) => store.pin(c),
    unpin: (c) => store.unpin(c),
    gc: () => {
      if (!failNext) return store.gc();
      failNext = false;
      return Promise.reject(Object.assign(new Error('scripted gc failure'), { code: 'CONTENT_STORE_FAILED' }));
    },
  };
  const logger = recordingLogger();
  const p = await Pipeline.open({
    dir: join(dir, 'pipeline'), masterKeyPath: join(dir, 'master.key'), contentStore: content, signer: SIGNER as Signer,
    now: clock.now, windowMs: 1000, limits: { maxQueueBytes: 1 << 20, maxStoreBytes: 20_000, policy: 'drop-oldest-unsold' }, logger,
  });
  cleanup.push(() => p.close());
  let seq = 0;
  const window = async () => {
    await Promise.all(Array.from({ length: 200 }, (_, i) => p.ingest(simReading('farm/temp', seq + i, clock.now() + i))));
    seq += 200;
    clock.advance(1000);
    await p.tick();
  };
  while (p.status().droppedSegments === 0) await window();
  const failed = logger.lines.find((l) => l.msg.startsWith(`${GC_LINE} failed`));
  assert.equal(failed?.level, 'warn');
  assert.equal(failed?.fields.code, 'CONTENT_STORE_FAILED');
  assert.equal(p.status().failed, null, 'the pipeline goes on');
  const stored = (await allSegments(p)).filter((x) => x.state === 'stored').length;
  assert.equal((await store.stat()).blocks, stored + 1, "the dropped segment's block is still there");
  await window();
  assert.equal((await store.stat()).blocks, (await allSegments(p)).filter((x) => x.state === 'stored').length, 'the next round collects both');
});

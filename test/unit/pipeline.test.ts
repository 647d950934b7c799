// The durable pipeline with a stopped clock and an in-memory content store: segments close on the window, on
// size and on a seq reset; a restart resumes readings that were queued and segments sealed but not stored;
// transitions are idempotent; the disk bounds with both policies; verifyStore's gap, duplicate and corrupt
// counts. (LevelDB on a temp dir: the queue is the thing under test.)
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Signer } from '../../chain/index.ts';
import { hasCode } from '../../chain/index.ts';
import { MemorySigner } from '../../device/index.ts';
import type { PipelineOptions } from '../../gateway/pipeline/pipeline.ts';
import { Pipeline } from '../../gateway/pipeline/pipeline.ts';
import { verifyStore } from '../../gateway/pipeline/verify-store.ts';
import { tempDir } from '../helpers/chain.ts';
import { MemoryContentStore, allSegments, fakeClock, recordingLogger, simReading, storedReadings } from '../helpers/pipeline-fixtures.ts';
import { expectCode as rejectsWith } from '../helpers/expect-code.ts';

const SIGNER = new MemorySigner(new Uint8Array(32).fill(7));
const BIG = { maxQueueBytes: 64 << 20, maxStoreBytes: 64 << 20, policy: 'stop-accepting' as const };

function setup(t: { after(fn: () => void | Promise<void>): void }) {
  const cleanup: (() => Promise<unknown>)[] = [];
  const dir = tempDir(t, cleanup);
  const clock = fakeClock();
  const content = new MemoryContentStore();
  const opened: Pipeline[] = [];
  cleanup.push(async () => {
    for (const p of opened) await p.close();
  });
  const base = { dir: join(dir, 'pipeline'), masterKeyPath: join(dir, 'master.key'), contentStore: content, signer: SIGNER as Signer, now: clock.now, windowMs: 1000, limits: BIG };
  const open = async (over: Partial<PipelineOptions> = {}): Promise<Pipeline> => {
    const p = await Pipeline.open({ ...base, ...over });
    opened.push(p);
    return p;
  };
  const verify = () => verifyStore({ dir: base.dir, contentStore: content, masterKeyPath: base.masterKeyPath });
  return { clock, content, open, verify, base };
}


const ingestRange = (p: Pipeline, stream: string, from: number, to: number, ts: number) =>
  Promise.all(Array.from({ length: to - from }, (_, i) => p.ingest(simReading(stream, from + i, ts + i))));

test('a segment closes when its window is over, and its readings are sealed, stored and readable once', async (t) => {
  const { clock, content, open, verify } = setup(t);
  const p = await open();
  await ingestRange(p, 'farm/temp', 0, 5, clock.now());
  assert.equal(p.status().queuedReadings, 5);
  assert.ok(p.status().commits < 5, 'concurrent ingests share an fsync');
  clock.advance(999);
  await p.tick();
  assert.deepEqual(await allSegments(p), []);
  clock.advance(1);
  await p.tick();
  const [seg, ...more] = await allSegments(p);
  assert.equal(more.length, 0);
  assert.ok(seg !== undefined);
  assert.deepEqual([seg.state, seg.stream, seg.firstSeq, seg.lastSeq, seg.count, seg.runStart], ['stored', 'farm/temp', 0, 4, 5, true]);
  assert.ok(Number.isInteger(seg.firstTs) && seg.cid !== undefined && /^0x[0-9a-f]{64}$/.test(seg.manifestHash));
  const readings = (await storedReadings(p, content)).get(seg.id)!;
  assert.deepEqual(readings.map((r) => [r.seq, r.ts]), [0, 1, 2, 3, 4].map((i) => [i, Math.floor(clock.now() - 1000 + i)]));
  const s = p.status();
  assert.deepEqual([s.queuedReadings, s.queueBytes, s.sealed, s.stored, s.awaitingSeal, s.awaitingStore], [0, 0, 1, 1, 0, 0]);
  assert.equal(s.storeBytes, seg.bytes);
  await p.close();
  assert.deepEqual(await verify(), { segments: 1, readings: 5, queued: 0, dropped: 0, gaps: 0, duplicates: 0, corrupt: 0, details: [] });
});

test('group commit: up to maxBatchReadings readings, or what arrived within commitDelayMs, share one fsync', async (t) => {
  const { clock, open } = setup(t);
  const p = await open({ commitDelayMs: 20, maxBatchReadings: 4 });
  await ingestRange(p, 'farm/temp', 0, 10, clock.now()); // 4 now, then 4 and 2 while and after that write
  assert.deepEqual([p.status().commits, p.status().ingested], [3, 10]);
  await p.ingest(simReading('farm/temp', 10, clock.now())); // alone: waits commitDelayMs, then one write
  assert.deepEqual([p.status().commits, p.status().ingested], [4, 11]);
});

test('a segment closes at maxSegmentBytes, before its window, and consecutive segments continue seq', async (t) => {
  const { clock, content, open, verify } = setup(t);
  const p = await open({ maxSegmentBytes: 1024 });
  await ingestRange(p, 'boat/gps', 0, 200, clock.now());
  await p.tick(); // no time has passed: only size closed segments
  const segs = await allSegments(p);
  assert.ok(segs.length >= 5, `${segs.length} segments`);
  assert.ok(segs.every((s) => s.state === 'stored'));
  segs.slice(1).forEach((s, i) => {
    assert.equal(s.firstSeq, segs[i]!.lastSeq + 1);
    assert.equal(s.runStart, false);
  });
  assert.equal(p.status().openSegments, 1);
  await p.flush();
  const all = [...(await storedReadings(p, content)).values()].flat().map((r) => r.seq);
  assert.deepEqual(all, Array.from({ length: 200 }, (_, i) => i));
  await p.close();
  const report = await verify();
  assert.deepEqual([report.readings, report.gaps, report.duplicates, report.corrupt], [200, 0, 0, 0]);
});

test('seq that does not increase (driver restart) starts a new segment marked as a run start, also across a restart', async (t) => {
  const { clock, open, verify } = setup(t);
  let p = await open();
  await ingestRange(p, 'farm/temp', 0, 5, clock.now());
  await ingestRange(p, 'farm/temp', 0, 3, clock.now() + 10);
  await ingestRange(p, 'farm/hum', 7, 9, clock.now());
  clock.advance(1000);
  await p.tick();
  const temp = await allSegments(p, 'farm/temp');
  assert.deepEqual(temp.map((s) => [s.firstSeq, s.lastSeq, s.runStart]), [[0, 4, true], [0, 2, true]]);
  await p.close();
  p = await open();
  await ingestRange(p, 'farm/temp', 3, 5, clock.now()); // continues the run: no boundary
  await ingestRange(p, 'farm/hum', 0, 2, clock.now()); // 0 <= 8: the driver restarted while we were down
  await p.flush();
  assert.deepEqual((await allSegments(p, 'farm/temp')).map((s) => [s.firstSeq, s.runStart]), [[0, true], [0, true], [3, false]]);
  assert.deepEqual((await allSegments(p, 'farm/hum')).map((s) => [s.firstSeq, s.runStart]), [[7, true], [0, true]]);
  await p.close();
  const report = await verify();
  assert.deepEqual([report.segments, report.readings, report.gaps, report.duplicates], [5, 14, 0, 0]);
});

test('a restart resumes readings that were queued: they are sealed into segments, none lost or doubled', async (t) => {
  const { clock, content, open, verify } = setup(t);
  let p = await open({ maxSegmentBytes: 2048 });
  await ingestRange(p, 'farm/temp', 0, 40, clock.now());
  await ingestRange(p, 'boat/gps', 0, 30, clock.now());
  const before = p.status();
  assert.equal(before.queuedReadings + (await allSegments(p)).reduce((n, s) => n + s.count, 0), 70);
  await p.close(); // stops like a crash would: nothing sealed on the way out
  p = await open({ maxSegmentBytes: 2048 });
  assert.equal(p.status().queuedReadings, before.queuedReadings);
  assert.ok(p.status().openSegments >= 1);
  clock.advance(1000);
  await p.tick();
  assert.equal(p.status().queuedReadings, 0);
  const seqs = [...(await storedReadings(p, content)).values()].flat().map((r) => `${r.stream}#${r.seq}`).sort();
  assert.equal(seqs.length, 70);
  assert.equal(new Set(seqs).size, 70);
  await p.close();
  const report = await verify();
  assert.deepEqual([report.readings, report.queued, report.gaps, report.duplicates, report.corrupt], [70, 0, 0, 0, 0]);
});

test('a restart resumes a segment sealed but not stored; storing again after add-but-no-record gives the same CID once', async (t) => {
  const { clock, content, open, verify } = setup(t);
  let p = await open();
  await ingestRange(p, 'farm/temp', 0, 10, clock.now());
  content.failAdds = 1000;
  await rejectsWith(p.flush(), 'CONTENT_STORE_FAILED');
  assert.deepEqual((await allSegments(p)).map((s) => s.state), ['sealed']);
  assert.equal(p.status().queuedReadings, 0, 'sealed: the readings left the queue in the same batch');
  assert.equal(p.status().storeErrors, 1);
  await p.close();
  assert.equal((await verify()).readings, 10, 'a sealed segment opens from the database copy of its envelope');

  content.failAdds = 0;
  content.failPins = 1; // add() stores the blocks, then the "crash": the record is not written
  p = await open();
  await p.tick();
  assert.deepEqual((await allSegments(p)).map((s) => s.state), ['sealed']);
  assert.equal(content.adds, 1);
  await p.close();

  p = await open();
  await p.tick();
  const [seg] = await allSegments(p);
  assert.equal(seg?.state, 'stored');
  assert.equal(content.adds, 2, 'added again on resume');
  assert.equal(content.blocks.size, 1, 'same bytes, same CID: one object');
  assert.ok(content.pins.has(seg!.cid!));
  await p.close();

  // Resuming with nothing to do changes nothing.
  p = await open();
  await p.tick();
  await p.flush();
  assert.deepEqual(await allSegments(p), [seg]);
  assert.equal(content.adds, 2);
  await p.close();
  const report = await verify();
  assert.deepEqual([report.segments, report.readings, report.gaps, report.duplicates, report.corrupt], [1, 10, 0, 0, 0]);
});

test('a signer failure leaves the readings queued; the next tick seals them once', async (t) => {
  const { clock, open } = setup(t);
  let fail = true;
  const flaky: Signer = {
    keyType: SIGNER.keyType, publicKey: SIGNER.publicKey, address: SIGNER.address,
    sign: (d, purpose) => (fail ? Promise.reject(new Error('token removed')) : SIGNER.sign(d, purpose)),
  };
  const logger = recordingLogger();
  const p = await open({ signer: flaky, logger });
  await ingestRange(p, 'farm/temp', 0, 3, clock.now());
  clock.advance(1000);
  await p.tick();
  assert.deepEqual([p.status().queuedReadings, p.status().sealErrors, p.status().awaitingSeal], [3, 1, 1]);
  assert.ok(logger.lines.some((l) => l.level === 'error' && l.msg.includes('stay queued')));
  fail = false;
  await p.tick();
  assert.deepEqual((await allSegments(p)).map((s) => [s.state, s.count]), [['stored', 3]]);
  assert.equal(p.status().queuedReadings, 0);
});

test("policy 'stop-accepting': near the bound an alarm, at it PIPELINE_FULL; acknowledged readings all kept", async (t) => {
  const { clock, content, open } = setup(t);
  const logger = recordingLogger();
  const limits = { maxQueueBytes: 8192, maxStoreBytes: 12_000, policy: 'stop-accepting' as const };
  const p = await open({ maxSegmentBytes: 1024, limits, logger });
  const acked: number[] = [];
  let full: Record<string, unknown> | undefined;
  for (let seq = 0; seq < 2000 && full === undefined; seq++) {
    try {
      await p.ingest(simReading('farm/temp', seq, clock.now()));
      acked.push(seq);
    } catch (err) {
      assert.ok(hasCode(err, 'PIPELINE_FULL'), String(err));
      full = (err as { fields: Record<string, unknown> }).fields;
    }
  }
  assert.ok(full !== undefined, 'the pipeline filled up');
  assert.deepEqual([full.policy, full.bound], ['stop-accepting', 'store']);
  const s = p.status();
  assert.ok(s.alarm && s.full && s.alarms >= 1 && s.rejectedFull === 1, JSON.stringify(s));
  assert.ok(s.storeBytes <= limits.maxStoreBytes, `${s.storeBytes} bytes stored`);
  assert.ok(s.queueBytes <= limits.maxQueueBytes);
  assert.ok(logger.lines.some((l) => l.level === 'warn' && l.msg.includes('near its')));
  assert.ok(logger.lines.some((l) => l.level === 'warn' && l.msg.includes('PIPELINE_FULL') && l.msg.includes('stop-accepting')));
  await rejectsWith(p.ingest(simReading('farm/temp', 5000, clock.now())), 'PIPELINE_FULL');
  await rejectsWith(p.flush(), 'PIPELINE_FULL');
  const stored = [...(await storedReadings(p, content)).values()].flat().map((r) => r.seq);
  assert.equal(stored.length + p.status().queuedReadings, acked.length, 'every acknowledged reading is stored or still queued');
  assert.equal((await allSegments(p)).filter((x) => x.state === 'dropped').length, 0);
});

test('the queue bound holds under either policy: when sealing is stuck, ingest rejects instead of dropping acknowledged readings', async (t) => {
  const { clock, open } = setup(t);
  const stuck: Signer = { keyType: SIGNER.keyType, publicKey: SIGNER.publicKey, address: SIGNER.address, sign: () => Promise.reject(new Error('signer gone')) };
  const p = await open({ signer: stuck, maxSegmentBytes: 1024, limits: { maxQueueBytes: 4096, maxStoreBytes: 1 << 20, policy: 'drop-oldest-unsold' } });
  let acked = 0;
  let fields: Record<string, unknown> | undefined;
  for (let seq = 0; seq < 1000 && fields === undefined; seq++) {
    try {
      await p.ingest(simReading('farm/temp', seq, clock.now()));
      acked++;
    } catch (err) {
      assert.ok(hasCode(err, 'PIPELINE_FULL'), String(err));
      fields = (err as { fields: Record<string, unknown> }).fields;
    }
  }
  assert.equal(fields?.bound, 'queue');
  const s = p.status();
  assert.deepEqual([s.queuedReadings, s.droppedReadings, s.alarmOn], [acked, 0, ['queue']]);
  assert.ok(s.queueBytes <= 4096);
});

test("policy 'drop-oldest-unsold': the oldest stored segments go (blocks, key, record -> tombstone), and the log says so", async (t) => {
  const { clock, content, open, verify } = setup(t);
  const logger = recordingLogger();
  const limits = { maxQueueBytes: 8192, maxStoreBytes: 12_000, policy: 'drop-oldest-unsold' as const };
  const p = await open({ maxSegmentBytes: 1024, limits, logger });
  for (let seq = 0; seq < 1500; seq += 50) {
    await ingestRange(p, 'farm/temp', seq, seq + 50, clock.now());
    await p.tick(); // let sealing keep up, so the queue bound is never what stops us
    assert.ok(p.status().storeBytes <= limits.maxStoreBytes, `${p.status().storeBytes} bytes stored`);
  }
  await p.flush();
  const s = p.status();
  assert.ok(s.droppedSegments > 0 && s.droppedReadings > 0 && s.rejectedFull === 0, JSON.stringify(s));
  const segs = await allSegments(p);
  const dropped = segs.filter((x) => x.state === 'dropped');
  assert.equal(dropped.length, s.droppedSegments);
  assert.ok(dropped.every((d) => segs.filter((x) => x.state === 'stored').every((x) => x.id > d.id)), 'the oldest went first');
  assert.equal(content.blocks.size, segs.length - dropped.length, 'dropped blocks deleted');
  await rejectsWith(p.segmentKey(dropped[0]!.id), 'PIPELINE_SEGMENT_DROPPED');
  await rejectsWith(p.segmentKey(10_000), 'PIPELINE_SEGMENT_NOT_FOUND');
  const line = logger.lines.find((l) => l.level === 'warn' && l.msg.includes('dropped the oldest unsold segment'));
  assert.ok(line?.msg.includes('drop-oldest-unsold'));
  assert.equal(typeof line?.fields.cid, 'string', 'the warning names the dropped CID');
  const kept = [...(await storedReadings(p, content)).values()].flat();
  assert.equal(kept.length + s.droppedReadings, 1500);
  await p.close();
  const report = await verify();
  assert.deepEqual([report.dropped, report.readings, report.gaps, report.duplicates, report.corrupt], [dropped.length, kept.length, 0, 0, 0]);
});

test('ingest refuses a reading that cannot be sealed, and options name the bad argument', async (t) => {
  const { clock, open, base } = setup(t);
  const p = await open();
  const fields = await rejectsWith(p.ingest({ stream: 'farm/temp', seq: 0, ts: clock.now(), value: Number.NaN }), 'PIPELINE_INVALID_INPUT');
  assert.equal(fields.argument, 'readings[].value');
  await rejectsWith(p.ingest({ stream: '', seq: 0, ts: 1, value: 1 }), 'PIPELINE_INVALID_INPUT');
  await rejectsWith(p.ingest({ stream: 'x', seq: -1, ts: 1, value: 1 }), 'PIPELINE_INVALID_INPUT');
  assert.equal(p.status().rejectedInvalid, 3);
  assert.equal(p.status().queuedReadings, 0);
  await p.close();
  await rejectsWith(p.ingest(simReading('farm/temp', 0, 1)), 'PIPELINE_CLOSED');
  assert.equal((await rejectsWith(Pipeline.open({ ...base, limits: { ...BIG, policy: 'panic' as never } }), 'PIPELINE_INVALID_INPUT')).argument, 'limits.policy');
  assert.equal((await rejectsWith(Pipeline.open({ ...base, windowMs: 0 }), 'PIPELINE_INVALID_INPUT')).argument, 'windowMs');
  const again = await open();
  await rejectsWith(Pipeline.open(base), 'PIPELINE_LOCKED');
  await again.close();
});

test('verifyStore counts a seq gap within a run, a corrupt segment, and a duplicate', async (t) => {
  const { clock, content, open, verify, base } = setup(t);
  const p = await open();
  await ingestRange(p, 'farm/temp', 0, 5, clock.now());
  await p.flush();
  await ingestRange(p, 'farm/temp', 8, 10, clock.now() + 100); // seq jumped: a gap, not a restart
  await p.flush();
  await ingestRange(p, 'farm/hum', 0, 3, clock.now());
  await p.flush();
  await ingestRange(p, 'farm/hum', 0, 3, clock.now()); // the same readings again (a driver replaying)
  await p.flush();
  const segs = await allSegments(p);
  await p.close();
  const victim = segs[1]!;
  const bytes = content.blocks.get(victim.cid!)!;
  bytes[bytes.length - 1]! ^= 1;
  const report = await verify();
  assert.deepEqual([report.segments, report.gaps, report.corrupt, report.duplicates], [3, 1, 1, 3]);
  assert.ok(report.details.some((d) => d.includes('SEGMENT_TAMPERED')));
  await rejectsWith(verifyStore({ dir: base.dir, contentStore: content, masterKeyPath: `${base.masterKeyPath}.missing` }), 'MASTER_KEY_MISSING');
  await rejectsWith(verifyStore({ dir: `${base.dir}.missing`, contentStore: content, masterKeyPath: base.masterKeyPath }), 'PIPELINE_FAILED');
});

test('delivery tags: known from ingest, kept across a restart until released, released records deleted; bad tags refused', async (t) => {
  const { clock, open } = setup(t);
  const tag = (n: number, digest = `d${n}`, redelivered = false) => ({ key: `mqtt|gw|${n}|0`, digest, redelivered });
  let p = await open();
  const ingesting = p.ingest({ ...simReading('farm/temp', 0, clock.now()), delivery: tag(1) });
  assert.equal(p.has(tag(1)), true, 'known before it is durable, so a repeat arriving meanwhile is skipped');
  await ingesting;
  await p.ingest({ ...simReading('farm/temp', 1, clock.now()), delivery: tag(2) });
  assert.equal(p.has(tag(1, 'another message')), false, 'the digest must match too');
  assert.equal(p.has(tag(3)), false);
  p.release(tag(2, 'not the stored digest'));
  assert.equal(p.has(tag(2)), true, 'a release for another digest changes nothing');
  await p.close();

  p = await open();
  assert.equal(p.has(tag(1)), true, 'a crash before the PUBACK: the record survives the restart');
  assert.equal(p.has(tag(2)), true);
  p.release(tag(1));
  assert.equal(p.has(tag(1)), false);
  await p.ingest({ ...simReading('farm/temp', 2, clock.now()), delivery: tag(3) }); // the release is written with this batch
  await p.close();

  p = await open();
  assert.equal(p.has(tag(1)), false, 'released records are gone from the database');
  assert.equal(p.has(tag(2)), true);
  assert.equal(p.has(tag(3)), true);
  const before = p.status().ingested;
  for (const bad of [{ key: '', digest: 'x', redelivered: false }, { key: 'k', digest: 7, redelivered: false }, { key: 'k', digest: 'x' }, 'tag', { key: 'k'.repeat(513), digest: 'x', redelivered: true }]) {
    await rejectsWith(p.ingest({ ...simReading('farm/temp', 3, clock.now()), delivery: bad as never }), 'PIPELINE_INVALID_INPUT');
  }
  assert.equal(p.status().ingested, before, 'nothing was taken');
  assert.equal(p.has({ key: 'k', digest: 'x', redelivered: false }), false);
});

test('a long queue is sealed while it is read back at open, not first held in memory as closed segments', async (t) => {
  const { clock, open, verify } = setup(t);
  const down: Signer = { keyType: SIGNER.keyType, publicKey: SIGNER.publicKey, address: SIGNER.address, sign: () => Promise.reject(new Error('signer down')) };
  const small = { maxSegmentBytes: 1024, windowMs: 3_600_000 };
  let p = await open({ ...small, signer: down });
  // Sealing fails, so every reading stays queued and the closed segments pile up (the worker is blocked).
  for (let i = 0; i < 20; i++) await ingestRange(p, 'farm/temp', i * 100, (i + 1) * 100, clock.now());
  assert.equal(p.status().sealed, 0);
  assert.ok(p.status().awaitingSeal > 40, `${p.status().awaitingSeal} closed segments waiting`);
  await p.close();

  const log = recordingLogger();
  p = await open({ ...small, logger: log });
  const s = p.status();
  // 8 segments' worth of bytes is the backlog bound: open() sealed the rest on the way.
  assert.ok(s.sealed > 30, `sealed ${s.sealed} while resuming`);
  assert.ok(s.awaitingSeal <= 9, `${s.awaitingSeal} closed segments left waiting after open`);
  const resumed = log.lines.find((l) => l.msg === 'pipeline resumed');
  assert.equal(resumed?.fields['queuedReadings'], 2000);
  await p.flush();
  await p.close();
  const report = await verify();
  assert.deepEqual([report.readings, report.gaps, report.duplicates, report.corrupt], [2000, 0, 0, 0]);
});

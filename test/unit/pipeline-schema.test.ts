// The pipeline queue's format (schema 2: one queue record per group-commit batch, a consumed map for batches
// a sealed segment takes part of): a schema 1 store written by the old code (test/fixtures/pipeline-schema1)
// opens and drains, and a batch cut by a segment boundary keeps what was sealed across a restart.
import assert from 'node:assert/strict';
import { chmodSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import type { Reading } from '../../sensors/index.ts';
import { MemorySigner } from '../../device/index.ts';
import type { PipelineOptions } from '../../gateway/pipeline/pipeline.ts';
import { Pipeline } from '../../gateway/pipeline/pipeline.ts';
import { verifyStore } from '../../gateway/pipeline/verify-store.ts';
import { tempDir } from '../helpers/chain.ts';
import { MemoryContentStore, allSegments, fakeClock, simReading, storedReadings } from '../helpers/pipeline-fixtures.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/pipeline-schema1/', import.meta.url));
const LIMITS = { maxQueueBytes: 64 << 20, maxStoreBytes: 64 << 20, policy: 'stop-accepting' as const };

function setup(t: { after(fn: () => void | Promise<void>): void }, from?: string) {
  const cleanup: (() => Promise<unknown>)[] = [];
  const dir = tempDir(t, cleanup);
  if (from !== undefined) {
    cpSync(from, dir, { recursive: true });
    chmodSync(join(dir, 'master.key'), 0o600); // git keeps no mode: the key file must be the owner's only
  }
  const clock = fakeClock();
  const content = new MemoryContentStore();
  const opened: Pipeline[] = [];
  cleanup.push(async () => {
    for (const p of opened) await p.close();
  });
  const base: PipelineOptions = {
    dir: join(dir, 'pipeline'), masterKeyPath: join(dir, 'master.key'), contentStore: content, signer: new MemorySigner(new Uint8Array(32).fill(7)),
    now: clock.now, windowMs: 1000, limits: LIMITS,
  };
  const open = async (): Promise<Pipeline> => {
    const p = await Pipeline.open(base);
    opened.push(p);
    return p;
  };
  /** Keys of the pipeline database by prefix byte (the pipeline must be closed). */
  const records = async (): Promise<{ schema: string; byPrefix: Map<number, number> }> => {
    const db = new Level<Uint8Array, Uint8Array>(base.dir, { keyEncoding: 'view', valueEncoding: 'view' });
    try {
      const byPrefix = new Map<number, number>();
      for await (const k of db.keys()) byPrefix.set(k[0]!, (byPrefix.get(k[0]!) ?? 0) + 1);
      const schema = new TextDecoder().decode(await db.get(Uint8Array.of(0x01, ...new TextEncoder().encode('schema'))));
      return { schema, byPrefix };
    } finally {
      await db.close();
    }
  };
  const verify = () => verifyStore({ dir: base.dir, contentStore: content, masterKeyPath: base.masterKeyPath });
  return { clock, content, open, records, verify };
}

/** stream -> seqs stored, in segment order (a seq twice shows up twice). */
async function seqsByStream(p: Pipeline, content: MemoryContentStore): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const readings of (await storedReadings(p, content)).values()) {
    for (const r of readings) out.set(r.stream, [...(out.get(r.stream) ?? []), r.seq]);
  }
  return out;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

test('a schema 1 store written by the old code opens as schema 2: its sealed segment is stored, its queued readings sealed once, new readings go in batches', { timeout: 60_000 }, async (t) => {
  const { clock, content, open, records, verify } = setup(t, FIXTURE);
  const before = await records();
  assert.equal(before.schema, '1');
  assert.equal(before.byPrefix.get(0x02), 13, 'the fixture holds 13 one-reading queue records');
  assert.equal(before.byPrefix.get(0x07), 6, 'and 6 one-tag delivery records');
  let p = await open();
  assert.equal(p.status().queuedReadings, 13);
  assert.equal(p.status().awaitingStore, 1);
  const v1tag = (i: number, digest = `d${i}`) => ({ key: `mqtt|v1|${i}|0`, digest, redelivered: true });
  assert.deepEqual(range(0, 8).map((i) => p.has(v1tag(i))), [false, false, true, true, true, true, true, true]);
  p.release(v1tag(2));
  // After the upgrade, more readings of both streams: these go into a queue batch record.
  const t0 = clock.now();
  const later: Reading[] = [...range(15, 20).map((s) => simReading('v1/temp', s, t0 + s)), ...range(8, 10).map((s) => simReading('v1/gps', s, t0 + s))];
  later[0] = { ...later[0]!, delivery: v1tag(3, 'a newer message') }; // takes tag 3's key: its old record goes
  await Promise.all(later.map((r) => p.ingest(r)));
  await p.close();
  const mid = await records();
  assert.equal(mid.schema, '2');
  assert.equal(mid.byPrefix.get(0x02), 13, 'schema 1 records are read where they are, not rewritten');
  assert.equal(mid.byPrefix.get(0x08), 1, 'one batch record for the readings of one commit');
  assert.deepEqual([mid.byPrefix.get(0x07), mid.byPrefix.get(0x0a)], [4, 1], 'tags 2 (released) and 3 (key taken again) deleted; the new tag in a group');
  p = await open();
  assert.equal(p.status().queuedReadings, 20);
  assert.deepEqual(range(0, 8).map((i) => p.has(v1tag(i))), [false, false, false, false, true, true, true, true]);
  assert.equal(p.has(v1tag(3, 'a newer message')), true);
  await p.flush();
  const seqs = await seqsByStream(p, content);
  assert.deepEqual(seqs.get('v1/temp'), range(0, 20));
  assert.deepEqual(seqs.get('v1/gps'), range(0, 10));
  assert.ok((await allSegments(p)).every((s) => s.state === 'stored'));
  await p.close();
  const after = await records();
  for (const prefix of [0x02, 0x08, 0x09]) assert.equal(after.byPrefix.get(prefix), undefined, `no queue record 0x0${prefix.toString(16)} left`);
  const report = await verify();
  assert.deepEqual([report.readings, report.queued, report.gaps, report.duplicates, report.corrupt], [30, 0, 0, 0, 0]);
});

test('a batch cut by a segment boundary: what was sealed is recorded in its consumed map and stays sealed across a restart', { timeout: 60_000 }, async (t) => {
  const { clock, content, open, records, verify } = setup(t);
  let p = await open();
  const t0 = clock.now();
  // One commit holds both streams; a seq reset on farm/a then closes a's segment alone.
  await Promise.all([...range(0, 5).map((s) => p.ingest(simReading('farm/a', s, t0 + s))), ...range(0, 5).map((s) => p.ingest(simReading('farm/b', s, t0 + s)))]);
  assert.equal(p.status().commits, 1);
  await p.ingest(simReading('farm/a', 0, t0 + 100));
  await p.tick();
  assert.equal(p.status().stored, 1);
  assert.equal(p.status().queuedReadings, 6);
  await p.close();
  const mid = await records();
  assert.deepEqual([mid.byPrefix.get(0x08), mid.byPrefix.get(0x09)], [2, 1], 'two batches, the first with a consumed map');
  assert.equal((await verify()).queued, 6);
  p = await open();
  assert.equal(p.status().queuedReadings, 6, 'farm/a 0-4 are not queued again');
  // A second cut through the same batch: farm/b's readings are its last, so the batch and its map go.
  await p.flush();
  const seqs = await seqsByStream(p, content);
  assert.deepEqual(seqs.get('farm/a'), [0, 1, 2, 3, 4, 0]);
  assert.deepEqual(seqs.get('farm/b'), range(0, 5));
  await p.close();
  const after = await records();
  assert.deepEqual([after.byPrefix.get(0x08), after.byPrefix.get(0x09)], [undefined, undefined]);
  const report = await verify();
  assert.deepEqual([report.readings, report.queued, report.duplicates, report.corrupt], [11, 0, 0, 0]);
});

test('delivery tags of a commit are one group record: released in part, a released map keeps what was released across a restart; wholly released, it goes', { timeout: 60_000 }, async (t) => {
  const { clock, open, records } = setup(t);
  let p = await open();
  const tag = (i: number, digest = `d${i}`) => ({ key: `mqtt|c|${i}|0`, digest, redelivered: true });
  const t0 = clock.now();
  await Promise.all(range(0, 4).map((i) => p.ingest({ ...simReading('farm/a', i, t0 + i), delivery: tag(i) })));
  assert.equal(p.status().commits, 1);
  p.release(tag(1));
  p.release(tag(2, 'another digest')); // not this tag: nothing changes
  await p.close(); // writes the released map
  const mid = await records();
  assert.deepEqual([mid.byPrefix.get(0x0a), mid.byPrefix.get(0x0b), mid.byPrefix.get(0x07)], [1, 1, undefined]);
  p = await open();
  assert.deepEqual(range(0, 4).map((i) => p.has(tag(i))), [true, false, true, true]);
  // A newer message takes tag 0's key in the next commit; tags 2 and 3 are released: the old group is done.
  p.release(tag(2));
  p.release(tag(3));
  await p.ingest({ ...simReading('farm/a', 4, t0 + 4), delivery: tag(0, 'newer') });
  assert.deepEqual([p.has(tag(0)), p.has(tag(0, 'newer'))], [false, true]);
  await p.close();
  const after = await records();
  assert.deepEqual([after.byPrefix.get(0x0a), after.byPrefix.get(0x0b)], [1, undefined], 'only the new group is left');
  p = await open();
  assert.deepEqual([...range(0, 4).map((i) => p.has(tag(i))), p.has(tag(0, 'newer'))], [false, false, false, false, true]);
  p.release(tag(0, 'newer'));
  await p.close();
  const empty = await records();
  assert.deepEqual([empty.byPrefix.get(0x0a), empty.byPrefix.get(0x0b)], [undefined, undefined]);
});

test('a delivery group outlives its queue batch: readings after a restart with an empty queue are numbered above it', { timeout: 60_000 }, async (t) => {
  const { clock, open } = setup(t);
  let p = await open();
  const tag = (i: number) => ({ key: `mqtt|e|${i}|0`, digest: `d${i}`, redelivered: true });
  await Promise.all(range(0, 3).map((i) => p.ingest({ ...simReading('farm/e', i, clock.now()), delivery: tag(i) })));
  await p.flush(); // the queue is empty, the tags are not released (no PUBACK confirmed)
  await p.close();
  p = await open();
  await Promise.all(range(3, 5).map((i) => p.ingest({ ...simReading('farm/e', i, clock.now()), delivery: tag(i) })));
  p.release(tag(3));
  p.release(tag(4));
  await p.ingest(simReading('farm/e', 5, clock.now())); // writes the release: the new group goes
  await p.close();
  p = await open();
  assert.deepEqual(range(0, 5).map((i) => p.has(tag(i))), [true, true, true, false, false], 'the older group is neither overwritten nor deleted');
});

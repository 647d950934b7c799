// Garbage collection of the UnixFS content store on LevelDB: an unpinned file's own blocks go, blocks it shares
// with a kept file stay (identical 256 KiB chunks are one block), added-but-not-pinned files are kept, a gc
// racing adds loses none of them, a damaged live DAG stops gc before it deletes anything, the directory really
// shrinks after gc with compaction, a schema 1 store is upgraded with every root kept, and a gc scoped to the
// unpinned roots touches nothing else.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Level } from 'level';
import { CID } from 'multiformats/cid';
import { walkDag } from '../../gateway/content/blockstore.ts';
import { CONTENT_SCHEMA_VERSION, UnixFsContentStore } from '../../gateway/content/unixfs-store.ts';
import { expectCode as assertCode } from '../helpers/expect-code.ts';
import { onClose, tempDirClosingFirst } from '../helpers/temp-dir.ts';

const CHUNK = 262_144;
const te = new TextEncoder();

const tempDir = (t: { after(fn: () => void | Promise<void>): void }): string => tempDirClosingFirst(t, 'datagate-gc-');

async function openStore(t: { after(fn: () => void | Promise<void>): void }, path = join(tempDir(t), 'content')): Promise<UnixFsContentStore> {
  const store = await UnixFsContentStore.open(path);
  onClose(t, () => store.close().catch(() => {}));
  return store;
}


/** Every block of `cid`'s DAG: CID string -> size. */
async function dagBlocks(store: UnixFsContentStore, cid: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const b of walkDag(store.blocks, CID.parse(cid))) out.set(b.cid.toString(), b.bytes.length);
  return out;
}

async function listed(store: UnixFsContentStore): Promise<Map<string, boolean>> {
  const out = new Map<string, boolean>();
  for await (const e of store.list()) out.set(e.cid, e.pinned);
  return out;
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

test('gc removes an unpinned file and keeps the chunk it shares with a kept file; a second gc is a no-op', async (t) => {
  const store = await openStore(t);
  const shared = randomBytes(CHUNK);
  const aBytes = Buffer.concat([shared, randomBytes(CHUNK), randomBytes(1000)]);
  const bBytes = Buffer.concat([shared, randomBytes(CHUNK / 2)]);
  const a = await store.add(aBytes);
  const b = await store.add(bBytes); // added, not pinned: kept all the same
  const c = await store.add(te.encode('pinned and small'));
  await store.pin(a);
  await store.pin(c);
  const aDag = await dagBlocks(store, a);
  const bDag = await dagBlocks(store, b);
  const sharedLeaves = [...aDag.keys()].filter((k) => bDag.has(k));
  assert.equal(sharedLeaves.length, 1, 'the identical first chunk is one block of both DAGs');
  const aOnly = [...aDag].filter(([k]) => !bDag.has(k));
  assert.equal(aOnly.length, 3, "A's root, its second leaf and its short third leaf");

  const nothing = await store.gc();
  assert.equal(nothing.removedBlocks, 0, 'nothing unpinned: nothing goes');
  const before = await store.stat();
  await store.unpin(a);
  assert.deepEqual(await listed(store), new Map([[a, false], [b, false], [c, true]]), 'unpinned, still listed until gc');
  const r = await store.gc();
  const after = await store.stat();
  assert.equal(r.removedBlocks, aOnly.length);
  assert.equal(r.freedBytes, aOnly.reduce((n, [, size]) => n + size, 0));
  assert.ok(r.freedBytes > CHUNK);
  assert.deepEqual([before.blocks - after.blocks, before.bytes - after.bytes, after.blocks], [r.removedBlocks, r.freedBytes, r.keptBlocks]);

  await assertCode(store.get(a), 'CONTENT_NOT_FOUND');
  assert.equal(await store.has(a), false);
  for (const [k] of aOnly) assert.equal(await store.has(k), false, `${k} is gone`);
  assert.equal(await store.has(sharedLeaves[0]!), true, 'the shared chunk stays');
  assert.deepEqual(await store.get(b), new Uint8Array(bBytes), 'B reads back, every block verified');
  assert.deepEqual(await store.get(c), te.encode('pinned and small'));
  assert.deepEqual(await listed(store), new Map([[b, false], [c, true]]), "gc forgets the unpinned root's record");

  assert.deepEqual(await store.gc(), { removedBlocks: 0, freedBytes: 0, keptBlocks: r.keptBlocks }, 'gc twice is a no-op');
  assert.deepEqual(await store.stat(), after);
});

test('only unpin makes a file collectable; adding or pinning it again takes it back', async (t) => {
  const store = await openStore(t);
  const bytes = randomBytes(CHUNK + 10);
  const cid = await store.add(bytes);
  assert.equal((await store.gc()).removedBlocks, 0, 'added and never pinned: kept');
  await store.unpin(cid);
  assert.equal(await store.add(bytes), cid);
  assert.equal((await store.gc()).removedBlocks, 0, 'added again after the unpin: kept');
  await store.unpin(cid);
  await store.pin(cid);
  assert.equal((await store.gc()).removedBlocks, 0, 'pinned again after the unpin: kept');
  await store.unpin(cid);
  await store.unpin(cid); // twice: no error
  assert.equal((await store.gc()).removedBlocks, 3);
  await store.unpin(cid); // gone: still no error
  assert.deepEqual(await store.stat(), { blocks: 0, bytes: 0 });
  assert.deepEqual(await listed(store), new Map());
  // Unpinning a CID that was never here leaves nothing behind.
  await store.unpin('bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e');
  assert.deepEqual(await listed(store), new Map());
});

test('gc racing adds: an add in flight keeps its file, even blocks that gc removed meanwhile', async (t) => {
  const store = await openStore(t);
  const shared = randomBytes(CHUNK);
  const old = await store.add(Buffer.concat([shared, randomBytes(100)]));
  await store.unpin(old);
  // The new file shares its first chunk with the unpinned one. The add starts first; gc is queued while the
  // importer hashes, so it sweeps the shared chunk before the add's batch lands, and the batch writes it again.
  const fresh = Buffer.concat([shared, randomBytes(CHUNK)]);
  const [cid, r] = await Promise.all([store.add(fresh), store.gc()]);
  assert.equal(r.removedBlocks, 3, 'gc ran before the add was written: it took the shared chunk too');
  assert.deepEqual(await store.get(cid), new Uint8Array(fresh));
  assert.equal((await store.gc()).removedBlocks, 0);
  assert.deepEqual(await store.get(cid), new Uint8Array(fresh));

  // Many adds and gcs interleaved, every other file unpinned as soon as it is in: no kept file loses a block.
  const kept = new Map<string, Uint8Array>();
  const work: Promise<unknown>[] = [];
  for (let i = 0; i < 24; i++) {
    const bytes = Buffer.concat([shared, randomBytes(1000 + i)]);
    work.push(
      store.add(bytes).then(async (c) => {
        if (i % 2 === 0) await store.unpin(c);
        else kept.set(c, bytes);
      }),
    );
    if (i % 3 === 0) work.push(store.gc());
  }
  await Promise.all(work);
  await store.gc();
  for (const [c, bytes] of kept) assert.deepEqual(await store.get(c), new Uint8Array(bytes));
  assert.equal((await listed(store)).size, kept.size + 1);
});

test('the same bytes as a raw leaf of one file and a dag-pb node of another: both DAGs are walked', async (t) => {
  const store = await openStore(t);
  const big = randomBytes(600 * 1024);
  const v0 = await store.add(big, { cidVersion: 0 }); // dag-pb root over three dag-pb leaves
  const rootBlock = await store.blocks.get(CID.parse(v0));
  const asRaw = await store.add(rootBlock); // a one-chunk CIDv1 file: a raw block with the same multihash
  assert.deepEqual(CID.parse(asRaw).multihash.bytes, CID.parse(v0).multihash.bytes);
  // The raw root sorts first (CIDv1 bytes start 0x01, v0 ones 0x12): a mark that skipped a multihash it had
  // seen as a raw leaf would never read the dag-pb node and would sweep its leaves.
  assert.equal((await store.gc()).removedBlocks, 0);
  assert.deepEqual(await store.get(v0), new Uint8Array(big));
  await store.unpin(asRaw);
  assert.equal((await store.gc()).removedBlocks, 0, 'its only block is the v0 root, which stays');
  assert.equal(await store.has(asRaw), true);
  await store.unpin(v0);
  assert.equal((await store.gc()).removedBlocks, 4);
});

test('a live DAG with a missing block stops gc before it deletes anything', async (t) => {
  const path = join(tempDir(t), 'content');
  let store = await UnixFsContentStore.open(path);
  const damaged = await store.add(randomBytes(600 * 1024), { cidVersion: 0 }); // dag-pb leaves: the mark reads them
  const garbage = await store.add(randomBytes(1000));
  await store.unpin(garbage);
  const leaf = [...(await dagBlocks(store, damaged)).keys()].find((k) => k !== damaged)!;
  const leafKey = store.blocks.key(CID.parse(leaf));
  await store.close();
  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.del(leafKey);
  await db.close();

  store = await UnixFsContentStore.open(path);
  onClose(t, () => store.close().catch(() => {}));
  const before = await store.stat();
  const fields = await assertCode(store.gc(), 'CONTENT_NOT_FOUND');
  assert.equal(fields.root, damaged);
  assert.equal(fields.cid, leaf);
  assert.deepEqual(await store.stat(), before);
  assert.equal((await listed(store)).has(garbage), true, 'no record went either');
  await store.unpin(damaged);
  const r = await store.gc();
  assert.deepEqual([r.removedBlocks, r.keptBlocks], [before.blocks, 0], 'with the damaged file given up, gc goes through');
});

test('gc with compaction gives the disk space back: the LevelDB directory shrinks', async (t) => {
  const path = join(tempDir(t), 'content');
  const store = await UnixFsContentStore.open(path);
  onClose(t, () => store.close().catch(() => {}));
  const cids: string[] = [];
  for (let i = 0; i < 12; i++) cids.push(await store.add(randomBytes(1 << 20)));
  const keep = cids.pop()!;
  for (const c of cids) await store.unpin(c);
  const before = dirBytes(path);
  assert.ok(before > 12 << 20, `${before} bytes on disk for 12 MiB`);
  const t0 = performance.now();
  const r = await store.gc({ compact: true });
  const ms = performance.now() - t0;
  const after = dirBytes(path);
  t.diagnostic(`gc+compact of ${r.removedBlocks + r.keptBlocks} blocks: ${ms.toFixed(0)} ms, ${r.freedBytes} block bytes freed, directory ${before} -> ${after} bytes`);
  assert.equal(r.removedBlocks, 11 * 5);
  assert.ok(r.freedBytes > 11 << 20);
  assert.ok(after < 3 << 20, `the directory holds ${after} bytes after gc, for 1 MiB kept`);
  assert.ok(before - after >= r.freedBytes * 0.9, `${before - after} bytes of disk back for ${r.freedBytes} freed`);
  assert.equal((await store.get(keep)).length, 1 << 20);
});

test('a schema 1 store is upgraded at open and keeps every root it had', async (t) => {
  const path = join(tempDir(t), 'content');
  let store = await UnixFsContentStore.open(path);
  const added = await store.add(randomBytes(2000));
  await store.close();
  const schemaKey = Uint8Array.from([0x01, ...te.encode('schema')]);
  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.put(schemaKey, te.encode('1'));
  await db.close();

  store = await UnixFsContentStore.open(path);
  onClose(t, () => store.close().catch(() => {}));
  assert.equal(CONTENT_SCHEMA_VERSION, 2);
  assert.equal((await store.gc()).removedBlocks, 0);
  assert.equal((await store.get(added)).length, 2000);
  await store.close();
  const db2 = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  assert.equal(new TextDecoder().decode(await db2.get(schemaKey)), '2');
  await db2.close();
});

test("gc scoped to 'unpinned' removes what unpin released, keeps shared chunks, and leaves other orphans to a full gc", async (t) => {
  const store = await openStore(t);
  const shared = randomBytes(CHUNK);
  const kept = await store.add(new Uint8Array([...shared, ...randomBytes(1000)]));
  const dropped = await store.add(new Uint8Array([...shared, ...randomBytes(CHUNK), ...randomBytes(7)]));
  const droppedBlocks = await dagBlocks(store, dropped);
  const sharedCid = [...(await dagBlocks(store, kept)).keys()].find((c) => droppedBlocks.has(c));
  assert.ok(sharedCid !== undefined, 'the two files share their first chunk');
  // An orphan: a block no root reaches (as a crash in the middle of an earlier gc can leave).
  const orphanCid = await store.add(randomBytes(300));
  const db = (store as unknown as { db: Level<Uint8Array, Uint8Array> }).db;
  const root = CID.parse(orphanCid);
  await db.batch([{ type: 'del', key: Uint8Array.of(0x03, ...root.bytes) }], { sync: true }); // its root record (prefix 0x03), gone
  assert.equal(await store.has(orphanCid), true, 'the block itself is still there');

  await store.unpin(dropped);
  const before = await store.blocks.stat();
  const r = await store.gc({ scope: 'unpinned' });
  assert.equal(r.removedBlocks, droppedBlocks.size - 1, 'every block of the dropped file but the shared chunk');
  assert.equal(r.keptBlocks, 1);
  assert.equal(r.freedBytes, [...droppedBlocks].filter(([c]) => c !== sharedCid).reduce((k, [, n]) => k + n, 0));
  assert.deepEqual(await store.blocks.stat(), { blocks: before.blocks - r.removedBlocks, bytes: before.bytes - r.freedBytes });
  assert.deepEqual(await store.get(kept).then((b) => b.subarray(0, CHUNK)), new Uint8Array(shared));
  await assertCode(store.get(dropped), 'CONTENT_NOT_FOUND');
  assert.equal(await store.has(orphanCid), true, 'a scoped gc does not look beyond what was unpinned');

  const full = await store.gc();
  assert.equal(full.removedBlocks, 1, 'the full gc sweeps the orphan');
  assert.equal(await store.has(orphanCid), false);
  assert.deepEqual([...(await listed(store)).keys()], [kept]);
});

// The UnixFS content store on LevelDB: kubo's CIDs for the same bytes and options (vectors published by
// kubo's own tests and by js-ipfs-unixfs's kubo-parity tests), round trips, verification of every block
// read (a byte flipped on disk surfaces as CONTENT_CORRUPT), has/pin/unpin/list, and reopening.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { importByteStream, importBytes, importer } from 'ipfs-unixfs-importer';
import { Level } from 'level';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { sha256 } from 'multiformats/hashes/sha2';
import { CONTENT_SCHEMA_VERSION, UnixFsContentStore, kuboImporterOptions } from '../../gateway/content/unixfs-store.ts';
import { expectCode as assertCode } from '../helpers/expect-code.ts';
import { onClose, tempDirClosingFirst } from '../helpers/temp-dir.ts';

const te = new TextEncoder();

const tempDir = (t: { after(fn: () => void | Promise<void>): void }): string => tempDirClosingFirst(t, 'datagate-content-');

async function openStore(t: { after(fn: () => void | Promise<void>): void }, dir = tempDir(t)): Promise<UnixFsContentStore> {
  const store = await UnixFsContentStore.open(join(dir, 'content'));
  onClose(t, () => store.close().catch(() => {}));
  return store;
}


/**
 * kubo's deterministic test data (test/cli/testutils/random_deterministic.go): the ChaCha20 keystream with
 * key sha256(seed) and a zero nonce, streamed in 1 MiB pieces.
 */
async function* kuboRandom(size: number, seed: string): AsyncGenerator<Uint8Array> {
  const key = createHash('sha256').update(seed).digest();
  const nonce = new Uint8Array(12);
  let counter = 0;
  for (let left = size; left > 0; ) {
    const n = Math.min(left, 1 << 20);
    yield chacha20(key, nonce, new Uint8Array(n), undefined, counter);
    counter += Math.ceil(n / 64);
    left -= n;
  }
}

async function kuboRandomBytes(size: number, seed: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of kuboRandom(size, seed)) parts.push(p);
  return Buffer.concat(parts);
}

/** A blockstore that keeps nothing: for computing CIDs of inputs too large to keep. */
const discard = { put: async (cid: CID) => cid };

test('small files get the CIDs kubo gives them (CIDv0 default add, CIDv1 raw leaves)', async (t) => {
  const store = await openStore(t);
  // `echo "hello world" | ipfs add` and the empty file: the best-known kubo CIDs.
  assert.equal(await store.add(te.encode('hello world\n'), { cidVersion: 0 }), 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o');
  assert.equal(await store.add(new Uint8Array(0), { cidVersion: 0 }), 'QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH');
  // kubo test/cli/add_test.go, "hello world" without a newline: v0, v1 (raw leaf), v1 without raw leaves.
  assert.equal(await store.add(te.encode('hello world'), { cidVersion: 0 }), 'Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD');
  assert.equal(await store.add(te.encode('hello world')), 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e');
  assert.equal(await store.add(te.encode('hello world'), { cidVersion: 1, rawLeaves: false }), 'bafybeihykld7uyxzogax6vgyvag42y7464eywpf55gxi5qpoisibh3c5wa');
  // With the newline, a single-chunk CIDv1 file is its raw leaf: sha2-256 of the bytes under the raw codec.
  assert.equal(await store.add(te.encode('hello world\n')), 'bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4');
  assert.equal(await store.add(new Uint8Array(0)), 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku');
});

test('multi-chunk files get kubo CIDs: chunk boundaries, 174-link nodes and rebalancing', async (t) => {
  const store = await openStore(t);
  // js-ipfs-unixfs test/ipip-499-profiles.spec.ts (unixfs-v0-2015 = kubo's default add): at and over one chunk.
  assert.equal(await store.add(await kuboRandomBytes(262_144, 'chunk-v0-seed'), { cidVersion: 0 }), 'QmWmRj3dFDZdb6ABvbmKhEL6TmPbAfBZ1t5BxsEyJrcZhE');
  assert.equal(await store.add(await kuboRandomBytes(262_145, 'chunk-v0-seed'), { cidVersion: 0 }), 'QmYyLxtzZyW22zpoVAtKANLRHpDjZtNeDjQdJrcQNWoRkJ');
  // kubo test/cli/add_test.go + cid_profiles_test.go: 174 x 256 KiB fills one node, one more chunk rebalances.
  assert.equal(await store.add(await kuboRandomBytes(44_544 * 1024, 'v0-seed'), { cidVersion: 0 }), 'QmUbBALi174SnogsUzLpYbD4xPiBSFANF4iztWCsHbMKh2');
  assert.equal(await store.add(await kuboRandomBytes(44_800 * 1024, 'v0-seed'), { cidVersion: 0 }), 'QmepeWtdmS1hHXx1oZXsPUv6bMrfRRKfZcoPPU4eEfjnbf');
  // CIDv1 with raw leaves and 1 MiB chunks (js-ipfs-unixfs unixfs-v1-2025 vectors): one chunk, then two.
  assert.equal(await store.add(await kuboRandomBytes(1_048_576, 'chunk-v1-seed'), { chunkSize: 1_048_576 }), 'bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta');
  assert.equal(await store.add(await kuboRandomBytes(1_048_577, 'chunk-v1-seed'), { chunkSize: 1_048_576 }), 'bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64');
  // kubo add_test.go, profile test-cid-v1 (CIDv1, raw leaves, 1 MiB chunks, 174 links): 175 MiB rebalances
  // into two levels. Hashed through the same importer options without storing 175 MiB.
  const big = await importByteStream(kuboRandom(175 << 20, 'v1-seed'), discard, kuboImporterOptions({ chunkSize: 1 << 20 }));
  assert.equal(big.cid.toString(), 'bafybeidhd7lo2n2v7lta5yamob3xwhbxcczmmtmhquwhjesi35jntf7mpu');
});

test('a 1 MiB random file round trips, with the CID the importer gives under its kubo profile', async (t) => {
  const store = await openStore(t);
  const bytes = randomBytes(1 << 20);
  const v0 = await store.add(bytes, { cidVersion: 0 });
  // The importer's own kubo profile (checked against kubo by js-ipfs-unixfs) must agree with our options,
  // which the vectors above check against kubo directly.
  const expected = await importBytes(bytes, discard, { profile: 'unixfs-v0-2015' });
  assert.equal(v0, expected.cid.toString());
  assert.match(v0, /^Qm/);
  assert.deepEqual(await store.get(v0), new Uint8Array(bytes));
  const v1 = await store.add(bytes);
  assert.match(v1, /^bafy/);
  assert.deepEqual(await store.get(v1), new Uint8Array(bytes));
  assert.equal(await store.add(bytes), v1, 'adding the same bytes again gives the same CID');
});

test('every block read is verified: a flipped byte on disk is CONTENT_CORRUPT, a missing one CONTENT_NOT_FOUND', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'content');
  let store = await UnixFsContentStore.open(path);
  const bytes = randomBytes(600 * 1024); // three 256 KiB raw leaves under one dag-pb root
  const root = await store.add(bytes);
  await store.close();

  // On-disk format: blocks live under 0x02 || multihash.
  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  const leaves: Array<[Uint8Array, Uint8Array]> = [];
  for await (const [k, v] of db.iterator({ gte: Uint8Array.of(0x02), lt: Uint8Array.of(0x03) })) if (v.length === 262_144) leaves.push([k, v]);
  assert.equal(leaves.length, 2, 'two full leaves (and a short one)');
  const [leafKey, leaf] = leaves[0]!;
  const flipped = Uint8Array.from(leaf);
  flipped[1000] = flipped[1000]! ^ 0x01;
  await db.put(leafKey, flipped);
  await db.close();

  store = await UnixFsContentStore.open(path);
  onClose(t, () => store.close().catch(() => {}));
  const leafCid = CID.createV1(0x55, Digest.decode(leafKey.subarray(1)));
  assert.deepEqual(Uint8Array.from(store.blocks.key(leafCid)), Uint8Array.from(leafKey));
  const fields = await assertCode(store.get(root), 'CONTENT_CORRUPT');
  assert.equal(fields.cid, leafCid.toString());
  await assertCode(store.get(leafCid.toString()), 'CONTENT_CORRUPT');
  await assertCode(store.pin(root), 'CONTENT_CORRUPT');
  assert.equal(await store.has(root), true, 'the root block itself is intact');

  // The same for the root block, and for a block that is gone.
  await store.close();
  const db2 = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  const rootKey = Uint8Array.from([0x02, ...CID.parse(root).multihash.bytes]);
  const rootBlock = (await db2.get(rootKey))!;
  await db2.put(rootKey, Uint8Array.from(rootBlock, (b, i) => (i === rootBlock.length - 1 ? b ^ 0x80 : b)));
  await db2.put(leafKey, leaf);
  await db2.del(leaves[1]![0]);
  await db2.close();
  store = await UnixFsContentStore.open(path);
  await assertCode(store.get(root), 'CONTENT_CORRUPT');
  await store.close();
  const db3 = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  await db3.put(rootKey, rootBlock);
  await db3.close();
  store = await UnixFsContentStore.open(path);
  await assertCode(store.get(root), 'CONTENT_NOT_FOUND');
  const missing = await assertCode(store.pin(root), 'CONTENT_NOT_FOUND');
  assert.equal(missing.cid, root);
  assert.ok(typeof missing.missing === 'string' && missing.missing !== root, 'names the missing block');
});

test('has, pin, unpin and list', async (t) => {
  const store = await openStore(t);
  const a = await store.add(te.encode('segment a'));
  const b = await store.add(randomBytes(300 * 1024), { cidVersion: 0 });
  const absent = CID.createV1(0x55, await sha256.digest(te.encode('never added'))).toString();
  assert.equal(await store.has(a), true);
  assert.equal(await store.has(b), true);
  assert.equal(await store.has(absent), false);
  await assertCode(store.has('not-a-cid'), 'CONTENT_BAD_CID');
  await assertCode(store.get('Qm123'), 'CONTENT_BAD_CID');
  await assertCode(store.get(absent), 'CONTENT_NOT_FOUND');
  await assertCode(store.pin(absent), 'CONTENT_NOT_FOUND');

  const listed = async () => {
    const out = new Map<string, boolean>();
    for await (const e of store.list()) out.set(e.cid, e.pinned);
    return out;
  };
  assert.deepEqual(await listed(), new Map([[a, false], [b, false]]));
  await store.pin(b);
  await store.pin(b); // idempotent
  assert.deepEqual(await listed(), new Map([[a, false], [b, true]]));
  assert.equal(await store.isPinned(b), true);
  await store.unpin(b);
  await store.unpin(b); // no error without a pin
  assert.deepEqual(await listed(), new Map([[a, false], [b, false]]));
  assert.equal(await store.has(b), true, 'unpinning keeps the blocks');
});

test('bad arguments are refused with the argument named', async (t) => {
  const store = await openStore(t);
  const bad = async (p: Promise<unknown>, argument: string) => assert.equal((await assertCode(p, 'CONTENT_INVALID_ARGUMENT')).argument, argument);
  await bad(store.add('text' as unknown as Uint8Array), 'bytes');
  await bad(store.add(new Uint8Array(1), { chunkSize: 0 }), 'chunkSize');
  await bad(store.add(new Uint8Array(1), { chunkSize: 2 * 1024 * 1024 }), 'chunkSize');
  await bad(store.add(new Uint8Array(1), { cidVersion: 2 as 0 }), 'cidVersion');
});

test('a directory is not a file: get() says CONTENT_NOT_A_FILE', async (t) => {
  const store = await openStore(t);
  const batch = store.blocks.batch();
  let dir: CID | undefined;
  for await (const entry of importer([{ path: 'd/x.txt', content: te.encode('x') }], batch, { cidVersion: 1 })) dir = entry.cid;
  await batch.write();
  await assertCode(store.get(dir!.toString()), 'CONTENT_NOT_A_FILE');
});

test('reopening keeps blocks, roots and pins; another schema or a second opener is refused', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'content');
  let store = await UnixFsContentStore.open(path);
  const bytes = randomBytes(400 * 1024);
  const cid = await store.add(bytes);
  await store.pin(cid);
  await assertCode(UnixFsContentStore.open(path), 'CONTENT_STORE_LOCKED');
  await store.close();

  store = await UnixFsContentStore.open(path);
  assert.deepEqual(await store.get(cid), new Uint8Array(bytes));
  const entries = [];
  for await (const e of store.list()) entries.push(e);
  assert.deepEqual(entries, [{ cid, pinned: true }]);
  await store.close();

  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.put(Uint8Array.from([0x01, ...te.encode('schema')]), te.encode(String(CONTENT_SCHEMA_VERSION + 1)));
  await db.close();
  await assertCode(UnixFsContentStore.open(path), 'CONTENT_STORE_SCHEMA_MISMATCH');
});

// The trustless gateway over a real LevelDB content store and a real HTTP server: raw blocks and CARs that a
// client verifies block by block against their CIDs, content negotiation, the probe CID, and the error
// statuses (400 malformed CID, 404 unknown CID, 406 no verifiable format, 501 paths below the CID).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CarReader } from '@ipld/car/reader';
import * as dagPb from '@ipld/dag-pb';
import { exporter } from 'ipfs-unixfs-exporter';
import type { CID } from 'multiformats/cid';
import { ContentError } from '../../chain/index.ts';
import type { BlockReader } from '../../gateway/content/blockstore.ts';
import { createTrustlessGatewayHandler } from '../../gateway/api/trustless-gateway.ts';
import { UnixFsContentStore, parseCid } from '../../gateway/content/unixfs-store.ts';

const te = new TextEncoder();
const dir = mkdtempSync(join(tmpdir(), 'datagate-gateway-'));
let store: UnixFsContentStore;
let base = '';
let badLeaf: CID | undefined; // the corrupting reader below fails on this block
const servers: Array<{ close(cb: () => void): void; closeAllConnections(): void }> = [];

const file = randomBytes(600 * 1024); // CIDv1: a dag-pb root over three raw leaves
const zeros = new Uint8Array(600 * 1024); // two identical full leaves: a DAG with a duplicate block
let fileCid = '';
let zerosCid = '';
let helloCid = '';

async function listen(blocks: BlockReader): Promise<string> {
  const handler = createTrustlessGatewayHandler({ blocks });
  const server = createServer((req, res) => {
    if (!handler(req, res)) {
      res.writeHead(418).end('not the gateway');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

before(async () => {
  store = await UnixFsContentStore.open(join(dir, 'content'));
  fileCid = await store.add(file);
  zerosCid = await store.add(zeros);
  helloCid = await store.add(te.encode('hello world\n'), { cidVersion: 0 });
  base = await listen(store.blocks);
});

after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(resolve));
  }
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function digestOf(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest();
}

/** Parses a CAR and checks every block against its CID; returns roots and blocks in stream order. */
async function readCar(bytes: Uint8Array): Promise<{ roots: CID[]; blocks: Array<{ cid: CID; bytes: Uint8Array }> }> {
  const reader = await CarReader.fromBytes(bytes);
  const blocks: Array<{ cid: CID; bytes: Uint8Array }> = [];
  for await (const b of reader.blocks()) {
    assert.equal(b.cid.multihash.code, 0x12);
    assert.deepEqual(new Uint8Array(digestOf(b.bytes)), new Uint8Array(b.cid.multihash.digest), `block ${b.cid} matches its CID`);
    blocks.push(b);
  }
  return { roots: await reader.getRoots(), blocks };
}

async function body(res: Response): Promise<Uint8Array> {
  return new Uint8Array(await res.arrayBuffer());
}

test('?format=raw returns the verifiable block with the spec headers', async () => {
  for (const cid of [fileCid, helloCid]) {
    const res = await fetch(`${base}/ipfs/${cid}?format=raw`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/vnd.ipld.raw');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(res.headers.get('cache-control') ?? '', /immutable/);
    assert.equal(res.headers.get('etag'), `"${cid}.raw"`);
    assert.equal(res.headers.get('content-disposition'), `attachment; filename="${cid}.bin"`);
    const bytes = await body(res);
    assert.equal(Number(res.headers.get('content-length')), bytes.length);
    assert.deepEqual(new Uint8Array(digestOf(bytes)), new Uint8Array(parseCid(cid).multihash.digest), 'the body hashes to the CID');
  }
});

test('Accept: application/vnd.ipld.raw works the same and names the format URL; HEAD has no body', async () => {
  const res = await fetch(`${base}/ipfs/${helloCid}`, { headers: { Accept: 'text/html;q=0.5, application/vnd.ipld.raw' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/vnd.ipld.raw');
  assert.equal(res.headers.get('content-location'), `/ipfs/${helloCid}?format=raw`);
  assert.equal(res.headers.get('vary'), 'Accept');
  const bytes = await body(res);
  assert.deepEqual(dagPb.decode(bytes).Links, [], 'a single-chunk CIDv0 file is one dag-pb node');

  const head = await fetch(`${base}/ipfs/${helloCid}?format=raw`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers.get('content-length')), bytes.length);
  assert.equal((await body(head)).length, 0);

  const again = await fetch(`${base}/ipfs/${helloCid}?format=raw`, { headers: { 'If-None-Match': `"${helloCid}.raw"` } });
  assert.equal(again.status, 304);
});

test('?format=car streams the whole DAG depth-first; every block verifies and the file reassembles', async () => {
  const res = await fetch(`${base}/ipfs/${fileCid}?format=car`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^application\/vnd\.ipld\.car; version=1; order=dfs; dups=n$/);
  assert.equal(res.headers.get('content-disposition'), `attachment; filename="${fileCid}.car"`);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  const { roots, blocks } = await readCar(await body(res));
  assert.deepEqual(roots.map(String), [fileCid]);
  assert.equal(blocks[0]!.cid.toString(), fileCid, 'the root comes first');
  const links = dagPb.decode(blocks[0]!.bytes).Links.map((l) => l.Hash.toString());
  assert.deepEqual(blocks.slice(1).map((b) => b.cid.toString()), links, 'then the leaves in link order');

  const byCid = new Map(blocks.map((b) => [b.cid.toString(), b.bytes]));
  const entry = await exporter(parseCid(fileCid), {
    async *get(cid: CID) {
      const b = byCid.get(cid.toString());
      if (b === undefined) throw new Error(`CAR lacks ${cid}`);
      yield b;
    },
  });
  assert.equal(entry.type, 'file');
  const parts: Uint8Array[] = [];
  if (entry.type === 'file') for await (const chunk of entry.content()) parts.push(chunk);
  assert.deepEqual(new Uint8Array(Buffer.concat(parts)), new Uint8Array(file), 'the CAR holds the whole file');
});

test('CAR by Accept, dups, dag-scope=block, and the bafkqaaa probe', async () => {
  const deduped = await fetch(`${base}/ipfs/${zerosCid}`, { headers: { Accept: 'application/vnd.ipld.car' } });
  assert.equal(deduped.status, 200);
  assert.equal(deduped.headers.get('content-location'), `/ipfs/${zerosCid}?format=car`);
  assert.equal((await readCar(await body(deduped))).blocks.length, 3, 'root, the zero leaf once, the short leaf');

  const dups = await fetch(`${base}/ipfs/${zerosCid}`, { headers: { Accept: 'application/vnd.ipld.car; version=1; order=dfs; dups=y' } });
  assert.match(dups.headers.get('content-type') ?? '', /dups=y/);
  assert.equal((await readCar(await body(dups))).blocks.length, 4, 'the zero leaf each time it is linked');

  const scoped = await fetch(`${base}/ipfs/${fileCid}?format=car&dag-scope=block`);
  const { blocks } = await readCar(await body(scoped));
  assert.deepEqual(blocks.map((b) => b.cid.toString()), [fileCid]);

  const probeRaw = await fetch(`${base}/ipfs/bafkqaaa?format=raw`);
  assert.equal(probeRaw.status, 200);
  assert.equal((await body(probeRaw)).length, 0);
  const probeCar = await fetch(`${base}/ipfs/bafkqaaa?format=car`);
  assert.equal(probeCar.status, 200);
  const probe = await readCar(await body(probeCar));
  assert.deepEqual(probe.roots.map(String), ['bafkqaaa']);
  assert.equal(probe.blocks.length, 0);

  const head = await fetch(`${base}/ipfs/${fileCid}?format=car`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal((await body(head)).length, 0);
});

test('errors: 404 unknown CID, 400 malformed CID, 406 without a verifiable format, 501/400 for paths', async () => {
  const unknown = 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e'; // "hello world", never added here
  assert.equal((await fetch(`${base}/ipfs/${unknown}?format=raw`)).status, 404);
  assert.equal((await fetch(`${base}/ipfs/${unknown}?format=car`)).status, 404);
  assert.equal((await fetch(`${base}/ipfs/${unknown}?format=raw`, { method: 'HEAD' })).status, 404);

  for (const bad of ['not-a-cid', 'Qm123', 'bafy%zz']) {
    const res = await fetch(`${base}/ipfs/${bad}?format=raw`);
    assert.equal(res.status, 400, bad);
    assert.match(await res.text(), /CID/);
  }
  assert.equal((await fetch(`${base}/ipfs/?format=raw`)).status, 400);

  for (const headers of [{}, { Accept: 'text/html' }, { Accept: '*/*' }, { Accept: 'application/vnd.ipld.car; version=2' }] as Array<Record<string, string>>) {
    const res = await fetch(`${base}/ipfs/${fileCid}`, { headers });
    assert.equal(res.status, 406, JSON.stringify(headers));
    const text = await res.text();
    if (headers.Accept?.includes('version=2')) assert.match(text, /version/);
    else {
      assert.match(text, /trustless/);
      assert.match(text, /application\/vnd\.ipld\.raw/);
      assert.match(text, /application\/vnd\.ipld\.car/);
    }
  }
  assert.equal((await fetch(`${base}/ipfs/${fileCid}?format=tar`)).status, 406);

  const rawPath = await fetch(`${base}/ipfs/${fileCid}/x?format=raw`);
  assert.equal(rawPath.status, 400);
  assert.match(await rawPath.text(), /no path below the CID/);
  const carPath = await fetch(`${base}/ipfs/${fileCid}/x?format=car`);
  assert.equal(carPath.status, 501);
  assert.match(await carPath.text(), /paths below the CID/);

  const post = await fetch(`${base}/ipfs/${fileCid}?format=raw`, { method: 'POST' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');

  const other = await fetch(`${base}/api/v0/add`);
  assert.equal(other.status, 418, 'paths outside /ipfs/ are left to the next handler');
});

test('a damaged block: 500 before the response starts, a cut-off CAR after', async () => {
  const corrupting: BlockReader = {
    has: (cid) => store.blocks.has(cid),
    async get(cid) {
      if (badLeaf !== undefined && cid.equals(badLeaf)) throw new ContentError('CONTENT_CORRUPT', `stored block ${cid} does not hash to its CID`, { cid: cid.toString() });
      return store.blocks.get(cid);
    },
  };
  const url = await listen(corrupting);
  const root = parseCid(fileCid);
  const leaves = dagPb.decode(await store.blocks.get(root)).Links;
  badLeaf = leaves[2]!.Hash;

  assert.equal((await fetch(`${url}/ipfs/${badLeaf}?format=raw`)).status, 500);
  const res = await fetch(`${url}/ipfs/${fileCid}?format=car`);
  assert.equal(res.status, 200, 'the root was fine, so streaming began');
  await assert.rejects(res.arrayBuffer(), 'the body ends in a connection error, not a clean end');
});

// `datagate ipfs unpin|gc` as an operator runs them: an unpinned file's own blocks go and the directory shrinks,
// the chunk it shares with a kept file stays, a second gc frees nothing, and both commands refuse (saying the
// node must be stopped) while another process holds the store.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { UnixFsContentStore } from '../../gateway/content/unixfs-store.ts';
import { onClose, tempDirClosingFirst } from '../helpers/temp-dir.ts';

const BIN = fileURLToPath(new URL('../../gateway/bin/datagate.mjs', import.meta.url));
const CHUNK = 262_144;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }));
  });
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

test('ipfs unpin and ipfs gc free an unpinned file and keep what a kept file shares', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-ipfs-gc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const node = join(dir, 'node');
  const shared = randomBytes(CHUNK);
  const aBytes = Buffer.concat([shared, randomBytes(8 * CHUNK)]); // 9 leaves under a root, one of them shared
  const bBytes = Buffer.concat([shared, randomBytes(100)]);
  writeFileSync(join(dir, 'a.bin'), aBytes);
  writeFileSync(join(dir, 'b.bin'), bBytes);
  const addA = await run(['ipfs', 'add', join(dir, 'a.bin'), '--data-dir', node]);
  const addB = await run(['ipfs', 'add', join(dir, 'b.bin'), '--data-dir', node]);
  assert.equal(addA.code + addB.code, 0, addA.stderr + addB.stderr);
  const [a, b] = [addA.stdout.trim(), addB.stdout.trim()];

  const unpinned = await run(['ipfs', 'unpin', a, '--data-dir', node]);
  assert.equal(unpinned.code, 0, unpinned.stderr);
  assert.equal(unpinned.stdout.trim(), `unpinned ${a}`);
  const before = dirBytes(join(node, 'content'));
  const gc = await run(['ipfs', 'gc', '--data-dir', node]);
  assert.equal(gc.code, 0, gc.stderr);
  const freed = JSON.parse(gc.stdout) as { removedBlocks: number; freedBytes: number; keptBlocks: number };
  assert.deepEqual(Object.keys(freed), ['removedBlocks', 'freedBytes', 'keptBlocks']);
  assert.equal(freed.removedBlocks, 9, "A's root and its 8 own leaves");
  assert.equal(freed.keptBlocks, 3);
  assert.ok(freed.freedBytes >= 8 * CHUNK && freed.freedBytes < 8 * CHUNK + 1000, String(freed.freedBytes));
  const after = dirBytes(join(node, 'content'));
  assert.ok(before - after >= 7 * CHUNK, `the content directory went from ${before} to ${after} bytes`);

  const out = join(dir, 'b.out');
  const gotA = await run(['ipfs', 'get', a, '--data-dir', node]);
  assert.equal(gotA.code, 1);
  assert.match(gotA.stderr, /\[CONTENT_NOT_FOUND\]/);
  const gotB = await run(['ipfs', 'get', b, '--output', out, '--data-dir', node]);
  assert.equal(gotB.code, 0, gotB.stderr);
  assert.deepEqual(readFileSync(out), bBytes);
  const again = await run(['ipfs', 'gc', '--data-dir', node]);
  assert.deepEqual(JSON.parse(again.stdout), { removedBlocks: 0, freedBytes: 0, keptBlocks: 3 }, 'a second gc frees nothing');

  const unknown = await run(['ipfs', 'unpin', a, '--data-dir', node]);
  assert.equal(unknown.code, 1, 'a CID that is not here is an error, not a silent no-op');
  assert.match(unknown.stderr, /\[CONTENT_NOT_FOUND\]/);
});

test('ipfs gc and ipfs unpin need the node stopped, and say so', async (t) => {
  const dir = tempDirClosingFirst(t, 'datagate-ipfs-gc-');
  const store = await UnixFsContentStore.open(join(dir, 'content')); // what a running node holds
  onClose(t, () => store.close());
  const cid = await store.add(randomBytes(1000));
  await store.unpin(cid);
  const [gc, unpin, help] = await Promise.all([run(['ipfs', 'gc', '--data-dir', dir]), run(['ipfs', 'unpin', cid, '--data-dir', dir]), run(['ipfs', '--help'])]);
  for (const r of [gc, unpin]) {
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /needs the node stopped/);
    assert.match(r.stderr, /\[CONTENT_STORE_LOCKED\]/);
  }
  assert.equal(await store.has(cid), true, 'nothing was collected');
  assert.match(help.stdout, /ipfs unpin/);
  assert.match(help.stdout, /ipfs gc .*node stopped/);
});

// `datagate ipfs add|get` against a store on disk and against a running node that holds the store (through its
// admin API and trustless gateway); the admin API refuses requests without the node's token.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { CID } from 'multiformats/cid';
import { startDev } from '../helpers/dev-process.ts';

const BIN = fileURLToPath(new URL('../../gateway/bin/datagate.mjs', import.meta.url));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }));
  });
}

test('ipfs add/get on a data dir, then through a running node', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-ipfs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'hello.txt');
  writeFileSync(file, 'hello world\n');
  const v0 = await run(['ipfs', 'add', file, '--cid-version', '0', '--data-dir', join(dir, 'node')]);
  assert.equal(v0.stdout.trim(), 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o', v0.stderr);

  const node = await startDev(['--data-dir', join(dir, 'node')]);
  try {
    const big = join(dir, 'big.bin');
    writeFileSync(big, Buffer.alloc(700_000, 7));
    const added = await run(['ipfs', 'add', big, '--data-dir', join(dir, 'node')]);
    assert.equal(added.code, 0, added.stderr);
    const cid = added.stdout.trim();
    assert.match(cid, /^bafy/);
    const out = join(dir, 'back.bin');
    const got = await run(['ipfs', 'get', cid, '--output', out, '--data-dir', join(dir, 'node')]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(createHash('sha256').update(Buffer.alloc(700_000, 7)).digest('hex'), createHash('sha256').update((await import('node:fs')).readFileSync(out)).digest('hex'));
    // The trustless gateway on the node's port serves the raw block of the v0 CID; its hash is the CID's.
    const raw = await fetch(`${node.rpcUrl}/ipfs/QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o?format=raw`);
    assert.equal(raw.headers.get('content-type'), 'application/vnd.ipld.raw');
    const digest = createHash('sha256').update(Buffer.from(await raw.arrayBuffer())).digest();
    assert.deepEqual(Buffer.from(CID.parse('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o').multihash.digest), digest);
    const noToken = await fetch(`${node.rpcUrl}/api/v0/add`, { method: 'POST', body: 'x' });
    assert.equal(noToken.status, 401);
    // JSON-RPC still answers on the same port.
    const rpc = await fetch(node.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' });
    assert.equal(((await rpc.json()) as { result: string }).result, '0x539');
  } finally {
    await node.stop();
  }
});

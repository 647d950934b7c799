// `datagate dev` runs the simulator through the pipeline into the content store; after it stops,
// `datagate segments list|key|open|verify` see sealed, stored, verifiable segments.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { startDev } from '../helpers/dev-process.ts';

const BIN = fileURLToPath(new URL('../../gateway/bin/datagate.mjs', import.meta.url));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }));
  });
}

test('dev seals simulator readings into segments that list, open and verify', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-seg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'node');
  const node = await startDev(['--data-dir', dataDir, '--segment-seconds', '1']);
  await new Promise((r) => setTimeout(r, 4000));
  const whileRunning = await run(['segments', 'list', '--data-dir', dataDir]);
  assert.equal(whileRunning.code, 0, whileRunning.stderr); // through the node's API: segments-live.test.ts
  assert.equal(await node.stop(), 0);

  const listed = await run(['segments', 'list', '--data-dir', dataDir]);
  assert.equal(listed.code, 0, listed.stderr);
  const segments = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: number; stream: string; state: string; count: number; cid: string | null });
  assert.ok(segments.length >= 3, listed.stdout);
  assert.ok(segments.every((s) => s.state === 'stored' && s.cid !== null));
  assert.deepEqual([...new Set(segments.map((s) => s.stream))].sort(), ['greenhouse/humidity', 'greenhouse/temperature', 'pump/pressure']);

  const first = segments[0]!;
  const keyFile = join(dir, 'segment.key');
  const key = await run(['segments', 'key', String(first.id), '--output', keyFile, '--data-dir', dataDir]);
  assert.equal(key.code, 0, key.stderr);
  const opened = await run(['segments', 'open', first.cid!, '--key-file', keyFile, '--data-dir', dataDir]);
  assert.equal(opened.code, 0, opened.stderr);
  const readings = opened.stdout.trim().split('\n').map((l) => JSON.parse(l) as { stream: string; seq: number });
  assert.equal(readings.length, first.count);
  assert.ok(readings.every((r) => r.stream === first.stream));
  assert.match(opened.stderr, /Merkle root and signature checked/);

  // Sealed to a buyer's reader key: the file holds an EIP-1024 box, not the key; only the reader opens it.
  const readerFile = join(dir, 'reader.key');
  const reader = await run(['segments', 'reader-key', '--output', readerFile]);
  assert.equal(reader.code, 0, reader.stderr);
  const sealedFile = join(dir, 'segment.sealed');
  const sealed = await run(['segments', 'key', String(first.id), '--to', reader.stdout.trim(), '--output', sealedFile, '--data-dir', dataDir]);
  assert.equal(sealed.code, 0, sealed.stderr);
  const box = JSON.parse(readFileSync(sealedFile, 'utf8')) as { version: string; ciphertext: string };
  assert.equal(box.version, 'x25519-xsalsa20-poly1305');
  assert.ok(!readFileSync(sealedFile, 'utf8').includes(readFileSync(keyFile, 'utf8').trim().slice(2)), 'the key is not in the sealed file');
  const noReader = await run(['segments', 'open', first.cid!, '--key-file', sealedFile, '--data-dir', dataDir]);
  assert.equal(noReader.code, 2);
  assert.match(noReader.stderr, /--reader-key/);
  const openedSealed = await run(['segments', 'open', first.cid!, '--key-file', sealedFile, '--reader-key', readerFile, '--data-dir', dataDir]);
  assert.equal(openedSealed.code, 0, openedSealed.stderr);
  assert.equal(openedSealed.stdout, opened.stdout);
  const otherReader = join(dir, 'other.key');
  assert.equal((await run(['segments', 'reader-key', '--output', otherReader])).code, 0);
  const wrongReader = await run(['segments', 'open', first.cid!, '--key-file', sealedFile, '--reader-key', otherReader, '--data-dir', dataDir]);
  assert.equal(wrongReader.code, 1);
  assert.match(wrongReader.stderr, /does not open with this reader key/);
  const badTo = await run(['segments', 'key', String(first.id), '--to', 'not-a-key', '--output', join(dir, 'x'), '--data-dir', dataDir]);
  assert.equal(badTo.code, 2);
  assert.match(badTo.stderr, /--to: .*base64/);

  const wrongKey = await run(['segments', 'open', segments[1]!.cid!, '--key-file', keyFile, '--data-dir', dataDir]);
  assert.equal(wrongKey.code, 1);
  assert.match(wrongKey.stderr, /\[SEGMENT_WRONG_KEY\]/);

  const verified = await run(['segments', 'verify', '--data-dir', dataDir]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  assert.match(verified.stdout, /^segments: \d+, readings: \d+, gaps: 0, duplicates: 0, corrupt: 0$/m);

  // A mistyped data directory is an error, and nothing is created there.
  const typo = join(dir, 'nod');
  for (const args of [['segments', 'verify'], ['segments', 'open', first.cid!, '--key-file', keyFile], ['segments', 'list']]) {
    const r = await run([...args, '--data-dir', typo]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /not a datagate data directory|holds no pipeline database|no pipeline database/, r.stderr);
  }
  assert.equal(existsSync(typo), false, 'nothing created in the mistyped directory');
});

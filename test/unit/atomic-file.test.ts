// writeFileAtomic (device/atomic-file.ts), the one writer of small files that must be whole after a crash:
// the mode is exact whatever the umask, a failed write leaves the old file and no temp file, concurrent
// writers leave one whole file, and an exclusive write never replaces an existing file.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeFileAtomic } from '../../device/index.ts';
import { tempDir } from '../helpers/chain.ts';

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

test('the file gets exactly the mode asked for, even with a permissive umask and over a looser file', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'secret');
  const was = process.umask(0);
  try {
    await writeFileAtomic(file, 'one\n');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    writeFileSync(file, 'loose', { mode: 0o666 });
    await writeFileAtomic(file, 'two\n', { mode: 0o600 });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(readFileSync(file, 'utf8'), 'two\n');
  } finally {
    process.umask(was);
  }
  const restrictive = process.umask(0o277); // would turn open()'s 0600 into 0400
  try {
    await writeFileAtomic(file, new Uint8Array([1, 2, 3]));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual([...readFileSync(file)], [1, 2, 3]);
  } finally {
    process.umask(restrictive);
  }
  assert.deepEqual(readdirSync(dir), ['secret']);
});

test('a failed write leaves the old content and no temp file', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  await assert.rejects(writeFileAtomic(join(dir, 'missing', 'file'), 'x'), (err) => code(err) === 'ENOENT');
  assert.deepEqual(readdirSync(dir), []);

  const file = join(dir, 'state');
  writeFileSync(file, 'old\n', { mode: 0o600 });
  // Fails inside the write, after the temp file exists.
  await assert.rejects(writeFileAtomic(file, 42 as unknown as string), (err) => code(err) === 'ERR_INVALID_ARG_TYPE');
  assert.equal(readFileSync(file, 'utf8'), 'old\n');
  assert.deepEqual(readdirSync(dir), ['state']);

  // Fails at the rename, after the temp file was written and fsync'd: a non-empty directory is in the way.
  const blocked = join(dir, 'blocked');
  mkdirSync(blocked);
  writeFileSync(join(blocked, 'inside'), 'kept');
  await assert.rejects(writeFileAtomic(blocked, 'new'), (err) => ['EISDIR', 'ENOTEMPTY', 'EEXIST', 'EPERM'].includes(code(err) ?? ''));
  assert.deepEqual(readdirSync(dir).sort(), ['blocked', 'state']);
  assert.equal(readFileSync(join(blocked, 'inside'), 'utf8'), 'kept');
});

test('an exclusive write never replaces a file and fails with EEXIST, leaving no temp file', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'key');
  await writeFileAtomic(file, 'first', { exclusive: true });
  await assert.rejects(writeFileAtomic(file, 'second', { exclusive: true }), (err) => code(err) === 'EEXIST');
  assert.equal(readFileSync(file, 'utf8'), 'first');
  assert.deepEqual(readdirSync(dir), ['key']);
});

test('concurrent writers leave one whole file; concurrent exclusive writers exactly one winner', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'shared');
  const writers = 16;
  const size = 256 * 1024; // several write() calls each, so a torn file would show
  const bodies = Array.from({ length: writers }, (_, i) => new Uint8Array(size).fill(i + 1));
  await Promise.all(bodies.map((b) => writeFileAtomic(file, b)));
  const got = readFileSync(file);
  assert.equal(got.length, size);
  assert.ok(got.every((byte) => byte === got[0]), 'the file mixes two writers');
  assert.deepEqual(readdirSync(dir), ['shared']);

  const only = join(dir, 'only');
  const results = await Promise.allSettled(bodies.map((b) => writeFileAtomic(only, b, { exclusive: true })));
  const won = results.filter((r) => r.status === 'fulfilled');
  assert.equal(won.length, 1);
  for (const r of results) if (r.status === 'rejected') assert.equal(code(r.reason), 'EEXIST');
  const kept = readFileSync(only);
  assert.equal(kept.length, size);
  assert.ok(kept.every((byte) => byte === kept[0]));
  assert.deepEqual(readdirSync(dir).sort(), ['only', 'shared']);
});

// The consensus WAL: framing round trip, reopen, torn tails, corruption, rotation, pruning, and a writer
// process killed with SIGKILL mid-append losing nothing it had reported as written.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, readdirSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { Wal, WAL_FRAME_OVERHEAD, WAL_HEADER_BYTES, crc32, crc32Portable, walFileName } from '../../chain/lbft/wal.ts';
import { tempDir } from '../helpers/chain.ts';
import { walRecord } from '../helpers/wal-writer.ts';
import { expectCode as assertCode } from '../helpers/expect-code.ts';

const WRITER = fileURLToPath(new URL('../helpers/wal-writer.ts', import.meta.url));

async function replayAll(wal: Wal): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const p of wal.replay()) out.push(p);
  return out;
}


/** Offset of frame `k` in a file holding walRecord(first), walRecord(first + 1), ... */
function frameOffset(first: number, k: number): number {
  let off = WAL_HEADER_BYTES;
  for (let i = first; i < first + k; i++) off += WAL_FRAME_OVERHEAD + walRecord(i).length;
  return off;
}

test('crc32 is the IEEE CRC-32 of zlib, native and portable alike', () => {
  const check = new TextEncoder().encode('123456789');
  assert.equal(crc32(check), 0xcbf43926);
  assert.equal(crc32Portable(check), 0xcbf43926);
  assert.equal(crc32Portable(new Uint8Array(0)), 0);
  for (let i = 0; i < 50; i++) {
    const r = walRecord(i * 31);
    assert.equal(crc32Portable(r), zlib.crc32(r) >>> 0);
  }
});

test('many frames round-trip in order; reopening appends after them', async (t) => {
  const dir = tempDir(t);
  let wal = await Wal.open(dir);
  for (let i = 0; i < 1000; i++) await wal.append(walRecord(i), { sync: i % 100 === 0 });
  assert.deepEqual(await replayAll(wal), Array.from({ length: 1000 }, (_, i) => walRecord(i)));
  assert.equal(wal.replayStats.frames, 1000);
  assert.equal(wal.replayStats.truncated, null);
  await wal.close();

  wal = await Wal.open(dir);
  assert.equal(wal.replayStats.truncated, null);
  for (let i = 1000; i < 1200; i++) await wal.append(walRecord(i));
  await wal.close();
  wal = await Wal.open(dir);
  assert.deepEqual(await replayAll(wal), Array.from({ length: 1200 }, (_, i) => walRecord(i)));
  await wal.close();
  assert.deepEqual(readdirSync(dir), ['wal-000001.log']);
  assert.equal(statSync(join(dir, 'wal-000001.log')).mode & 0o777, 0o600);
});

test('appends issued together are written in call order', async (t) => {
  const wal = await Wal.open(tempDir(t), { maxFileBytes: 8192 });
  await Promise.all(Array.from({ length: 300 }, (_, i) => wal.append(walRecord(i), { sync: i % 7 === 0 })));
  assert.deepEqual(await replayAll(wal), Array.from({ length: 300 }, (_, i) => walRecord(i)));
  await wal.close();
});

test('a torn last frame is cut off at open, reported, and the log continues after it', async (t) => {
  const dir = tempDir(t);
  let wal = await Wal.open(dir);
  for (let i = 0; i < 10; i++) await wal.append(walRecord(i));
  await wal.close();
  const file = join(dir, walFileName(1));
  const size = statSync(file).size;
  truncateSync(file, size - 3);

  wal = await Wal.open(dir);
  const cut = wal.replayStats.truncated;
  assert.ok(cut !== null);
  assert.equal(cut.file, file);
  assert.equal(cut.offset, frameOffset(0, 9));
  assert.equal(cut.droppedBytes, size - 3 - frameOffset(0, 9));
  assert.deepEqual(await replayAll(wal), Array.from({ length: 9 }, (_, i) => walRecord(i)));
  await wal.append(walRecord(9));
  await wal.close();

  wal = await Wal.open(dir);
  assert.equal(wal.replayStats.truncated, null);
  assert.deepEqual(await replayAll(wal), Array.from({ length: 10 }, (_, i) => walRecord(i)));
  await wal.close();
});

test('a torn frame header, a zero-filled tail and a bad checksum in the last frame are all torn tails', async (t) => {
  const cases: Array<[string, (file: string) => void]> = [
    ['header cut short', (file) => appendFileSync(file, Uint8Array.of(0, 0, 1))],
    ['zero-filled tail', (file) => appendFileSync(file, new Uint8Array(700))],
    [
      'last frame checksum',
      (file) => {
        const bytes = readFileSync(file);
        bytes[bytes.length - 1]! ^= 0xff;
        writeFileSync(file, bytes);
      },
    ],
  ];
  for (const [name, damage] of cases) {
    const dir = tempDir(t);
    let wal = await Wal.open(dir);
    for (let i = 0; i < 5; i++) await wal.append(walRecord(i));
    await wal.close();
    damage(join(dir, walFileName(1)));
    wal = await Wal.open(dir);
    assert.ok(wal.replayStats.truncated !== null, name);
    const expect = name === 'last frame checksum' ? 4 : 5;
    assert.deepEqual(await replayAll(wal), Array.from({ length: expect }, (_, i) => walRecord(i)), name);
    await wal.close();
  }
});

test('a flipped byte in a middle frame is WAL_CORRUPT naming the file and the frame offset', async (t) => {
  const dir = tempDir(t);
  let wal = await Wal.open(dir);
  for (let i = 0; i < 10; i++) await wal.append(walRecord(i));
  await wal.close();
  const file = join(dir, walFileName(1));
  const bytes = readFileSync(file);
  bytes[frameOffset(0, 4) + WAL_FRAME_OVERHEAD + 2]! ^= 0x01;
  writeFileSync(file, bytes);
  const fields = await assertCode(Wal.open(dir), 'WAL_CORRUPT');
  assert.equal(fields.file, file);
  assert.equal(fields.offset, frameOffset(0, 4));

  // The same damage in an older (rotated) file is found by replay, after the intact frames before it.
  const dir2 = tempDir(t);
  wal = await Wal.open(dir2, { maxFileBytes: 8192 });
  for (let i = 0; i < 40; i++) await wal.append(walRecord(i));
  await wal.close();
  const first = join(dir2, walFileName(1));
  const b2 = readFileSync(first);
  b2[frameOffset(0, 1) + WAL_FRAME_OVERHEAD]! ^= 0x80;
  writeFileSync(first, b2);
  wal = await Wal.open(dir2, { maxFileBytes: 8192 });
  const seen: Uint8Array[] = [];
  const f2 = await assertCode(
    (async () => {
      for await (const p of wal.replay()) seen.push(p);
    })(),
    'WAL_CORRUPT',
  );
  assert.deepEqual(seen, [walRecord(0)]);
  assert.deepEqual([f2.file, f2.offset], [first, frameOffset(0, 1)]);
  await wal.close();
});

test('rotation spreads frames over numbered files that replay in order; prune keeps the newest', async (t) => {
  const dir = tempDir(t);
  let wal = await Wal.open(dir, { maxFileBytes: 8192 });
  for (let i = 0; i < 200; i++) await wal.append(walRecord(i));
  const files = readdirSync(dir).sort();
  assert.ok(files.length > 10, `expected many files, got ${files.length}`);
  assert.deepEqual(files, files.map((_, k) => walFileName(k + 1)));
  for (const f of files.slice(0, -1)) assert.ok(statSync(join(dir, f)).size <= 8192, f);
  assert.equal(wal.currentFile, files.length);
  await wal.close();

  wal = await Wal.open(dir, { maxFileBytes: 8192 });
  assert.deepEqual(await replayAll(wal), Array.from({ length: 200 }, (_, i) => walRecord(i)));
  assert.equal(wal.replayStats.files, files.length);

  // Keep the last 3 files: replay starts at the first record of the oldest kept file.
  assert.equal(await wal.prune(3), files.length - 3);
  assert.deepEqual(readdirSync(dir).sort(), files.slice(-3));
  const kept = await replayAll(wal);
  const firstKept = new DataView(kept[0]!.buffer).getUint32(0);
  assert.deepEqual(kept, Array.from({ length: 200 - firstKept }, (_, i) => walRecord(firstKept + i)));
  await wal.append(walRecord(200));
  await wal.close();
  wal = await Wal.open(dir, { maxFileBytes: 8192 });
  assert.equal((await replayAll(wal)).length, 201 - firstKept);
  await assert.rejects(wal.prune(0), RangeError);
  await wal.close();
});

test('rotate() starts the next file at a checkpoint; prune(1) then keeps only what follows it', async (t) => {
  const dir = tempDir(t);
  let wal = await Wal.open(dir);
  await wal.rotate(); // nothing written yet: stays in file 1
  assert.equal(wal.currentFile, 1);
  for (let i = 0; i < 5; i++) await wal.append(walRecord(i));
  const pending = wal.append(walRecord(5));
  await wal.rotate(); // after the append issued before it
  await pending;
  assert.equal(wal.currentFile, 2);
  await wal.append(walRecord(6));
  assert.equal(await wal.prune(1), 1);
  await wal.close();
  wal = await Wal.open(dir);
  assert.deepEqual(await replayAll(wal), [walRecord(6)]);
  await wal.close();
});

test('a file missing from the middle of the sequence is WAL_CORRUPT', async (t) => {
  const dir = tempDir(t);
  const wal = await Wal.open(dir, { maxFileBytes: 8192 });
  for (let i = 0; i < 60; i++) await wal.append(walRecord(i));
  await wal.close();
  unlinkSync(join(dir, walFileName(2)));
  const fields = await assertCode(Wal.open(dir, { maxFileBytes: 8192 }), 'WAL_CORRUPT');
  assert.equal(fields.file, join(dir, walFileName(2)));
});

test('a newest file whose header a crash cut short is rewritten; a foreign file is WAL_CORRUPT', async (t) => {
  const dir = tempDir(t);
  let wal = await Wal.open(dir);
  await wal.append(walRecord(0));
  await wal.close();
  writeFileSync(join(dir, walFileName(2)), Uint8Array.of(0x44, 0x47, 0x57));
  wal = await Wal.open(dir);
  assert.equal(wal.replayStats.truncated?.file, join(dir, walFileName(2)));
  await wal.append(walRecord(1));
  assert.deepEqual(await replayAll(wal), [walRecord(0), walRecord(1)]);
  await wal.close();

  writeFileSync(join(dir, walFileName(3)), new TextEncoder().encode('this is not a WAL file at all'));
  await assertCode(Wal.open(dir), 'WAL_CORRUPT');
});

test('bad arguments are refused by name; appends after close fail with WAL_WRITE_FAILED', async (t) => {
  const dir = tempDir(t);
  await assert.rejects(Wal.open(dir, { maxFileBytes: 10 }), /maxFileBytes/);
  const wal = await Wal.open(dir);
  await assert.rejects(wal.append(new Uint8Array(0)), RangeError);
  await assert.rejects(wal.append('x' as unknown as Uint8Array), TypeError);
  await wal.close();
  await wal.close();
  await assertCode(wal.append(walRecord(0)), 'WAL_WRITE_FAILED');
});

/** Run the writer until it has reported a few appends, SIGKILL it at a random moment, return what it reported. */
function runAndKill(dir: string): Promise<{ start: number; done: number[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, '16384'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let killTimer: NodeJS.Timeout | undefined;
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wal-writer made no progress:\n${out}\n${err}`));
    }, 30_000);
    child.stderr.on('data', (c: Buffer) => void (err += c.toString()));
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (killTimer === undefined && /^\d+$/m.test(out)) {
        killTimer = setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 150));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(deadline);
      if (signal !== 'SIGKILL') return reject(new Error(`wal-writer exited with ${code}:\n${out}\n${err}`));
      const lines = out.split('\n').slice(0, -1); // a line without its newline was not fully reported
      const start = Number(/^start (\d+)$/m.exec(out)?.[1]);
      resolve({ start, done: lines.filter((l) => /^\d+$/.test(l)).map(Number) });
    });
  });
}

test('a writer killed with SIGKILL mid-append loses no append it saw resolve', async (t) => {
  const dir = tempDir(t);
  let reported = -1;
  for (let round = 0; round < 5; round++) {
    const { start, done } = await runAndKill(dir);
    assert.ok(start > reported, `round ${round}: restarted at ${start}, but ${reported} had been reported`);
    assert.ok(done.length > 0);
    assert.deepEqual(done, Array.from({ length: done.length }, (_, i) => start + i));
    reported = done[done.length - 1]!;

    const wal = await Wal.open(dir, { maxFileBytes: 16384 });
    const records = await replayAll(wal);
    await wal.close();
    assert.ok(records.length > reported, `round ${round}: ${records.length} records, ${reported} reported`);
    assert.deepEqual(records, Array.from({ length: records.length }, (_, i) => walRecord(i)));
  }
});

test('checkpoint() opens a new file only past checkpointBytes; replay({ from }) starts at the newest accepted file', async (t) => {
  const dir = tempDir(t);
  const wal = await Wal.open(dir, { checkpointBytes: 4096 });
  const index = (r: Uint8Array) => new DataView(r.buffer, r.byteOffset).getUint32(0);
  // Every 10th record is a "checkpoint" (its index a multiple of 10): mark it before appending it.
  for (let i = 0; i < 100; i++) {
    if (i % 10 === 0) await wal.checkpoint();
    await wal.append(walRecord(i));
  }
  const files = readdirSync(dir).sort();
  assert.ok(files.length > 3, `expected several files, got ${files.length}`);
  for (const f of files.slice(0, -1)) assert.ok(statSync(join(dir, f)).size > 4096, `${f} was rotated before it passed checkpointBytes`);

  const checkpoint = (r: Uint8Array) => index(r) % 10 === 0 && index(r) <= 75;
  const replayed = [];
  for await (const p of wal.replay({ from: checkpoint })) replayed.push(p);
  const first = index(replayed[0]!);
  assert.ok(first % 10 === 0 && first <= 75 && first > 50, `replay began at record ${first}`);
  assert.deepEqual(replayed, Array.from({ length: 100 - first }, (_, i) => walRecord(first + i)));
  assert.ok(wal.replayStats.files < files.length);

  // No file opens with an accepted record: everything is replayed.
  assert.equal((await replayAll(wal)).length, 100);
  const all = [];
  for await (const p of wal.replay({ from: () => false })) all.push(p);
  assert.equal(all.length, 100);
  assert.equal(wal.replayStats.files, files.length);
  await wal.close();
  await assert.rejects(Wal.open(dir, { checkpointBytes: 3 }), /checkpointBytes/);
});

test('open reports a new log, an emptied newest file, and how many records a torn tail held', async (t) => {
  const dir = tempDir(t);
  let wal = await Wal.open(dir);
  assert.equal(wal.replayStats.created, true);
  for (let i = 0; i < 10; i++) await wal.append(walRecord(i));
  await wal.close();
  wal = await Wal.open(dir);
  assert.equal(wal.replayStats.created, false);
  await wal.close();

  // A length field corrupted to run past the end (frame 6 of 10) looks like one torn frame: droppedRecords
  // counts 1, and droppedBytes shows that the bytes of four frames went.
  const file = join(dir, walFileName(1));
  const bytes = readFileSync(file);
  bytes.writeUInt32BE(0x00ffffff, frameOffset(0, 6));
  writeFileSync(file, bytes);
  wal = await Wal.open(dir);
  assert.equal(wal.replayStats.truncated?.droppedRecords, 1);
  assert.equal(wal.replayStats.truncated?.droppedBytes, frameOffset(0, 10) - frameOffset(0, 6));
  await wal.close();

  const dir2 = tempDir(t);
  wal = await Wal.open(dir2);
  for (let i = 0; i < 10; i++) await wal.append(walRecord(i));
  await wal.close();
  const file2 = join(dir2, walFileName(1));
  truncateSync(file2, frameOffset(0, 6) + 5);
  wal = await Wal.open(dir2);
  assert.deepEqual({ ...wal.replayStats.truncated, reason: undefined }, { file: file2, offset: frameOffset(0, 6), droppedBytes: 5, droppedRecords: 1, reason: undefined });
  await wal.close();

  // The only file emptied: reported, not begun afresh in silence.
  writeFileSync(file2, new Uint8Array(0));
  wal = await Wal.open(dir2);
  assert.deepEqual({ ...wal.replayStats.truncated, reason: undefined }, { file: file2, offset: 0, droppedBytes: 0, droppedRecords: 0, reason: undefined });
  assert.equal(wal.replayStats.created, false);
  assert.deepEqual(await replayAll(wal), []);
  await wal.close();
});

// A real LBFT node (a committee of one over a LevelDB ledger and a consensus WAL) restarted after running for
// a long time reads only the WAL since its last checkpoint, however long it ran; and a WAL that lost records
// (a torn tail, an emptied file, deleted, rolled back) is replayed with a warning saying what was dropped.
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ChainSpec, LogFields, Logger } from '../../chain/index.ts';
import { Ledger, LbftNode, MemoryTransport, Wal, validatorKeyOf } from '../../chain/index.ts';
import { MemorySigner } from '../../device/index.ts';
import { tempDir } from '../helpers/chain.ts';

const CHECKPOINT_BYTES = 8 * 1024;
const key = new MemorySigner(new Uint8Array(32).fill(0x33));
const spec: ChainSpec = {
  chainId: 1337n,
  baseFee: 1_000_000_000n,
  gasLimit: 30_000_000n,
  committee: [validatorKeyOf(key)],
  proposers: [key.address],
  periodMs: 1,
  timeoutMs: 5_000,
  genesisTimestamp: 0,
  alloc: new Map(),
};

/** Keeps the warnings a node logs. */
function warnings(): Logger & { seen: { msg: string; fields: LogFields }[] } {
  const seen: { msg: string; fields: LogFields }[] = [];
  const log = {
    seen,
    debug() {},
    info() {},
    warn(msg: string, fields: LogFields = {}) {
      seen.push({ msg, fields });
    },
    error() {},
    child: () => log,
  };
  return log;
}

/** Run the node in `dir` until its head reaches `height` (0: just start it), then stop; what start-up read and logged. */
async function runTo(t: { after(fn: () => unknown): void }, dir: string, height: bigint) {
  const ledger = await Ledger.open(join(dir, 'chain'), spec);
  const wal = await Wal.open(join(dir, 'wal'), { checkpointBytes: CHECKPOINT_BYTES });
  const log = warnings();
  const node = new LbftNode({ ledger, signer: key, transport: new MemoryTransport([key.address]), wal, logger: log });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await node.stop();
    await wal.close();
    await ledger.close();
  };
  t.after(close);
  const headAtStart = ledger.head.header.number;
  await node.start();
  const read = wal.replayStats;
  const deadline = Date.now() + 60_000;
  while (ledger.head.header.number < height) {
    if (Date.now() > deadline) throw new Error(`height ${ledger.head.header.number} after 60 s, waiting for ${height}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  await close();
  // Read after the stop: a block in progress when it was asked for still gets committed.
  const head = ledger.head.header.number;
  return { headAtStart, head, read, warnings: log.seen };
}

test('start-up reads the WAL from its last checkpoint only, however long the node ran', { timeout: 150_000 }, async (t) => {
  const dir = tempDir(t);
  await runTo(t, dir, 40n);
  const early = await runTo(t, dir, 400n);
  const late = await runTo(t, dir, 0n);
  assert.equal(late.headAtStart, early.head);
  // 360 more heights written (many times CHECKPOINT_BYTES), yet each start-up read about one checkpoint's worth.
  for (const { read } of [early, late]) {
    assert.ok(read.files <= 2, `start-up read ${read.files} files`);
    assert.ok(read.payloadBytes <= 2 * CHECKPOINT_BYTES, `start-up read ${read.payloadBytes} bytes`);
  }
  assert.ok(readdirSync(join(dir, 'wal')).length <= 3, `WAL files kept: ${readdirSync(join(dir, 'wal')).join(' ')}`);
  assert.deepEqual(late.warnings, []);
});

test('a WAL that lost records is replayed with a warning saying what was dropped', { timeout: 150_000 }, async (t) => {
  const dir = tempDir(t);
  const walDir = join(dir, 'wal');
  const newest = () => join(walDir, readdirSync(walDir).sort().at(-1)!);
  const warned = (r: { warnings: { msg: string; fields: LogFields }[] }, what: RegExp) => {
    const w = r.warnings.find((x) => what.test(x.msg));
    assert.ok(w !== undefined, `no warning ${what}: ${JSON.stringify(r.warnings.map((x) => x.msg))}`);
    return w.fields;
  };
  await runTo(t, dir, 20n);

  // A torn tail: the start of a frame header the crash cut short.
  appendFileSync(newest(), Uint8Array.of(0, 0, 1));
  const torn = warned(await runTo(t, dir, 0n), /truncated/);
  assert.equal(torn.droppedBytes, 3);
  assert.equal(torn.droppedRecords, 1);
  assert.match(String(torn.droppedHeights), /and later/);

  // The newest file emptied.
  const emptied = await runTo(t, dir, 30n);
  writeFileSync(newest(), new Uint8Array(0));
  assert.equal(warned(await runTo(t, dir, 0n), /truncated/).droppedBytes, 0);

  // Rolled back: the WAL as it was many heights ago.
  cpSync(walDir, join(dir, 'wal-then'), { recursive: true });
  const ahead = await runTo(t, dir, emptied.head + 100n);
  rmSync(walDir, { recursive: true });
  cpSync(join(dir, 'wal-then'), walDir, { recursive: true });
  const rolled = warned(await runTo(t, dir, 0n), /ends before the chain head/);
  assert.equal(rolled.head, ahead.head);
  assert.ok((rolled.walHeight as bigint) < ahead.head - 50n);

  // Deleted.
  rmSync(walDir, { recursive: true });
  const deleted = warned(await runTo(t, dir, 0n), /missing/);
  assert.equal(deleted.droppedHeights, `up to ${ahead.head + 1n}`);
});

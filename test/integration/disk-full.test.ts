// A full disk, on a real small filesystem (a 64 MiB tmpfs): the pipeline watches the real free space against
// its reserve (pipeline.minFreeBytes), raises the 'disk' alarm and stops taking readings before ENOSPC,
// whatever its logical bounds say; and stores (and a `datagate dev`) that cannot open on the full disk say
// DISK_FULL instead of a corrupt or failed store.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { MemorySigner } from '../../device/index.ts';
import { UnixFsContentStore } from '../../gateway/content/unixfs-store.ts';
import { Pipeline, openPipelineDb } from '../../gateway/pipeline/pipeline.ts';
import type { Reading } from '../../sensors/index.ts';
import { startDev, spawnDatagate } from '../helpers/dev-process.ts';
import { expectCode } from '../helpers/expect-code.ts';
import { recordingLogger } from '../helpers/pipeline-fixtures.ts';
import { onClose } from '../helpers/temp-dir.ts';
import { fillDisk, freeBytes, mountTmpfs, tmpfsSkipReason } from '../helpers/tmpfs.ts';

const MiB = 1024 * 1024;
const skip = tmpfsSkipReason();

/** A reading of about 6 KiB: 400 named values. */
function bigReading(seq: number): Reading {
  const values: Record<string, number> = {};
  for (let i = 0; i < 400; i++) values[`channel-${i}`] = seq + i / 1000;
  return { stream: 'disk/fill', ts: Date.now(), seq, values };
}

test('on a filling disk the alarm rises, then ingest stops with PIPELINE_FULL (bound disk) before ENOSPC', { skip, timeout: 170_000 }, async (t) => {
  const fs = mountTmpfs(t, 64);
  const content = await UnixFsContentStore.open(join(fs, 'content'));
  onClose(t, () => content.close());
  const log = recordingLogger();
  const pipeline = await Pipeline.open({
    dir: join(fs, 'pipeline'),
    contentStore: content,
    signer: new MemorySigner(new Uint8Array(32).fill(7)),
    masterKeyPath: join(fs, 'master.key'),
    windowMs: 1000,
    // Logical bounds far beyond the filesystem: only the free space can stop ingest here.
    limits: { maxQueueBytes: 1 << 30, maxStoreBytes: 1 << 30, policy: 'stop-accepting', minFreeBytes: 16 * MiB },
    logger: log,
  });
  onClose(t, () => pipeline.close());
  // Leave 26 MiB: the pipeline fills the rest up to its reserve.
  fillDisk(join(fs, 'filler'), 26 * MiB);
  let rejected = null as { code?: string; fields?: Record<string, unknown> } | null;
  let alarmBeforeFull = false;
  for (let seq = 0; seq < 20_000 && rejected === null; seq += 50) {
    await new Promise((r) => setTimeout(r, 5)); // let the free-space poll and the sealer run
    const batch = Array.from({ length: 50 }, (_, i) => pipeline.ingest(bigReading(seq + i)));
    for (const r of await Promise.allSettled(batch)) {
      if (r.status === 'rejected') rejected ??= r.reason as typeof rejected;
    }
    if (rejected === null && pipeline.status().alarmOn.includes('disk')) alarmBeforeFull = true;
  }
  const status = pipeline.status();
  assert.equal(rejected?.code, 'PIPELINE_FULL', `ingest never stopped: ${JSON.stringify(status)}`);
  assert.equal(rejected?.fields?.bound, 'disk');
  assert.ok(alarmBeforeFull, 'the disk alarm was on before ingest stopped');
  assert.ok(status.alarmOn.includes('disk'));
  assert.equal(status.failed, null, 'no write failed: the disk never filled');
  assert.ok(freeBytes(fs) > 8 * MiB, `free space left: ${freeBytes(fs)}`);
  assert.ok(log.lines.some((l) => l.level === 'warn' && l.fields.bound === 'disk'));
  t.diagnostic(`stopped at ${status.ingested} readings with ${(freeBytes(fs) / MiB).toFixed(1)} MiB free (reserve 16 MiB)`);
});

test('datagate dev restarted on a full disk exits with DISK_FULL, not STORE_CORRUPT', { skip, timeout: 170_000 }, async (t) => {
  const fs = mountTmpfs(t, 64);
  const dataDir = join(fs, 'dev');
  const first = await startDev(['--data-dir', dataDir, '--solo', '--block-period', '100'], { t });
  assert.equal(await first.stop(), 0, first.output());
  fillDisk(join(fs, 'filler'), 0);
  const again = spawnDatagate(['dev', '--data-dir', dataDir, '--solo', '--rpc-port', '0'], { t });
  assert.equal(await again.exited, 1, again.output());
  assert.match(again.output(), /\[DISK_FULL\]/);
  assert.doesNotMatch(again.output(), /STORE_CORRUPT/);
});

test('stores opened on a full disk say DISK_FULL: the content store, the pipeline database', { skip, timeout: 60_000 }, async (t) => {
  const fs = mountTmpfs(t, 8);
  fillDisk(join(fs, 'filler'), 0);
  await expectCode(UnixFsContentStore.open(join(fs, 'content')), 'DISK_FULL');
  await expectCode(openPipelineDb(join(fs, 'pipeline')), 'DISK_FULL');
});

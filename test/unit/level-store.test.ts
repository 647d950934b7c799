// openVersionedLevel (chain/level-store.ts), the one opener of the versioned LevelDB stores: a fresh store gets
// its version record (and initial records) in one batch, the same version reopens, listed older versions are
// upgraded, and anything else is refused with the store's own errors, the database closed again each time.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Level } from 'level';
import type { VersionedLevelOptions } from '../../chain/index.ts';
import { openVersionedLevel } from '../../chain/index.ts';
import { tempDir } from '../helpers/chain.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const VERSION_KEY = enc.encode('meta/schema');

/** Errors that say which factory made them, so each case can check the mapping. */
function options(extra: Partial<VersionedLevelOptions> = {}): VersionedLevelOptions {
  return {
    versionKey: VERSION_KEY,
    version: 3,
    errors: {
      locked: () => new Error('locked'),
      failed: () => Promise.resolve(new Error('failed')),
      mismatch: (found) => new Error(`mismatch ${found}`),
    },
    ...extra,
  };
}

async function put(path: string, value: string): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.put(VERSION_KEY, enc.encode(value));
  await db.close();
}

test('a fresh store gets its version and initial records; it reopens; the held LOCK maps to locked()', { timeout: 30_000 }, async (t) => {
  const path = join(tempDir(t), 'db');
  const db = await openVersionedLevel(path, options({ initialRecords: [{ key: enc.encode('meta/chain'), value: enc.encode('7') }] }));
  try {
    assert.equal(dec.decode((await db.get(VERSION_KEY))!), '3');
    assert.equal(dec.decode((await db.get(enc.encode('meta/chain')))!), '7');
    await assert.rejects(openVersionedLevel(path, options()), /^Error: locked$/);
  } finally {
    await db.close();
  }
  const again = await openVersionedLevel(path, options({ initialRecords: [{ key: enc.encode('meta/chain'), value: enc.encode('8') }] }));
  assert.equal(dec.decode((await again.get(enc.encode('meta/chain')))!), '7', 'initial records are written only into a fresh store');
  await again.close();
});

test('another version is refused, listed older ones are upgraded, an unreadable one is unreadable()', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const newer = join(dir, 'newer');
  await put(newer, '4');
  await assert.rejects(openVersionedLevel(newer, options()), /^Error: mismatch 4$/);
  await put(newer, '4'); // the refused store was closed again: it opens for another writer

  const older = join(dir, 'older');
  await put(older, '2');
  await assert.rejects(openVersionedLevel(older, options()), /^Error: mismatch 2$/);
  const upgraded = await openVersionedLevel(older, options({ upgradeFrom: [2] }));
  assert.equal(dec.decode((await upgraded.get(VERSION_KEY))!), '3');
  await upgraded.close();

  const garbled = join(dir, 'garbled');
  await put(garbled, '3.0');
  await assert.rejects(openVersionedLevel(garbled, options()), /^Error: mismatch 3\.0$/);
  const withUnreadable = options();
  await assert.rejects(openVersionedLevel(garbled, { ...withUnreadable, errors: { ...withUnreadable.errors, unreadable: (found) => new Error(`unreadable ${found}`) } }), /^Error: unreadable 3\.0$/);
});

test('create: false refuses a missing database with failed() and one without a version record with missing()', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const base = options({ create: false });
  await assert.rejects(openVersionedLevel(join(dir, 'absent'), base), /^Error: failed$/);
  const other = join(dir, 'other');
  const db = new Level<Uint8Array, Uint8Array>(other, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.put(enc.encode('something'), enc.encode('else'));
  await db.close();
  await assert.rejects(openVersionedLevel(other, { ...base, errors: { ...base.errors, missing: () => new Error('missing') } }), /^Error: missing$/);
  await assert.rejects(openVersionedLevel(other, base), /^Error: mismatch $/);
});

// The one opener of the versioned LevelDB stores (the block store, the pipeline database, the content store):
// docs/architecture.md "Storage". Each store keeps a decimal schema version under a key of its own; the opener
// writes it into a fresh store, upgrades the versions the store says it can read, and refuses any other. The
// errors are the store's own: it passes factories, so an operator reads the same codes and messages as before.
import { Level } from 'level';

export type LevelDb = Level<Uint8Array, Uint8Array>;

/** The errors a store throws at open; each returns (or resolves to) what is thrown. */
export interface VersionedLevelErrors {
  /** Another process holds the database's LOCK. */
  locked(cause: unknown): unknown;
  /** Any other failure to open: corruption, permissions, a full disk. */
  failed(cause: unknown): unknown;
  /** The store holds another version (`found` as stored, which need not be a number). */
  mismatch(found: string): unknown;
  /** The version record is not a decimal integer; default: mismatch(found). */
  unreadable?(found: string): unknown;
  /** No version record where `create` is false: the directory holds some other database. */
  missing?(): unknown;
}

export interface VersionedLevelOptions {
  /** Key of the version record. */
  readonly versionKey: Uint8Array;
  /** The version this code reads and writes. */
  readonly version: number;
  /** Older versions opened by rewriting the version record only (their records are a subset of this one's). */
  readonly upgradeFrom?: readonly number[];
  /** Make a missing database, and the version record of an empty one (default true). */
  readonly create?: boolean;
  /** Records written with the version record, in the same batch, when the store is new. */
  readonly initialRecords?: readonly { readonly key: Uint8Array; readonly value: Uint8Array }[];
  /** LevelDB's write buffer and block cache in bytes (LevelDB's defaults: 4 MiB and 8 MiB). */
  readonly writeBufferSize?: number;
  readonly cacheSize?: number;
  readonly errors: VersionedLevelErrors;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Whether a failed Level open() failed because another process holds the database's LOCK. */
export function isLevelLocked(err: unknown): boolean {
  return (err as { cause?: { code?: string } } | null)?.cause?.code === 'LEVEL_LOCKED';
}

/**
 * Open the LevelDB store at `path` with byte keys and values and check its version record (see the file
 * comment). Throws what the store's error factories return; the database is closed again on any failure.
 */
export async function openVersionedLevel(path: string, opts: VersionedLevelOptions): Promise<LevelDb> {
  const { errors, version } = opts;
  const create = opts.create ?? true;
  const db: LevelDb = new Level<Uint8Array, Uint8Array>(path, {
    keyEncoding: 'view',
    valueEncoding: 'view',
    createIfMissing: create,
    ...(opts.writeBufferSize !== undefined ? { writeBufferSize: opts.writeBufferSize } : {}),
    ...(opts.cacheSize !== undefined ? { cacheSize: opts.cacheSize } : {}),
  });
  try {
    await db.open();
  } catch (err) {
    throw await (isLevelLocked(err) ? errors.locked(err) : errors.failed(err));
  }
  try {
    const stored = await db.get(opts.versionKey);
    const current = enc.encode(String(version));
    if (stored === undefined) {
      if (!create) throw await (errors.missing !== undefined ? errors.missing() : errors.mismatch(''));
      const records = opts.initialRecords ?? [];
      await db.batch([{ type: 'put', key: opts.versionKey, value: current }, ...records.map((r) => ({ type: 'put' as const, key: r.key, value: r.value }))], { sync: true });
      return db;
    }
    const found = dec.decode(stored);
    if (!/^(0|[1-9][0-9]*)$/.test(found)) throw await (errors.unreadable !== undefined ? errors.unreadable(found) : errors.mismatch(found));
    const n = Number(found);
    if (n === version) return db;
    if (opts.upgradeFrom?.includes(n) === true) {
      await db.put(opts.versionKey, current, { sync: true });
      return db;
    }
    throw await errors.mismatch(found);
  } catch (err) {
    await db.close();
    throw err;
  }
}
